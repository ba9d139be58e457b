"""Streaming R-peak detection for one ECG lead, identical in any chunking.

The detector follows Hamilton's OSEA design (Hamilton & Tompkins 1986; Hamilton 2002): a QRS
energy signal, its peaks as beat candidates, and median-based adaptive thresholds with T-wave
rejection, search-back and re-learning after a long silence. The stages are separate so each
can be tested alone:

1. clean       `EnergyFilter`: band-pass, derivative, |.|, moving-window integration.
2. candidates  `local_maxima`: energy peaks, each the largest within +/- the refractory period,
               minus baseline shifts (`is_baseline_shift`).
3. decide      `Levels` and `QRSDetector`: threshold, T-wave check, search-back, re-learning.
4. fiducial    `fiducial`: the largest deflection of the lead just before the energy peak.

Chunk invariance rests on two rules: filters are sample-recursive with carried state (so their
output never depends on where a chunk ends), and each decision about sample t reads samples up
to t + a fixed look-ahead only and is taken in time order, as an event in one queue of
candidates, search-back deadlines and re-learning deadlines.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass

import numpy as np
from scipy import signal as sps

try:  # lfilter's own direct-form kernel, without its ~15 us of array-API dispatch per call
    from scipy.signal._sigtools import _linear_filter
except ImportError:  # a scipy that moved it: the public function gives the same numbers

    def _linear_filter(b, a, x, axis, zi):  # type: ignore[no-redef]
        return sps.lfilter(b, a, x, axis=axis, zi=zi)


#: Level buffers hold this many recent peaks or RR intervals (OSEA).
LEVEL_MEMORY = 8
#: Energy below this fraction of fs x |signal| is float rounding of a flat line, not a wave.
FLAT = 1e-9


class EnergyFilter:
    """Causal QRS energy: band-pass, 5-point derivative, |.|, moving-window integration.

    `process` returns, for each input sample, the absolute band-passed slope, the integrated
    energy and the plain derivative of the lead (for the baseline-shift check). Every
    stage runs through `lfilter`'s direct-form recursion, which is exact across chunk borders
    given the carried state; the derivative is folded into the second band-pass biquad. The
    integrator is an FIR written with denominator [1, 0] on purpose: for a one-element
    denominator scipy switches to a convolution whose rounding depends on the chunk length.
    The filters start from the steady state of the first sample, so a DC offset does not ring
    as a fake beat. The filters are called through lfilter's kernel (`_linear_filter`): a
    chunk is ~31 samples, where lfilter's argument handling cost more than the filtering.
    """

    def __init__(self, fs: float, band_hz: tuple[float, float], integration: int) -> None:
        sos = sps.butter(2, band_hz, btype="bandpass", fs=fs, output="sos")
        # Pan-Tompkins derivative, in signal units per second.
        deriv = np.array([2.0, 1.0, 0.0, -1.0, -2.0]) * (fs / 8.0)
        self._bandpass = [(sos[0, :3], sos[0, 3:]), (np.convolve(sos[1, :3], deriv), sos[1, 3:])]
        self._mwi = (np.full(integration, 1.0 / integration), np.array([1.0, 0.0]))
        self._deriv = (deriv, np.array([1.0, 0.0]))
        self._zi: list[np.ndarray] | None = None
        self._zi_mwi = np.zeros(max(1, integration - 1))
        self._zi_deriv = np.zeros(len(deriv) - 1)

    def process(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if len(x) == 0:
            return x, x, x
        if self._zi is None:
            self._zi = []
            level = x[0]
            for b, a in self._bandpass:
                self._zi.append(sps.lfilter_zi(b, a) * level)
                level *= b.sum() / a.sum()  # the stage's DC gain
            self._zi_deriv = sps.lfilter_zi(*self._deriv) * x[0]
        y = x
        for k, (b, a) in enumerate(self._bandpass):
            y, self._zi[k] = _linear_filter(b, a, y, -1, self._zi[k])
        slope = np.abs(y)
        energy, self._zi_mwi = _linear_filter(*self._mwi, slope, -1, self._zi_mwi)
        deriv, self._zi_deriv = _linear_filter(*self._deriv, x, -1, self._zi_deriv)
        return slope, energy, deriv


def running_max(f: np.ndarray, w: int) -> np.ndarray:
    """out[i] = max(f[i : i + w]) for the len(f) - w + 1 full windows (w >= 1).

    By doubling spans: about log2(w) vectorised maxima, exact, and without the per-call
    set-up of `scipy.ndimage.maximum_filter1d`, which dominated for the ~80 samples a
    streaming chunk scans.
    """
    m, span = f, 1
    while 2 * span <= w:
        m = np.maximum(m[:-span], m[span:])  # m[i] = max f[i : i + 2 * span]
        span *= 2
    n = len(f) - w + 1
    if span < w:  # two overlapping spans cover the window
        return np.maximum(m[:n], m[w - span : w - span + n])
    return m[:n]


def local_maxima(f: np.ndarray, half_width: int) -> np.ndarray:
    """Indices t in [half_width, len(f) - half_width) where f[t] is the first maximum of
    f[t - half_width : t + half_width + 1]: strictly above the left side, >= the right side.

    Two such peaks are more than `half_width` apart; a flat signal has none.
    """
    w = int(half_width)
    n = len(f) - 2 * w
    if w < 1 or n <= 0:
        return np.zeros(0, dtype=np.int64)
    run = running_max(f, w)  # run[i] = max f[i : i + w]
    mid = f[w : w + n]
    return np.flatnonzero((mid > run[:n]) & (mid >= run[w + 1 : w + 1 + n])) + w


def is_baseline_shift(deriv: np.ndarray, max_gap: int) -> bool:
    """OSEA's baseline-shift check: a QRS has a steep upstroke and a steep downstroke (each at
    least 1/8 of the other) less than `max_gap` samples apart; a step or drift does not."""
    i_up, i_down = int(np.argmax(deriv)), int(np.argmin(deriv))
    up, down = float(deriv[i_up]), -float(deriv[i_down])
    return not (up > down / 8 and down > up / 8 and abs(i_up - i_down) < max_gap)


def fiducial(x: np.ndarray, lo: int, hi: int, baseline: np.ndarray) -> int:
    """Index in [lo, hi) of the largest deflection of x from the median of `baseline`."""
    # statistics.median on ~70 floats: np.median's value at a third of its set-up cost.
    seg = x[lo:hi] - statistics.median(baseline.tolist())
    return lo + int(np.argmax(np.abs(seg)))


class Levels:
    """Adaptive QRS and noise levels (OSEA): medians of recent peak heights, and the RR mean.

    The detection threshold sits `fraction` of the way from the noise level to the QRS level,
    but never above `ceiling` x the QRS level: when missed ectopic beats are filed as noise, the
    noise median would otherwise climb towards the QRS level and hide the next ones too.
    """

    def __init__(self, fraction: float, ceiling: float) -> None:
        self._fraction = fraction
        self._ceiling = ceiling
        self.qrs: deque[float] = deque(maxlen=LEVEL_MEMORY)
        self.noise: deque[float] = deque(maxlen=LEVEL_MEMORY)
        self.rr: deque[int] = deque(maxlen=LEVEL_MEMORY)
        self.threshold = 0.0

    def reset(self, qrs_peaks: list[float], rr: int) -> None:
        """Start over from these QRS peak heights, no noise and a regular rhythm `rr`."""
        self.qrs.clear()
        self.qrs.extend(qrs_peaks)
        self.noise.clear()
        self.noise.extend([0.0] * LEVEL_MEMORY)
        self.rr.clear()
        self.rr.extend([rr] * LEVEL_MEMORY)
        self._update()

    def add_qrs(self, height: float, rr: int | None) -> None:
        self.qrs.append(height)
        if rr is not None:
            self.rr.append(rr)
        self._update()

    def add_noise(self, height: float) -> None:
        self.noise.append(height)
        self._update()

    @property
    def rr_mean(self) -> float:
        return sum(self.rr) / len(self.rr)

    def _update(self) -> None:
        q = statistics.median(self.qrs)
        n = statistics.median(self.noise)
        self.threshold = min(n + self._fraction * (q - n), self._ceiling * q)


@dataclass(frozen=True)
class _Candidate:
    t: int  # energy peak, absolute sample index
    height: float
    slope: float  # steepest |derivative| of the complex, for the T-wave check


class _History:
    """The recent lead, slope and energy, addressed by absolute sample index.

    The four series are rows of one preallocated array, so appending a ~31-sample chunk is a
    copy into free space rather than four concatenations of the whole history; dropping old
    samples (every few seconds) moves the rest to the front.
    """

    def __init__(self) -> None:
        self.start = 0
        self._data = np.zeros((4, 1024))
        self._len = 0

    @property
    def end(self) -> int:
        return self.start + self._len

    @property
    def x(self) -> np.ndarray:
        return self._data[0, : self._len]

    @property
    def slope(self) -> np.ndarray:
        return self._data[1, : self._len]

    @property
    def energy(self) -> np.ndarray:
        return self._data[2, : self._len]

    @property
    def deriv(self) -> np.ndarray:
        return self._data[3, : self._len]

    def append(
        self, x: np.ndarray, slope: np.ndarray, energy: np.ndarray, deriv: np.ndarray
    ) -> None:
        end = self._len + len(x)
        if end > self._data.shape[1]:
            grown = np.zeros((4, max(2 * self._data.shape[1], end)))
            grown[:, : self._len] = self._data[:, : self._len]
            self._data = grown
        rows = self._data[:, self._len : end]
        rows[0], rows[1], rows[2], rows[3] = x, slope, energy, deriv
        self._len = end

    def drop_before(self, index: int) -> None:
        cut = index - self.start
        if cut > 0:
            kept = self._len - cut
            self._data[:, :kept] = self._data[:, cut : self._len].copy()
            self._len = kept
            self.start = index


def _positive(name: str, value: float) -> float:
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def _fraction(name: str, value: float) -> float:
    if not np.isfinite(value) or not 0 < value <= 1:
        raise ValueError(f"{name} must be in (0, 1], got {value!r}")
    return float(value)


class QRSDetector:
    """Stateful R-peak detector: `feed(x)` returns the R-peaks confirmed so far.

    Indices are absolute sample positions in the fed stream, strictly increasing across calls.
    A beat is confirmed `lookahead_s` after its energy peak (about 0.3 s after the R-peak);
    beats found by search-back come later, once 1.5 mean RR (`searchback_rr`) have passed
    without a beat, or `searchback_max_s` if that is sooner: a bigeminy whose small conducted
    beats fall below the threshold looks, by its PVCs alone, like a regular rhythm at half the
    rate, which the mean RR would then believe. The default is the extreme-bradycardia limit
    (40 bpm); on DS1 it finds 14 of 110 missed beats for 2 extra detections. The
    first `learn_s` of a stream are buffered to learn the signal's levels, so the first beats
    come out after that. Settings are in seconds or Hz, converted to samples once here.
    """

    def __init__(
        self,
        fs: float = 125.0,
        *,
        band_hz: tuple[float, float] = (5.0, 15.0),
        integration_s: float = 0.08,
        refractory_s: float = 0.2,
        twave_s: float = 0.36,
        threshold: float = 0.3125,
        ceiling: float = 0.5,
        searchback_rr: float = 1.5,
        searchback_max_s: float = 1.5,
        learn_s: float = 4.0,
        relearn_s: float = 8.0,
    ) -> None:
        self.fs = _positive("fs", fs)
        if len(band_hz) != 2 or not 0 < band_hz[0] < band_hz[1] < self.fs / 2:
            raise ValueError(
                f"band_hz must be (low, high) with 0 < low < high < fs/2, got {band_hz!r}"
            )
        integration = max(1, round(_positive("integration_s", integration_s) * self.fs))
        self._refractory = max(1, round(_positive("refractory_s", refractory_s) * self.fs))
        self._twave = round(_positive("twave_s", twave_s) * self.fs)
        self._searchback = _positive("searchback_rr", searchback_rr)
        self._searchback_max = round(_positive("searchback_max_s", searchback_max_s) * self.fs)
        self._learn = max(1, round(_positive("learn_s", learn_s) * self.fs))
        self._relearn = max(1, round(_positive("relearn_s", relearn_s) * self.fs))
        self._second = max(1, round(self.fs))
        self._filter = EnergyFilter(self.fs, band_hz, integration)
        self._levels = Levels(_fraction("threshold", threshold), _fraction("ceiling", ceiling))
        # The complex lies before its energy peak: the integration window plus filter delay.
        self._qrs_span = integration + round(0.06 * self.fs)
        self._baseline = round(0.25 * self.fs)
        # OSEA's baseline-shift check window (220 ms before the energy peak) and pair gap.
        self._bls_span = round(0.22 * self.fs)
        self._bls_gap = round(0.15 * self.fs)
        self._lookahead = self._refractory  # a candidate needs this much signal after it
        self._history = _History()
        self._n = 0  # samples consumed
        self._scanned = 0  # energy before this index has been searched for candidates
        self._candidates: deque[_Candidate] = deque()
        self._rejected: list[_Candidate] = []  # since the last beat, for search-back
        self._learned = False
        self._last: _Candidate | None = None  # the last beat's energy peak
        self._last_r = -1  # the last beat's fiducial
        self._quiet_since = 0  # last beat or (re-)learning, for the re-learning deadline

    @property
    def lookahead_s(self) -> float:
        """Seconds of signal after an energy peak needed to confirm it as a beat."""
        return self._lookahead / self.fs

    @property
    def watermark(self) -> int:
        """No R-peak returned from now on lies before this sample index.

        Callers that keep the signal to cut beats at returned peaks may drop samples before it;
        it trails the stream by the learning period at first and by up to a search-back
        interval later.
        """
        oldest = [self._scanned]  # candidates still to be found lie at or after this
        if self._candidates:
            oldest.append(self._candidates[0].t)
        if self._rejected:
            oldest.append(self._rejected[0].t)
        return max(self._last_r + 1, min(oldest) - self._qrs_span)

    def feed(self, x: np.ndarray) -> list[int]:
        """Consume a chunk of the lead (any units); return newly confirmed R-peaks."""
        x = np.asarray(x, dtype=np.float64).ravel()
        if not np.isfinite(x).all():
            raise ValueError("x contains NaN or infinite values")
        if len(x) == 0:
            return []
        self._history.append(x, *self._filter.process(x))
        self._n += len(x)
        self._find_candidates()
        return self._decide_until(self._n - 1 - self._lookahead, final=False)

    def flush(self) -> list[int]:
        """End of stream: decide the remaining candidates with the samples there are."""
        return self._decide_until(self._n - 1, final=True)

    # -- candidates ----------------------------------------------------------------------------

    def _find_candidates(self) -> None:
        h, w = self._history, self._refractory
        lo = max(self._scanned - w, h.start)
        for i in local_maxima(h.energy[lo - h.start :], w):
            t = lo + int(i)
            if t >= self._scanned:
                self._add_candidate(t)
        self._scanned = max(self._scanned, self._n - w)

    def _add_candidate(self, t: int) -> None:
        """Keep the energy peak at t unless it is float noise of a flat line or a baseline
        shift (neither counts as noise either, as in OSEA)."""
        h = self._history
        span = slice(max(t - self._qrs_span, h.start) - h.start, t + 1 - h.start)
        energy = float(h.energy[t - h.start])
        if energy <= FLAT * self.fs * float(np.abs(h.x[span]).max()):
            return
        if is_baseline_shift(
            h.deriv[max(t - self._bls_span, h.start) - h.start : span.stop], self._bls_gap
        ):
            return
        self._candidates.append(_Candidate(t, energy, float(h.slope[span].max())))

    # -- decisions -----------------------------------------------------------------------------

    def _decide_until(self, limit: int, final: bool) -> list[int]:
        """Take every decision due at or before sample `limit`, in time order."""
        if not self._learned:
            if self._n < self._learn and not final:
                return []
            self._learn_levels(0, min(self._learn, self._n))
        beats: list[int] = []
        while True:
            # Deadlines strictly before the next candidate go first; all must be <= limit.
            t_next = self._candidates[0].t if self._candidates else limit + 1
            searchback = self._searchback_due()
            relearn = self._quiet_since + self._relearn
            if searchback is not None and searchback < t_next and searchback <= limit:
                beats += self._search_back()
            elif relearn < t_next and relearn <= limit:
                self._learn_levels(relearn - self._relearn, relearn)
            elif t_next <= limit:
                beats += self._classify(self._candidates.popleft())
            else:
                break
        self._trim()
        return beats

    def _learn_levels(self, start: int, end: int) -> None:
        """(Re)start the levels from the energy maximum of each second in [start, end) (OSEA:
        at the start of a stream, and after `relearn_s` without a beat, so that a level
        learned from an artefact cannot silence the detector for good)."""
        h = self._history
        energy = h.energy[max(start, h.start) - h.start : end - h.start]
        peaks = [
            float(energy[i : i + self._second].max()) for i in range(0, len(energy), self._second)
        ]
        self._levels.reset(peaks or [0.0], rr=self._second)
        self._rejected = []
        self._learned = True
        self._quiet_since = end

    def _searchback_due(self) -> int | None:
        """When to look back for a missed beat: 1.5 mean RR after the last one, plus the
        compensatory pause a premature last beat implies, and never later than
        `searchback_max_s`."""
        if self._last is None or not self._rejected:
            return None
        rr = self._levels.rr_mean
        pause = max(0.0, rr - self._levels.rr[-1])
        return self._last.t + min(round(self._searchback * rr + pause), self._searchback_max)

    def _search_back(self) -> list[int]:
        """Accept the largest rejected peak since the last beat if it reaches half the
        threshold; only peaks past the T-wave window qualify."""
        assert self._last is not None
        since = self._last.t
        eligible = [c for c in self._rejected if c.t - since >= self._twave]
        self._rejected = []
        best = max(eligible, key=lambda c: c.height, default=None)
        if best is None or best.height < self._levels.threshold / 2:
            return []
        return self._accept(best)

    def _classify(self, c: _Candidate) -> list[int]:
        if c.height >= self._levels.threshold and not self._is_twave(c):
            return self._accept(c)
        self._levels.add_noise(c.height)
        self._rejected.append(c)
        return []

    def _is_twave(self, c: _Candidate) -> bool:
        """Soon after a beat, a peak with less than half its slope is its T wave."""
        last = self._last
        return last is not None and c.t - last.t < self._twave and c.slope < 0.5 * last.slope

    def _accept(self, c: _Candidate) -> list[int]:
        self._levels.add_qrs(c.height, None if self._last is None else c.t - self._last.t)
        self._last = c
        self._rejected = []
        self._quiet_since = c.t
        r = self._locate(c.t)
        self._last_r = r
        return [r]

    def _locate(self, t: int) -> int:
        """The R-peak of the complex whose energy peaks at t, after the previous R-peak."""
        h = self._history
        lo = max(t - self._qrs_span, self._last_r + 1, h.start)
        hi = max(lo + 1, t + 1)
        base_lo = max(lo - self._baseline, h.start)
        base_hi = min(t + 1 + self._lookahead, self._n)  # never past the look-ahead
        baseline = h.x[base_lo - h.start : base_hi - h.start]
        return h.start + fiducial(h.x, lo - h.start, hi - h.start, baseline)

    def _trim(self) -> None:
        """Keep what re-learning, search-back and undecided candidates may still read."""
        keep = self._n - max(self._learn, self._relearn) - self._second
        if self._rejected:
            keep = min(keep, self._rejected[0].t - self._qrs_span - self._baseline)
        if keep - self._history.start > 4 * self._second:  # trim in batches, not every call
            self._history.drop_before(keep)


def detect_qrs(x: np.ndarray, fs: float = 125.0) -> np.ndarray:
    """R-peak indices of a whole recording: the same peaks a stream of it would produce."""
    detector = QRSDetector(fs)
    return np.asarray(detector.feed(x) + detector.flush(), dtype=np.int64)
