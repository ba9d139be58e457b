"""Checking a raw `ecg.samples` message before anything in the worker trusts it.

Everything a bedside feed can get wrong on its own (bytes that are not JSON, missing or mistyped
fields, NaN, an impossible sampling rate, an empty or oversized chunk or message, an id that is
too long or not text, a key that does not name the bed) is caught here, without any per-bed
state, and reported as a `Rejected` whose category is stable for counting. Continuity between
chunks (duplicates, gaps, rate changes) needs the bed's history and is judged in `monitor.bed`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from monitor import contract
from monitor.signal.resample import rational_ratio

#: Highest sampling rate accepted: beyond any ECG front end, so a larger value is a unit error.
MAX_FS = 10_000.0
#: Largest message accepted, in bytes (Kafka's default message limit): bounds parsing memory.
MAX_MESSAGE_BYTES = 1_000_000
#: Longest bed or record id, in characters; ids are printable text.
MAX_ID_CHARS = 64
#: Largest start_index: exact in a float64, and over 800 years at 360 Hz.
MAX_INDEX = 2**53
#: Longest chunk accepted, in seconds of signal: bounds the memory one message can take.
MAX_CHUNK_S = 60.0
#: Seconds per chunk of a bedside monitor: what the simulator sends by default and what the
#: offline annotator (and so every alarm benchmark) feeds the pipeline, so that offline figures
#: are the stream's. The alarm engine sees a chunk's beats after its samples: longer chunks
#: delay what its V-fib and asystole checks know of the rhythm.
BEDSIDE_CHUNK_S = 0.25
#: Largest plausible surface-ECG magnitude in mV; saturated leads sit far below it, so a larger
#: value is a unit or scaling error, not a physiological signal.
MAX_ABS_MV = 100.0
#: Units accepted, with the factor to millivolts.
UNITS_TO_MV = {"mV": 1.0, "uV": 1e-3, "µV": 1e-3, "V": 1e3}
#: Epoch seconds accepted for start_time: 2001-09-09 .. 2286-11-20, i.e. "a real clock".
MIN_EPOCH, MAX_EPOCH = 1e9, 1e10
#: Other leads a chunk may carry beside `samples` (a 12-lead monitor has 11 more).
MAX_OTHER_LEADS = 11
#: JSON numbers as json.loads returns them (bool, a subclass of int, is excluded by type()).
_NUMBER_TYPES = {float, int}


class Rejected(ValueError):
    """A message that cannot be used; `category` is a stable token, `str()` the full reason."""

    def __init__(self, category: str, detail: str) -> None:
        super().__init__(f"{category}: {detail}")
        self.category = category


@dataclass(frozen=True)
class Chunk:
    """A validated chunk: what the per-bed pipeline consumes."""

    bed: str
    record: str
    fs: float
    start_index: int
    start_time: float
    #: Samples in mV, float64, all finite.
    samples: np.ndarray
    #: The bed's other leads over the same samples (mV, same length), when it sends them.
    others: tuple[np.ndarray, ...] = ()

    @property
    def end_index(self) -> int:
        """Index just after the chunk's last sample: where the next chunk should start."""
        return self.start_index + len(self.samples)

    @property
    def end_time(self) -> float:
        """Epoch seconds just after the chunk's last sample."""
        return self.start_time + len(self.samples) / self.fs


def _field(msg: dict, name: str, kinds: tuple[type, ...], what: str) -> object:
    if name not in msg:
        raise Rejected("missing_field", f"no {name!r} field")
    value = msg[name]
    # bool is an int subclass; true/false is never a valid number here.
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise Rejected("bad_field", f"{name!r} must be {what}, got {type(value).__name__}")
    return value


def _number(msg: dict, name: str) -> float:
    """A JSON number field as a float; an integer too large for a float is out of range."""
    value = _field(msg, name, (int, float), "a number")
    if isinstance(value, int) and abs(value) > 2**63:
        raise Rejected("bad_field", f"{name!r} is an integer of {len(str(abs(value)))} digits")
    return float(value)


def _identifier(msg: dict, name: str) -> str:
    value = _field(msg, name, (str,), "a string")
    if len(value) > MAX_ID_CHARS:
        raise Rejected("bad_field", f"{name!r} is {len(value)} characters; the limit is "
                       f"{MAX_ID_CHARS}")  # fmt: skip
    if not value.isprintable() or any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise Rejected("bad_field", f"{name!r} holds control or unpaired surrogate characters")
    return value


def parse_chunk(value: bytes | None, key: bytes | None) -> Chunk:
    """Decode and check one `ecg.samples` message; raise `Rejected` saying what is wrong."""
    if not value:
        raise Rejected("malformed_json", "empty message value")
    if len(value) > MAX_MESSAGE_BYTES:
        raise Rejected("too_large", f"{len(value)} bytes; the limit is {MAX_MESSAGE_BYTES}")
    try:
        msg = json.loads(value)
    except RecursionError:
        raise Rejected("malformed_json", "JSON nested too deeply") from None
    except ValueError as exc:  # bad UTF-8, bad JSON, an integer of over 4300 digits
        raise Rejected("malformed_json", f"not JSON ({str(exc)[:200]})") from None
    if not isinstance(msg, dict):
        raise Rejected("malformed_json", f"expected a JSON object, got {type(msg).__name__}")

    bed = _identifier(msg, "bed")
    record = _identifier(msg, "record")
    fs = _number(msg, "fs")
    units = _field(msg, "units", (str,), "a string")
    start_index = _field(msg, "start_index", (int,), "an integer")
    start_time = _number(msg, "start_time")
    samples = _field(msg, "samples", (list,), "a list of numbers")

    if not bed.strip():
        raise Rejected("bad_field", "'bed' is empty")
    if key != bed.encode():
        shown = "no key" if key is None else f"key {key.decode(errors='replace')!r}"
        raise Rejected(
            "key_mismatch",
            f"message has {shown}, not bed {bed!r}; chunks are ordered per key, so the key must "
            "be the bed id",
        )
    if not math.isfinite(fs) or not contract.MIN_SOURCE_FS <= fs <= MAX_FS:
        raise Rejected(
            "bad_fs", f"fs={fs!r} Hz is outside {contract.MIN_SOURCE_FS:g}..{MAX_FS:g} Hz"
        )
    try:
        rational_ratio(fs, contract.FS)
    except ValueError as exc:
        raise Rejected("bad_fs", str(exc)) from None
    if units not in UNITS_TO_MV:
        raise Rejected("bad_field", f"units {units!r} not one of {sorted(UNITS_TO_MV)}")
    if not 0 <= start_index <= MAX_INDEX:
        raise Rejected("bad_field", f"start_index must be in 0..2**53, got {str(start_index)[:40]}")
    if not MIN_EPOCH <= start_time <= MAX_EPOCH:  # also rejects NaN and inf
        raise Rejected("bad_field", f"start_time={start_time!r} is not epoch seconds")
    if not samples:
        raise Rejected("empty_chunk", "'samples' is empty")
    if len(samples) > MAX_CHUNK_S * fs:
        raise Rejected(
            "too_long", f"{len(samples)} samples is over {MAX_CHUNK_S:g} s at {fs:g} Hz"
        )
    x = _lead(samples, "'samples'", units)
    others = msg.get("leads")
    if others is None:
        return Chunk(bed, record, fs, start_index, start_time, x)
    if not isinstance(others, list) or len(others) > MAX_OTHER_LEADS:
        raise Rejected("bad_field", f"'leads' must be a list of at most {MAX_OTHER_LEADS} leads")
    for i, lead in enumerate(others):
        if not isinstance(lead, list) or len(lead) != len(samples):
            raise Rejected("bad_field", f"'leads'[{i}] must be a list of {len(samples)} numbers, "
                           "as long as 'samples'")  # fmt: skip
    extra = tuple(_lead(lead, f"'leads'[{i}]", units) for i, lead in enumerate(others))
    return Chunk(bed, record, fs, start_index, start_time, x, extra)


def _lead(values: list, name: str, units: str) -> np.ndarray:
    """One lead's samples as mV, or `Rejected` naming the lead."""
    if not set(map(type, values)) <= _NUMBER_TYPES:  # map/set run in C: ~3x a generator
        bad = next(v for v in values if type(v) not in _NUMBER_TYPES)
        raise Rejected("bad_field", f"{name} holds a {type(bad).__name__}: {bad!r}")
    try:
        x = np.asarray(values, dtype=np.float64)
    except OverflowError:  # a JSON integer beyond float range
        raise Rejected("out_of_range", f"a sample of {name} is beyond the float range") from None
    if units != "mV":
        x *= UNITS_TO_MV[units]
    # One pass for both checks: the max of |x| is NaN or inf exactly when a sample is.
    peak = float(np.abs(x).max())
    if not math.isfinite(peak):
        bad = int(np.count_nonzero(~np.isfinite(x)))
        raise Rejected("non_finite", f"{bad} of {len(x)} samples of {name} are NaN or infinite")
    if peak > MAX_ABS_MV:
        raise Rejected(
            "out_of_range", f"|sample| of {name} up to {peak:g} mV; over {MAX_ABS_MV:g} mV is "
            "not an ECG",
        )  # fmt: skip
    return x
