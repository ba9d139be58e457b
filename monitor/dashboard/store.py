"""The ward's state as the central station sees it: bounded per-bed buffers fed by the Kafka feed.

One `CentralStation` object is written by the feed thread and read by every page callback. All
memory is bounded by construction (fixed rings, `maxlen` deques, a 24 h / count cap on alarm
history and a cap on the number of beds), so a ward of 64 beds can run for days. Reads return
plain dicts and lists: callbacks and figure builders never see a lock or a mutable buffer.

Positions on screen are "display slots": sample numbers at 125 Hz on the epoch clock,
slot = round(time x 125). All beds share that clock, so their sweeps move in step like the
screens of a real central station, and beats are placed by their sample index in the stream
they came from, so a marker sits exactly on its R-peak.
"""

from __future__ import annotations

import bisect
import logging
import math
import threading
import time
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field

import numpy as np
from scipy import signal as sps

from monitor import contract, topics
from monitor.alarms.events import PRIORITY_RANK
from monitor.messages import AlertEvent, BeatEvent, ReferenceBeat, Vitals
from monitor.signal import ec57
from monitor.signal.resample import StreamResampler
from monitor.validate import Chunk

log = logging.getLogger(__name__)

#: Display rate of every trace (the model's rate: beats and strips share one time base).
DISPLAY_FS = contract.FS
#: Seconds of signal kept per bed: the 30 s detail strip plus margin.
RING_S = 40.0
#: Seconds shown by a tile's sweep.
STRIP_S = 6.0
#: A bed without samples for this long shows NO SIGNAL.
NO_SIGNAL_S = 10.0
#: Beats and reference labels kept per bed (30 s at 300 bpm with margin).
BEATS_KEEP = 400
#: Heart-rate trend span.
TREND_S = 30 * 60.0
TREND_KEEP = 4000
#: Alarm history span and hard cap.
HISTORY_S = 24 * 3600.0
HISTORY_MAX = 20_000
#: The worker's technical alarm that opens when it (re)starts a bed's analysis: older alarms of
#: the bed are over.
RESET_KIND = "pipeline_reset"
#: Seconds without a bed's signal after which its physiological alarms are shown as ended.
SILENT_ALARM_S = 60.0
#: Beds tracked at most. A new bed beyond it replaces the bed whose signal stopped the longest
#: ago, once that is `EVICT_IDLE_S` old (a bed that never sent samples counts as silent);
#: otherwise its messages are refused (and counted), not stored.
MAX_BEDS = 128
EVICT_IDLE_S = 60.0
#: Average-beat window around the R-peak.
SHAPE_PRE_S, SHAPE_POST_S = 0.25, 0.45
#: "Monitor mode" baseline filter of the display (first-order high-pass).
HIGHPASS_HZ = 0.5
#: Audio pause length (IEC 60601-1-8 allows up to 2 min for a central station).
AUDIO_PAUSE_S = 120.0
#: A newly started alarm only breaks an audio pause if it is this fresh (not a history replay).
BREAK_THROUGH_AGE_S = 30.0
#: Recent matched beats over which the "live" agreement is given.
AGREEMENT_WINDOW = 100
#: Stream segments kept per bed for placing late beats (a record restart opens a new one).
SEGMENTS_KEEP = 4

_HP_B, _HP_A = sps.butter(1, HIGHPASS_HZ / (DISPLAY_FS / 2), btype="highpass")
_HP_ZI = sps.lfilter_zi(_HP_B, _HP_A)
_SHAPE_PRE = round(SHAPE_PRE_S * DISPLAY_FS)
_SHAPE_POST = round(SHAPE_POST_S * DISPLAY_FS)


def slot_of(t: float) -> int:
    """Display slot of an epoch time."""
    return round(t * DISPLAY_FS)


class SignalRing:
    """Fixed-size float32 ring addressed by absolute display slot; gaps read as NaN."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"size must be positive, got {size!r}")
        self.size = size
        self._buf = np.full(size, np.nan, dtype=np.float32)
        #: One past the newest slot written, or None before the first write.
        self.head: int | None = None

    def write(self, start: int, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float32)
        end = start + len(values)
        head = start if self.head is None else self.head
        new_head = max(head, end)
        oldest = new_head - self.size
        if start > head:  # samples never arrived: show a gap, not stale values
            gap = np.arange(max(head, oldest), start)
            self._buf[gap % self.size] = np.nan
        lo = max(start, oldest)
        if lo < end:
            self._buf[np.arange(lo, end) % self.size] = values[lo - start :]
        self.head = new_head

    def read(self, first: int, stop: int) -> np.ndarray:
        """Values of slots first..stop-1 (NaN where nothing is held)."""
        n = max(0, stop - first)
        out = np.full(n, np.nan, dtype=np.float32)
        if self.head is None or n == 0:
            return out
        lo, hi = max(first, self.head - self.size), min(stop, self.head)
        if lo < hi:
            out[lo - first : hi - first] = self._buf[np.arange(lo, hi) % self.size]
        return out


@dataclass
class _Segment:
    """A contiguous run of one record's samples: maps source indices to display slots."""

    record: str
    fs: float
    origin_index: int
    origin_slot: int
    end_index: int

    def slot(self, index: int) -> int | None:
        if self.origin_index <= index <= self.end_index + self.fs * 5:
            return self.origin_slot + round((index - self.origin_index) * DISPLAY_FS / self.fs)
        return None


@dataclass
class BeatMark:
    slot: int
    time: float
    label: str
    probs: dict[str, float]
    hr: float
    reference: str | None = None


@dataclass
class RefMark:
    slot: int
    time: float
    symbol: str
    label: str
    matched: bool = False


@dataclass
class Alarm:
    bed: str
    record: str
    alarm_id: str
    kind: str
    priority: str
    start: float
    message: str
    end: float | None = None
    acked_at: float | None = None

    @property
    def rank(self) -> int:
        return PRIORITY_RANK[self.priority]

    def as_dict(self, now: float) -> dict:
        stop = self.end if self.end is not None else now
        return {
            "bed": self.bed,
            "record": self.record,
            "alarm_id": self.alarm_id,
            "kind": self.kind,
            "priority": self.priority,
            "start": self.start,
            "end": self.end,
            "duration_s": max(0.0, stop - self.start),
            "message": self.message,
            "acked_at": self.acked_at,
            "active": self.end is None,
        }


@dataclass
class BedState:
    """Everything kept about one bed; reset when the bed starts a different record."""

    bed: str
    record: str
    ring: SignalRing = field(default_factory=lambda: SignalRing(round(RING_S * DISPLAY_FS)))
    #: The bed's other leads at display rate (the detail page draws them under the first).
    other_rings: list = field(default_factory=list)
    other_filters: list = field(default_factory=list)  # (resampler, high-pass state) per lead
    segments: deque = field(default_factory=lambda: deque(maxlen=SEGMENTS_KEEP))
    resampler: StreamResampler | None = None
    hp_state: np.ndarray | None = None
    next_index: int | None = None
    last_data: float | None = None  # monotonic arrival time of the last samples
    beats: deque = field(default_factory=lambda: deque(maxlen=BEATS_KEEP))
    refs: deque = field(default_factory=lambda: deque(maxlen=BEATS_KEEP))
    pending_shapes: deque = field(default_factory=lambda: deque(maxlen=64))
    shape_sum: np.ndarray = field(
        default_factory=lambda: np.zeros((len(contract.CLASSES), _SHAPE_PRE + _SHAPE_POST + 1))
    )
    shape_n: np.ndarray = field(default_factory=lambda: np.zeros(len(contract.CLASSES), int))
    own_counts: Counter = field(default_factory=Counter)
    vitals: Vitals | None = None
    trend: deque = field(default_factory=lambda: deque(maxlen=TREND_KEEP))
    matched: int = 0
    agreed: int = 0
    recent_agreement: deque = field(default_factory=lambda: deque(maxlen=AGREEMENT_WINDOW))
    model_version: str = ""
    #: R-peak indices of the beats shown lately, sorted: a re-delivered beat is recognised by
    #: its index.
    seen: list = field(default_factory=list)

    # -- samples ---------------------------------------------------------------------------
    def add_samples(self, m: Chunk, arrived: float) -> None:
        x = m.samples
        contiguous = (
            self.resampler is not None
            and self.resampler.fs_in == m.fs
            and self.next_index == m.start_index
        )
        if not contiguous:
            self.resampler = StreamResampler(m.fs, DISPLAY_FS)
            self.hp_state = _HP_ZI * x[0]
            self.segments.append(
                _Segment(m.record, m.fs, m.start_index, slot_of(m.start_time), m.start_index)
            )
        assert self.resampler is not None
        y, self.hp_state = _to_display(self.resampler, self.hp_state, x)
        segment = self.segments[-1]
        segment.end_index = m.start_index + len(x)
        self.next_index = segment.end_index
        self.last_data = arrived
        if len(y):
            self.ring.write(segment.origin_slot + self.resampler.n_out - len(y), y)
            self._resolve_shapes()
        self._add_other_leads(m, restart=not contiguous)

    def _add_other_leads(self, m: Chunk, restart: bool) -> None:
        """The chunk's other leads, resampled and filtered as the first, at the same slots."""
        if len(m.others) != len(self.other_rings):
            self.other_rings = [SignalRing(self.ring.size) for _ in m.others]
            restart = True
        if restart:
            self.other_filters = [(StreamResampler(m.fs, DISPLAY_FS), _HP_ZI * o[0])
                                  for o in m.others]  # fmt: skip
        origin = self.segments[-1].origin_slot
        for k, (o, ring) in enumerate(zip(m.others, self.other_rings, strict=True)):
            resampler, state = self.other_filters[k]
            y, state = _to_display(resampler, state, o)
            self.other_filters[k] = (resampler, state)
            if len(y):
                ring.write(origin + resampler.n_out - len(y), y)

    def slot_for(self, record: str, index: int, t: float) -> int:
        """Display slot of a source sample index (its stream segment), else of its time."""
        for seg in reversed(self.segments):
            if seg.record == record:
                s = seg.slot(index)
                if s is not None:
                    return s
        return slot_of(t)

    # -- beats and reference ---------------------------------------------------------------
    def add_beat(self, m: BeatEvent) -> bool:
        """Show a beat once. A worker restarted mid-stream re-publishes the beats after its last
        committed offset (at-least-once); its new pipeline resamples from another sample, so a
        repeated R-peak may sit a sample or two off. Two beats closer than the EC57 match
        window are one beat: no heart beats twice within 150 ms. False for a repeat."""
        tol = round(ec57.MATCH_WINDOW_S * m.fs)
        i = bisect.bisect_left(self.seen, m.index - tol)
        if i < len(self.seen) and self.seen[i] <= m.index + tol:
            return False
        bisect.insort(self.seen, m.index)
        if len(self.seen) > 4 * BEATS_KEEP:
            del self.seen[0]
        mark = BeatMark(self.slot_for(m.record, m.index, m.time), m.time, m.label, m.probs, m.hr)
        self._insert(self.beats, mark)
        self.own_counts[m.label] += 1
        self.model_version = m.model_version
        if self.vitals is None:
            self._add_trend(m.time, m.hr)
        ref = self._nearest(self.refs, mark.slot, lambda r: not r.matched and bool(r.label))
        if ref is not None:
            self._pair(mark, ref)
        self.pending_shapes.append(mark)
        self._resolve_shapes()
        return True

    def add_reference(self, m: ReferenceBeat) -> None:
        ref = RefMark(self.slot_for(m.record, m.index, m.time), m.time, m.symbol, m.label)
        if ref.label not in contract.CLASSES:
            ref.label = ""  # rhythm and signal-quality annotations are shown, never scored
        self._insert(self.refs, ref)
        if ref.label:
            beat = self._nearest(self.beats, ref.slot, lambda b: b.reference is None)
            if beat is not None:
                self._pair(beat, ref)

    def _pair(self, beat: BeatMark, ref: RefMark) -> None:
        beat.reference = ref.label
        ref.matched = True
        same = beat.label == ref.label
        self.matched += 1
        self.agreed += same
        self.recent_agreement.append(same)

    @staticmethod
    def _insert(buf: deque, mark: BeatMark | RefMark) -> None:
        """Append in slot order (messages from different partitions may arrive out of order)."""
        if not buf or buf[-1].slot <= mark.slot:
            buf.append(mark)
            return
        items = list(buf)
        items.insert(bisect.bisect_right([b.slot for b in items], mark.slot), mark)
        buf.clear()
        buf.extend(items[-buf.maxlen :] if buf.maxlen else items)

    @staticmethod
    def _nearest(buf: deque, slot: int, ok) -> BeatMark | RefMark | None:
        tol = ec57.MATCH_WINDOW_S * DISPLAY_FS
        best, best_d = None, math.inf
        for item in reversed(buf):
            d = abs(item.slot - slot)
            if item.slot < slot - tol:
                break
            if d <= tol and d < best_d and ok(item):
                best, best_d = item, d
        return best

    def _resolve_shapes(self) -> None:
        """Add beats to the class averages once the signal after their R-peak has arrived."""
        head = self.ring.head
        while self.pending_shapes and head is not None:
            mark = self.pending_shapes[0]
            if mark.slot + _SHAPE_POST >= head:
                break
            self.pending_shapes.popleft()
            w = self.ring.read(mark.slot - _SHAPE_PRE, mark.slot + _SHAPE_POST + 1)
            if np.all(np.isfinite(w)):
                k = contract.CLASSES.index(mark.label)
                self.shape_sum[k] += w - np.median(w)
                self.shape_n[k] += 1

    # -- vitals ----------------------------------------------------------------------------
    def add_vitals(self, m: Vitals) -> None:
        if self.vitals is None:
            self.trend.clear()  # vitals are the trend's source from now on, not beat-by-beat HR
        self.vitals = m
        if m.hr is not None:
            self._add_trend(m.time, m.hr)

    def _add_trend(self, t: float, hr: float) -> None:
        self.trend.append((t, hr))
        while self.trend and self.trend[0][0] < t - TREND_S:
            self.trend.popleft()

    # -- reads -----------------------------------------------------------------------------
    def no_signal(self, now_mono: float) -> bool:
        return self.last_data is None or now_mono - self.last_data > NO_SIGNAL_S

    def hr(self) -> float | None:
        if self.vitals is not None:
            return self.vitals.hr
        return self.beats[-1].hr if self.beats else None

    def pvc_per_min(self) -> float | None:
        if self.vitals is not None:
            return self.vitals.pvc_per_min
        if not self.beats:
            return None
        last = self.beats[-1].time
        return float(sum(1 for b in self.beats if b.label == "V" and b.time > last - 60.0))

    def counts(self) -> dict[str, int]:
        source = self.vitals.counts if self.vitals is not None else self.own_counts
        return {c: int(source.get(c, 0)) for c in contract.CLASSES}


class CentralStation:
    """Thread-safe state of every bed, the alarms and the feed's health."""

    def __init__(self, bootstrap: str = "") -> None:
        self._lock = threading.RLock()
        self.bootstrap = bootstrap
        self._beds: dict[str, BedState] = {}
        self._active: dict[str, Alarm] = {}
        self._episodes: OrderedDict[str, Alarm] = OrderedDict()
        self._audio_paused_until: float | None = None
        self._audio_paused_rank = 0
        self._audio_note = ""
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
                self._on_alert(msg)
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

    def _on_alert(self, m: AlertEvent) -> None:
        known = self._episodes.get(m.alarm_id)
        if m.state == "start":
            if known is not None:
                known.message = m.message or known.message  # a repeated start (re-read) only
                return
            alarm = Alarm(m.bed, m.record, m.alarm_id, m.kind, m.priority, m.time, m.message)
            if m.kind == RESET_KIND:
                self._end_bed_alarms(m.bed, m.time, "analysis restarted")
            self._episodes[m.alarm_id] = self._active[m.alarm_id] = alarm
            self._break_through(alarm)
        else:
            if known is None:  # its start is older than what we read: keep the end on record
                known = Alarm(m.bed, m.record, m.alarm_id, m.kind, m.priority, m.time, m.message)
                self._episodes[m.alarm_id] = known
            if known.end is None:
                known.end = max(m.time, known.start)
            self._active.pop(m.alarm_id, None)
        self._prune_history(m.time)

    def _end_bed_alarms(self, bed: str, before: float, why: str) -> None:
        """End the bed's active alarms that started before `before`: their source is gone (a
        restarted worker does not know them, a silent bed sends nothing to end them)."""
        for alarm_id, alarm in list(self._active.items()):
            if alarm.bed == bed and alarm.start <= before:
                alarm.end = max(before, alarm.start)
                alarm.message = f"{alarm.message} (ended: {why})"
                del self._active[alarm_id]

    def _expire_silent(self, now_mono: float) -> None:
        """A bed whose signal stopped SILENT_ALARM_S ago keeps no physiological alarm active:
        nothing will end it. The tile says NO SIGNAL and the worker's no_data alarm stays."""
        for alarm_id, alarm in list(self._active.items()):
            state = self._beds.get(alarm.bed)
            if alarm.priority == "technical" or state is None or state.last_data is None:
                continue
            if now_mono - state.last_data > SILENT_ALARM_S:
                alarm.end = time.time() - (now_mono - state.last_data)
                alarm.end = max(alarm.end, alarm.start)
                alarm.message = f"{alarm.message} (ended: no signal from the bed)"
                del self._active[alarm_id]

    def _prune_history(self, now: float) -> None:
        while self._episodes:
            alarm_id, oldest = next(iter(self._episodes.items()))
            too_many = len(self._episodes) > HISTORY_MAX
            expired = oldest.end is not None and oldest.end < now - HISTORY_S
            if not (too_many or expired):
                break
            del self._episodes[alarm_id]
            self._active.pop(alarm_id, None)

    def _break_through(self, alarm: Alarm) -> None:
        if self._audio_paused_until is None or time.time() - alarm.start > BREAK_THROUGH_AGE_S:
            return
        if alarm.priority == "high" or alarm.rank > self._audio_paused_rank:
            self._audio_paused_until = None
            self._audio_note = f"audio resumed: new {alarm.priority} alarm on {alarm.bed}"

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
            worst = self._worst_alarm_per_bed()
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

    def _worst_alarm_per_bed(self) -> dict[str, list[Alarm]]:
        per_bed: dict[str, list[Alarm]] = {}
        for alarm in self._active.values():
            per_bed.setdefault(alarm.bed, []).append(alarm)
        for alarms in per_bed.values():
            # Unacknowledged first within a priority: the one still asking for attention.
            alarms.sort(key=lambda a: (-a.rank, a.acked_at is not None, -a.start))
        return per_bed

    def sweep(self, cursors: dict[str, int], now_mono: float | None = None) -> dict:
        """New display samples per bed since each client cursor (the last slot it holds)."""
        now_mono = time.monotonic() if now_mono is None else now_mono
        n = round(STRIP_S * DISPLAY_FS)
        out = {}
        with self._lock:
            for name, bed in self._beds.items():
                head = bed.ring.head
                if head is None:
                    continue
                if bed.no_signal(now_mono):
                    out[name] = {"stale": True}
                    continue
                cursor = cursors.get(name)
                first = head - n if cursor is None else max(int(cursor) + 1, head - n)
                y = bed.ring.read(first, head) if first < head else np.zeros(0, np.float32)
                out[name] = {"s": first, "y": _json_floats(y), "t": head / DISPLAY_FS}
        return out

    def detail(self, bed: str, seconds: float = 30.0) -> dict | None:
        """Everything the bed-detail page draws, or None for an unknown bed."""
        with self._lock:
            state = self._beds.get(bed)
            if state is None:
                return None
            head = state.ring.head
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
            worst = self._worst_alarm_per_bed().get(bed, [])
            now = time.time()
            return {
                "bed": bed,
                "record": state.record,
                "fs": DISPLAY_FS,
                "first_slot": first,
                "signal": _json_floats(state.ring.read(first, stop)),
                "others": [_json_floats(r.read(first, stop)) for r in state.other_rings],
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
            alarms = sorted(self._active.values(), key=lambda a: (-a.rank, -a.start))
            return [a.as_dict(now) for a in alarms]

    def history(
        self,
        beds: list[str] | None = None,
        kinds: list[str] | None = None,
        now: float | None = None,
    ) -> list[dict]:
        """Alarm episodes of the last 24 h, newest first, optionally only some beds/kinds."""
        now = time.time() if now is None else now
        with self._lock:
            self._prune_history(now)
            rows = [
                a.as_dict(now)
                for a in reversed(self._episodes.values())
                if (not beds or a.bed in beds) and (not kinds or a.kind in kinds)
            ]
        return rows

    def acknowledge(self, alarm_id: str, now: float | None = None) -> bool:
        """Acknowledge an active alarm: its audio stops and its tile stops flashing."""
        with self._lock:
            alarm = self._active.get(alarm_id)
            if alarm is None or alarm.acked_at is not None:
                return False
            alarm.acked_at = time.time() if now is None else now
            return True

    def pause_audio(self, now: float | None = None) -> None:
        """Silence for AUDIO_PAUSE_S, timed on the monotonic clock: a wall-clock step (NTP, a
        changed time zone setting) neither lengthens nor ends the pause."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._audio_paused_until = now + AUDIO_PAUSE_S
            self._audio_paused_rank = max((a.rank for a in self._active.values()), default=0)
            self._audio_note = ""

    def resume_audio(self) -> None:
        with self._lock:
            self._audio_paused_until = None
            self._audio_note = ""

    def audio(self, now: float | None = None) -> dict:
        """Audio state: what should sound, and the pause countdown if paused."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._audio_paused_until is not None and now >= self._audio_paused_until:
                self._audio_paused_until = None
            sounding = [a for a in self._active.values() if a.acked_at is None]
            loudest = max(sounding, key=lambda a: a.rank).priority if sounding else None
            paused = self._audio_paused_until is not None
            return {
                "paused": paused,
                "remaining_s": max(0.0, self._audio_paused_until - now) if paused else 0.0,
                "tone": None if paused else loudest,
                "note": self._audio_note,
            }


def _to_display(resampler: StreamResampler, zi: np.ndarray, x: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """A lead's next samples at display rate with the baseline wander removed, and the filter
    state to carry on."""
    y = resampler.feed(x)
    if len(y):
        y, zi = sps.lfilter(_HP_B, _HP_A, y, zi=zi)
    return y, zi


def _json_floats(y: np.ndarray) -> list[float | None]:
    """Millivolts to 3 decimals, NaN as null (JSON has no NaN)."""
    return [None if v != v else v for v in np.round(y.astype(np.float64), 3).tolist()]


def _natural_key(name: str) -> tuple:
    """bed-2 before bed-10."""
    # isdecimal, not isdigit: "²" is a digit that int() refuses.
    digits = "".join(ch if ch.isdecimal() else " " for ch in name).split()
    return (name.rstrip("0123456789"), int(digits[-1]) if digits else -1, name)
