"""The dashboard's only Kafka reader: one background thread feeding the `CentralStation` store.

A viewer needs every partition and no offset bookkeeping, so the consumer takes all partitions
with `assign()` and no consumer group (kafka-python's group protocol also does not work against
the embedded Tansu broker). On connect it reads back enough history to fill the screens at once:
the last `LOOKBACK_S` of live topics, 30 min of vitals for the HR trend, and the whole alert
topic for the 24 h alarm history. A liveness probe every `PROBE_S` turns an unreachable broker
into the page's banner; the thread then rebuilds its consumer until the broker answers again.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time

from monitor import topics
from monitor.dashboard.beds import TREND_S
from monitor.dashboard.store import CentralStation
from monitor.kafka_security import KafkaSecurity
from monitor.logthrottle import throttle_client_logs
from monitor.messages import DECODERS

log = logging.getLogger(__name__)

#: Seconds of live-topic history read on (re)connect: fills the 30 s detail strip.
LOOKBACK_S = 35.0
#: The topics the station reads.
READ = (topics.SAMPLES, topics.BEATS, topics.ALERTS, topics.VITALS, topics.REFERENCE)
LOOKBACK = {
    topics.SAMPLES: LOOKBACK_S,
    topics.BEATS: LOOKBACK_S,
    topics.REFERENCE: LOOKBACK_S,
    topics.VITALS: TREND_S,
}
#: Seconds between liveness probes of the broker.
PROBE_S = 1.0
#: How long one request may wait for the broker before it counts as unreachable.
REQUEST_TIMEOUT_MS = 3000
#: Seconds between connection attempts while the broker is away.
RETRY_S = 1.0
#: Seconds between log lines about refused messages (each one is counted on the page).
WARN_EVERY_S = 10.0


class KafkaFeed:
    """Background reader of the product topics into a `CentralStation`; `start()`/`stop()`."""

    def __init__(
        self, bootstrap: str, ward: CentralStation, topics: tuple[str, ...] = READ
    ) -> None:
        if not bootstrap:
            raise ValueError("bootstrap must name a Kafka broker (host:port)")
        unknown = set(topics) - set(READ)
        if unknown:
            raise ValueError(f"topics {sorted(unknown)} are not read by the dashboard")
        self.bootstrap = bootstrap
        self.ward = ward
        self.topics = topics
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kafka-feed", daemon=True)
        self.messages = 0
        self._warned_at = -float("inf")

    def start(self) -> KafkaFeed:
        throttle_client_logs()  # an outage is one warning per kind, not ten a second
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def __enter__(self) -> KafkaFeed:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            consumer = None
            try:
                consumer = self._connect()
                self.ward.set_feed_status(True)
                self._consume(consumer)
            except Exception as exc:  # any broker failure: report, back off, reconnect
                reason = str(exc) or type(exc).__name__
                if reason != self.ward.feed_status()["error"]:  # once per outage, not per retry
                    log.warning("kafka feed from %s interrupted: %s", self.bootstrap, reason)
                self.ward.set_feed_status(False, reason)
                self._stop.wait(RETRY_S)
            finally:
                if consumer is not None:
                    try:
                        consumer.close(autocommit=False)
                    except Exception:  # closing a dead connection may fail; nothing to keep
                        log.debug("consumer close failed", exc_info=True)

    def _connect(self):
        from kafka import KafkaConsumer, TopicPartition

        if not any(_listening(server) for server in self.bootstrap.split(",")):
            raise ConnectionError(f"nothing accepts connections at {self.bootstrap}")
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap,
            client_id="ecg-dashboard",
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            fetch_max_wait_ms=100,
            request_timeout_ms=REQUEST_TIMEOUT_MS,
            bootstrap_timeout_ms=REQUEST_TIMEOUT_MS,
            reconnect_backoff_max_ms=2000,
            **KafkaSecurity.from_env().kafka_python(),
        )
        try:
            partitions = []
            for topic in self.topics:
                ids = consumer.partitions_for_topic(topic)
                if not ids:
                    raise ConnectionError(f"topic {topic} does not exist (yet) on the broker")
                partitions += [TopicPartition(topic, p) for p in sorted(ids)]
            consumer.assign(partitions)
            self._rewind(consumer, partitions)
        except Exception:
            consumer.close(autocommit=False)
            raise
        return consumer

    def _rewind(self, consumer, partitions) -> None:
        """Start each partition far enough back to fill the screens (see module docstring)."""
        now_ms = int(time.time() * 1000)
        alerts = [tp for tp in partitions if tp.topic == topics.ALERTS]
        if alerts:
            consumer.seek_to_beginning(*alerts)
        timed = {tp: now_ms - int(LOOKBACK[tp.topic] * 1000) for tp in partitions
                 if tp.topic in LOOKBACK}
        found = consumer.offsets_for_times(timed) if timed else {}
        for tp in timed:
            hit = found.get(tp)
            if hit is not None:
                consumer.seek(tp, hit.offset)
            else:
                consumer.seek_to_end(tp)

    def _consume(self, consumer) -> None:
        probe_at = time.monotonic() + PROBE_S
        assigned = list(consumer.assignment())
        while not self._stop.is_set():
            batches = consumer.poll(timeout_ms=100, max_records=2000)
            arrived = time.monotonic()
            for tp, records in batches.items():
                parse = DECODERS[tp.topic]
                for record in records:
                    self._apply(tp.topic, parse, record, arrived)
            if arrived >= probe_at:
                # Raises KafkaTimeoutError when the broker is gone: the caller reconnects.
                consumer.end_offsets(assigned)
                self.ward.set_feed_status(True)
                probe_at = arrived + PROBE_S

    def _apply(self, topic: str, parse, record, arrived: float) -> None:
        try:
            self.ward.ingest(topic, parse(record.value, record.key), arrived)
            self.messages += 1
        except Exception as exc:  # malformed or unusable: this message only, never the feed
            # A parser raises ValueError for what it checks; anything else (a RecursionError,
            # an OverflowError, a bug) must not pass for a broker outage and re-read the topic.
            reason = str(exc)[:500] if isinstance(exc, ValueError) else f"{exc!r}"[:500]
            self.ward.reject(topic, reason)
            if arrived - self._warned_at > WARN_EVERY_S:  # the page shows the running count
                self._warned_at = arrived
                log.warning("refused a %s message: %s (%s refused so far)", topic, exc,
                            self.ward.feed_status()["rejected"])


def _listening(server: str) -> bool:
    """Whether host:port accepts a TCP connection now (checked before kafka-python, whose
    metadata calls can block for long against a closed port)."""
    host, _, port = server.strip().rpartition(":")
    with contextlib.suppress(OSError, ValueError), socket.create_connection(
        (host or "localhost", int(port)), timeout=1.0
    ):
        return True
    return False
