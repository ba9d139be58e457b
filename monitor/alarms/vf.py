"""Ventricular fibrillation / flutter (VF) detection on the raw lead, without QRS detection.

Why a separate detector: in VF there are no beats to detect. The QRS detector either stops
(looking like asystole) or fires on random deflections, so a VF alarm built on beats is late or
wrong exactly when it matters. The features below are computed on the signal itself.

Design choices:

* One analysis rate. The lead is low-passed (causal Butterworth, state carried with `zi`) and
  linearly interpolated at fixed absolute times k / ANALYSIS_FS, so every feature and threshold
  means the same thing at 100 Hz or 10 kHz, rates need no rational ratio (9999 Hz works), and
  the cost of the features does not grow with the source rate. The interpolation grid and the
  evaluation points are absolute, so any chunking gives bit-identical readings.
* Windowed features from the shock-advisory literature, chosen to be cheap (one FFT, a few
  vector passes over a few hundred samples) and to look at different properties: VF-filter
  leakage (Kuo & Dillman 1978: how far the signal is from a sinusoid at its own mean
  frequency), TCSC (Arafat et al. 2009: the fraction of time the normalised signal spends away
  from baseline; sinus rhythm is mostly flat baseline between narrow QRS complexes), the
  spectral concentration around the dominant frequency and the fraction of power above 12 Hz
  (after Barro et al. 1989: VF is narrow-band at 3-8 Hz, QRS complexes and muscle noise are
  broadband), the kurtosis (narrow QRS spikes on a resting baseline vs a sinusoid), the
  phase-space fill (Amann et al. 2007), the mean-absolute-value measure (Anas et al. 2010) and
  the zero-crossing rate. The last four were added because paced rhythms (MIT-BIH 107, 217:
  wide, regular complexes) were most of the false alarms of the first four. Complexity
  measures (Zhang et al. 1999) need a per-sample Python loop, which the per-bed budget does
  not allow.
* A logistic regression on those features rather than a hand-made rule: a handful of
  coefficients, fitted on CUDB and MIT-BIH with leave-one-record-out cross-validation to report
  honest figures (`python benchmarks/vf_detector.py --fit`). No per-record tuning.
* An amplitude floor: a flat line, leads off, asystole or fine VF below it is never called
  shockable (the shock-advisory standards ask for coarse VF, >= 200 uV, only), whatever its
  normalised shape; the features themselves are amplitude-free, so they cannot do this.
* One reading per second: the alarm confirms over consecutive readings anyway, and the window
  (published range 4-8 s) dominates the delay, not the step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
from scipy import signal as sps

#: Rate the features are computed at (Hz): the lowest source rate accepted, VF lives below 10 Hz.
ANALYSIS_FS = 100.0
MIN_FS = 100.0
MAX_FS = 10_000.0
#: Anti-aliasing low-pass before interpolation, and the baseline high-pass at ANALYSIS_FS.
LOWPASS_HZ = 30.0
HIGHPASS_HZ = 1.0
#: Feature names, in the order of FEATURE_MEAN / FEATURE_SCALE / COEFFICIENTS.
FEATURES: tuple[str, ...] = ("leak", "tcsc", "conc", "hf", "log_kurtosis", "psr", "mav", "zc_hz")
#: Phase-space reconstruction (Amann et al. 2007): delay and grid size.
PSR_DELAY_S = 0.5
PSR_GRID = 40
#: Segment of the mean-absolute-value measure (Anas et al. 2010).
MAV_SEGMENT_S = 2.0

# Decision constants: a logistic regression on the standardised features,
#   score = INTERCEPT + COEFFICIENTS @ ((features - FEATURE_MEAN) / FEATURE_SCALE),
# shockable when score >= VFSettings.score_threshold and the amplitude floor is met.
# Derived by `python benchmarks/vf_detector.py --fit` (re-run it to re-derive them; it prints
# these lines): weighted L2 (1e-2) logistic regression on every 8 s window of CUDB (inside
# `[`..`]` vs wholly outside) and of the MIT-BIH DS1 records (207's `(VFL` vs everything
# outside VFL and VT; DS2 is never fitted on), the two classes weighted equally and the
# non-shockable weight split equally between the databases. The same script's
# leave-one-record-out run gives the honest figures.
# The threshold (1.0, not 0) trades VF sensitivity for false alarms on MIT-BIH.
FEATURE_MEAN = np.array(
    [0.600583, 0.400268, 0.520589, 0.101387, 1.64055, 0.189648, 0.252998, 4.23588]
)
FEATURE_SCALE = np.array(
    [0.191689, 0.204844, 0.268469, 0.131001, 0.762701, 0.085105, 0.104639, 1.31963]
)
COEFFICIENTS = np.array(
    [-0.54553, 0.549248, 0.867152, -0.677239, 1.30559, 1.13698, 0.971698, 0.618267]
)
INTERCEPT = 0.0370912


@dataclass(frozen=True)
class VFSettings:
    """VF detector parameters, in seconds, hertz and millivolts."""

    #: Analysis window (published detectors use 4-8 s).
    window_s: float = 8.0
    #: Seconds between readings.
    step_s: float = 1.0
    #: Segment length and edge taper of the threshold-crossing sample count (Arafat: 3 s).
    tcsc_segment_s: float = 3.0
    tcsc_taper_s: float = 0.25
    #: Threshold of TCSC, relative to the segment's largest absolute value (Arafat: 0.2).
    tcsc_level: float = 0.2
    #: Dominant-frequency search band (Hz) and the band around it that counts as concentrated
    #: (fractions of the dominant frequency).
    min_freq_hz: float = 1.0
    max_freq_hz: float = 10.0
    conc_low: float = 0.7
    conc_high: float = 1.4
    #: Power above this frequency is "high-frequency" (QRS edges, muscle noise).
    hf_hz: float = 12.0
    #: Robust peak-to-peak amplitude (2nd-98th percentile of the filtered window) below which a
    #: window is never shockable: flat line, asystole, fine VF.
    amplitude_floor_mv: float = 0.2
    #: Decision threshold on the logistic score (log-odds; 0 is even odds).
    score_threshold: float = 1.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
            ):
                raise ValueError(f"{f.name} must be a finite number, got {value!r}")
            if f.name != "score_threshold" and value <= 0:
                raise ValueError(f"{f.name} must be > 0, got {value!r}")
        if not 3.0 <= self.window_s <= 16.0:
            raise ValueError(f"window_s must be within 3-16 s, got {self.window_s!r}")
        if self.step_s > self.window_s:
            raise ValueError(f"step_s must not exceed window_s, got {self.step_s!r}")
        if round(self.step_s * ANALYSIS_FS) < 1:
            raise ValueError(f"step_s must be at least {1 / ANALYSIS_FS} s, got {self.step_s!r}")
        if self.tcsc_segment_s > self.window_s:
            raise ValueError(
                f"tcsc_segment_s must not exceed window_s, got {self.tcsc_segment_s!r}"
            )
        if 2 * self.tcsc_taper_s >= self.tcsc_segment_s:
            raise ValueError(
                f"tcsc_taper_s must be under half of tcsc_segment_s, got {self.tcsc_taper_s!r}"
            )
        if self.tcsc_level >= 1:
            raise ValueError(f"tcsc_level must be < 1, got {self.tcsc_level!r}")
        if self.max_freq_hz <= self.min_freq_hz or self.max_freq_hz >= ANALYSIS_FS / 2:
            raise ValueError(
                f"max_freq_hz must lie between min_freq_hz and {ANALYSIS_FS / 2:g} Hz, "
                f"got {self.max_freq_hz!r}"
            )
        if not self.conc_low < 1 < self.conc_high:
            raise ValueError(
                f"conc_low must be < 1 < conc_high, got conc_low={self.conc_low!r}, "
                f"conc_high={self.conc_high!r}"
            )
        if self.hf_hz >= ANALYSIS_FS / 2:
            raise ValueError(f"hf_hz must be below {ANALYSIS_FS / 2:g} Hz, got {self.hf_hz!r}")


@dataclass(frozen=True)
class VFReading:
    """VF analysis of the window ending at `index` (absolute source sample, exclusive end)."""

    index: int
    #: Shockable rhythm (VF or ventricular flutter) in this window.
    shockable: bool
    #: Logistic decision value (log-odds of shockable); shockable needs score >= threshold.
    score: float
    #: Robust peak-to-peak amplitude of the filtered window, mV.
    amplitude_mv: float
    #: VF-filter leakage (Kuo & Dillman): ~0.3-0.6 in VF, ~0.8-1.2 in sinus rhythm.
    leak: float
    #: Threshold-crossing sample fraction (Arafat), 0..1: high in VF, low in sinus rhythm.
    tcsc: float
    #: Power within [conc_low, conc_high] x the dominant frequency over power 1-30 Hz, 0..1.
    conc: float
    #: Power above hf_hz over power 1-30 Hz, 0..1.
    hf: float
    #: Dominant frequency, Hz.
    freq: float
    #: log of the kurtosis: peaked (QRS complexes on a flat baseline) vs sinusoid-like (VF).
    log_kurtosis: float
    #: Phase-space fill (Amann): fraction of a 40 x 40 grid of (x(t), x(t - 0.5 s)) visited.
    psr: float
    #: Mean of |x| / max |x| over 2 s segments (Anas): high when the signal is never at rest.
    mav: float
    #: Zero crossings per second / 2 (a mean frequency), Hz.
    zc_hz: float

    def features(self) -> np.ndarray:
        """The decision inputs, in the order of FEATURES."""
        return np.array([getattr(self, name) for name in FEATURES])


def _check_fs(fs: float) -> float:
    if isinstance(fs, bool) or not isinstance(fs, (int, float, np.integer, np.floating)):
        raise ValueError(f"fs must be a number of Hz, got {fs!r}")
    fs = float(fs)
    if not math.isfinite(fs) or not MIN_FS <= fs <= MAX_FS:
        raise ValueError(f"fs must be within {MIN_FS:g}-{MAX_FS:g} Hz, got {fs!r}")
    return fs


def _check_samples(x_mv: np.ndarray) -> np.ndarray:
    x = np.asarray(x_mv, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"x_mv must be one-dimensional, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x_mv contains NaN or infinite values")
    return x


class VFDetector:
    """Streaming VF detector of one lead; `feed` returns one reading per `step_s` of signal."""

    def __init__(self, fs: float, settings: VFSettings | None = None) -> None:
        self.fs = _check_fs(fs)
        self.settings = settings if settings is not None else VFSettings()
        if not isinstance(self.settings, VFSettings):
            raise ValueError(f"settings must be a VFSettings, got {type(settings).__name__}")
        s = self.settings
        fa = ANALYSIS_FS
        # Below the low-pass corner's reach (fs near 100 Hz) the corner moves down with fs.
        corner = min(LOWPASS_HZ, 0.4 * self.fs)
        self._lp = sps.butter(4, corner, fs=self.fs, output="sos")
        self._hp = sps.butter(2, HIGHPASS_HZ, btype="highpass", fs=fa, output="sos")
        self._lp_zi0 = sps.sosfilt_zi(self._lp)
        self._hp_zi0 = sps.sosfilt_zi(self._hp)
        self._window = round(s.window_s * fa)
        self._step = round(s.step_s * fa)
        # TCSC: segments of tcsc_segment_s every second, each tapered at both ends.
        seg = round(s.tcsc_segment_s * fa)
        taper = round(s.tcsc_taper_s * fa)
        self._seg = seg
        self._seg_hop = round(fa)
        self._seg_taper = np.ones(seg)
        ramp = 0.5 * (1 - np.cos(np.pi * np.arange(taper) / taper))
        self._seg_taper[:taper] = ramp
        self._seg_taper[seg - taper :] = ramp[::-1]
        # Spectrum: Hamming window, bins of the analysis band.
        self._hamming = np.hamming(self._window)
        freqs = np.fft.rfftfreq(self._window, 1 / fa)
        self._freqs = freqs
        self._band = (freqs >= HIGHPASS_HZ) & (freqs <= LOWPASS_HZ)
        self._search = (freqs >= s.min_freq_hz) & (freqs <= s.max_freq_hz)
        self._hf_band = (freqs > s.hf_hz) & (freqs <= LOWPASS_HZ)
        self._k_amp = max(1, round(0.02 * self._window))
        self._psr = round(PSR_DELAY_S * fa)
        self._mav_seg = round(MAV_SEGMENT_S * fa)
        self.restart(0)

    def restart(self, start_index: int) -> None:
        """Forget the signal: the next sample is `start_index` and unrelated to the past."""
        if isinstance(start_index, bool) or not isinstance(start_index, (int, np.integer)):
            raise ValueError(f"start_index must be an integer, got {start_index!r}")
        if start_index < 0:
            raise ValueError(f"start_index must be >= 0, got {start_index!r}")
        self._end = int(start_index)  # source index one past the last sample fed
        self._lp_zi: np.ndarray | None = None  # set from the first sample
        self._hp_zi: np.ndarray | None = None
        self._last = np.zeros(0)  # last low-passed source sample (interpolation needs it)
        # Next analysis sample to compute: the first grid point at or after start_index.
        ratio = self.fs / ANALYSIS_FS
        self._k_next = math.ceil(start_index / ratio)
        while self._k_next * ratio < start_index:  # rounding: never before the first sample
            self._k_next += 1
        self._k_first = self._k_next
        self._abuf = np.zeros(0)  # analysis samples ending just before _k_next
        self._held: list[np.ndarray] = []  # samples fed but not yet filtered
        self._held_n = 0

    def _next_boundary(self) -> int:
        """Analysis index of the next reading: a step boundary after the samples computed so
        far, and a whole window after the start."""
        after = -(-(self._k_next + 1) // self._step) * self._step
        full = -(-(self._k_first + self._window) // self._step) * self._step
        return max(after, full)

    def feed(self, x_mv: np.ndarray) -> list[VFReading]:
        """Append the next samples (mV); evaluate at every step boundary they complete.

        Samples are only held until a reading is due, then filtered and resampled in one go:
        a live chunk is a quarter of a second, and a handful of numpy calls per chunk cost more
        than the once-a-second features. The filters carry their state, so the result does not
        depend on where the work was cut.
        """
        x = _check_samples(x_mv)
        if len(x) == 0:
            return []
        self._held.append(x)
        self._held_n += len(x)
        b = self._next_boundary()
        if not (b - 1) * (self.fs / ANALYSIS_FS) < self._end + self._held_n - 1:
            return []  # the next reading needs samples that have not arrived
        x = self._held[0] if len(self._held) == 1 else np.concatenate(self._held)
        self._held, self._held_n = [], 0
        return self._process(x)

    def _process(self, x: np.ndarray) -> list[VFReading]:
        if self._lp_zi is None:
            self._lp_zi = self._lp_zi0 * x[0]
        y, self._lp_zi = sps.sosfilt(self._lp, x, zi=self._lp_zi)
        buf = np.concatenate([self._last, y])
        buf_start = self._end - len(self._last)
        self._end += len(x)
        self._last = y[-1:]
        # Grid points k at source position p = k * fs / fa whose right neighbour has arrived.
        ratio = self.fs / ANALYSIS_FS
        # Every k with p_k < end - 1 (so floor(p_k) + 1 has arrived), judged on the same
        # floating-point p_k as used below: the next chunk then never needs older samples.
        k_stop = math.ceil((self._end - 1) / ratio)
        while k_stop * ratio < self._end - 1:
            k_stop += 1
        while k_stop > self._k_next and (k_stop - 1) * ratio >= self._end - 1:
            k_stop -= 1
        ks = np.arange(self._k_next, k_stop)
        if len(ks) == 0:
            return []
        p = ks * ratio
        i = np.floor(p).astype(np.int64)
        frac = p - i
        j = i - buf_start
        a = buf[j] + frac * (buf[j + 1] - buf[j])
        if self._hp_zi is None:
            self._hp_zi = self._hp_zi0 * a[0]
        a, self._hp_zi = sps.sosfilt(self._hp, a, zi=self._hp_zi)
        k0 = self._k_next
        self._k_next = int(ks[-1]) + 1
        self._abuf = np.concatenate([self._abuf, a])
        abuf_start = self._k_next - len(self._abuf)
        readings = []
        first = -(-(k0 + 1) // self._step) * self._step  # first boundary > k0
        for b in range(first, self._k_next + 1, self._step):
            if b - self._k_first < self._window:
                continue
            w = self._abuf[b - abuf_start - self._window : b - abuf_start]
            readings.append(self._evaluate(w, round(b * ratio)))
        self._abuf = self._abuf[-self._window :]
        return readings

    def _evaluate(self, w: np.ndarray, index: int) -> VFReading:
        s = self.settings
        n = len(w)
        ends = np.partition(w, [self._k_amp, n - 1 - self._k_amp])
        amplitude = float(ends[n - 1 - self._k_amp] - ends[self._k_amp])
        if amplitude <= 1e-9:
            return VFReading(
                index, False, -math.inf, amplitude, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
            )
        # VF-filter leakage: mean period from the mean absolute slope, then how much of the
        # signal survives adding it to itself half a period later.
        absx = np.abs(w)
        slope = float(np.abs(np.diff(w)).sum())
        half = math.floor(math.pi * float(absx.sum()) / max(slope, 1e-12) + 0.5)
        half = min(max(half, 1), n - 1)
        leak = float(
            np.abs(w[half:] + w[:-half]).sum() / max((absx[half:] + absx[:-half]).sum(), 1e-12)
        )
        # TCSC: tapered segments normalised to their largest excursion.
        segs = np.lib.stride_tricks.sliding_window_view(w, self._seg)[:: self._seg_hop]
        segs = segs * self._seg_taper
        peak = np.abs(segs).max(axis=1, keepdims=True)
        tcsc = float(np.mean(np.abs(segs) > s.tcsc_level * np.maximum(peak, 1e-12)))
        # Spectrum.
        power = np.abs(np.fft.rfft(w * self._hamming)) ** 2
        total = float(power[self._band].sum()) + 1e-18
        search = np.where(self._search, power, -1.0)
        freq = float(self._freqs[int(np.argmax(search))])
        near = (self._freqs >= s.conc_low * freq) & (self._freqs <= s.conc_high * freq)
        conc = float(power[near & self._band].sum()) / total
        hf = float(power[self._hf_band].sum()) / total
        # Shape of the amplitude distribution, phase-space fill, resting time, mean frequency.
        centred = w - w.mean()
        var = float(centred @ centred) / n
        log_kurt = math.log(float(np.mean(centred**4)) / max(var * var, 1e-300) + 1e-3)
        lo = float(w.min())
        grid = PSR_GRID / (float(w.max()) - lo + 1e-12)
        cells = np.minimum(((w - lo) * grid).astype(np.int64), PSR_GRID - 1)
        visited = np.bincount(cells[self._psr:] * PSR_GRID + cells[: -self._psr],
                              minlength=PSR_GRID * PSR_GRID)
        psr = float(np.count_nonzero(visited)) / (PSR_GRID * PSR_GRID)
        segs = absx[n % self._mav_seg :].reshape(-1, self._mav_seg)
        mav = float(np.mean(segs.mean(axis=1) / np.maximum(segs.max(axis=1), 1e-12)))
        zc = float(np.count_nonzero(np.diff(np.signbit(w)))) * ANALYSIS_FS / (2 * n)
        f = np.array([leak, tcsc, conc, hf, log_kurt, psr, mav, zc])
        score = float(INTERCEPT + COEFFICIENTS @ ((f - FEATURE_MEAN) / FEATURE_SCALE))
        shockable = amplitude >= s.amplitude_floor_mv and score >= s.score_threshold
        return VFReading(
            index, shockable, score, amplitude, leak, tcsc, conc, hf, freq, log_kurt, psr, mav, zc
        )


def vf_readings(
    x_mv: np.ndarray, fs: float, settings: VFSettings | None = None
) -> list[VFReading]:
    """Readings of a whole signal starting at source index 0 (one call of `VFDetector.feed`)."""
    return VFDetector(fs, settings).feed(x_mv)
