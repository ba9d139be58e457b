"""The central station for a production WSGI server: `gunicorn monitor.dashboard.wsgi:server`.

Run it with one worker process (the ward's state lives in that process's memory) and a few
threads for concurrent viewers, as the Docker image does:

    gunicorn --workers 1 --threads 8 --bind 0.0.0.0:8050 monitor.dashboard.wsgi:server

Settings come from the environment: KAFKA_BOOTSTRAP_SERVERS (required), ECG_MODEL for the
offline page, the Kafka client security of `monitor.kafka_security`, and the login of
`monitor.dashboard.auth` (ECG_DASHBOARD_PASSWORD or ECG_DASHBOARD_PASSWORD_FILE: required here,
since a production server is reached by others).
"""

from __future__ import annotations

import logging
import os

from monitor.annotate import load_classifier
from monitor.broker import ENV_BOOTSTRAP
from monitor.dashboard.app import create_app
from monitor.dashboard.auth import ENV_PASSWORD, Credentials
from monitor.dashboard.feed import KafkaFeed
from monitor.dashboard.store import CentralStation
from monitor.errors import InputError

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
logging.getLogger("kafka").setLevel(logging.CRITICAL)

bootstrap = os.environ.get(ENV_BOOTSTRAP, "")
if ":" not in bootstrap:
    raise InputError(f"${ENV_BOOTSTRAP} must be HOST:PORT[,HOST:PORT...], got {bootstrap!r}")
credentials = Credentials.from_env()
if credentials is None:
    raise InputError(f"set ${ENV_PASSWORD} (or a secret file): the ward's page needs a login")

ward = CentralStation(bootstrap)
app = create_app(ward, lambda: load_classifier(None, device="cpu"), credentials)
server = app.server
feed = KafkaFeed(bootstrap, ward).start()
