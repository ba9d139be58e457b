"""Polyphase resampling to the model's 125 Hz that gives the same output in any chunking.

`scipy.signal.resample_poly` works on whole arrays; a bedside stream arrives in chunks. The
streaming resampler below applies scipy's own anti-aliasing filter (same design, same delay
compensation) but computes each output sample only once its inputs have arrived, so feeding a
record whole or one sample at a time gives identical samples, equal to `resample_poly` except
for the last few outputs, where `resample_poly` pads with zeros.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy import signal as sps

#: Largest up or down factor accepted. The anti-aliasing filter has 20 x max(up, down) taps, so
#: an odd rate such as 1000.001 Hz (ratio 125000 / 1000001) would cost gigabytes; this bound
#: keeps every whole-Hz rate up to 2048 Hz, and rates such as 4000 or 10000 Hz whose ratio to
#: the target reduces far, at most 41k taps (330 kB).
MAX_RATIO_TERM = 2048


def rational_ratio(fs_in: float, fs_out: float) -> tuple[int, int]:
    """(up, down) with fs_out / fs_in == up / down, for rates given to 1/1000 Hz.

    Raises ValueError for a rate whose ratio needs a factor above MAX_RATIO_TERM.
    """
    if not np.isfinite(fs_in) or fs_in <= 0:
        raise ValueError(f"fs_in must be a positive finite rate in Hz, got {fs_in!r}")
    if not np.isfinite(fs_out) or fs_out <= 0:
        raise ValueError(f"fs_out must be a positive finite rate in Hz, got {fs_out!r}")
    ratio = Fraction(round(fs_out * 1000), round(fs_in * 1000))
    if max(ratio.numerator, ratio.denominator) > MAX_RATIO_TERM:
        raise ValueError(
            f"sampling rate {fs_in:.10g} Hz is not supported: resampling it to {fs_out:g} Hz "
            f"needs the ratio {ratio.numerator}/{ratio.denominator}, and factors up to "
            f"{MAX_RATIO_TERM} are supported (any whole number of Hz up to {MAX_RATIO_TERM})"
        )
    return ratio.numerator, ratio.denominator


def _design(up: int, down: int) -> np.ndarray:
    """scipy.signal.resample_poly's default Kaiser-windowed low-pass, gain `up`."""
    max_rate = max(up, down)
    half_len = 10 * max_rate
    h = sps.firwin(2 * half_len + 1, 1.0 / max_rate, window=("kaiser", 5.0))
    return h * up


class StreamResampler:
    """Stateful polyphase resampler: `feed(x)` returns every output sample now computable."""

    def __init__(self, fs_in: float, fs_out: float) -> None:
        self.fs_in = float(fs_in)
        self.fs_out = float(fs_out)
        self.up, self.down = rational_ratio(fs_in, fs_out)
        # Equal rates pass through: a single unit tap, no delay.
        h = _design(self.up, self.down) if self.up != self.down else np.ones(1)
        self.delay = (len(h) - 1) // 2
        # taps[p, i] = h[p + i * up]: the filter split into `up` phases of `n_taps` taps each.
        self.n_taps = -(-len(h) // self.up)
        padded = np.zeros(self.n_taps * self.up)
        padded[: len(h)] = h
        self._taps = padded.reshape(self.n_taps, self.up).T.copy()
        self._tap_offsets = np.arange(self.n_taps)[None, :]
        # Inputs before the first sample are zeros, as in resample_poly.
        self._history = np.zeros(self.n_taps - 1)
        self._n_in = 0  # input samples consumed
        self._n_out = 0  # output samples produced

    @property
    def n_in(self) -> int:
        return self._n_in

    @property
    def n_out(self) -> int:
        return self._n_out

    def _last_input_for(self, n: np.ndarray) -> np.ndarray:
        return (n * self.down + self.delay) // self.up

    def feed(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64).ravel()
        buf = np.concatenate([self._history, x])
        base = self._n_in - len(self._history)  # input index of buf[0]
        self._n_in += len(x)
        # Outputs n whose newest input (n * down + delay) // up has arrived.
        n_end = (self._n_in * self.up - self.delay - 1) // self.down + 1
        n_end = max(n_end, self._n_out)
        out = self._compute(buf, base, np.arange(self._n_out, n_end))
        self._n_out = n_end
        keep = min(len(buf), self.n_taps - 1)
        self._history = buf[len(buf) - keep :] if keep else buf[:0]
        if len(self._history) < self.n_taps - 1:
            self._history = np.concatenate(
                [np.zeros(self.n_taps - 1 - len(self._history)), self._history]
            )
        return out

    def _compute(self, buf: np.ndarray, base: int, n: np.ndarray) -> np.ndarray:
        if len(n) == 0:
            return np.zeros(0)
        t = n * self.down + self.delay  # position in the up-sampled stream
        j0 = t // self.up  # newest input sample that contributes
        phase = t % self.up
        # buf starts n_taps - 1 samples before the oldest new output's newest input (the
        # carried history, zeros before the stream) and reaches its newest, so every index
        # is in range.
        idx = (j0 - base)[:, None] - self._tap_offsets
        # take() rather than fancy indexing: the same gather without the indexing machinery.
        return np.einsum("ij,ij->i", buf.take(idx), self._taps.take(phase, axis=0))

    def flush(self) -> np.ndarray:
        """Outputs up to the end of the input, treating samples after it as zeros."""
        total = -(-self._n_in * self.up // self.down)  # ceil(n_in * up / down), as resample_poly
        if total <= self._n_out:
            return np.zeros(0)
        pad = np.zeros(self.n_taps + self.delay // self.up + 1)
        buf = np.concatenate([self._history, pad])
        base = self._n_in - len(self._history)
        out = self._compute(buf, base, np.arange(self._n_out, total))
        self._n_out = total
        return out


def resample(x: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """One-call polyphase resampling (scipy's resample_poly with the rate as a ratio)."""
    up, down = rational_ratio(fs_in, fs_out)
    if up == down:
        return np.asarray(x, dtype=np.float64).copy()
    return sps.resample_poly(np.asarray(x, dtype=np.float64), up, down)
