"""Resampling to 125 Hz: frequency kept, equal to scipy's resample_poly, chunking irrelevant."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.signal.resample import StreamResampler, rational_ratio, resample

RATES = [100.0, 128.0, 250.0, 257.0, 360.0, 500.0, 1000.0]


def _chunked(fs: float, x: np.ndarray, chunk: int) -> np.ndarray:
    r = StreamResampler(fs, 125.0)
    parts = [r.feed(x[i : i + chunk]) for i in range(0, len(x), chunk)]
    return np.concatenate([*parts, r.flush()])


@pytest.mark.parametrize("fs", RATES)
def test_sine_keeps_its_frequency(fs: float) -> None:
    f0 = 7.3  # Hz, well inside the 62.5 Hz Nyquist band of the output
    t = np.arange(int(20 * fs)) / fs
    y = resample(np.sin(2 * np.pi * f0 * t), fs, 125.0)
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    freqs = np.fft.rfftfreq(len(y), 1 / 125.0)
    assert abs(freqs[np.argmax(spectrum)] - f0) < 0.1
    assert len(y) == pytest.approx(len(t) * 125.0 / fs, abs=1)


@pytest.mark.parametrize("fs", RATES)
def test_stream_equals_resample_poly_for_any_chunking(fs: float) -> None:
    x = np.random.default_rng(1).standard_normal(4000)
    whole = resample(x, fs, 125.0)
    outputs = [_chunked(fs, x, c) for c in (1, 7, 250, 10_000)]
    for out in outputs:
        assert np.array_equal(out, outputs[0])  # bit-exact whatever the chunking
    np.testing.assert_allclose(outputs[0], whole, atol=1e-12)


def test_aliasing_tone_is_removed() -> None:
    fs = 360.0
    t = np.arange(int(10 * fs)) / fs
    y = resample(np.sin(2 * np.pi * 100.0 * t), fs, 125.0)  # above the new Nyquist
    assert np.abs(y[200:-200]).max() < 0.01


def test_rates_are_validated() -> None:
    with pytest.raises(ValueError, match="fs_in"):
        rational_ratio(0.0, 125.0)
    with pytest.raises(ValueError, match="fs_in"):
        StreamResampler(float("nan"), 125.0)
    assert rational_ratio(360.0, 125.0) == (25, 72)
