"""The JSON messages on the product's Kafka topics: one class per topic, the only definition of
its schema.

The simulator and the worker build these and send `dumps()`, exactly the documented JSON
object; the dashboard, the tools and the tests read them back with `decode`, which checks every
field and raises ValueError naming the first bad one, so a malformed message can never turn into
a plausible-looking number on screen. The classes are plain dataclasses: the dashboard and the
tools need neither Faust nor a Kafka client to read them. `ecg.samples` is read by the worker's
own check, `monitor.validate.parse_chunk`, which sorts what it refuses into the stable
dead-letter categories; `DECODERS` gives every consumer one decoder per topic.

A field with a default may be absent (or null) in a received message; every other field must
be there.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, TypeVar

from monitor.alarms.events import PRIORITY_RANK
from monitor.contract import CLASSES
from monitor.topics import ALERTS, BEATS, DEADLETTER, REFERENCE, SAMPLES, STATS, VITALS
from monitor.validate import MAX_ID_CHARS, MAX_INDEX, MAX_MESSAGE_BYTES, Chunk, parse_chunk

#: Topic names (`monitor.topics`), re-exported beside the schemas of their messages.
__all__ = ["ALERTS", "BEATS", "DEADLETTER", "REFERENCE", "SAMPLES", "STATS", "VITALS"]

#: A field's check: (value as received, field name) -> the value the message keeps.
Check = Callable[[Any, str], Any]
M = TypeVar("M", bound="Message")


# -- field checks -------------------------------------------------------------------------------
def _typed(value: Any, name: str, kind: type | tuple[type, ...]) -> Any:
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ValueError(f"field {name!r} has type {type(value).__name__}")
    return value


def _finite(value: Any, name: str) -> float:
    try:
        f = float(value)
    except OverflowError:  # a JSON integer beyond the float range
        raise ValueError(f"field {name!r} is an integer beyond the float range") from None
    if not math.isfinite(f):
        raise ValueError(f"field {name!r} = {f!r} is not a finite number")
    return f


def text(limit: int = MAX_ID_CHARS, printable: bool = True) -> Check:
    """A non-empty string of at most `limit` characters (printable ones: ids, names)."""

    def check(value: Any, name: str) -> str:
        _typed(value, name, str)
        if not value:
            raise ValueError(f"field {name!r} is empty")
        if len(value) > limit or (printable and not value.isprintable()):
            raise ValueError(f"field {name!r} is over {limit} characters or not printable text")
        return value

    return check


def number(lo: float = -math.inf, hi: float = math.inf) -> Check:
    """A finite JSON number in [lo, hi]."""

    def check(value: Any, name: str) -> float:
        f = _finite(_typed(value, name, (int, float)), name)
        if not lo <= f <= hi:
            raise ValueError(f"field {name!r} = {f!r} is outside [{lo:g}, {hi:g}]")
        return f

    return check


def integer(value: Any, name: str) -> int:
    """A JSON integer in [0, 2**53] (a count or a sample index)."""
    _typed(value, name, int)
    if not 0 <= value <= MAX_INDEX:
        raise ValueError(f"field {name!r} = {str(value)[:40]} is outside [0, 2**53]")
    return value


def one_of(allowed: tuple[str, ...]) -> Check:
    """A string from a fixed set (a class, a priority, a state)."""

    def check(value: Any, name: str) -> str:
        if value not in allowed:
            raise ValueError(f"field {name!r} = {str(value)[:40]!r} is not one of {allowed}")
        return value

    return check


def class_map(kind: type) -> Check:
    """An object with a count or share per AAMI class; absent classes are 0."""

    def check(value: Any, name: str) -> dict:
        _typed(value, name, dict)
        out = {}
        for c in CLASSES:
            v = value.get(c, 0)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError(f"field {name!r}[{c!r}] is a {type(v).__name__}, not a number")
            if not 0 <= _finite(v, name) <= MAX_INDEX:
                raise ValueError(f"field {name!r}[{c!r}] = {v!r} is not a plausible count or share")
            out[c] = kind(v)
        return out

    return check


def counts(value: Any, name: str) -> dict[str, int]:
    """An object of named counts (dead letters by category)."""
    _typed(value, name, dict)
    return {text()(k, f"{name} key"): integer(v, f"{name}[{k!r}]") for k, v in value.items()}


def listed(item: Check) -> Check:
    """A JSON array whose every element passes `item`."""

    def check(value: Any, name: str) -> list:
        _typed(value, name, list)
        return [item(v, f"{name}[{i}]") for i, v in enumerate(value)]

    return check


def checked(check: Check) -> dict[str, Check]:
    """A dataclass field's metadata: how `Message.decode` checks it."""
    return {"check": check}


# -- messages ------------------------------------------------------------------------------------
class Encoded:
    """A message this project writes: its JSON object, fields in order, nothing else."""

    #: (name, check, default or MISSING) per field, in order; see `_fields`.
    _checks: ClassVar[tuple[tuple[str, Check | None, Any], ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._checks = ()  # the dataclass fields exist only once the decorator has run

    @classmethod
    def _fields(cls) -> tuple[tuple[str, Check | None, Any], ...]:
        if not cls._checks:
            cls._checks = tuple(
                (f.name, f.metadata.get("check"), f.default)
                for f in fields(cls)  # type: ignore[arg-type]
            )
        return cls._checks

    def asdict(self) -> dict[str, Any]:
        """The message's JSON object (shallow: values are shared, not copied)."""
        return {name: getattr(self, name) for name, _, _ in self._fields()}

    def dumps(self) -> bytes:
        """The Kafka value: the JSON object of the fields and nothing else."""
        return json.dumps(self.asdict(), separators=(",", ":"), default=_scalar).encode()


def _scalar(value: Any) -> Any:
    """A NumPy scalar as the Python number JSON can write."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class Message(Encoded):
    """A message any consumer can read back, every field checked."""

    @classmethod
    def from_dict(cls: type[M], d: dict) -> M:
        """The message of a decoded JSON object; ValueError naming the first bad field."""
        if not isinstance(d, dict):
            raise ValueError(f"JSON value is a {type(d).__name__}, not an object")
        values = {}
        for name, check, default in cls._fields():
            value = d.get(name)
            if value is None or (value == "" and default == ""):
                if default is MISSING:
                    raise ValueError(f"missing field {name!r}")
                continue
            values[name] = check(value, name)  # type: ignore[misc]
        return cls(**values)

    @classmethod
    def decode(cls: type[M], raw: bytes | None, key: bytes | None = None) -> M:
        """The message of a Kafka value (the key is not part of it); ValueError if unusable."""
        return cls.from_dict(json_object(raw))


def json_object(raw: bytes | None) -> dict:
    """JSON object of a Kafka value, within the message size limit; ValueError for anything else."""
    if raw is None:
        raise ValueError("empty message value (tombstone)")
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ValueError(f"{len(raw)} bytes; the limit is {MAX_MESSAGE_BYTES}")
    try:
        obj = json.loads(raw)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except ValueError as exc:  # bad UTF-8, bad JSON, an integer of over 4300 digits
        raise ValueError(f"not JSON: {str(exc)[:200]}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"JSON value is a {type(obj).__name__}, not an object")
    return obj


_ID = text()
_TIME = number(0.0)


@dataclass(kw_only=True)
class SampleChunk(Encoded):
    """A bedside monitor's chunk of one bed's ECG; key = bed id. Read by `parse_chunk`.

    `samples` is the lead the beats are cut from; `leads`, when the monitor has more, holds the
    bed's other leads over the same samples (each as long as `samples`): the worker uses them to
    tell a lead fault from asystole or fibrillation.
    """

    bed: str
    record: str
    fs: float
    units: str
    #: Index of the first sample in the record (source rate).
    start_index: int
    #: Epoch seconds of the first sample; sample k was taken at start_time + k / fs.
    start_time: float
    samples: list[float]
    leads: list[list[float]] | None = None


@dataclass(frozen=True, kw_only=True)
class BedMessage(Message):
    """A message about one bed: the bed id (also the Kafka key) and the record it replays."""

    bed: str = field(metadata=checked(_ID))
    #: The replayed record; absent or empty where the bed is not a replay.
    record: str = field(default="", metadata=checked(_ID))


@dataclass(frozen=True, kw_only=True)
class BeatEvent(BedMessage):
    """One classified beat; key = bed id."""

    #: R-peak position in samples of the record (source rate).
    index: int = field(metadata=checked(integer))
    fs: float = field(metadata=checked(number(1.0)))
    #: Epoch seconds of the R-peak.
    time: float = field(metadata=checked(_TIME))
    label: str = field(metadata=checked(one_of(CLASSES)))
    probs: dict[str, float] = field(metadata=checked(class_map(float)))
    #: Seconds from the previous R-peak.
    rr: float = field(metadata=checked(number(0.0, 60.0)))
    hr: float = field(metadata=checked(number(0.0, 1000.0)))
    model_version: str = field(default="", metadata=checked(text(200)))
    #: Epoch seconds when the worker published it (latency = published - time).
    published: float = field(default=0.0, metadata=checked(_TIME))


@dataclass(frozen=True, kw_only=True)
class AlertEvent(BedMessage):
    """Start or end of one alarm episode; key = bed id."""

    #: Stable for the episode: its start and end events share it.
    alarm_id: str = field(metadata=checked(_ID))
    kind: str = field(metadata=checked(_ID))
    priority: str = field(metadata=checked(one_of(tuple(PRIORITY_RANK))))
    state: str = field(metadata=checked(one_of(("start", "end"))))
    time: float = field(metadata=checked(_TIME))
    index: int = field(default=0, metadata=checked(integer))
    message: str = field(default="", metadata=checked(text(500)))


@dataclass(frozen=True, kw_only=True)
class Vitals(BedMessage):
    """A bed's summary, about once a second; key = bed id."""

    #: Epoch seconds of the newest sample the worker has from this bed.
    time: float = field(metadata=checked(_TIME))
    hr: float | None = field(default=None, metadata=checked(number(0.0, 1000.0)))
    counts: dict[str, int] = field(metadata=checked(class_map(int)))
    pvc_per_min: float = field(metadata=checked(number(0.0)))
    sqi: float = field(metadata=checked(number(0.0, 1.0)))
    beats_total: int = field(metadata=checked(integer))


@dataclass(frozen=True, kw_only=True)
class ReferenceBeat(BedMessage):
    """A reference (cardiologist) beat label of the replayed record; key = bed id."""

    index: int = field(metadata=checked(integer))
    time: float = field(metadata=checked(_TIME))
    symbol: str = field(metadata=checked(_ID))
    #: AAMI class of the symbol; empty for a symbol that is not a beat.
    label: str = field(default="", metadata=checked(_ID))


@dataclass(frozen=True, kw_only=True)
class DeadLetter(Message):
    """A message the worker could not use as it stands, with why and where it came from."""

    #: "<category>: <details>"; the category (e.g. "gap", "malformed_json") is stable for counting.
    reason: str = field(metadata=checked(text(MAX_MESSAGE_BYTES, printable=False)))
    #: The original value, decoded as UTF-8 with errors="replace"; its first
    #: `monitor.ward.DEAD_PAYLOAD_BYTES` bytes only (then ending in a note of how much was cut),
    #: so that a dead letter always fits the topic whatever arrived.
    payload: str = field(default="", metadata=checked(text(MAX_MESSAGE_BYTES, printable=False)))
    source_topic: str = field(metadata=checked(_ID))
    partition: int = field(metadata=checked(integer))
    offset: int = field(metadata=checked(integer))
    time: float = field(metadata=checked(_TIME))


@dataclass(kw_only=True)
class BedCounters(Message):
    """A bed's running totals, kept in the worker's changelogged table across restarts."""

    chunks: int = field(default=0, metadata=checked(integer))
    samples: int = field(default=0, metadata=checked(integer))
    beats: int = field(default=0, metadata=checked(integer))
    #: Beats per AAMI class; every class is present.
    counts: dict[str, int] = field(default=None, metadata=checked(class_map(int)))
    deadletters: int = field(default=0, metadata=checked(integer))
    resets: int = field(default=0, metadata=checked(integer))

    def __post_init__(self) -> None:
        self.counts = {c: int((self.counts or {}).get(c, 0)) for c in CLASSES}


@dataclass(frozen=True, kw_only=True)
class WorkerStats(Message):
    """What one worker has done since it started, published every few seconds.

    Operators read it (`python -m monitor.tail ecg.stats`) for throughput, dead letters and
    latency; the benchmarks read the latency histogram from the last one.
    """

    worker: str = field(metadata=checked(text(200)))
    time: float = field(metadata=checked(_TIME))
    uptime_s: float = field(metadata=checked(number(0.0)))
    beds: int = field(metadata=checked(integer))
    chunks: int = field(metadata=checked(integer))
    samples: int = field(metadata=checked(integer))
    beats: int = field(metadata=checked(integer))
    rounds: int = field(metadata=checked(integer))
    forwards: int = field(metadata=checked(integer))
    #: Dead letters by category since the worker started.
    deadletters: dict[str, int] = field(metadata=checked(counts))
    #: Histogram of chunk sent (its Kafka timestamp) -> its beats published, in ms: counts per
    #: bucket whose upper edges are `latency_edges_ms` (the last bucket is open-ended).
    latency_edges_ms: list[float] = field(metadata=checked(listed(number(0.0))))
    latency_counts: list[int] = field(metadata=checked(listed(integer)))
    rss_mb: float = field(metadata=checked(number(0.0)))
    #: Beds dropped after `monitor.ward.EVICT_IDLE_S` of silence to make room for new ones.
    beds_evicted: int = field(default=0, metadata=checked(integer))


#: Topic -> decoder(value, key) of the messages on it: what every consumer reads them with.
DECODERS: dict[str, Callable[[bytes | None, bytes | None], Chunk | Message]] = {
    SAMPLES: parse_chunk,
    BEATS: BeatEvent.decode,
    ALERTS: AlertEvent.decode,
    VITALS: Vitals.decode,
    REFERENCE: ReferenceBeat.decode,
    DEADLETTER: DeadLetter.decode,
    STATS: WorkerStats.decode,
}
