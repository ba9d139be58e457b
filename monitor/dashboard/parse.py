"""Checked, typed views of the messages the dashboard reads, one parser per topic.

The central station shows what the pipeline says about patients; a malformed message must not
turn into a plausible-looking number on screen. Each parser takes the raw Kafka value and key
and returns a small frozen record or raises ValueError naming the field; the feed counts and
reports what it refused. `ecg.samples` goes through the worker's own check
(`monitor.validate.parse_chunk`), so both read a bedside chunk by the same rules.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass

from monitor import contract, topics
from monitor.alarms.events import PRIORITY_RANK
from monitor.validate import MAX_ID_CHARS, MAX_INDEX, MAX_MESSAGE_BYTES, parse_chunk


@dataclass(frozen=True)
class BeatMsg:
    bed: str
    record: str
    index: int
    fs: float
    time: float
    label: str
    probs: dict[str, float]
    rr: float
    hr: float
    model_version: str


@dataclass(frozen=True)
class AlertMsg:
    bed: str
    record: str
    alarm_id: str
    kind: str
    priority: str
    state: str
    time: float
    index: int
    message: str


@dataclass(frozen=True)
class VitalsMsg:
    bed: str
    record: str
    time: float
    hr: float | None
    counts: dict[str, int]
    pvc_per_min: float
    sqi: float
    beats_total: int


@dataclass(frozen=True)
class ReferenceMsg:
    bed: str
    record: str
    index: int
    time: float
    symbol: str
    label: str


def _field(d: dict, name: str, kind: type | tuple[type, ...]) -> object:
    if name not in d:
        raise ValueError(f"missing field {name!r}")
    value = d[name]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ValueError(f"field {name!r} has type {type(value).__name__}")
    return value


def _text(d: dict, name: str, limit: int = MAX_ID_CHARS) -> str:
    value = _field(d, name, str)
    if not value:
        raise ValueError(f"field {name!r} is empty")
    if len(value) > limit or not value.isprintable():  # type: ignore[arg-type]
        raise ValueError(f"field {name!r} is over {limit} characters or not printable text")
    return value  # type: ignore[return-value]


def _optional_text(d: dict, name: str, limit: int = MAX_ID_CHARS) -> str:
    """A text field that may be absent or empty (then "")."""
    return _text(d, name, limit) if d.get(name) not in (None, "") else ""


def _float(value: object, name: str) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except OverflowError:  # a JSON integer beyond the float range
        raise ValueError(f"field {name!r} is an integer beyond the float range") from None


def _number(d: dict, name: str, lo: float = -math.inf, hi: float = math.inf) -> float:
    value = _float(_field(d, name, (int, float)), name)
    if not math.isfinite(value) or not lo <= value <= hi:
        raise ValueError(f"field {name!r} = {value!r} is outside [{lo:g}, {hi:g}]")
    return value


def _integer(d: dict, name: str, lo: int = 0) -> int:
    value = _field(d, name, int)
    if not lo <= value <= MAX_INDEX:  # type: ignore[operator]
        raise ValueError(f"field {name!r} = {str(value)[:40]} is outside [{lo}, 2**53]")
    return value  # type: ignore[return-value]


def _label(d: dict, name: str) -> str:
    value = _text(d, name)
    if value not in contract.CLASSES:
        raise ValueError(f"field {name!r} = {value!r} is not one of {'/'.join(contract.CLASSES)}")
    return value


def _class_map(d: dict, name: str, kind: type) -> dict:
    value = _field(d, name, dict)
    out = {}
    for c in contract.CLASSES:
        v = value.get(c, 0)  # type: ignore[union-attr]
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"field {name!r}[{c!r}] is a {type(v).__name__}, not a number")
        f = _float(v, name)
        if not math.isfinite(f) or f < 0 or f > MAX_INDEX:
            raise ValueError(f"field {name!r}[{c!r}] = {f!r} is not a plausible count or share")
        out[c] = kind(v)
    return out


def decode(raw: bytes | None) -> dict:
    """JSON object of a Kafka value; ValueError for anything else."""
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


def parse_beat(d: dict) -> BeatMsg:
    probs = _class_map(d, "probs", float)
    return BeatMsg(
        bed=_text(d, "bed"),
        record=_optional_text(d, "record"),
        index=_integer(d, "index"),
        fs=_number(d, "fs", 1.0),
        time=_number(d, "time", 0.0),
        label=_label(d, "label"),
        probs=probs,
        rr=_number(d, "rr", 0.0, 60.0),
        hr=_number(d, "hr", 0.0, 1000.0),
        model_version=_optional_text(d, "model_version", 200),
    )


def parse_alert(d: dict) -> AlertMsg:
    priority = _text(d, "priority")
    if priority not in PRIORITY_RANK:
        raise ValueError(f"field 'priority' = {priority!r} is not one of {tuple(PRIORITY_RANK)}")
    state = _text(d, "state")
    if state not in ("start", "end"):
        raise ValueError(f"field 'state' = {state!r} is not 'start' or 'end'")
    return AlertMsg(
        bed=_text(d, "bed"),
        record=_optional_text(d, "record"),
        alarm_id=_text(d, "alarm_id"),
        kind=_text(d, "kind"),
        priority=priority,
        state=state,
        time=_number(d, "time", 0.0),
        index=_integer(d, "index") if "index" in d else 0,
        message=_optional_text(d, "message", 500),
    )


def parse_vitals(d: dict) -> VitalsMsg:
    hr = d.get("hr")
    return VitalsMsg(
        bed=_text(d, "bed"),
        record=_optional_text(d, "record"),
        time=_number(d, "time", 0.0),
        hr=None if hr is None else _number(d, "hr", 0.0, 1000.0),
        counts=_class_map(d, "counts", int),
        pvc_per_min=_number(d, "pvc_per_min", 0.0),
        sqi=_number(d, "sqi", 0.0, 1.0),
        beats_total=_integer(d, "beats_total"),
    )


def parse_reference(d: dict) -> ReferenceMsg:
    return ReferenceMsg(
        bed=_text(d, "bed"),
        record=_optional_text(d, "record"),
        index=_integer(d, "index"),
        time=_number(d, "time", 0.0),
        symbol=_text(d, "symbol"),
        label=_optional_text(d, "label"),
    )


def _json_parser(parse: Callable[[dict], object]) -> Callable[[bytes | None, bytes | None], object]:
    return lambda value, _key: parse(decode(value))


#: Topic -> parser(value, key); the feed reads exactly these topics.
PARSERS: dict[str, Callable[[bytes | None, bytes | None], object]] = {
    topics.SAMPLES: parse_chunk,
    topics.BEATS: _json_parser(parse_beat),
    topics.ALERTS: _json_parser(parse_alert),
    topics.VITALS: _json_parser(parse_vitals),
    topics.REFERENCE: _json_parser(parse_reference),
}
