"""Faults injected into the live system on a real broker: what is lost, what is repeated.

- The worker is SIGKILLed mid-stream and a new one takes over: every beat the offline annotator
  finds is published except those of the in-flight window, a beat published twice is shown
  once on the central station, and no alarm of the dead worker stays open there.
- The broker goes away for 15 s mid-stream and comes back: worker, simulator and dashboard feed
  reconnect by themselves, each says that the broker was away, and no beat is lost.
- A bed's feed stalls for 20 s and resumes with its backlog: a no_data alarm covers the silence,
  ends when data flows again, and no beat is lost.
- A flood of 10,000 malformed messages of 18 kinds arrives while a bed streams: every one is
  dead-lettered with its reason, every good beat is delivered, the worker's memory stays bounded.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time

import numpy as np
import pytest

from monitor.dashboard.store import CentralStation
from monitor.messages import AlertEvent, BeatEvent
from tests.streaming import collect, first_minutes, values

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

#: Beats the restarted worker may not deliver: its new pipeline needs the next R-peak to
#: anchor the rhythm, and beats waiting in the dead worker's memory are gone with it. Seen in six
#: runs: 1, 2, 1, 4, 2, 1 (the 4: the new consumer read from the partition's start before
#: seeking to the committed offset, so the bed's pipeline restarted once more at that jump).
IN_FLIGHT_BEATS = 5


def _offline_beats(mitdb_dir, data, out) -> list[int]:
    """R-peaks of the offline annotator on the same signal: what the stream should deliver."""
    import subprocess
    import sys

    import wfdb

    done = subprocess.run(
        [sys.executable, "-m", "monitor.annotate", "100", "--data-dir", str(data), "--out",
         str(out), "--device", "cpu"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return wfdb.rdann(str(out / "100"), "ecgm").sample.tolist()


def test_a_killed_worker_loses_only_its_in_flight_beats_and_leaves_no_alarm_open(
    stream, mitdb_dir, tmp_path
):
    data = first_minutes(mitdb_dir, "100", 75, tmp_path / "data")
    reference = _offline_beats(mitdb_dir, data, tmp_path / "out")
    first = stream.worker("worker-1")
    sim = stream.simulate(
        "--beds", "1", "--records", "100", "--data-dir", str(data), "--start-s", "0",
        "--duration-s", "75", "--speed", "1",
    )  # fmt: skip
    # Let the first worker publish some beats (and save the bed in its table), then kill it.
    collect(stream.bootstrap, ["ecg.beats"], lambda rs: len(rs) >= 15, settle_s=0)
    time.sleep(2.0)  # a table save and an offset commit happen every few seconds
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    killed_at = time.time()
    # Restarted once the broker has dropped the dead member (its 10 s session), as a supervisor
    # with a restart delay would. On Tansu a new consumer sometimes goes through a second
    # rebalance and resumes from a later offset than the committed one (seen: 10 and 20 s of
    # chunks skipped, once in about ten runs). The worker cannot get those chunks back, but it
    # must say so: the skip reaches the bed as a gap, which is dead-lettered with its span.
    time.sleep(12.0)
    stream.worker("worker-2")
    records = collect(stream.bootstrap, ["ecg.beats", "ecg.alerts", "ecg.deadletter"],
                      _until_the_end(sim, reference), timeout_s=150)  # fmt: skip
    beats = values(records, "ecg.beats")
    after_kill = [r.timestamp for r in records
                  if r.topic == "ecg.beats" and r.timestamp > killed_at]  # fmt: skip
    recovery_s = min(after_kill) - killed_at
    assert recovery_s < 75, stream.log("worker-2")
    published = np.array([b["index"] for b in beats])
    # The new worker's pipeline resamples from another sample: an R-peak may move by a sample
    # or two, so beats are the same beat within the EC57 window.
    gaps = _reported_gaps(values(records, "ecg.deadletter"))
    skipped = [r for r in reference[:-2] if any(a - 54 <= r < b + 54 for a, b in gaps)]
    missing = [r for r in _missing(reference, beats) if r not in skipped]
    # Each pipeline start (the new worker's, and one per reported gap) costs its in-flight beats.
    in_flight = IN_FLIGHT_BEATS * (1 + len(gaps))
    assert len(missing) <= in_flight, (missing, gaps, stream.log("worker-2"))
    assert all(np.abs(np.array(reference) - p).min() <= 54 for p in published)  # none made up

    station = CentralStation()
    for b in beats:
        station.ingest("ecg.beats", BeatEvent.from_dict(b))
    shown = len(published) - station.duplicates
    assert len(reference) - 2 - len(skipped) - in_flight <= shown <= len(reference)  # once each
    print(f"kill -> first beat of the new worker {recovery_s:.1f} s; {len(missing)} beats "
          f"missing, {len(skipped)} in {len(gaps)} reported skips; {station.duplicates} "
          "re-published beats shown once")
    alerts = values(records, "ecg.alerts")
    resets = [a for a in alerts if a["kind"] == "pipeline_reset" and a["state"] == "start"]
    assert resets and resets[-1]["time"] >= killed_at - 30, alerts  # the new worker said so
    for a in alerts:
        station.ingest("ecg.alerts", AlertEvent.from_dict(a))
    left_open = [a for a in station.active_alarms() if a["start"] < resets[-1]["time"]]
    assert left_open == [], left_open


def _missing(reference: list[int], beats: list[dict]) -> list[int]:
    """Reference beats (but the last two, which wait for a next R-peak) with no published beat
    within the EC57 window (150 ms at 360 Hz = 54 samples)."""
    published = np.array([b["index"] for b in beats])
    return [r for r in reference[:-2] if published.size == 0 or np.abs(published - r).min() > 54]


def _reported_gaps(deadletters: list[dict]) -> list[tuple[int, int]]:
    """[expected, start) sample spans of the gaps the worker dead-lettered (`monitor.bed.judge`)."""
    spans = []
    for d in deadletters:
        m = re.search(r"missing before start_index (\d+) \(expected (\d+)\)", d["reason"])
        if d["reason"].startswith("gap:") and m:
            spans.append((int(m.group(2)), int(m.group(1))))
    return spans


def _until_the_end(sim, reference: list[int]):
    """`collect`'s done: the simulator has finished and the record's last beats are out."""
    return lambda rs: sim.poll() is not None and any(
        b["index"] >= reference[-3] - 54 for b in values(rs, "ecg.beats"))


def test_the_broker_going_away_and_coming_back_loses_no_beat(outage_stream, mitdb_dir, tmp_path):
    from monitor.dashboard.feed import KafkaFeed

    stream = outage_stream
    data = first_minutes(mitdb_dir, "100", 75, tmp_path / "data")
    reference = _offline_beats(mitdb_dir, data, tmp_path / "out")
    worker = stream.worker()
    station = CentralStation(stream.bootstrap)
    sim = stream.simulate(
        "--beds", "1", "--records", "100", "--data-dir", str(data), "--start-s", "0",
        "--duration-s", "75", "--speed", "1",
    )  # fmt: skip
    with KafkaFeed(stream.bootstrap, station, topics=("ecg.beats", "ecg.alerts")):
        collect(stream.bootstrap, ["ecg.beats"], lambda rs: len(rs) >= 15, settle_s=0)
        stream.proxy.cut()
        cut_at = time.time()
        seen_down = False
        while time.time() - cut_at < 15.0:
            seen_down |= not station.feed_status()["connected"]
            time.sleep(0.2)
        stream.proxy.restore()
        back_at = time.time()
        records = collect(stream.bootstrap, ["ecg.beats", "ecg.alerts"],
                          _until_the_end(sim, reference), timeout_s=150)  # fmt: skip
        assert station.feed_status()["connected"], station.feed_status()
        shown = station.detail("bed-01", seconds=600)["beats"]
    assert seen_down, "the central station never said that the broker was away"
    beats = values(records, "ecg.beats")
    missing = _missing(reference, beats)
    assert missing == [], (missing, stream.log("worker"))
    # The feed re-read the last 35 s of beats when it reconnected; the station shows each once.
    assert len(shown) == len({b["index"] for b in beats}) >= len(reference) - 2, shown
    assert station.duplicates > 0  # there were re-read beats to recognise
    caught_up = min(r.timestamp for r in records
                    if r.topic == "ecg.beats" and r.timestamp > back_at)  # fmt: skip
    assert caught_up - back_at < 30, stream.log("worker")
    assert sim.wait(timeout=60) == 0, stream.log("simulator")  # every chunk delivered in the end
    assert "broker" in stream.log("simulator"), stream.log("simulator")  # it said so meanwhile
    assert worker.poll() is None, stream.log("worker")
    print(f"broker away 15 s: beats flowing {caught_up - back_at:.1f} s after it came back; "
          f"{len(missing)} beats missing; {station.duplicates} re-read beats shown once")


def test_a_stalled_bed_raises_no_data_and_resumes_without_losing_a_beat(stream, mitdb_dir,
                                                                        tmp_path):
    data = first_minutes(mitdb_dir, "100", 60, tmp_path / "data")
    reference = _offline_beats(mitdb_dir, data, tmp_path / "out")
    stream.worker()
    sim = stream.simulate(
        "--beds", "1", "--records", "100", "--data-dir", str(data), "--start-s", "0",
        "--duration-s", "60", "--speed", "1",
    )  # fmt: skip
    collect(stream.bootstrap, ["ecg.beats"], lambda rs: len(rs) >= 15, settle_s=0)
    os.kill(sim.pid, signal.SIGSTOP)  # the bedside feed hangs...
    time.sleep(20.0)
    os.kill(sim.pid, signal.SIGCONT)  # ...and sends its backlog when it comes back
    resumed_at = time.time()
    records = collect(stream.bootstrap, ["ecg.beats", "ecg.alerts"],
                      _until_the_end(sim, reference), timeout_s=120)  # fmt: skip
    beats = values(records, "ecg.beats")
    assert _missing(reference, beats) == [], stream.log("worker")
    assert len({b["index"] for b in beats}) == len(beats)  # none twice
    alerts = values(records, "ecg.alerts")
    assert not any(a["kind"] == "pipeline_reset" for a in alerts), alerts  # a pause, not a gap
    silence = [a for a in alerts if a["kind"] == "no_data"]
    assert [a["state"] for a in silence] == ["start", "end"], alerts
    back_s = min(r.timestamp for r in records
                 if r.topic == "ecg.beats" and r.timestamp > resumed_at) - resumed_at  # fmt: skip
    assert back_s < 10, stream.log("worker")
    print(f"stalled 20 s: no_data raised and ended; beats again {back_s:.1f} s after resume")


def _flood_kinds(now: float) -> list[tuple[bytes, bytes]]:
    """18 kinds of unusable ecg.samples messages, none of which names a usable bed."""
    good = {"bed": "flood", "record": "x", "fs": 360.0, "units": "mV", "start_index": 0,
            "start_time": now, "samples": [0.1] * 90}  # fmt: skip

    def j(**change) -> bytes:
        msg = {**good, **change}
        return json.dumps({k: v for k, v in msg.items() if v is not ...}).encode()

    return [
        (b"\x00\xff not json", b"flood"),
        (b"[1, 2, 3]", b"flood"),
        (b"", b"flood"),
        (b"[" * 50_000 + b"]" * 50_000, b"flood"),
        (j(samples=...), b"flood"),
        (j(fs="360"), b"flood"),
        (j(fs=50.0), b"flood"),
        (j(fs=1000.001), b"flood"),
        (j(fs=10**400), b"flood"),
        (j(samples=[]), b"flood"),
        (j().replace(b"[0.1,", b"[NaN,"), b"flood"),
        (j(samples=[1e6] * 90), b"flood"),
        (j(fs=100.0, samples=[0.0] * 6001), b"flood"),
        (j(), b"someone-else"),
        (j(bed="b" * 100), b"b" * 100),
        (j(start_index=-1), b"flood"),
        (j(units="mmHg"), b"flood"),
        (j(start_time=12.0), b"flood"),
    ]


def test_a_flood_of_malformed_messages_costs_no_good_beat(stream, mitdb_dir, tmp_path):
    from kafka import KafkaProducer

    data = first_minutes(mitdb_dir, "100", 60, tmp_path / "data")
    reference = _offline_beats(mitdb_dir, data, tmp_path / "out")
    worker = stream.worker()
    kinds = _flood_kinds(time.time())
    n_bad = 10_000
    producer = KafkaProducer(bootstrap_servers=stream.bootstrap, linger_ms=5)
    sim = stream.simulate(
        "--beds", "1", "--records", "100", "--data-dir", str(data), "--start-s", "0",
        "--duration-s", "60", "--speed", "4",
    )  # fmt: skip
    for i in range(n_bad):
        value, key = kinds[i % len(kinds)]
        producer.send("ecg.samples", key=key, value=value)
        if i % 500 == 0:
            time.sleep(0.05)  # interleaved with the good bed's chunks, not all before them
    producer.flush()
    producer.close()

    def through(rs) -> bool:  # the worker's own counters say when it has seen everything
        stats = values(rs, "ecg.stats")
        return (sim.poll() is not None and len(values(rs, "ecg.beats")) >= len(reference) - 2
                and bool(stats) and sum(stats[-1]["deadletters"].values()) >= n_bad)  # fmt: skip

    # ecg.stats never goes quiet (one record a second), so no settling: `through` is the end.
    records = collect(stream.bootstrap, ["ecg.beats", "ecg.stats"], through, timeout_s=240,
                      settle_s=0)  # fmt: skip
    stats = values(records, "ecg.stats")
    assert stats and sum(stats[-1]["deadletters"].values()) == n_bad, stream.log("worker")
    # Counted by reading, not by the topic's end offset: the embedded broker's ListOffsets
    # answer lags the log (seen: 9,995 with offsets 0..9,999 all readable).
    letters = collect(stream.bootstrap, ["ecg.deadletter"], lambda rs: len(rs) >= n_bad,
                      timeout_s=60, settle_s=2)  # fmt: skip
    assert len({r.offset for r in letters}) == len(letters) == n_bad  # every bad message, once
    dead = values(letters, "ecg.deadletter")
    categories = set(stats[-1]["deadletters"])
    assert categories >= {"malformed_json", "missing_field", "bad_field", "bad_fs",
                          "empty_chunk", "non_finite", "out_of_range", "too_long",
                          "key_mismatch"}  # fmt: skip
    assert {d["reason"].split(":")[0] for d in dead} == categories
    assert all(len(d["payload"]) < 20_000 for d in dead)  # the nested one was cut
    beats = values(records, "ecg.beats")
    assert {b["bed"] for b in beats} == {"bed-01"}  # no bed made up from the flood
    published = [b["index"] for b in beats]
    assert published == reference[: len(published)] and len(published) >= len(reference) - 2
    assert stats[-1]["rss_mb"] < 1200, stats[-1]  # bounded, whatever arrived
    assert worker.poll() is None, stream.log("worker")
    print(f"{n_bad} dead letters in {len(categories)} categories; {len(published)} beats; "
          f"worker RSS {stats[-1]['rss_mb']:.0f} MB")
