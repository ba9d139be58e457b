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
) -> np.ndarray:
    """P-QRS-T complexes (mV) at the given R-peak times, with 10 uV of baseline noise.

    Beats whose position is in `ventricular` are wide (about 140 ms), taller, without a P wave
    and with an inverted T wave, as premature ventricular complexes look on a limb lead.
    """
    t = np.arange(round(duration * fs)) / fs
    x = rng.normal(0.0, 0.01, len(t))
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
                0.15 * np.exp(-0.5 * ((tt + 0.16) / 0.025) ** 2)
                + 1.2 * np.exp(-0.5 * (tt / 0.010) ** 2)
                - 0.3 * np.exp(-0.5 * ((tt - 0.025) / 0.010) ** 2)
                + 0.3 * np.exp(-0.5 * ((tt - 0.25) / 0.040) ** 2)
            )
    return x
