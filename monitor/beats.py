"""Per-bed beat extraction: samples in, model-ready beats with their patient context out.

`BeatExtractor` chains the streaming steps (resample to 125 Hz -> QRS detection -> RR bookkeeping
-> Kachuee-style cut and scaling -> patient context) and is the only way beats are cut, for
training, serving and offline tools alike. Every step is stateful and chunk-invariant, so a
record fed whole or in chunks of any size yields identical beats at identical positions.
"""

from __future__ import annotations

import itertools
import statistics
from collections import deque
from dataclasses import dataclass

import numpy as np

from monitor import contract
from monitor.context import ABSENT, EXTENDED_LEN, MAX_SEQUENCE, BeatContext, PatientContext
from monitor.signal.detect import QRSDetector
from monitor.signal.resample import StreamResampler
from monitor.signal.rhythm import entropy, trimmed, turning_point_ratio

#: Samples of the extended morphology window before / after the R-peak.
_EXT_PRE = contract.MORPH_R + contract.ALIGN_SAMPLES
_EXT_POST = EXTENDED_LEN - _EXT_PRE


@dataclass(frozen=True)
class Beat:
    """One detected beat, cut and scaled as the model expects it, with its patient context."""

    #: R-peak position in samples of the source stream (its own sampling rate).
    index: int
    #: R-peak position at 125 Hz.
    index_125: int
    #: 187 samples in [0, 1], float32.
    waveform: np.ndarray
    #: Seconds from the previous R-peak, to the next, the median of the last 8 RR and the mean
    #: RR of the trailing 5 minutes.
    rr_prev: float
    rr_next: float
    rr_local: float
    rr_long: float
    #: The bed's context for this beat (`monitor.context`), learned from the beats before it.
    context: BeatContext
    #: Context features of the beats before this one, newest first (`contract.FEATURES` rows,
    #: `MAX_SEQUENCE` of them; absent where the stream has fewer beats).
    previous: np.ndarray

    @property
    def heart_rate(self) -> float:
        """Instantaneous heart rate (bpm) from the preceding RR interval."""
        return 60.0 / self.rr_prev


def cut_beat(x125: np.ndarray, start: int, rr_local_s: float) -> np.ndarray:
    """Kachuee et al. 2018: from the R-peak, 1.2 x median RR, min-max to [0, 1], zero-padded.

    `x125[start:]` must hold at least `window_length(rr_local_s)` samples.
    """
    n = window_length(rr_local_s)
    seg = np.asarray(x125[start : start + n], dtype=np.float64)
    out = np.zeros(contract.BEAT_LEN, dtype=np.float32)
    lo, hi = seg.min(), seg.max()
    if hi - lo > 1e-9:
        out[: len(seg)] = (seg - lo) / (hi - lo)
    return out


def extended_window(x125: np.ndarray, index_125: int) -> np.ndarray:
    """The extended morphology window (`EXTENDED_LEN` samples) of the beat whose R-peak is at
    `index_125` of the 125 Hz samples `x125`: what `PatientContext.describe` takes. The first
    and last samples repeat where the window reaches past either end (a stream's first beats,
    its flush)."""
    start = index_125 - _EXT_PRE
    return x125[np.clip(np.arange(start, start + EXTENDED_LEN), 0, len(x125) - 1)]


def window_length(rr_local_s: float) -> int:
    """Samples at 125 Hz in the 1.2 x RR window, capped at the beat length."""
    return int(min(contract.BEAT_LEN, max(1, round(contract.WINDOW_RR * rr_local_s * contract.FS))))


def rr_irregularity(rr: deque[float], local: float) -> float:
    """Median successive RR change over the local median: high in atrial fibrillation, low in a
    steady rhythm with occasional premature beats. The smaller of lag 1 and lag 2, so the
    short-long pairs of bigeminy count as the steady pattern they are."""
    r = list(rr)
    if len(r) < 3:
        return 0.0
    lag1 = statistics.median(abs(b - a) for a, b in itertools.pairwise(r))
    lag2 = statistics.median(abs(r[i + 2] - r[i]) for i in range(len(r) - 2))
    return min(lag1, lag2) / local


def af_evidence(rr: deque[float]) -> tuple[float, float]:
    """(RR histogram entropy, turning-point share) of the recent RR, each 0 before there are
    8 intervals: atrial fibrillation has both near their random values (a flat histogram, 2/3),
    where frequent premature beats, even a majority of them, give a few peaks and a pattern."""
    if len(rr) < 8:
        return 0.0, 0.0
    x = trimmed(rr)
    return entropy(x), turning_point_ratio(x)


@dataclass
class _Pending:
    index_125: int
    rr_prev: float
    rr_local: float
    rr_long: float
    rr_irregularity: float
    af: tuple[float, float]
    rr_next: float | None = None
    waveform: np.ndarray | None = None
    extended: np.ndarray | None = None


class BeatExtractor:
    """Stateful beat cutter for one bed: `feed(samples)` -> beats completed so far.

    A beat is complete once the next R-peak is known (for its next-RR feature) and its window
    has arrived, so beats come out about one RR after their R-peak. The first R-peak of a stream
    only anchors the rhythm (it has no previous RR) and the last one, at `flush()`, has no next;
    neither is returned. The patient context starts afresh with the extractor: a new segment
    (a new patient, a gap) learns the rhythm and the dominant beat again.
    """

    def __init__(self, fs: float) -> None:
        if not np.isfinite(fs) or fs < contract.MIN_SOURCE_FS:
            raise ValueError(
                f"fs must be at least {contract.MIN_SOURCE_FS:g} Hz (QRS energy reaches 40 Hz), "
                f"got {fs!r}"
            )
        self.fs = float(fs)
        self._resampler = StreamResampler(self.fs, contract.FS)
        self._detector = QRSDetector(contract.FS)
        self._buf = np.zeros(0)  # 125 Hz samples from absolute index self._buf_start
        self._buf_start = 0
        self._last_peak: int | None = None
        self._rr = deque(maxlen=contract.LOCAL_RR_BEATS)  # recent RR intervals, seconds
        self._rr_af = deque(maxlen=contract.AF_RR_BEATS)
        self._pending: list[_Pending] = []
        self._context = PatientContext()
        self._previous = np.tile(ABSENT, (MAX_SEQUENCE, 1))

    @property
    def samples_in(self) -> int:
        """Source samples consumed so far."""
        return self._resampler.n_in

    def feed(self, samples: np.ndarray) -> list[Beat]:
        """Consume a chunk of the lead (mV, source rate); return the beats it completed."""
        x = np.asarray(samples, dtype=np.float64).ravel()
        if not np.isfinite(x).all():
            raise ValueError("samples contain NaN or infinite values")
        return self._advance(self._resampler.feed(x), final=False)

    def flush(self) -> list[Beat]:
        """End of stream: return the beats that can still be completed."""
        return self._advance(self._resampler.flush(), final=True)

    def _advance(self, x125: np.ndarray, final: bool) -> list[Beat]:
        self._buf = np.concatenate([self._buf, x125])
        peaks = self._detector.feed(x125)
        if final:
            peaks = peaks + self._detector.flush()
        for r in peaks:
            self._on_peak(int(r))
        self._cut_windows(final)
        beats = self._complete()
        self._trim()
        return beats

    def _on_peak(self, r: int) -> None:
        if self._last_peak is not None:
            rr = (r - self._last_peak) / contract.FS
            if self._pending:
                self._pending[-1].rr_next = rr
            self._rr.append(rr)
            self._rr_af.append(rr)
            rr_long = self._context.long_rr.add(r / contract.FS, rr)
            # statistics.median: the same value as np.median, without its ~10 us of set-up.
            local = statistics.median(self._rr)
            irregular = rr_irregularity(self._rr, local)
            self._pending.append(
                _Pending(r, rr, local, rr_long, irregular, af_evidence(self._rr_af))
            )
        self._last_peak = r

    def _cut_windows(self, final: bool) -> None:
        end = self._buf_start + len(self._buf)
        for p in self._pending:
            if p.waveform is None and p.index_125 + window_length(p.rr_local) <= end:
                p.waveform = cut_beat(self._buf, p.index_125 - self._buf_start, p.rr_local)
            if p.extended is None and (final or p.index_125 + _EXT_POST <= end):
                p.extended = extended_window(self._buf, p.index_125 - self._buf_start)

    def _complete(self) -> list[Beat]:
        done: list[Beat] = []
        while self._pending:
            p = self._pending[0]
            if p.waveform is None or p.rr_next is None or p.extended is None:
                break
            self._pending.pop(0)
            context = self._context.describe(
                p.extended, p.rr_prev, p.rr_next, p.rr_local, p.rr_long, p.rr_irregularity, p.af
            )
            done.append(
                Beat(
                    index=round(p.index_125 * self.fs / contract.FS),
                    index_125=p.index_125,
                    waveform=p.waveform,
                    rr_prev=p.rr_prev,
                    rr_next=p.rr_next,
                    rr_local=p.rr_local,
                    rr_long=p.rr_long,
                    context=context,
                    previous=self._previous,
                )
            )
            self._previous = np.vstack([context.features[None], self._previous[:-1]])
        return done

    def _trim(self) -> None:
        """Keep only what an uncut window or the detector's look-back may still need."""
        end = self._buf_start + len(self._buf)
        keep_from = end - contract.BEAT_LEN
        for p in self._pending:
            if p.waveform is None:
                keep_from = min(keep_from, p.index_125)
            if p.extended is None:
                keep_from = min(keep_from, p.index_125 - _EXT_PRE)
        if self._last_peak is not None:
            keep_from = min(keep_from, self._last_peak - _EXT_PRE)
        keep_from = min(keep_from, self._detector.watermark - _EXT_PRE)
        keep_from = max(keep_from, self._buf_start)
        self._buf = self._buf[keep_from - self._buf_start :]
        self._buf_start = keep_from


def extract_beats(signal_mv: np.ndarray, fs: float) -> list[Beat]:
    """One call over a whole recording: the same beats a stream of it would produce."""
    extractor = BeatExtractor(fs)
    return extractor.feed(signal_mv) + extractor.flush()
