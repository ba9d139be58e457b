"""A broker outage makes the Kafka clients repeat the same warning many times a second."""

from __future__ import annotations

import logging

import pytest

from monitor import logthrottle
from monitor.logthrottle import RepeatFilter


def _record(msg: str, level: int = logging.ERROR, name: str = "aiokafka.conn"):
    return logging.LogRecord(name, level, __file__, 1, msg, ("x",), None)


def test_a_repeated_warning_passes_once_per_period_with_the_count_held_back(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(logthrottle.time, "monotonic", lambda: clock[0])
    f = RepeatFilter(every_s=30)
    passed = []
    for _ in range(50):  # 5 s of a reconnect loop
        rec = _record("Unable connect to node %s")
        if f.filter(rec):
            passed.append(rec.getMessage())
        clock[0] += 0.1
    assert passed == ["Unable connect to node x"]
    clock[0] += 30
    rec = _record("Unable connect to node %s")
    assert f.filter(rec) and rec.getMessage() == (
        "Unable connect to node x [49 more like this in the last 30 s]")
    assert f.filter(_record("Unable to update metadata %s"))  # another kind: its own budget
    assert f.filter(_record("Unable connect to node %s", name="kafka.net.manager"))
    assert all(f.filter(_record("Unable connect to node %s", logging.INFO)) for _ in range(3))


def test_the_filter_goes_on_every_client_logger_once():
    logging.getLogger("aiokafka.test_only_child")
    logging.getLogger("kafkaesque.not_a_client")
    logthrottle.throttle_client_logs()
    logthrottle.throttle_client_logs()
    assert logging.getLogger("aiokafka.test_only_child").filters.count(logthrottle._FILTER) == 1
    assert logthrottle._FILTER not in logging.getLogger("kafkaesque.not_a_client").filters


def test_a_period_must_be_positive():
    with pytest.raises(ValueError, match="every_s"):
        RepeatFilter(every_s=0)
