"""The dashboard's Kafka reader against a real (Tansu) broker: history on connect, live
messages, refused messages counted, status when the broker goes and comes back."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest

from monitor.broker import create_topics
from monitor.dashboard.feed import KafkaFeed
from monitor.dashboard.store import CentralStation

pytestmark = pytest.mark.kafka


def until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


@pytest.fixture
def produce(kafka_broker):
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap)

    def send(topic: str, bed: str, value: dict | bytes) -> None:
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        producer.send(topic, key=bed.encode(), value=raw)
        producer.flush()

    yield send
    producer.close()


def samples(bed: str, start: int, now: float) -> dict:
    return {"bed": bed, "record": "100", "fs": 360.0, "units": "mV", "start_index": start,
            "start_time": now, "samples": [0.0] * 90}


def test_feed_reads_recent_history_then_live_messages_and_counts_bad_ones(kafka_broker,
                                                                           produce) -> None:
    now = time.time()
    old = {"bed": "bed-01", "record": "100", "alarm_id": "a1", "kind": "pause",
           "priority": "medium", "state": "start", "time": now - 3600, "index": 0,
           "message": "Pause 2.1 s"}
    produce("ecg.alerts", "bed-01", old)  # an hour old: the 24 h history still shows it
    produce("ecg.samples", "bed-01", samples("bed-01", 0, now))  # seconds old: drawn at once
    ward = CentralStation(kafka_broker.bootstrap)
    with KafkaFeed(kafka_broker.bootstrap, ward) as feed:
        until(lambda: ward.beds() == ["bed-01"] and ward.active_alarms(), 15, "the history")
        assert ward.feed_status()["connected"]
        for k in range(1, 4):
            produce("ecg.samples", "bed-02", samples("bed-02", 90 * k, now + k / 4))
        produce("ecg.samples", "bed-02", b"{not json")
        produce("ecg.beats", "bed-02", {"bed": "bed-02", "label": "X"})
        until(lambda: "bed-02" in ward.beds() and ward.feed_status()["rejected"] == 2, 10,
              "live samples and two refusals")
        assert feed.messages == 5
        assert "ecg.beats" in ward.feed_status()["last_rejection"]
        assert ward.history()[0]["message"] == "Pause 2.1 s"


def test_feed_reports_a_lost_broker_and_reconnects(kafka_broker) -> None:
    ward = CentralStation(kafka_broker.bootstrap)
    with KafkaFeed(kafka_broker.bootstrap, ward):
        until(lambda: ward.feed_status()["connected"], 15, "the first connection")
        kafka_broker.stop()
        until(lambda: not ward.feed_status()["connected"], 15, "the outage to be noticed")
        assert ward.feed_status()["error"]
        kafka_broker.start()
        create_topics(kafka_broker.bootstrap)
        until(lambda: ward.feed_status()["connected"], 30, "the reconnection")


def test_feed_without_any_broker_says_so_and_stops_promptly() -> None:
    from monitor.broker import free_port

    bootstrap = f"127.0.0.1:{free_port()}"
    ward = CentralStation(bootstrap)
    feed = KafkaFeed(bootstrap, ward).start()
    until(lambda: "nothing accepts connections" in ward.feed_status()["error"], 10,
          "the unreachable broker to be reported")
    started = time.monotonic()
    feed.stop()
    assert time.monotonic() - started < 5
    with pytest.raises(ValueError, match="bootstrap"):
        KafkaFeed("", ward)
    with pytest.raises(ValueError, match="not read"):
        KafkaFeed(bootstrap, ward, topics=("ecg.deadletter",))


@pytest.mark.parametrize("error", [OverflowError("int too large"), RecursionError("deep"),
                                   KeyError("x"), ValueError("bad field")])
def test_a_message_that_breaks_its_parser_costs_that_message_only(error) -> None:
    """Only ValueError was caught once: anything else looked like a broker outage, and the
    reconnect re-read ecg.alerts from its start, hiding every later alarm."""

    def parse(value, key):
        raise error

    ward = CentralStation("127.0.0.1:9")
    feed = KafkaFeed("127.0.0.1:9", ward)
    record = SimpleNamespace(value=b"{}", key=b"bed-1")
    feed._apply("ecg.alerts", parse, record, 0.0)  # no exception: counted, not raised
    status = ward.feed_status()
    assert status["rejected"] == 1 and str(error).strip("'") in status["last_rejection"]
