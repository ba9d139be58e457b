"""The live system through a real broker: simulator -> Kafka -> Faust worker -> topics.

Every test starts a fresh Tansu broker (the `kafka_broker` fixture), runs the worker and the
simulator as the user does (`python -m monitor worker`, `python -m simulators.replay`; the
`stream` fixture) and reads the output topics without a consumer group. Processes are stopped
with their process groups.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter

import pytest

from monitor import processes
from monitor.tail import Record
from tests.streaming import REPO, collect, first_minutes, values

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_replayed_record_gives_the_offline_annotators_beats(stream, mitdb_dir, tmp_path):
    import wfdb

    data = first_minutes(mitdb_dir, "100", 180, tmp_path / "data")
    worker = stream.worker()
    sim = stream.simulate(
        "--beds", "1", "--records", "100", "--data-dir", str(data), "--start-s", "0",
        "--duration-s", "180",
    )
    offline = subprocess.run(
        processes.python_module(
            "monitor.annotate", "100", "--data-dir", str(data), "--out", str(tmp_path / "out"),
            "--device", "cpu",
        ),
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert offline.returncode == 0, offline.stderr
    reference = wfdb.rdann(str(tmp_path / "out" / "100"), "ecgm")
    records = collect(
        stream.bootstrap,
        ["ecg.beats"],
        lambda rs: sim.poll() is not None and len(rs) >= len(reference.sample) - 2,
    )
    assert sim.returncode == 0, stream.log("simulator")
    assert worker.poll() is None, stream.log("worker")
    beats = values(records, "ecg.beats")
    n = len(beats)
    # The stream does not end, so its last beat or two wait for a next R-peak; the offline
    # annotator flushes them.
    assert len(reference.sample) - 2 <= n <= len(reference.sample)
    assert [b["index"] for b in beats] == reference.sample[:n].tolist()
    assert [b["label"] for b in beats] == reference.symbol[:n]
    assert {b["bed"] for b in beats} == {"bed-01"} and {b["record"] for b in beats} == {"100"}


def test_ventricular_tachycardia_raises_a_high_alarm_with_start_and_end(stream):
    stream.worker()
    # MIT-BIH 207 has runs of ventricular tachycardia and flutter in its first 90 seconds.
    sim = stream.simulate(
        "--beds", "1", "--records", "207", "--start-s", "0", "--duration-s", "90"
    )
    records = collect(
        stream.bootstrap,
        ["ecg.alerts", "ecg.beats"],
        lambda rs: sim.poll() is not None and any(r.topic == "ecg.beats" for r in rs),
    )
    vt = [a for a in values(records, "ecg.alerts") if a["kind"] == "vtach"]
    assert [a["state"] for a in vt][:2] == ["start", "end"], values(records, "ecg.alerts")
    start, end = vt[0], vt[1]
    assert start["alarm_id"] == end["alarm_id"] and start["priority"] == "high"
    assert start["bed"] == "bed-01" and start["record"] == "207"
    assert start["time"] < end["time"] and start["index"] < end["index"]
    # The reference marks VT from 38.5 s; the alarm falls inside the record's VT/VFL stretch.
    t0 = min(b["time"] - b["index"] / b["fs"] for b in values(records, "ecg.beats"))
    assert 38.0 <= start["time"] - t0 <= 64.0


def test_garbage_goes_to_dead_letters_while_a_good_bed_keeps_flowing(stream):
    from kafka import KafkaProducer

    worker = stream.worker()
    sim = stream.simulate("--beds", "1", "--records", "100", "--duration-s", "60")
    producer = KafkaProducer(bootstrap_servers=stream.bootstrap)
    chunk = {
        "bed": "bed-99", "record": "100", "fs": 360.0, "units": "mV", "start_index": 0,
        "start_time": time.time(), "samples": [0.1] * 90,
    }
    garbage = [
        b"\x00\x01 definitely not json",
        json.dumps({**chunk, "fs": -1}).encode(),
        json.dumps({**chunk, "samples": []}).encode(),
        json.dumps({**chunk, "samples": "oops"}).encode(),
        json.dumps(chunk).encode().replace(b"[0.1,", b"[NaN,"),
        json.dumps(chunk).encode(),  # the first good chunk of bed-99 ...
        json.dumps({**chunk, "start_index": 900, "start_time": time.time() + 1}).encode(),  # gap
    ]
    for value in garbage:
        producer.send("ecg.samples", key=b"bed-99", value=value)
    producer.flush()
    producer.close()
    records = collect(
        stream.bootstrap,
        ["ecg.deadletter", "ecg.beats", "ecg.alerts"],
        lambda rs: sim.poll() is not None and len(values(rs, "ecg.deadletter")) >= 6,
    )
    dead = values(records, "ecg.deadletter")
    assert [d["reason"].split(":")[0] for d in dead] == [
        "malformed_json", "bad_fs", "empty_chunk", "bad_field", "non_finite", "gap"
    ]
    assert dead[0]["payload"].endswith("definitely not json")
    assert all(d["source_topic"] == "ecg.samples" for d in dead)
    assert [d["offset"] for d in dead] == sorted(d["offset"] for d in dead)
    resets = [a for a in values(records, "ecg.alerts") if a["kind"] == "pipeline_reset"]
    assert resets and resets[0]["bed"] == "bed-99" and resets[0]["state"] == "start"
    beats = Counter(b["bed"] for b in values(records, "ecg.beats"))
    assert beats["bed-01"] > 60  # 60 s of record 100 at about 75 bpm: the good bed flowed
    assert worker.poll() is None, stream.log("worker")


def test_a_restarted_worker_keeps_counting_from_its_table(stream):
    def totals(records: list[Record]) -> dict[str, int]:
        last: dict[str, int] = {}
        for v in values(records, "ecg.vitals"):
            last[v["bed"]] = v["beats_total"]
        return last

    beds = ["bed-01", "bed-02"]
    first = stream.worker("worker-1")
    sim = stream.simulate("--beds", "2", "--records", "100", "--duration-s", "30")
    # Vitals come every second: wait for the condition alone (settle_s=0), a few times over.
    seen = []

    def settled(rs: list[Record]) -> bool:
        seen.append(totals(rs))
        steady = len(seen) > 8 and seen[-1] == seen[-8] and sorted(seen[-1]) == beds
        return sim.poll() is not None and steady

    before = collect(stream.bootstrap, ["ecg.vitals"], settled, settle_s=0)
    counted = totals(before)
    assert sorted(counted) == beds and all(n > 25 for n in counted.values()), counted
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=30) == 0, stream.log("worker-1")

    stream.worker("worker-2")
    sim = stream.simulate(
        "--beds", "2", "--records", "100", "--duration-s", "30", "--seed", "1"
    )

    def grown(rs: list[Record]) -> bool:
        now = totals(rs)
        return sim.poll() is not None and all(now.get(b, 0) > counted[b] + 25 for b in beds)

    after = collect(stream.bootstrap, ["ecg.vitals"], grown, timeout_s=90, settle_s=0)
    final = totals(after)
    assert grown(after), (counted, final, stream.log("worker-2"))
    # Each bed gained about one more 30 s of beats: the count went on, it did not restart.
    for bed in beds:
        assert 1.6 * counted[bed] <= final[bed] <= 2.4 * counted[bed], (counted, final)
