"""Hostile input at the worker's ingest and at the dashboard's decoders: generated and one by one.

Each run throws at least 10,000 generated messages (100 examples of 100 messages each): raw
bytes, deeply nested or enormous JSON, valid chunks with one or more fields replaced by
anything JSON can hold (huge integers, odd rates, surrogates, control characters, nested
values), and valid chunks from a few beds. The properties: no exception escapes, every message
is either accepted or dead-lettered with a categorised reason, and memory stays bounded (beds
capped, nothing pending after a round, the dead letter always small).
"""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor import contract
from monitor import ward as ward_module
from monitor.dashboard.feed import READ
from monitor.dashboard.store import CentralStation
from monitor.messages import DECODERS
from monitor.ward import Source, Ward

T0 = 1_700_000_000.0
FS = 360.0
CHUNK = 90
_SIGNAL = np.sin(np.arange(CHUNK) / 5.0).round(4).tolist()

#: Values that once broke the worker or are next to a limit.
INTERESTING = st.sampled_from(
    [10**400, -1, 0, 2**53 + 1, 2**63, 1000.001, 9999.999, 1e9, 1e-300, 359.9999,
     "bed\ud800", "bed\n01", "x" * 100, "", " ", "µV", "mV", "360"]
)  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    INTERESTING,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4),
    max_leaves=12,
)  # fmt: skip
FIELDS = ("bed", "record", "fs", "units", "start_index", "start_time", "samples")


def _good(bed: str, k: int) -> dict:
    return {
        "bed": bed, "record": "100", "fs": FS, "units": "mV", "start_index": k * CHUNK,
        "start_time": T0 + k * CHUNK / FS, "samples": _SIGNAL,
    }  # fmt: skip


@st.composite
def messages(draw) -> tuple[bytes | None, bytes | None]:
    kind = draw(
        st.sampled_from(
            ["bytes", "nested", "json", "one_field", "rate", "mutated", "samples", "good"]
        )
    )
    bed = draw(st.sampled_from(["bed-01", "bed-02", "bed-03"]) | st.text(min_size=1, max_size=8))
    k = draw(st.integers(min_value=0, max_value=40))
    if kind == "bytes":
        return draw(st.none() | st.binary(max_size=300)), draw(st.none() | st.binary(max_size=8))
    if kind == "nested":
        depth = draw(st.integers(min_value=1, max_value=200_000))
        return b"[" * depth + b"]" * draw(st.integers(0, depth)), bed.encode(errors="replace")
    if kind == "json":
        return json.dumps(draw(json_values)).encode(), bed.encode(errors="replace")
    msg = _good(bed, k)
    if kind in ("one_field", "rate"):  # everything else valid: it reaches the deepest checks
        if kind == "rate":  # any rate in the accepted range: most need a huge resampling filter
            msg["fs"] = draw(st.floats(min_value=100.0, max_value=10_000.0))
        else:
            msg[draw(st.sampled_from(FIELDS))] = draw(INTERESTING | scalars)
        return json.dumps(msg).encode("utf-8", errors="surrogatepass"), bed.encode(
            "utf-8", errors="surrogatepass"
        )
    if kind == "mutated":
        for name in draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=3, unique=True)):
            if draw(st.booleans()):
                msg[name] = draw(json_values)
            else:
                del msg[name]
    elif kind == "samples":
        msg["samples"] = draw(st.lists(scalars, max_size=50))
    key = bed.encode("utf-8", errors="surrogatepass") if draw(st.booleans()) else b"other"
    return json.dumps(msg).encode("utf-8", errors="surrogatepass"), key


class _Uniform:
    """A classifier answering N for every beat: the fuzz test is about the input edge."""

    classes = contract.CLASSES
    version = "fuzz"
    contract = contract.CURRENT

    def predict(self, x: np.ndarray, context: np.ndarray) -> np.ndarray:
        out = np.zeros((len(x), len(self.classes)), dtype=np.float32)
        out[:, 0] = 1.0
        return out


@pytest.fixture(scope="module")
def worker_ward():
    return Ward(_Uniform(), max_batch=64)


@settings(
    max_examples=100, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture],
)  # fmt: skip
@given(batch=st.lists(messages(), min_size=100, max_size=100))
def test_worker_ingest_takes_anything(worker_ward, batch, monkeypatch):
    monkeypatch.setattr(ward_module, "MAX_BEDS", 8)
    ward = worker_ward
    tracemalloc.start()
    try:
        for i, (value, key) in enumerate(batch):
            chunks_before = ward.chunks
            wall = T0 + i  # time moves on, so silent beds can be evicted
            dead = ward.ingest(value, key, Source("ecg.samples", 0, i, wall), wall)
            if dead is None:
                assert ward.chunks == chunks_before + 1
            else:
                category, _, detail = dead.reason.partition(": ")
                assert category and category.replace("_", "").isalpha() and detail
                assert len(dead.payload.encode()) < 100_000 and len(dead.reason) < 2_000
        pending = ward.take_pending()
        ward.finish(pending, ward.classify(pending))
        ward.tick(T0 + len(batch))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(ward.beds) <= 8
    assert not ward.take_pending()
    assert peak < 64 * 2**20  # one round of hostile input never costs more than 64 MiB


@settings(
    max_examples=100, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)  # fmt: skip
@given(
    batch=st.lists(
        st.tuples(st.sampled_from(sorted(READ)), messages() | st.builds(
            lambda v, k: (json.dumps(v).encode(), k), json_values, st.none())),
        min_size=100, max_size=100,
    )
)  # fmt: skip
def test_dashboard_decoders_refuse_with_value_error_only(batch):
    ward = CentralStation()
    for topic, (value, key) in batch:
        try:
            msg = DECODERS[topic](value, key)
        except ValueError:
            continue  # refused, and the feed counts it
        ward.ingest(topic, msg, 0.0)
    assert len(ward.beds()) <= 128


# -- the bounds, one by one -------------------------------------------------------------------
def _ingest(ward: Ward, msg: dict | bytes, key: bytes, wall: float):
    value = msg if isinstance(msg, bytes) else json.dumps(msg).encode()
    return ward.ingest(value, key, Source("ecg.samples", 0, 0, wall), wall)


def test_a_full_worker_takes_a_new_bed_only_in_place_of_a_silent_one(monkeypatch):
    monkeypatch.setattr(ward_module, "MAX_BEDS", 2)
    ward = Ward(_Uniform())
    assert _ingest(ward, _good("bed-01", 0), b"bed-01", T0) is None
    assert _ingest(ward, _good("bed-02", 0), b"bed-02", T0 + 50) is None
    dead = _ingest(ward, _good("bed-03", 0), b"bed-03", T0 + 55)
    assert dead.reason.startswith("bed_limit: 2 beds are active")
    assert set(ward.beds) == {"bed-01", "bed-02"} and ward.evicted == 0
    later = T0 + ward_module.EVICT_IDLE_S + 1  # bed-01 silent for a minute now
    assert _ingest(ward, _good("bed-03", 0), b"bed-03", later) is None
    assert set(ward.beds) == {"bed-02", "bed-03"} and ward.evicted == 1
    assert ward.deadletters["bed_limit"] == 1


def test_a_dead_letter_keeps_a_bounded_payload_and_says_what_was_cut():
    ward = Ward(_Uniform())
    value = b'{"bed": "' + b"x" * 900_000 + b'"}'
    dead = _ingest(ward, value, b"x", T0)
    assert dead.reason.startswith("bad_field: 'bed' is 900000 characters")
    assert len(dead.payload) < ward_module.DEAD_PAYLOAD_BYTES + 100
    assert dead.payload.endswith(f"[{len(value)} bytes in all, "
                                 f"{len(value) - ward_module.DEAD_PAYLOAD_BYTES} cut]")


def test_an_unexpected_parser_failure_costs_that_message_only(monkeypatch):
    def broken(value, key):
        raise OverflowError("a bug in the parser")

    ward = Ward(_Uniform())
    monkeypatch.setattr(ward_module, "parse_chunk", broken)
    dead = _ingest(ward, _good("bed-01", 0), b"bed-01", T0)
    assert dead.reason == "malformed: OverflowError: a bug in the parser"
    assert ward.deadletters["malformed"] == 1
