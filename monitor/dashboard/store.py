"""The ward's state as the central station sees it: every bed, the alarm board, the feed's health.

One `CentralStation` object is written by the feed thread and read by every page callback,
under one lock. It routes each message to its bed (`beds.BedState`: traces, beats, vitals) or to
the alarm board (`alarm_board.AlarmBoard`), keeps the number of beds bounded, and hands the
pages plain dicts and lists: callbacks and figure builders never see a lock or a mutable
buffer.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter

import numpy as np

from monitor import contract, topics
from monitor.dashboard.alarm_board import AlarmBoard
from monitor.dashboard.beds import SHAPE_PRE_S, BedState
from monitor.dashboard.display import DISPLAY_FS, STRIP_S, json_floats, slot_of
from monitor.messages import AlertEvent, BeatEvent, ReferenceBeat, Vitals
from monitor.validate import Chunk

#: Beds tracked at most. A new bed beyond it replaces the bed whose signal stopped the longest
#: ago, once that is `EVICT_IDLE_S` old (a bed that never sent samples counts as silent);
#: otherwise its messages are refused (and counted), not stored.
MAX_BEDS = 128
EVICT_IDLE_S = 60.0


class CentralStation:
    """Thread-safe state of every bed, the alarms and the feed's health."""

    def __init__(self, bootstrap: str = "") -> None:
        self._lock = threading.RLock()
        self.bootstrap = bootstrap
        self._beds: dict[str, BedState] = {}
        self._board = AlarmBoard()
        self._connected = False
        self._status_since = time.time()
        self._status_error = "connecting"
        self.rejected: Counter = Counter()
        self.last_rejection = ""
        self.evicted = 0
        self.duplicates = 0

    # -- feed side -------------------------------------------------------------------------
    def _bed(self, topic: str, bed: str, record: str, arrived: float) -> BedState | None:
        """The bed's state; only its samples may move it to another record (a new patient)."""
        state = self._beds.get(bed)
        if state is None:
            if len(self._beds) >= MAX_BEDS and not self._evict_silent(arrived):
                self._reject(topic, f"bed {bed!r} refused: already tracking {MAX_BEDS} beds")
                return None
            state = self._beds[bed] = BedState(bed, record)
        elif record and state.record != record:
            if topic != topics.SAMPLES:
                self._reject(topic, f"{bed}: message for record {record!r}, bed shows "
                             f"{state.record!r}")
                return None
            state = self._beds[bed] = BedState(bed, record)
        return state

    def _evict_silent(self, now: float) -> bool:
        """Forget the bed silent the longest, if silent for EVICT_IDLE_S (or never heard)."""
        name, state = min(self._beds.items(), key=lambda kv: kv[1].last_data or -math.inf)
        if state.last_data is not None and now - state.last_data < EVICT_IDLE_S:
            return False
        del self._beds[name]
        self.evicted += 1
        return True

    def _reject(self, topic: str, reason: str) -> None:
        self.rejected[topic] += 1
        self.last_rejection = f"{topic}: {reason}"

    def reject(self, topic: str, reason: str) -> None:
        """Count a message that could not be used; the page reports the count."""
        with self._lock:
            self._reject(topic, reason)

    def ingest(self, topic: str, msg: object, arrived: float | None = None) -> None:
        """Apply one parsed message (from `monitor.messages.DECODERS`) to the ward."""
        arrived = time.monotonic() if arrived is None else arrived
        with self._lock:
            if isinstance(msg, AlertEvent):
                self._board.on_alert(msg)
                return
            bed = self._bed(topic, msg.bed, msg.record, arrived)  # type: ignore[attr-defined]
            if bed is None:
                return
            if isinstance(msg, Chunk):
                bed.add_samples(msg, arrived)
            elif isinstance(msg, BeatEvent):
                if not bed.add_beat(msg):
                    self.duplicates += 1
            elif isinstance(msg, Vitals):
                bed.add_vitals(msg)
            elif isinstance(msg, ReferenceBeat):
                bed.add_reference(msg)
            else:
                raise TypeError(f"msg has unsupported type {type(msg).__name__}")

    def set_feed_status(self, connected: bool, error: str = "") -> None:
        with self._lock:
            if connected != self._connected:
                self._status_since = time.time()
            self._connected = connected
            self._status_error = error

    # -- page side -------------------------------------------------------------------------
    def feed_status(self) -> dict:
        with self._lock:
            return {
                "connected": self._connected,
                "since": self._status_since,
                "error": self._status_error,
                "bootstrap": self.bootstrap,
                "rejected": sum(self.rejected.values()),
                "last_rejection": self.last_rejection,
                "evicted": self.evicted,
            }

    def beds(self) -> list[str]:
        with self._lock:
            return sorted(self._beds, key=_natural_key)

    def tiles(self, now_mono: float | None = None) -> list[dict]:
        """What each central-station tile shows."""
        now_mono = time.monotonic() if now_mono is None else now_mono
        with self._lock:
            worst = self._board.worst_per_bed()
            out = []
            for name in sorted(self._beds, key=_natural_key):
                bed = self._beds[name]
                alarms = worst.get(name, [])
                out.append(
                    {
                        "bed": name,
                        "record": bed.record,
                        "hr": bed.hr(),
                        "last_label": bed.beats[-1].label if bed.beats else None,
                        "pvc_per_min": bed.pvc_per_min(),
                        "sqi": bed.vitals.sqi if bed.vitals is not None else None,
                        "no_signal": bed.no_signal(now_mono),
                        "alarm": alarms[0].as_dict(time.time()) if alarms else None,
                        "n_alarms": len(alarms),
                    }
                )
            return out

    def sweep(self, cursors: dict[str, int], now_mono: float | None = None) -> dict:
        """New display samples per bed since each client cursor (the last slot it holds)."""
        now_mono = time.monotonic() if now_mono is None else now_mono
        n = round(STRIP_S * DISPLAY_FS)
        out = {}
        with self._lock:
            for name, bed in self._beds.items():
                head = bed.trace.ring.head
                if head is None:
                    continue
                if bed.no_signal(now_mono):
                    out[name] = {"stale": True}
                    continue
                cursor = cursors.get(name)
                first = head - n if cursor is None else max(int(cursor) + 1, head - n)
                y = bed.trace.ring.read(first, head) if first < head else np.zeros(0, np.float32)
                out[name] = {"s": first, "y": json_floats(y), "t": head / DISPLAY_FS}
        return out

    def detail(self, bed: str, seconds: float = 30.0) -> dict | None:
        """Everything the bed-detail page draws, or None for an unknown bed."""
        with self._lock:
            state = self._beds.get(bed)
            if state is None:
                return None
            head = state.trace.ring.head
            stop = head if head is not None else slot_of(time.time())
            first = stop - round(seconds * DISPLAY_FS)
            beats = [
                {"slot": b.slot, "time": b.time, "label": b.label, "probs": dict(b.probs),
                 "hr": b.hr, "reference": b.reference}
                for b in state.beats
                if b.slot >= first
            ]
            refs = [
                {"slot": r.slot, "symbol": r.symbol, "label": r.label, "matched": r.matched}
                for r in state.refs
                if r.slot >= first
            ]
            shapes = {
                c: (state.shape_sum[k] / state.shape_n[k]).tolist()
                for k, c in enumerate(contract.CLASSES)
                if state.shape_n[k]
            }
            worst = self._board.worst_per_bed().get(bed, [])
            now = time.time()
            return {
                "bed": bed,
                "record": state.record,
                "fs": DISPLAY_FS,
                "first_slot": first,
                "signal": json_floats(state.trace.ring.read(first, stop)),
                "others": [json_floats(t.ring.read(first, stop)) for t in state.others],
                "beats": beats,
                "refs": refs,
                "has_reference": bool(state.refs),
                "agreement": {
                    "matched": state.matched,
                    "agreed": state.agreed,
                    "recent": list(state.recent_agreement),
                },
                "trend": list(state.trend),
                "counts": state.counts(),
                "shapes": shapes,
                "shape_n": dict(zip(contract.CLASSES, state.shape_n.tolist(), strict=True)),
                "shape_offset_s": -SHAPE_PRE_S,
                "hr": state.hr(),
                "pvc_per_min": state.pvc_per_min(),
                "no_signal": state.no_signal(time.monotonic()),
                "alarms": [a.as_dict(now) for a in worst],
                "model_version": state.model_version,
            }

    # -- alarms ----------------------------------------------------------------------------
    def active_alarms(self, now: float | None = None) -> list[dict]:
        """Active alarms, highest priority first, then newest first."""
        now = time.time() if now is None else now
        with self._lock:
            self._expire_silent(time.monotonic())
            return self._board.active_alarms(now)

    def _expire_silent(self, now_mono: float) -> None:
        def last_data(bed: str) -> float | None:
            state = self._beds.get(bed)
            return None if state is None else state.last_data

        self._board.expire_silent(now_mono, last_data)

    def history(
        self,
        beds: list[str] | None = None,
        kinds: list[str] | None = None,
        now: float | None = None,
    ) -> list[dict]:
        """Alarm episodes of the last 24 h, newest first, optionally only some beds/kinds."""
        now = time.time() if now is None else now
        with self._lock:
            return self._board.history(beds, kinds, now)

    def acknowledge(self, alarm_id: str, now: float | None = None) -> bool:
        """Acknowledge an active alarm: its audio stops and its tile stops flashing."""
        with self._lock:
            return self._board.acknowledge(alarm_id, time.time() if now is None else now)

    def pause_audio(self, now: float | None = None) -> None:
        """Silence the ward's audio for `alarm_board.AUDIO_PAUSE_S` (monotonic clock)."""
        with self._lock:
            self._board.pause_audio(time.monotonic() if now is None else now)

    def resume_audio(self) -> None:
        with self._lock:
            self._board.resume_audio()

    def audio(self, now: float | None = None) -> dict:
        """Audio state: what should sound, and the pause countdown if paused."""
        with self._lock:
            return self._board.audio(time.monotonic() if now is None else now)


def _natural_key(name: str) -> tuple:
    """bed-2 before bed-10."""
    # isdecimal, not isdigit: "²" is a digit that int() refuses.
    digits = "".join(ch if ch.isdecimal() else " " for ch in name).split()
    return (name.rstrip("0123456789"), int(digits[-1]) if digits else -1, name)
