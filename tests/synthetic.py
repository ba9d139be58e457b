"""Synthetic ECG for tests that need beats with known shapes and times but no database."""

from __future__ import annotations

from collections.abc import Container

import numpy as np


def synthetic_ecg(
    r_times: np.ndarray,
    duration: float,
    rng: np.random.Generator,
    fs: float = 250.0,
    ventricular: Container[int] = (),
    fibrillation: bool = False,
) -> np.ndarray:
    """P-QRS-T complexes (mV) at the given R-peak times, with 10 uV of baseline noise.

    Beats whose position is in `ventricular` are wide (about 140 ms), taller, without a P wave
    and with an inverted T wave, as premature ventricular complexes look on a limb lead. With
    `fibrillation` no beat has a P wave; 50 uV fibrillatory waves of 4-8 Hz, unrelated to the
    QRS, run throughout instead, as in atrial fibrillation.
    """
    t = np.arange(round(duration * fs)) / fs
    x = rng.normal(0.0, 0.01, len(t))
    p_amp = 0.0 if fibrillation else 0.15
    if fibrillation:
        freq = 6.0 + 2.0 * np.sin(2 * np.pi * t / 7.3 + rng.uniform(0, 2 * np.pi))
        x += 0.05 * np.sin(2 * np.pi * np.cumsum(freq) / fs)
    for k, r in enumerate(r_times):
        near = slice(max(0, round((r - 0.4) * fs)), min(len(t), round((r + 0.6) * fs)))
        tt = t[near] - r
        if k in ventricular:
            x[near] += (
                1.6 * np.exp(-0.5 * (tt / 0.035) ** 2)
                - 0.5 * np.exp(-0.5 * ((tt - 0.07) / 0.03) ** 2)
                - 0.4 * np.exp(-0.5 * ((tt - 0.3) / 0.06) ** 2)
            )
        else:
            x[near] += (
                p_amp * np.exp(-0.5 * ((tt + 0.16) / 0.025) ** 2)
                + 1.2 * np.exp(-0.5 * (tt / 0.010) ** 2)
                - 0.3 * np.exp(-0.5 * ((tt - 0.025) / 0.010) ** 2)
                + 0.3 * np.exp(-0.5 * ((tt - 0.25) / 0.040) ** 2)
            )
    return x
