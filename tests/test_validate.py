"""Raw ecg.samples messages: every way a feed can be wrong is named, a good chunk passes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from monitor.messages import SampleChunk
from monitor.validate import MAX_ABS_MV, MAX_MESSAGE_BYTES, Rejected, parse_chunk

GOOD = {
    "bed": "bed-01",
    "record": "100",
    "fs": 360.0,
    "units": "mV",
    "start_index": 900,
    "start_time": 1_700_000_000.25,
    "samples": [0.1, -0.2, 1.5, 0],
}


def _raw(**changes) -> bytes:
    msg = {**GOOD, **changes}
    for name, value in changes.items():
        if value is _MISSING:
            del msg[name]
    return json.dumps(msg).encode()


_MISSING = object()


def test_good_chunk_is_parsed_as_sent():
    chunk = parse_chunk(_raw(), b"bed-01")
    assert (chunk.bed, chunk.record, chunk.fs) == ("bed-01", "100", 360.0)
    assert (chunk.start_index, chunk.start_time) == (900, 1_700_000_000.25)
    assert chunk.samples.dtype == np.float64
    np.testing.assert_array_equal(chunk.samples, [0.1, -0.2, 1.5, 0.0])
    assert chunk.end_index == 904
    assert chunk.end_time == pytest.approx(1_700_000_000.25 + 4 / 360)


def test_the_simulators_record_type_is_what_the_validator_accepts():
    sent = SampleChunk(**GOOD)
    chunk = parse_chunk(sent.dumps(), b"bed-01")
    assert chunk.start_index == sent.start_index and list(chunk.samples) == sent.samples


def test_other_leads_travel_with_the_chunk_in_the_same_units():
    sent = SampleChunk(**{**GOOD, "units": "uV", "samples": [1000, -500],
                          "leads": [[200, 300], [0, -1000]]})  # fmt: skip
    chunk = parse_chunk(sent.dumps(), b"bed-01")
    assert len(chunk.others) == 2
    np.testing.assert_allclose(chunk.others[0], [0.2, 0.3])
    np.testing.assert_allclose(chunk.others[1], [0.0, -1.0])
    assert parse_chunk(_raw(), b"bed-01").others == ()  # one lead: as before


@pytest.mark.parametrize(
    ("leads", "category", "words"),
    [
        ([[1.0, 2.0]], "bad_field", "'leads'[0] must be a list of 4 numbers"),
        ("abc", "bad_field", "'leads' must be a list"),
        ([[0.0] * 4] * 12, "bad_field", "at most 11"),
        ([[0.0, "x", 0.0, 0.0]], "bad_field", "'leads'[0] holds a str"),
        ([[0.0, 1e6, 0.0, 0.0]], "out_of_range", "'leads'[0]"),
    ],
)
def test_a_bad_other_lead_is_rejected_naming_it(leads, category, words):
    with pytest.raises(Rejected) as err:
        parse_chunk(_raw(leads=leads), b"bed-01")
    assert err.value.category == category and words in str(err.value)


def test_microvolts_are_converted_to_millivolts():
    chunk = parse_chunk(_raw(units="uV", samples=[1000, -500]), b"bed-01")
    np.testing.assert_allclose(chunk.samples, [1.0, -0.5])


@pytest.mark.parametrize(
    ("value", "key", "category", "words"),
    [
        (b"", b"bed-01", "malformed_json", "empty"),
        (b"\xff\xfe not json", b"bed-01", "malformed_json", "not JSON"),
        (b'{"bed": "bed-01", ', b"bed-01", "malformed_json", "not JSON"),
        (b"[1, 2, 3]", b"bed-01", "malformed_json", "JSON object"),
        (_raw(bed=_MISSING), b"bed-01", "missing_field", "'bed'"),
        (_raw(samples=_MISSING), b"bed-01", "missing_field", "'samples'"),
        (_raw(bed=7), b"bed-01", "bad_field", "'bed' must be a string"),
        (_raw(bed="  "), b"bed-01", "bad_field", "empty"),
        (_raw(fs="360"), b"bed-01", "bad_field", "'fs' must be a number"),
        (_raw(fs=True), b"bed-01", "bad_field", "'fs' must be a number"),
        (_raw(start_index=1.5), b"bed-01", "bad_field", "'start_index' must be an integer"),
        (_raw(start_index=-1), b"bed-01", "bad_field", "start_index must be in 0..2**53"),
        (_raw(start_time=12.0), b"bed-01", "bad_field", "epoch seconds"),
        (_raw(units="mmHg"), b"bed-01", "bad_field", "units"),
        (_raw(samples="0.1,0.2"), b"bed-01", "bad_field", "list of numbers"),
        (_raw(samples=[0.1, "0.2"]), b"bed-01", "bad_field", "holds a str"),
        (_raw(samples=[0.1, None]), b"bed-01", "bad_field", "holds a NoneType"),
        (_raw(samples=[0.1, [0.2]]), b"bed-01", "bad_field", "holds a list"),
        (_raw(fs=0.0), b"bed-01", "bad_fs", "fs=0.0"),
        (_raw(fs=50.0), b"bed-01", "bad_fs", "outside"),
        (_raw(fs=1e9), b"bed-01", "bad_fs", "outside"),
        (_raw(samples=[]), b"bed-01", "empty_chunk", "empty"),
        (_raw(fs=100.0, samples=[0.0] * 6001), b"bed-01", "too_long", "6001 samples"),
        (_raw(samples=[0.0, MAX_ABS_MV * 10]), b"bed-01", "out_of_range", "not an ECG"),
        (_raw(samples=[0.0, 10**400]), b"bed-01", "out_of_range", "float range"),
        (_raw(), b"bed-02", "key_mismatch", "key 'bed-02', not bed 'bed-01'"),
        (_raw(), None, "key_mismatch", "no key"),
        # hostile input: each of these once raised out of the parser or cost gigabytes
        (b"[" * 100_000 + b"]" * 100_000, b"bed-01", "malformed_json", "nested too deeply"),
        (b'{"bed": ' + b"9" * 5000 + b"}", b"bed-01", "malformed_json", "not JSON"),
        (_raw(fs=10**400), b"bed-01", "bad_field", "'fs' is an integer of 401 digits"),
        (_raw(start_time=10**400), b"bed-01", "bad_field", "'start_time' is an integer"),
        (_raw(start_index=2**63), b"bed-01", "bad_field", "start_index must be in 0..2**53"),
        (_raw(fs=1000.001), b"bed-01", "bad_fs", "ratio 125000/1000001"),
        (_raw(fs=9999.999), b"bed-01", "bad_fs", "not supported"),
        (_raw(bed="b" * 65), b"b" * 65, "bad_field", "'bed' is 65 characters"),
        (_raw(bed="bed\ud800"), b"bed-01", "bad_field", "unpaired surrogate"),
        (_raw(bed="bed\n01"), b"bed-01", "bad_field", "control"),
        (_raw(record="r" * 1_000), b"bed-01", "bad_field", "'record' is 1000 characters"),
        (b" " * (MAX_MESSAGE_BYTES + 1), b"bed-01", "too_large", "the limit is"),
    ],
)
def test_each_defect_is_rejected_with_its_category(value, key, category, words):
    with pytest.raises(Rejected) as info:
        parse_chunk(value, key)
    assert info.value.category == category
    assert str(info.value).startswith(f"{category}: ")
    assert words in str(info.value)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_samples_are_rejected(literal):
    raw = _raw().replace(b"[0.1, -0.2, 1.5, 0]", f"[0.1, {literal}, 0.3]".encode())
    with pytest.raises(Rejected) as info:
        parse_chunk(raw, b"bed-01")
    assert info.value.category == "non_finite"
    assert "1 of 3" in str(info.value)


def test_non_finite_fs_is_rejected():
    raw = _raw().replace(b'"fs": 360.0', b'"fs": NaN')
    with pytest.raises(Rejected) as info:
        parse_chunk(raw, b"bed-01")
    assert info.value.category == "bad_fs"
