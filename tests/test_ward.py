"""The worker's beds and micro-batched rounds, with the shipped model, without Kafka."""

from __future__ import annotations

import json

import numpy as np
import pytest

from monitor.annotate import annotate_lead
from monitor.classifier import DEFAULT_MODEL, BeatClassifier
from monitor.messages import BedCounters, SampleChunk
from monitor.records import Lead, read_lead
from monitor.ward import FORGET_AFTER_S, Source, Ward, percentile_from_histogram

T0 = 1_700_000_000.0
CHUNK = 90  # 250 ms at 360 Hz


@pytest.fixture(scope="module")
def classifier():
    if not DEFAULT_MODEL.is_file():
        pytest.skip(f"shipped model {DEFAULT_MODEL} not built yet: python -m trainer.train")
    return BeatClassifier(device="cpu")


def _message(bed: str, record: str, x: np.ndarray, start: int, fs: float = 360.0) -> bytes:
    return SampleChunk(
        bed=bed, record=record, fs=fs, units="mV", start_index=start,
        start_time=T0 + start / fs, samples=x.tolist(),
    ).dumps()


def _source(offset: int = 0) -> Source:
    return Source("ecg.samples", 0, offset, T0)


def _play(ward: Ward, feeds: list[tuple[bytes | None, bytes | None]], per_round: int = 16):
    """Run rounds of `per_round` messages, as the agent does; (beats, alerts, dead letters)."""
    beats, alerts, dead = [], [], []
    for r in range(0, len(feeds), per_round):
        for i, (value, key) in enumerate(feeds[r : r + per_round]):
            d = ward.ingest(value, key, _source(r + i), T0)
            if d is not None:
                dead.append(d)
        pending = ward.take_pending()
        b, a = ward.finish(pending, ward.classify(pending), now=T0)
        beats += b
        alerts += a
    return beats, alerts, dead


def _chunks(bed: str, lead: Lead, seconds: float) -> list[tuple[bytes, bytes]]:
    n = int(seconds * lead.fs)
    return [
        (_message(bed, lead.record, lead.signal[i : min(i + CHUNK, n)], i), bed.encode())
        for i in range(0, n, CHUNK)
    ]


@pytest.mark.slow
def test_beats_equal_the_offline_annotator_on_the_same_samples(classifier, mitdb_dir):
    lead = read_lead("100", mitdb_dir)
    seconds = 120
    ward = Ward(classifier, max_batch=64)
    beats, _, dead = _play(ward, _chunks("bed-01", lead, seconds))
    assert not dead
    offline = annotate_lead(
        Lead(lead.record, lead.name, lead.fs, lead.signal[: int(seconds * lead.fs)]), classifier
    )
    n = len(beats)
    # The stream never ends, so the last beat or two (completed by flush) are still pending.
    assert len(offline.samples) - 2 <= n <= len(offline.samples)
    assert [b.index for b in beats] == offline.samples[:n].tolist()
    assert [b.label for b in beats] == list(offline.labels[:n])
    b = beats[10]
    assert b.time == pytest.approx(T0 + b.index / lead.fs)
    assert b.hr == pytest.approx(60.0 / b.rr, rel=1e-3)
    assert set(b.probs) == set("NSVFQ") and sum(b.probs.values()) == pytest.approx(1, abs=1e-4)
    assert b.model_version == classifier.version


@pytest.mark.slow
def test_alarms_equal_the_offline_annotator_s_on_the_same_samples(classifier, mitdb_dir):
    """Record 119 (ventricular bigeminy and trigeminy): the worker's alert events and the
    offline annotator's alarm episodes are the same episodes at the same samples."""
    lead = read_lead("119", mitdb_dir)
    seconds = 300
    _, alerts, _ = _play(Ward(classifier, max_batch=64), _chunks("bed-01", lead, seconds))
    offline = annotate_lead(
        Lead(lead.record, lead.name, lead.fs, lead.signal[: int(seconds * lead.fs)]), classifier,
        chunk_s=CHUNK / lead.fs,
    )  # fmt: skip
    live = sorted((a.kind, a.index) for a in alerts if a.state == "start")
    assert live == sorted((ep.kind, ep.start_index) for ep in offline.alarms)
    assert {"bigeminy", "trigeminy"} <= {kind for kind, _ in live}
    ends = {(a.kind, a.index) for a in alerts if a.state == "end"}
    assert ends == {(ep.kind, ep.end_index) for ep in offline.alarms if ep.end_index is not None}


def test_garbage_is_dead_lettered_while_a_good_bed_keeps_flowing(classifier, mitdb_dir):
    lead = read_lead("100", mitdb_dir)
    good = _chunks("bed-01", lead, 30)
    bad_chunk = lead.signal[:CHUNK]
    garbage = [
        (b"not json at all", b"bed-02"),
        (b'{"bed": "bed-02"}', b"bed-02"),
        (_message("bed-02", "100", bad_chunk, 0).replace(b'"fs":360.0', b'"fs":5.0'), b"bed-02"),
        (_message("bed-02", "100", bad_chunk, 0).replace(b"[", b"[NaN,", 1), b"bed-02"),
        (_message("bed-02", "100", bad_chunk[:0], 0), b"bed-02"),
        (_message("bed-03", "100", bad_chunk, 0), b"bed-02"),
    ]
    feeds = []
    for i, item in enumerate(good):
        feeds.append(item)
        if i < len(garbage):
            feeds.append(garbage[i])
    ward = Ward(classifier)
    beats, _, dead = _play(ward, feeds)
    categories = [d.reason.split(":")[0] for d in dead]
    assert categories == [
        "malformed_json", "missing_field", "bad_fs", "non_finite", "empty_chunk", "key_mismatch"
    ]
    assert dead[0].payload == "not json at all"
    assert all(d.source_topic == "ecg.samples" for d in dead)
    assert ward.deadletters["malformed_json"] == 1 and sum(ward.deadletters.values()) == 6
    assert {b.bed for b in beats} == {"bed-01"}
    assert len(beats) > 30  # 30 s of record 100 at about 75 bpm


def test_a_gap_resets_only_its_bed_with_a_technical_alarm(classifier, mitdb_dir):
    lead = read_lead("100", mitdb_dir)
    a = _chunks("bed-01", lead, 40)
    b = _chunks("bed-02", lead, 40)
    del b[60:64]  # one second of bed-02 never arrives
    feeds = [item for pair in zip(a, b, strict=False) for item in pair] + a[len(b) :]
    ward = Ward(classifier)
    beats, alerts, dead = _play(ward, feeds)
    assert [d.reason.split(":")[0] for d in dead] == ["gap"]
    assert "360 samples (1.00 s) missing" in dead[0].reason
    resets = [x for x in alerts if x.kind == "pipeline_reset"]
    assert [(x.bed, x.state) for x in resets] == [("bed-02", "start"), ("bed-02", "end")]
    assert resets[0].priority == "technical"
    assert resets[0].index == 64 * CHUNK
    per_bed = {bed: [x for x in beats if x.bed == bed] for bed in ("bed-01", "bed-02")}
    assert len(per_bed["bed-02"]) >= len(per_bed["bed-01"]) - 4
    for bed_beats in per_bed.values():
        assert [x.index for x in bed_beats] == sorted(x.index for x in bed_beats)
    assert ward.beds["bed-02"].counters.resets == 1
    assert ward.beds["bed-01"].counters.resets == 0


def test_a_duplicate_is_dropped_and_counted(classifier, mitdb_dir):
    lead = read_lead("100", mitdb_dir)
    feeds = _chunks("bed-01", lead, 5)
    feeds.insert(6, feeds[5])
    ward = Ward(classifier)
    _, alerts, dead = _play(ward, feeds)
    assert [d.reason.split(":")[0] for d in dead] == ["duplicate"]
    assert not [x for x in alerts if x.kind == "pipeline_reset"]
    counters = ward.changed_counters()["bed-01"]
    assert counters.chunks == len(feeds) - 1 and counters.deadletters == 1


def test_counters_continue_from_the_restored_table_values(classifier, mitdb_dir):
    lead = read_lead("100", mitdb_dir)
    saved = BedCounters(chunks=1000, samples=90_000, beats=700, counts={"N": 690, "V": 10})
    ward = Ward(classifier, restore={"bed-01": saved}.get)
    beats, alerts, _ = _play(ward, _chunks("bed-01", lead, 20))
    # Another worker served this bed before: whatever it left open is declared over.
    reset = [(a.kind, a.state) for a in alerts if a.kind == "pipeline_reset"]
    assert reset == [("pipeline_reset", "start"), ("pipeline_reset", "end")]
    assert "another worker process" in alerts[0].message
    c = ward.changed_counters()["bed-01"]
    assert c.chunks == 1000 + 80 and c.samples == 90_000 + 20 * 360
    assert c.beats == 700 + len(beats)
    assert c.counts["N"] + c.counts["S"] + c.counts["V"] + c.counts["F"] + c.counts["Q"] == c.beats
    assert ward.changed_counters() == {}  # nothing moved since
    _, vitals = ward.tick(T0 + 1)
    assert [v.beats_total for v in vitals] == [c.beats]
    assert json.loads(vitals[0].dumps())["counts"] == c.counts


def test_vitals_every_bed_and_no_data_after_ten_silent_seconds(classifier, mitdb_dir):
    lead = read_lead("100", mitdb_dir)
    ward = Ward(classifier)
    _play(ward, _chunks("bed-01", lead, 20) + _chunks("bed-02", lead, 20))
    alerts, vitals = ward.tick(T0 + 1)
    assert [v.bed for v in vitals] == ["bed-01", "bed-02"] and not alerts
    v = vitals[0]
    assert 60 < v.hr < 90 and 0 <= v.sqi <= 1 and v.time == pytest.approx(T0 + 20)
    alerts, _ = ward.tick(T0 + 12)
    assert sorted((a.bed, a.kind, a.state) for a in alerts) == [
        ("bed-01", "no_data", "start"), ("bed-02", "no_data", "start")
    ]


def test_a_round_is_split_into_forward_passes_of_max_batch(classifier, mitdb_dir):
    lead = read_lead("100", mitdb_dir)
    ward = Ward(classifier, max_batch=5)
    for i, (value, key) in enumerate(_chunks("bed-01", lead, 30)):
        ward.ingest(value, key, _source(i), T0)
    pending = ward.take_pending()
    probs = ward.classify(pending)
    assert probs.shape == (len(pending), 5)
    assert ward.forwards == -(-len(pending) // 5)
    np.testing.assert_allclose(probs, Ward(classifier).classify(pending), atol=1e-5)


def test_latency_percentiles_come_from_the_histogram():
    edges = [10.0, 20.0, 30.0]
    assert percentile_from_histogram(edges, [0, 0, 0, 0], 0.5) is None
    assert percentile_from_histogram(edges, [5, 4, 1, 0], 0.5) == 10.0
    assert percentile_from_histogram(edges, [5, 4, 1, 0], 0.95) == 30.0
    assert percentile_from_histogram(edges, [5, 4, 0, 1], 0.99) == float("inf")


def test_a_bed_silent_for_an_hour_is_forgotten_but_keeps_its_counts(classifier, mitdb_dir):
    lead = read_lead("100", mitdb_dir)
    saved: dict[str, BedCounters] = {}
    ward = Ward(classifier, restore=saved.get)
    _play(ward, _chunks("bed-01", lead, 10))
    saved.update(ward.changed_counters())
    alerts, _ = ward.tick(T0 + FORGET_AFTER_S - 1)
    assert "bed-01" in ward.beds
    assert [(a.kind, a.state) for a in alerts] == [("no_data", "start")]
    alerts, _ = ward.tick(T0 + FORGET_AFTER_S + 1)
    assert ward.beds == {}
    # Forgotten with its no_data alarm closed, not left open on the central station.
    assert [(a.kind, a.state) for a in alerts] == [("no_data", "end")]
    assert "forgotten" in alerts[0].message
    _play(ward, _chunks("bed-01", lead, 10))  # back: its counts go on from the table
    assert ward.beds["bed-01"].counters.chunks == 2 * 40
