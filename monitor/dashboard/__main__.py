"""`python -m monitor.dashboard`: serve the central station for a Kafka broker.

    python -m monitor.dashboard --bootstrap 127.0.0.1:9092 --port 8050

This runs Flask's development server, for the demo and a developer's machine. A ward serves the
page with gunicorn (`monitor.dashboard.wsgi`, as the Docker image does) behind a login
(`monitor.dashboard.auth`: $ECG_DASHBOARD_PASSWORD); here, too, a password turns the login on,
and without one the page is served on loopback addresses only.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import socket

from monitor.broker import ENV_BOOTSTRAP
from monitor.dashboard.auth import Credentials
from monitor.errors import InputError, missing_extra, run_cli

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8050
#: Kafka's conventional port; with nothing there the page opens and its banner says so.
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m monitor.dashboard", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default=DEFAULT_HOST, help=f"interface to serve on ({DEFAULT_HOST})")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port ({DEFAULT_PORT})")
    p.add_argument("--bootstrap", default=os.environ.get(ENV_BOOTSTRAP, DEFAULT_BOOTSTRAP),
                   help=f"Kafka bootstrap servers host:port (default ${ENV_BOOTSTRAP}, else "
                        f"{DEFAULT_BOOTSTRAP})")
    p.add_argument("--model", default=None,
                   help="model file for the offline page (default $ECG_MODEL, else the shipped "
                        "models/ecg_cnn_bilstm.pt)")
    p.add_argument("--debug", action="store_true",
                   help="Dash dev tools (callback errors in the page, callback graph)")
    p.add_argument("--insecure-no-login", action="store_true",
                   help="serve on a non-loopback address without $ECG_DASHBOARD_PASSWORD: "
                        "anyone who reaches it reads live ECG and acknowledges alarms")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.bootstrap or ":" not in args.bootstrap:
        raise InputError(f"--bootstrap must be HOST:PORT[,HOST:PORT...], got {args.bootstrap!r}")
    if not 0 < args.port < 65536:
        raise InputError(f"--port must be 1..65535, got {args.port}")
    credentials = Credentials.from_env()
    if credentials is None and not _loopback(args.host) and not args.insecure_no_login:
        raise InputError(
            f"--host {args.host} serves beyond this machine: set $ECG_DASHBOARD_PASSWORD (the "
            "page then asks for a login) or pass --insecure-no-login"
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # kafka-python logs every failed reconnect; the page's banner already says the broker is gone.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    try:
        from monitor.dashboard.app import create_app
    except ModuleNotFoundError as exc:
        raise missing_extra("the dashboard", exc.name, "dashboard") from exc
    from monitor.annotate import load_classifier
    from monitor.dashboard.feed import KafkaFeed
    from monitor.dashboard.store import CentralStation

    ward = CentralStation(args.bootstrap)
    app = create_app(ward, lambda: load_classifier(args.model, device="cpu"), credentials)
    with KafkaFeed(args.bootstrap, ward):
        logging.getLogger(__name__).info(
            "central station on http://%s:%d/ reading %s", args.host, args.port, args.bootstrap)
        try:
            app.run(host=args.host, port=args.port, debug=args.debug, use_reloader=False)
        except OSError as exc:  # port taken, address not on this machine
            raise InputError(f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}"
                             ) from exc
    return 0


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        return False


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
