"""Every bed a worker serves, and one classification round across them.

The Faust agent is a thin loop around this class: it hands over a round of raw `ecg.samples`
messages (`ingest`), runs the round's beats through the model in one micro-batch
(`classify`, in a worker thread), and publishes what `finish` and `tick` return. Nothing here
touches Kafka, so all of it is tested without a broker.

Bad input never raises out of `ingest`: a message that fails validation, a chunk that does not
continue its bed's stream, or a chunk that makes the beat pipeline fail becomes a dead letter
(and, for discontinuities and failures, a reset of that bed only).
"""

from __future__ import annotations

import bisect
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from monitor.alarms import AlarmEvent, AlarmSettings
from monitor.bed import BedPipeline, PendingBeat
from monitor.contract import BeatContract
from monitor.inputs import beat_inputs
from monitor.messages import (
    SAMPLES,
    AlertEvent,
    BeatEvent,
    BedCounters,
    DeadLetter,
    Vitals,
    WorkerStats,
)
from monitor.validate import Rejected, parse_chunk

log = logging.getLogger(__name__)

#: A bed silent this long (wall seconds) is dropped from memory: its no-data alarm has long
#: been raised, and a ward that admits and discharges patients must not grow without bound.
FORGET_AFTER_S = 3600.0
#: Beds one worker keeps. A new bed beyond it takes the place of the bed silent the longest when
#: that one has sent nothing for `EVICT_IDLE_S`; otherwise its chunks are dead-lettered
#: ("bed_limit"), so a flood of made-up bed ids can neither grow the worker without bound nor
#: push out a bed that is still sending.
MAX_BEDS = 1024
EVICT_IDLE_S = 60.0
#: Bytes of an unusable message kept in its dead letter, and characters of its reason: a dead
#: letter stays far below any broker's message limit whatever arrived.
DEAD_PAYLOAD_BYTES = 16_384
DEAD_REASON_CHARS = 1_000

#: Upper edges (ms) of the processing-latency histogram: 5 ms steps to 1 s, then 50 ms to 10 s.
LATENCY_EDGES_MS: tuple[float, ...] = tuple(
    [float(e) for e in range(5, 1001, 5)] + [float(e) for e in range(1050, 10001, 50)]
)


@dataclass(frozen=True)
class Source:
    """Where a raw message came from, for its dead letter."""

    topic: str
    partition: int
    offset: int
    #: Kafka timestamp of the message (epoch s): when the bedside monitor sent it.
    timestamp: float


class Classifier(Protocol):
    """What the ward needs of `monitor.classifier.BeatClassifier`."""

    classes: Sequence[str]
    version: str
    #: Names the inputs the model reads (`monitor.inputs` builds them from the beats).
    contract: BeatContract

    def predict(self, x: np.ndarray, context: np.ndarray) -> np.ndarray: ...


class Ward:
    """The beds of one worker, their counters, and the micro-batched classification."""

    def __init__(
        self,
        classifier: Classifier,
        *,
        max_batch: int = 256,
        alarm_settings: AlarmSettings | None = None,
        restore: Callable[[str], BedCounters | None] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch!r}")
        self.classifier = classifier
        self.max_batch = max_batch
        self.alarm_settings = alarm_settings
        self._restore = restore or (lambda bed: None)
        self.beds: dict[str, BedPipeline] = {}
        self._pending: list[PendingBeat] = []
        self._touched: dict[str, BedPipeline] = {}
        # Counters of this worker process (the per-bed ones persist in the table).
        self._started_mono = time.monotonic()  # uptime survives a wall-clock step
        self.chunks = 0
        self.samples = 0
        self.beats = 0
        self.rounds = 0
        self.forwards = 0
        self.deadletters: Counter[str] = Counter()
        self.evicted = 0
        self._closing: list[AlertEvent] = []
        self.latency_counts = [0] * (len(LATENCY_EDGES_MS) + 1)

    # --- a round ----------------------------------------------------------------------------

    def ingest(
        self, value: bytes | None, key: bytes | None, source: Source, wall_time: float
    ) -> DeadLetter | None:
        """Take one raw message; its beats wait for `classify`. Returns its dead letter, if any."""
        try:
            chunk = parse_chunk(value, key)
        except Rejected as exc:
            return self._dead(exc, value, source, wall_time, bed=None)
        except Exception as exc:  # a parser bug must cost this message only, never the round
            log.exception("unparseable message at offset %s", source.offset)
            problem = Rejected("malformed", f"{type(exc).__name__}: {exc}")
            return self._dead(problem, value, source, wall_time, bed=None)
        bed = self.beds.get(chunk.bed)
        if bed is None and len(self.beds) >= MAX_BEDS and not self._evict_one(wall_time):
            problem = Rejected(
                "bed_limit", f"{MAX_BEDS} beds are active on this worker; bed {chunk.bed!r} "
                f"waits until one has been silent for {EVICT_IDLE_S:g} s"
            )  # fmt: skip
            return self._dead(problem, value, source, wall_time, bed=None)
        try:
            if bed is None:
                saved = self._restore(chunk.bed)
                counters = None if saved is None else _copy(saved)
                bed = BedPipeline(chunk, self.alarm_settings, counters)
                self.beds[chunk.bed] = bed
                if saved is not None:
                    # The table knows this bed: a worker served it before (this one before a
                    # restart, or another before a rebalance) and may have left alarms open
                    # that no one will end. The reset alarm tells the dashboard they are over.
                    bed.restart("analysis resumed on another worker process", chunk)
            verdict, beats = bed.accept(chunk, wall_time, source.timestamp)
        except Exception as exc:  # a bug or a signal the cutter cannot take: this bed only
            log.exception("bed %s: chunk at %d failed", chunk.bed, chunk.start_index)
            if bed is not None:
                bed.restart(f"processing error ({type(exc).__name__})", chunk, skip=True)
                self._touched[chunk.bed] = bed
            problem = Rejected(
                "processing_error", f"{exc!r}; chunk skipped, {chunk.bed} pipeline reset"
            )
            return self._dead(problem, value, source, wall_time, bed=bed)
        self._touched[chunk.bed] = bed
        self._pending.extend(beats)
        if not verdict.drop:
            self.chunks += 1
            self.samples += len(chunk.samples)
        if verdict.rejected is not None:
            return self._dead(verdict.rejected, value, source, wall_time, bed=bed)
        return None

    def _evict_one(self, now: float) -> bool:
        """Drop the bed silent the longest if it has been silent for EVICT_IDLE_S."""
        name, bed = min(self.beds.items(), key=lambda item: item[1].last_wall or -math.inf)
        if bed.last_wall is not None and now - bed.last_wall < EVICT_IDLE_S:
            return False
        log.warning("bed %s: evicted after %.0f s of silence to make room for a new bed", name,
                    now - (bed.last_wall or now))  # fmt: skip
        self._closing += self._alerts(bed, bed.alarms.close_all(
            bed.pos.next_index, bed.newest_time, "bed evicted to make room for a new bed"
        ))  # fmt: skip
        del self.beds[name]
        self._touched.pop(name, None)
        self.evicted += 1
        return True

    def take_pending(self) -> list[PendingBeat]:
        """The round's beats, in arrival order; the ward forgets them."""
        pending, self._pending = self._pending, []
        return pending

    def classify(self, pending: Sequence[PendingBeat]) -> np.ndarray:
        """Class probabilities for `pending`, at most `max_batch` beats per forward pass.

        Safe to run in a worker thread: it reads only the beats handed to it.
        """
        n_classes = len(self.classifier.classes)
        if not pending:
            return np.zeros((0, n_classes), dtype=np.float32)
        x, context = beat_inputs(self.classifier.contract, [p.beat for p in pending])
        parts = []
        for i in range(0, len(pending), self.max_batch):
            part = slice(i, i + self.max_batch)
            parts.append(self.classifier.predict(x[part], context[part]))
            self.forwards += 1
        return np.concatenate(parts)

    def finish(
        self, pending: Sequence[PendingBeat], probs: np.ndarray, now: float | None = None
    ) -> tuple[list[BeatEvent], list[AlertEvent]]:
        """Label the round's beats, run every touched bed's alarms, and build the messages."""
        classes = self.classifier.classes
        for p, row in zip(pending, probs, strict=True):
            p.label = classes[int(np.argmax(row))]
            p.probs = {c: round(float(v), 6) for c, v in zip(classes, row, strict=True)}
        alerts, self._closing = self._closing, []  # episodes of beds evicted this round
        for bed in self._touched.values():
            alerts += self._alerts(bed, self._run_alarms(bed))
        self._touched = {}
        now = time.time() if now is None else now
        beats = [self._beat_event(p, now) for p in pending]
        self.beats += len(beats)
        self.rounds += 1
        for p in pending:
            self._record_latency(now - p.sent)
        return beats, alerts

    # --- once a second ----------------------------------------------------------------------

    def tick(self, now: float) -> tuple[list[AlertEvent], list[Vitals]]:
        """Wall-clock alarms (no data) and every bed's vitals; forget long-silent beds."""
        alerts: list[AlertEvent] = []
        vitals: list[Vitals] = []
        for name, bed in list(self.beds.items()):
            if bed.last_wall is not None and now - bed.last_wall > FORGET_AFTER_S and not bed.dirty:
                # Discharged or moved: its state would grow the worker forever. Its counters
                # are in the table; a bed that comes back starts a fresh pipeline from them.
                log.info("bed %s: no data for %.0f s, forgotten", name, now - bed.last_wall)
                alerts += self._alerts(bed, bed.alarms.close_all(
                    bed.pos.next_index, bed.newest_time, "bed forgotten after an hour without data"
                ))  # fmt: skip
                del self.beds[name]
        for bed in self.beds.values():
            alerts += self._alerts(bed, bed.alarms.tick(now))
            c = bed.counters
            hr = bed.alarms.hr
            vitals.append(
                Vitals(
                    bed=bed.bed,
                    record=bed.record,
                    time=bed.newest_time,
                    hr=None if hr is None else round(hr, 1),
                    counts=dict(c.counts),
                    pvc_per_min=bed.alarms.pvc_per_min,
                    sqi=round(bed.alarms.sqi, 3),
                    beats_total=c.beats,
                )
            )
        return alerts, vitals

    def stats(self, worker: str, now: float, rss_mb: float) -> WorkerStats:
        """What this worker has done since it started (`ecg.stats`)."""
        return WorkerStats(
            worker=worker,
            time=now,
            uptime_s=round(time.monotonic() - self._started_mono, 1),
            beds=len(self.beds),
            chunks=self.chunks,
            samples=self.samples,
            beats=self.beats,
            rounds=self.rounds,
            forwards=self.forwards,
            deadletters=dict(self.deadletters),
            latency_edges_ms=list(LATENCY_EDGES_MS),
            latency_counts=list(self.latency_counts),
            rss_mb=round(rss_mb, 1),
            beds_evicted=self.evicted,
        )

    def changed_counters(self) -> dict[str, BedCounters]:
        """Counters that moved since the last call: what the table must be told."""
        out = {}
        for name, bed in self.beds.items():
            if bed.dirty:
                bed.dirty = False
                out[name] = _copy(bed.counters)
        return out

    def latency_percentile(self, q: float) -> float | None:
        """Processing latency (ms, bucket upper edge) at quantile q in [0, 1], or None."""
        return percentile_from_histogram(LATENCY_EDGES_MS, self.latency_counts, q)

    # --- helpers ----------------------------------------------------------------------------

    def _run_alarms(self, bed: BedPipeline) -> list[AlarmEvent]:
        try:
            return bed.run_alarms()
        except Exception:  # an engine bug must not stop the other beds
            log.exception("bed %s: alarm engine failed; starting a fresh one", bed.bed)
            bed.alarms = type(bed.alarms)(bed.pos.fs, bed=bed.bed, settings=self.alarm_settings)
            return []

    def _alerts(self, bed: BedPipeline, events: list[AlarmEvent]) -> list[AlertEvent]:
        return [AlertEvent(bed=bed.bed, record=bed.record, **e.to_dict()) for e in events]

    def _beat_event(self, p: PendingBeat, now: float) -> BeatEvent:
        return BeatEvent(
            bed=p.bed,
            record=p.record,
            index=p.index,
            fs=p.fs,
            time=p.time,
            label=p.label,
            probs=p.probs,
            rr=round(p.beat.rr_prev, 4),
            hr=round(p.beat.heart_rate, 2),
            model_version=self.classifier.version,
            published=now,
        )

    def _dead(
        self,
        problem: Rejected,
        value: bytes | None,
        source: Source,
        now: float,
        bed: BedPipeline | None,
    ) -> DeadLetter:
        self.deadletters[problem.category] += 1
        if bed is not None:
            bed.counters.deadletters += 1
            bed.dirty = True
        return DeadLetter(
            reason=_cut(str(problem), DEAD_REASON_CHARS),
            payload=_payload(value or b""),
            source_topic=source.topic or SAMPLES,
            partition=source.partition,
            offset=source.offset,
            time=now,
        )

    def _record_latency(self, seconds: float) -> None:
        # bisect_left is np.searchsorted's default side, without turning the tuple into an
        # array at every beat.
        self.latency_counts[bisect.bisect_left(LATENCY_EDGES_MS, seconds * 1000.0)] += 1


def _cut(text: str, limit: int) -> str:
    """`text` up to `limit` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit} more characters cut]"


def _payload(value: bytes) -> str:
    """The first DEAD_PAYLOAD_BYTES of a message as text, saying how much was left out."""
    text = value[:DEAD_PAYLOAD_BYTES].decode("utf-8", errors="replace")
    if len(value) <= DEAD_PAYLOAD_BYTES:
        return text
    return f"{text}... [{len(value)} bytes in all, {len(value) - DEAD_PAYLOAD_BYTES} cut]"


def _copy(counters: BedCounters) -> BedCounters:
    """A copy that shares no dict with the original (the table keeps what it is given)."""
    return BedCounters.from_dict(counters.asdict())


def percentile_from_histogram(
    edges: Sequence[float], counts: Sequence[int], q: float
) -> float | None:
    """Upper edge of the bucket holding quantile q (inf for the open last bucket)."""
    total = sum(counts)
    if total == 0:
        return None
    need = q * total
    seen = 0
    for i, n in enumerate(counts):
        seen += n
        if seen >= need and n:
            return float(edges[i]) if i < len(edges) else float("inf")
    return float("inf")
