"""`python -m monitor.tail`, the consumer command the README names, against a real broker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.broker import ENV_BOOTSTRAP

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.kafka
def test_tail_prints_each_message_as_a_json_line(kafka_broker):
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
    for bed, kind in (("bed-01", "vtach"), ("bed-02", "pause"), ("bed-01", "afib")):
        value = {"bed": bed, "kind": kind, "state": "start"}
        producer.send("ecg.alerts", key=bed.encode(), value=json.dumps(value).encode())
    producer.send("ecg.alerts", key=b"bed-01", value=b"not json")
    producer.flush()
    producer.close()
    env = {**os.environ, ENV_BOOTSTRAP: kafka_broker.bootstrap}
    out = subprocess.run(
        [sys.executable, "-m", "monitor.tail", "ecg.alerts", "--from-beginning", "--bed",
         "bed-01", "-n", "3"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [json.loads(ln) for ln in lines[:2]] == [
        {"bed": "bed-01", "kind": "vtach", "state": "start"},
        {"bed": "bed-01", "kind": "afib", "state": "start"},
    ]
    assert json.loads(lines[2]) == "not json"  # shown, not dropped


def test_tail_needs_a_broker_and_says_so():
    env = {k: v for k, v in os.environ.items() if k != ENV_BOOTSTRAP}
    out = subprocess.run(
        [sys.executable, "-m", "monitor.tail", "ecg.alerts"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 2
    assert out.stderr.strip() == (
        f"error: no Kafka: pass --bootstrap host:port or set ${ENV_BOOTSTRAP}"
    )
