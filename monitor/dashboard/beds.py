"""One bed as the central station keeps it: its traces, beats, reference labels and vitals.

Everything here is bounded (rings, `maxlen` deques), so a bed can stream for days. What the
worker computes (heart rate, beats per class, PVCs per minute) is taken from its messages, never
recomputed; what only a screen needs (the traces at the display rate, beats placed on their
R-peak slots, class-average shapes, agreement with reference labels) is built here.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from monitor import contract
from monitor.dashboard.display import DISPLAY_FS, Segment, Trace, slot_of
from monitor.messages import BeatEvent, ReferenceBeat, Vitals
from monitor.signal import ec57
from monitor.validate import Chunk

#: A bed without samples for this long shows NO SIGNAL.
NO_SIGNAL_S = 10.0
#: Beats and reference labels kept per bed (30 s at 300 bpm with margin).
BEATS_KEEP = 400
#: Heart-rate trend span.
TREND_S = 30 * 60.0
TREND_KEEP = 4000
#: Average-beat window around the R-peak.
SHAPE_PRE_S, SHAPE_POST_S = 0.25, 0.45
#: Recent matched beats over which the "live" agreement is given.
AGREEMENT_WINDOW = 100
#: Stream segments kept per bed for placing late beats (a record restart opens a new one).
SEGMENTS_KEEP = 4

_SHAPE_PRE = round(SHAPE_PRE_S * DISPLAY_FS)
_SHAPE_POST = round(SHAPE_POST_S * DISPLAY_FS)


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
class BedState:
    """Everything kept about one bed; replaced when the bed starts a different record."""

    bed: str
    record: str
    #: The analysed lead, and the bed's other leads (the detail page draws them under it).
    trace: Trace = field(default_factory=Trace)
    others: list[Trace] = field(default_factory=list)
    segments: deque = field(default_factory=lambda: deque(maxlen=SEGMENTS_KEEP))
    next_index: int | None = None
    last_data: float | None = None  # monotonic arrival time of the last samples
    beats: deque = field(default_factory=lambda: deque(maxlen=BEATS_KEEP))
    refs: deque = field(default_factory=lambda: deque(maxlen=BEATS_KEEP))
    pending_shapes: deque = field(default_factory=lambda: deque(maxlen=64))
    shape_sum: np.ndarray = field(
        default_factory=lambda: np.zeros((len(contract.CLASSES), _SHAPE_PRE + _SHAPE_POST + 1))
    )
    shape_n: np.ndarray = field(default_factory=lambda: np.zeros(len(contract.CLASSES), int))
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
        restart = not (self.segments and self.segments[-1].fs == m.fs
                       and self.next_index == m.start_index)  # fmt: skip
        if restart:
            self.segments.append(
                Segment(m.record, m.fs, m.start_index, slot_of(m.start_time), m.start_index)
            )
        others_restart = restart
        if len(m.others) != len(self.others):
            self.others = [Trace() for _ in m.others]
            others_restart = True
        segment = self.segments[-1]
        leads = zip((self.trace, *self.others), (m.samples, *m.others), strict=True)
        for k, (trace, x) in enumerate(leads):
            if restart if k == 0 else others_restart:
                trace.restart(m.fs, x[0])
            trace.feed(x, segment.origin_slot)
        segment.end_index = self.next_index = m.start_index + len(m.samples)
        self.last_data = arrived
        self._resolve_shapes()

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
        head = self.trace.ring.head
        while self.pending_shapes and head is not None:
            mark = self.pending_shapes[0]
            if mark.slot + _SHAPE_POST >= head:
                break
            self.pending_shapes.popleft()
            w = self.trace.ring.read(mark.slot - _SHAPE_PRE, mark.slot + _SHAPE_POST + 1)
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
        """The worker's heart rate: its vitals, or before the first of them its last beat's."""
        if self.vitals is not None:
            return self.vitals.hr
        return self.beats[-1].hr if self.beats else None

    def pvc_per_min(self) -> float | None:
        return self.vitals.pvc_per_min if self.vitals is not None else None

    def counts(self) -> dict[str, int]:
        """Beats per class since the worker started the bed (its vitals; zeros before them)."""
        counts = self.vitals.counts if self.vitals is not None else {}
        return {c: int(counts.get(c, 0)) for c in contract.CLASSES}

