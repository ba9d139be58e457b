"""One bed's live pipeline: chunk continuity, beat cutting, stream time and alarm inputs.

A bed's chunks arrive in order (the topic is keyed by bed), but a feed can still repeat, skip,
rewind or change its sampling rate. `judge` decides, from the bed's position alone, whether a
chunk continues the stream, must be dropped, or starts a new segment; a new segment restarts
the beat cutter and tells the alarm engine, because beats and rhythm cannot be carried across a
hole in the signal.

Beats leave the cutter before they are classified, and the alarm engine must see samples and
labelled beats in stream order (its asystole check assumes the beats of earlier chunks are in).
So the pipeline queues its alarm inputs in stream order and `run_alarms` replays them once the
batch's labels are known.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np

from monitor.alarms import AlarmEngine, AlarmEvent, AlarmSettings
from monitor.beats import Beat, BeatExtractor
from monitor.messages import BedCounters
from monitor.validate import Chunk, Rejected

#: Tolerance when comparing a chunk's start time with its predecessor's, in seconds.
TIME_TOLERANCE_S = 1e-3


@dataclass(frozen=True)
class Verdict:
    """What to do with a chunk: drop it, or process it (after a reset when `reset` says why)."""

    drop: bool = False
    reset: str | None = None
    #: Reported to the dead-letter topic (with the chunk) when set.
    rejected: Rejected | None = None


@dataclass(frozen=True)
class Position:
    """Where a bed's stream stands: what the next chunk must look like to continue it."""

    record: str
    fs: float
    next_index: int
    last_start_index: int
    last_start_time: float
    end_time: float


def judge(pos: Position, chunk: Chunk) -> Verdict:
    """Continuity of `chunk` after a stream at `pos`."""
    if chunk.record != pos.record:
        # A new patient on the bed: nothing wrong with the data, but nothing carries over.
        return Verdict(reset=f"record changed from {pos.record} to {chunk.record}")
    if chunk.fs != pos.fs:
        why = f"sampling rate changed from {pos.fs:g} to {chunk.fs:g} Hz"
        return Verdict(reset=why, rejected=Rejected("rate_change", f"{why}; pipeline reset"))
    if chunk.start_index == pos.next_index:
        if chunk.start_time < pos.last_start_time - TIME_TOLERANCE_S:
            why = (
                f"start_time goes back {pos.last_start_time - chunk.start_time:.3f} s while "
                f"start_index continues at {chunk.start_index}"
            )
            return Verdict(reset=why, rejected=Rejected("time_jump", f"{why}; pipeline reset"))
        return Verdict()
    if chunk.start_index > pos.next_index:
        missing = chunk.start_index - pos.next_index
        why = (
            f"{missing} samples ({missing / pos.fs:.2f} s) missing before start_index "
            f"{chunk.start_index} (expected {pos.next_index})"
        )
        return Verdict(reset=why, rejected=Rejected("gap", f"{why}; pipeline reset"))
    if chunk.start_time < pos.end_time - TIME_TOLERANCE_S:
        kind = "duplicate" if chunk.start_index == pos.last_start_index else "out_of_order"
        return Verdict(
            drop=True,
            rejected=Rejected(
                kind,
                f"start_index {chunk.start_index} is before the expected {pos.next_index} and "
                f"the chunk is not newer than the last one; dropped",
            ),
        )
    if chunk.start_index == 0:
        # The source replays its record from the beginning (a looping simulator).
        return Verdict(reset="record restarted from its beginning")
    why = f"start_index jumps back from {pos.next_index} to {chunk.start_index}"
    return Verdict(reset=why, rejected=Rejected("jump", f"{why}; pipeline reset"))


class TimeMap:
    """Stream time of a sample index, anchored on the chunks' own timestamps.

    A device clock and its sample clock drift apart slowly, so each beat takes its time from a
    recent anchor instead of from the segment start. Anchors are kept about one per second and
    for `keep_s`; a beat older than that (a beat reported after a very long pause) is timed from
    the oldest anchor, off by the drift over that span only.
    """

    def __init__(self, fs: float, spacing_s: float = 1.0, keep_s: float = 120.0) -> None:
        self.fs = fs
        self._spacing = spacing_s
        self._keep = round(keep_s * fs)
        self._index: list[int] = []
        self._time: list[float] = []

    def add(self, index: int, time: float) -> None:
        if self._time and time - self._time[-1] < self._spacing:
            return
        self._index.append(index)
        self._time.append(time)
        drop = bisect.bisect_left(self._index, index - self._keep) - 1
        if drop > 0:
            del self._index[:drop], self._time[:drop]

    def time_of(self, index: int) -> float:
        if not self._index:
            raise ValueError("no anchors yet: add a chunk before asking for times")
        i = max(0, bisect.bisect_right(self._index, index) - 1)
        return self._time[i] + (index - self._index[i]) / self.fs


@dataclass(eq=False)
class PendingBeat:
    """A cut beat waiting for its label; `label` and `probs` are filled in after the forward."""

    bed: str
    record: str
    fs: float
    #: R-peak in samples of the record, and its stream time.
    index: int
    time: float
    beat: Beat
    #: Kafka timestamp (epoch s) of the chunk that completed the beat, for latency accounting.
    sent: float
    label: str | None = None
    probs: dict[str, float] = field(default_factory=dict)


class BedPipeline:
    """Beat cutter, stream clock and alarm engine of one bed, fed chunk by chunk in order."""

    def __init__(
        self,
        chunk: Chunk,
        settings: AlarmSettings | None = None,
        counters: BedCounters | None = None,
    ) -> None:
        self.bed = chunk.bed
        self.alarms = AlarmEngine(chunk.fs, bed=chunk.bed, settings=settings)
        #: Running totals, restored from the worker's table after a restart.
        self.counters = counters if counters is not None else BedCounters()
        #: Whether the counters moved since the table last saw them.
        self.dirty = False
        #: Wall time the last chunk arrived (None until one has).
        self.last_wall: float | None = None
        self._queue: list[tuple] = []  # alarm inputs in stream order
        self._new_segment(chunk, skip=False)

    @property
    def record(self) -> str:
        return self.pos.record

    @property
    def segment_start(self) -> int:
        """Source index of the cutter's first sample: beat indices count from here."""
        return self._segment_start

    @property
    def newest_time(self) -> float:
        """Stream time just after the newest sample received."""
        return self.pos.end_time

    def _new_segment(self, chunk: Chunk, skip: bool) -> None:
        """A fresh cutter starting at `chunk`, or just after it when `skip`."""
        self.extractor = BeatExtractor(chunk.fs)
        self.time_map = TimeMap(chunk.fs)
        if skip:
            self._segment_start = chunk.end_index
            self.pos = Position(
                chunk.record, chunk.fs, chunk.end_index, chunk.start_index, chunk.start_time,
                chunk.end_time,
            )
        else:
            self._segment_start = chunk.start_index
            self.pos = Position(
                chunk.record, chunk.fs, chunk.start_index, chunk.start_index, -np.inf, -np.inf
            )

    def accept(self, chunk: Chunk, wall_time: float, sent: float) -> tuple[Verdict, list]:
        """Take one chunk: (its verdict, beats it completed). Alarm inputs are queued."""
        self.last_wall = wall_time
        verdict = judge(self.pos, chunk)
        if verdict.drop:
            return verdict, []
        if verdict.reset is not None:
            self.restart(verdict.reset, chunk)
        beats = self.extractor.feed(chunk.samples)
        self.time_map.add(chunk.start_index, chunk.start_time)
        self.pos = Position(
            chunk.record, chunk.fs, chunk.end_index, chunk.start_index, chunk.start_time,
            chunk.end_time,
        )
        self._queue.append(("samples", chunk, wall_time))
        pending = []
        for beat in beats:
            index = self._segment_start + beat.index
            p = PendingBeat(
                self.bed, chunk.record, chunk.fs, index, self.time_map.time_of(index), beat, sent
            )
            self._queue.append(("beat", p))
            pending.append(p)
        self.counters.chunks += 1
        self.counters.samples += len(chunk.samples)
        self.dirty = True
        return verdict, pending

    def restart(self, reason: str, chunk: Chunk, skip: bool = False) -> None:
        """Start a new segment at `chunk`, or after it when `skip`: cutter and rhythm start over."""
        self._queue.append(("reset", reason, chunk.start_index, chunk.start_time, chunk.fs))
        self._new_segment(chunk, skip)
        self.counters.resets += 1
        self.dirty = True

    def run_alarms(self) -> list[AlarmEvent]:
        """Feed the queued inputs to the alarm engine in stream order; beats must be labelled."""
        queue, self._queue = self._queue, []
        out: list[AlarmEvent] = []
        for item in queue:
            if item[0] == "samples":
                _, chunk, wall = item
                out += self.alarms.on_samples(
                    chunk.samples, chunk.start_index, chunk.start_time, wall_time=wall,
                    others=chunk.others,
                )  # fmt: skip
            elif item[0] == "beat":
                p = item[1]
                self.counters.beats += 1
                self.counters.counts[p.label] += 1
                self.dirty = True
                out += self.alarms.on_beat(p.label, p.index, p.time, p.beat.rr_prev)
            else:
                _, reason, index, time, fs = item
                out += self.alarms.reset(reason, index, time, fs=fs)
        return out
