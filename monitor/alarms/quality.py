"""Signal quality of the raw lead: flat line, amplifier saturation and high-frequency noise.

A monitor must say when it cannot see the heart, or every beat alarm downstream is suspect.
The index is computed on sliding windows evaluated at fixed absolute sample positions, so the
result does not depend on how the stream was chunked. One evaluation per second of signal: the
technical alarms it drives are confirmed and held over seconds (`noisy_s`, `flat_s`, the end
holds), so a finer step would only add cost (it was the worker's largest per-chunk cost at a
0.25 s step) while moving an onset by less than a second.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass

import numpy as np

from monitor.alarms.settings import AlarmSettings

#: Seconds between evaluations.
STEP_S = 1.0
#: Baseline (wander) estimate and the smoothing whose residual is "high-frequency" content:
#: a 40 ms moving average has its first null at 25 Hz, above most P/T energy.
BASELINE_S = 0.6
SMOOTH_S = 0.04
#: Seconds of window amplitudes whose median is the lead's typical amplitude.
AMPLITUDE_MEMORY_S = 30.0


@dataclass(frozen=True)
class QualityReading:
    """Signal quality of the window ending at `index` (absolute source sample)."""

    index: int
    #: The last `flat_s` seconds are a flat line (electrodes off or amplifier dead).
    flat: bool
    #: A plateau at the window's extreme: the input clipped at the amplifier's range.
    saturated: bool
    #: Median |signal - 40 ms moving average| over the robust amplitude (the larger of the
    #: window's and the recent typical one); ~0.005-0.015 on clean MIT-BIH, ~0.04 with
    #: NSTDB muscle noise at 0 dB SNR.
    noise: float
    #: 0 (unusable) .. 1 (clean).
    sqi: float


def moving_average(x: np.ndarray, n: int) -> np.ndarray:
    """Length-n moving average, 'valid' part only (len(x) - n + 1 values)."""
    c = np.cumsum(np.concatenate([[0.0], x]))
    return (c[n:] - c[:-n]) / n


def longest_run_at(x: np.ndarray, value: float) -> int:
    """Longest run of consecutive samples equal to `value`."""
    equal = x == value
    if np.count_nonzero(equal) < 2:
        return int(equal.any())
    hit = np.concatenate([[False], equal, [False]])
    edges = np.flatnonzero(np.diff(hit.astype(np.int8)))
    return int((edges[1::2] - edges[::2]).max()) if len(edges) else 0


def hf_and_amplitude(x: np.ndarray, fs: float) -> tuple[float, float]:
    """High-frequency level and robust amplitude (1st-99th percentile span) of a window, mV.

    The level is the median |signal - 40 ms moving average|: the median ignores the few
    samples inside QRS complexes (steep, so a large residual), so a clean ECG scores low
    whatever its morphology, while broadband muscle noise or mains hum lifts the residual
    everywhere and so lifts the median.
    """
    nb = max(3, round(BASELINE_S * fs) | 1)
    ns = max(3, round(SMOOTH_S * fs) | 1)
    if len(x) < nb + ns:
        return 0.0, 0.0
    centred = x[nb // 2 : len(x) - nb // 2] - moving_average(x, nb)
    k = len(centred) // 100  # percentiles without percentile()'s overhead
    ends = np.partition(centred, [k, len(centred) - 1 - k])
    amplitude = float(ends[len(centred) - 1 - k] - ends[k])
    residual = centred[ns // 2 : len(centred) - ns // 2] - moving_average(centred, ns)
    return float(np.median(np.abs(residual))), amplitude


class SignalQuality:
    """Sliding-window quality of one lead; `feed` returns one reading per STEP_S of signal."""

    def __init__(self, fs: float, settings: AlarmSettings) -> None:
        self.fs = float(fs)
        self.settings = settings
        self._window = max(2, round(settings.sqi_window_s * fs))
        self._flat_n = max(2, round(settings.flat_s * fs))
        self._step = max(1, round(STEP_S * fs))
        self._sat_run = max(2, round(settings.saturation_run_s * fs))
        self._buf = np.zeros(0)
        self._end = 0  # absolute index one past the last buffered sample
        self._amplitudes: deque[float] = deque(maxlen=round(AMPLITUDE_MEMORY_S / STEP_S))

    def restart(self, start_index: int) -> None:
        """Forget the signal: the next sample is `start_index` and unrelated to the past."""
        self._amplitudes.clear()
        self._buf = np.zeros(0)
        self._end = start_index

    def feed(self, x: np.ndarray) -> list[QualityReading]:
        """Append the next samples (mV); evaluate at every step boundary they cross."""
        start = self._end
        self._buf = np.concatenate([self._buf, x])[-(self._window + len(x)) :]
        self._end = start + len(x)
        buf_start = self._end - len(self._buf)
        first = -(-(start + 1) // self._step) * self._step  # first boundary > start
        readings = [
            self._evaluate(self._buf[max(0, b - buf_start - self._window) : b - buf_start], b)
            for b in range(first, self._end + 1, self._step)
            if b - buf_start >= self._flat_n
        ]
        self._buf = self._buf[-self._window :]
        return readings

    def _evaluate(self, w: np.ndarray, index: int) -> QualityReading:
        s = self.settings
        flat = float(np.ptp(w[-self._flat_n :])) < s.flat_ptp_mv
        if flat:
            return QualityReading(index, True, False, 0.0, 0.0)
        top, bottom = float(w.max()), float(w.min())
        saturated = max(longest_run_at(w, top), longest_run_at(w, bottom)) >= self._sat_run
        hf, amplitude = hf_and_amplitude(w, self.fs)
        # Relative to the larger of this window's and the recent typical amplitude, so that
        # a silent heart (asystole) does not turn its own baseline into "noise".
        self._amplitudes.append(amplitude)
        typical = float(statistics.median(self._amplitudes))  # 30 floats: no numpy overhead
        noise = hf / max(amplitude, typical, 1e-6)
        clean = (s.noise_unusable - noise) / (s.noise_unusable - s.noise_clean)
        sqi = 0.0 if saturated else float(np.clip(clean, 0.0, 1.0))
        return QualityReading(index, False, saturated, noise, sqi)
