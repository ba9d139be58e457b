"""Rhythm measures on beat labels and RR intervals, free of any alarm state: the alarm engine
and the per-bed beat context (atrial-fibrillation evidence) both read them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Histogram bins of the RR Shannon entropy (Dash et al. 2009).
ENTROPY_BINS = 16


@dataclass(frozen=True)
class Irregularity:
    """RR irregularity of one window (Dash et al. 2009, Ann. Biomed. Eng. 37:1701).

    AF shows as all three at once: large beat-to-beat variation (nrmssd), a flat RR histogram
    (entropy) and no pattern (turning-point ratio near the 2/3 of a random sequence). Sinus
    arrhythmia varies slowly (few turning points), bigeminy alternates (turning points at
    every beat); both fail the TPR band.
    """

    nrmssd: float
    entropy: float
    tpr: float


def irregularity(rr: Sequence[float]) -> Irregularity:
    """Irregularity of RR intervals (s), after dropping the most extreme 1/16 at each end.

    The trimming removes the odd missed or extra beat, which would otherwise dominate RMSSD.
    """
    x = trimmed(rr)
    return Irregularity(nrmssd(x), entropy(x), turning_point_ratio(x))


def steadiness(times: Sequence[float]) -> tuple[float, float]:
    """Coefficient of variation of the intervals between R-peak `times` (s, at least 3 of
    them), and their mean rate in bpm: a steady train has a small first and a plausible second.
    """
    rr = np.diff(np.asarray(times, dtype=np.float64))
    mean = float(rr.mean())
    return float(rr.std()) / mean, 60.0 / mean


def trimmed(rr: Sequence[float]) -> np.ndarray:
    """The RR intervals (s) in order, without the len // 16 smallest and largest."""
    x = np.asarray(rr, dtype=np.float64)
    if len(x) < 8:
        raise ValueError(f"rr needs at least 8 intervals, got {len(x)}")
    trim = len(x) // 16
    if trim:
        order = np.argsort(x, kind="stable")
        keep = np.ones(len(x), dtype=bool)
        keep[order[:trim]] = False
        keep[order[-trim:]] = False
        x = x[keep]
    return x


def nrmssd(x: np.ndarray) -> float:
    """RMS of successive differences over the mean interval."""
    return float(np.sqrt((np.diff(x) ** 2).mean()) / x.mean())


def entropy(x: np.ndarray) -> float:
    """Shannon entropy of the RR histogram (ENTROPY_BINS bins over the range), 0 .. 1."""
    lo = float(x.min())
    span = max(float(x.max()) - lo, 1e-3)  # a perfectly regular window: one bin
    counts = histogram_counts(x, lo, lo + span)
    p = counts[counts > 0] / len(x)
    return float(-(p * np.log(p)).sum() / np.log(ENTROPY_BINS))


def turning_point_ratio(x: np.ndarray) -> float:
    """Share of inner intervals that are a local maximum or minimum (2/3 when random)."""
    mid = x[1:-1]
    turning = ((mid > x[:-2]) & (mid > x[2:])) | ((mid < x[:-2]) & (mid < x[2:]))
    return float(turning.mean())


def histogram_counts(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """`np.histogram(x, bins=ENTROPY_BINS, range=(lo, hi))[0]`, bin for bin, at a fifth of
    its cost (the AF check runs it at every beat): the same edges (as np.linspace makes
    them), half-open bins with the last one closed, values outside [lo, hi] not counted."""
    edges = np.arange(ENTROPY_BINS + 1.0) * ((hi - lo) / ENTROPY_BINS) + lo
    edges[-1] = hi
    inside = x[(x >= lo) & (x <= hi)]
    bins = np.minimum(np.searchsorted(edges, inside, side="right") - 1, ENTROPY_BINS - 1)
    return np.bincount(bins, minlength=ENTROPY_BINS)


def pattern_cycles(
    labels: Sequence[str], period: int, ectopic: str = "V", between: str = "NS"
) -> int:
    """Ectopic beats in the unbroken pattern that ends the label sequence.

    The pattern has one `ectopic` beat every `period` beats with conducted (`between`) beats in
    between (bigeminy: period 2, V N V N V; trigeminy: period 3, V N N V N N V). The sequence
    may end anywhere inside a cycle. Any other beat (a fusion, a paced beat, a second V)
    breaks the pattern: V F N V F N is not trigeminy.
    """
    if period < 2:
        raise ValueError(f"period must be at least 2, got {period}")
    pos = len(labels) - 1
    tail = 0
    while pos >= 0 and labels[pos] != ectopic:
        if labels[pos] not in between or tail == period - 1:
            return 0
        tail += 1
        pos -= 1
    if pos < 0:
        return 0
    cycles = 1
    while pos - period >= 0 and labels[pos - period] == ectopic:
        if any(label not in between for label in labels[pos - period + 1 : pos]):
            break
        cycles += 1
        pos -= period
    return cycles
