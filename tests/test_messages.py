"""The one message schema: each producer's real output read back by each consumer's decoder,
and malformed messages refused with the field named."""

from __future__ import annotations

import json

import pytest

from monitor import topics
from monitor.alarms.events import PRIORITY_RANK
from monitor.classifier import DEFAULT_MODEL, BeatClassifier
from monitor.dashboard.feed import READ
from monitor.dashboard.store import CentralStation
from monitor.messages import (
    DECODERS,
    AlertEvent,
    BeatEvent,
    BedCounters,
    DeadLetter,
    ReferenceBeat,
    Vitals,
    WorkerStats,
    json_object,
)
from monitor.validate import Chunk, parse_chunk
from monitor.ward import Source, Ward
from simulators.replay import _parser, build_beds

T0 = 1_700_000_000.0


@pytest.fixture(scope="module")
def produced(mitdb_dir) -> dict[str, list[tuple[bytes, bytes]]]:
    """(value, key) per topic, as the simulator and the worker core write them: 60 s of record
    119 (ventricular bigeminy: V beats and alarms), one malformed message, a tick and stats."""
    if not DEFAULT_MODEL.is_file():
        pytest.skip(f"shipped model {DEFAULT_MODEL} not built yet: python -m trainer.train")
    args = _parser().parse_args(["--beds", "1", "--records", "119", "--start-s", "60",
                                 "--duration-s", "60", "--reference", "--data-dir", str(mitdb_dir)])
    (bed,) = build_beds(args)
    out: dict[str, list[tuple[bytes, bytes]]] = {t: [] for t in DECODERS}
    while sent := bed.take(T0, reference=True):
        for topic, key, value in sent:
            out[topic].append((value, key))
    ward = Ward(BeatClassifier(device="cpu"), max_batch=64)
    feed = [*out[topics.SAMPLES][:4], (b'{"bed": "bed-01"}', b"bed-01"), *out[topics.SAMPLES][4:]]
    for i, (value, key) in enumerate(feed):
        dead = ward.ingest(value, key, Source(topics.SAMPLES, 0, i, T0), T0)
        if dead is not None:
            out[topics.DEADLETTER].append((dead.dumps(), key))
        pending = ward.take_pending()
        beats, alerts = ward.finish(pending, ward.classify(pending), now=T0 + 1)
        out[topics.BEATS] += [(b.dumps(), b.bed.encode()) for b in beats]
        out[topics.ALERTS] += [(a.dumps(), a.bed.encode()) for a in alerts]
    alerts, vitals = ward.tick(T0 + 61)
    out[topics.ALERTS] += [(a.dumps(), a.bed.encode()) for a in alerts]
    out[topics.VITALS] += [(v.dumps(), v.bed.encode()) for v in vitals]
    out[topics.STATS].append((ward.stats("host:1", T0 + 61, 123.4).dumps(), b"host:1"))
    out["counters"] = [(c.dumps(), bed.encode()) for bed, c in ward.changed_counters().items()]
    return out


def test_every_topic_the_product_writes_is_read_back_by_its_decoder(produced):
    expected = {topics.SAMPLES: Chunk, topics.BEATS: BeatEvent, topics.ALERTS: AlertEvent,
                topics.VITALS: Vitals, topics.REFERENCE: ReferenceBeat,
                topics.DEADLETTER: DeadLetter, topics.STATS: WorkerStats}  # fmt: skip
    names = {v for k, v in vars(topics).items() if k.isupper()}
    assert set(expected) == set(DECODERS) == names  # one decoder for every topic
    for topic, kind in expected.items():
        assert produced[topic], f"nothing produced on {topic}"
        for value, key in produced[topic]:
            msg = DECODERS[topic](value, key)
            assert isinstance(msg, kind)
            if kind is not Chunk:  # the decoded message writes the same JSON object back
                assert json.loads(msg.dumps()) == json_object(value), topic
    labels = {BeatEvent.decode(v).label for v, _ in produced[topics.BEATS]}
    assert {"N", "V"} <= labels
    kinds = {AlertEvent.decode(v).kind for v, _ in produced[topics.ALERTS]}
    assert "bigeminy" in kinds
    (dead,) = [DeadLetter.decode(v) for v, _ in produced[topics.DEADLETTER]]
    assert dead.reason.startswith("missing_field") and dead.source_topic == topics.SAMPLES
    (stats,) = [WorkerStats.decode(v) for v, _ in produced[topics.STATS]]
    assert stats.deadletters == {"missing_field": 1} and stats.beats == len(produced[topics.BEATS])


def test_the_worker_reads_the_simulator_and_the_table_its_own_counters(produced):
    for value, key in produced[topics.SAMPLES]:
        assert parse_chunk(value, key).bed == "bed-01"
    ((value, _),) = produced["counters"]
    counters = BedCounters.decode(value)
    beats = len(produced[topics.BEATS])
    assert counters.beats == beats == sum(counters.counts.values())


def test_the_central_station_shows_what_the_worker_and_simulator_wrote(produced):
    station = CentralStation()
    for topic in READ:
        for value, key in produced[topic]:
            station.ingest(topic, DECODERS[topic](value, key))
    assert station.beds() == ["bed-01"] and station.feed_status()["rejected"] == 0
    (tile,) = station.tiles()
    assert tile["last_label"] == BeatEvent.decode(produced[topics.BEATS][-1][0]).label
    assert tile["sqi"] == Vitals.decode(produced[topics.VITALS][-1][0]).sqi
    shown = {a["kind"] for a in station.history(now=T0 + 61)}
    assert shown == {AlertEvent.decode(v).kind for v, _ in produced[topics.ALERTS]}


def test_messages_carry_their_fields_and_nothing_else():
    beat = BeatEvent(bed="b", index=5, fs=360.0, time=1.0, label="V", probs={"V": 0.9},
                     rr=0.5, hr=120.0, published=2.0)  # fmt: skip
    assert set(json.loads(beat.dumps())) == {
        "bed", "record", "index", "fs", "time", "label", "probs", "rr", "hr", "model_version",
        "published",
    }  # fmt: skip
    decoded = BeatEvent.decode(beat.dumps())
    assert decoded.probs == {"N": 0.0, "S": 0.0, "V": 0.9, "F": 0.0, "Q": 0.0}
    assert decoded.record == "" and decoded.model_version == ""  # absent optional fields
    assert Vitals.from_dict({"bed": "b", "time": 1.0, "hr": None, "counts": {"N": 3},
                             "pvc_per_min": 0.0, "sqi": 1.0, "beats_total": 3}).hr is None
    assert AlertEvent.from_dict({"bed": "b", "alarm_id": "a", "kind": "vtach",
                                 "priority": "high", "state": "end", "time": 1}).index == 0
    assert set(PRIORITY_RANK) == {"technical", "medium", "high"}


def test_the_samples_decoder_is_the_workers_own_check():
    raw = (b'{"bed": "bed-01", "record": "100", "fs": 360.0, "units": "mV", '
           b'"start_index": 0, "start_time": 1700000000.5, "samples": [0.1, -0.2]}')
    m = DECODERS[topics.SAMPLES](raw, b"bed-01")
    assert m.samples.tolist() == [0.1, -0.2] and m.fs == 360.0
    with pytest.raises(ValueError, match="key"):
        DECODERS[topics.SAMPLES](raw, b"bed-02")


_BEAT = '"bed": "b", "index": 1, "fs": 360, "time": 1, "label": "N", "probs": {}, "rr": 1'


@pytest.mark.parametrize(
    ("raw", "kind", "match"),
    [
        (b"not json", BeatEvent, "not JSON"),
        (b"[1, 2]", BeatEvent, "not an object"),
        (None, BeatEvent, "tombstone"),
        (b" " * 1_000_001, BeatEvent, "limit"),
        (("{" + _BEAT.replace('"b"', '""') + ', "hr": 60}').encode(), BeatEvent, "'bed' is empty"),
        (("{" + _BEAT.replace('"index": 1', '"index": -1') + ', "hr": 60}').encode(), BeatEvent,
         "'index' = -1"),
        (("{" + _BEAT.replace("{}", '{"N": NaN}') + ', "hr": 60}').encode(), BeatEvent, "probs"),
        (("{" + _BEAT + ', "hr": true}').encode(), BeatEvent, "'hr' has type bool"),
        (("{" + _BEAT + "}").encode(), BeatEvent, "missing field 'hr'"),
        (("{" + _BEAT.replace('"N"', '"X"') + ', "hr": 60}').encode(), BeatEvent, "'label'"),
        (b'{"bed": "b", "alarm_id": "a", "kind": "k", "priority": "urgent", "state": "start", '
         b'"time": 1}', AlertEvent, "'priority'"),
        (b'{"bed": "b", "alarm_id": "a", "kind": "k", "priority": "high", "state": "on", '
         b'"time": 1}', AlertEvent, "'state'"),
        (b'{"bed": "b", "time": 1, "hr": 60, "counts": {"N": -1}, "pvc_per_min": 0, '
         b'"sqi": 0.5, "beats_total": 1}', Vitals, "counts"),
        (b'{"bed": "b\\n", "index": 1, "time": 1, "symbol": "N"}', ReferenceBeat, "printable"),
        (b'{"chunks": 1e400}', BedCounters, "'chunks' has type float"),
    ],
)  # fmt: skip
def test_malformed_messages_are_refused_with_the_field_named(raw, kind, match):
    with pytest.raises(ValueError, match=match):
        kind.decode(raw)
