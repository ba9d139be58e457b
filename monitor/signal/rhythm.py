"""Rhythm measures on beat labels and RR intervals, free of any alarm state: the alarm engine
and the per-bed beat context (atrial-fibrillation evidence) both read them."""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Histogram bins of the RR Shannon entropy (Dash et al. 2009).
ENTROPY_BINS = 16
_LOG_BINS = np.log(ENTROPY_BINS)


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


def trimmed(rr: Sequence[float]) -> list[float]:
    """The RR intervals (s) in order, without the len // 16 smallest and largest (ties go in
    order of arrival, as a stable argsort orders them).

    Plain Python on purpose, like the measures below: on 32 intervals NumPy's per-call set-up
    costs more than the arithmetic, and the beat context runs these at every beat.
    """
    x = [float(v) for v in rr]
    if len(x) < 8:
        raise ValueError(f"rr needs at least 8 intervals, got {len(x)}")
    trim = len(x) // 16
    if trim:
        order = sorted(range(len(x)), key=x.__getitem__)
        drop = set(order[:trim]) | set(order[-trim:])
        x = [v for i, v in enumerate(x) if i not in drop]
    return x


def nrmssd(x: Sequence[float]) -> float:
    """RMS of successive differences over the mean interval."""
    square = sum((b - a) ** 2 for a, b in itertools.pairwise(x)) / (len(x) - 1)
    return math.sqrt(square) / (sum(x) / len(x))


def entropy(x: Sequence[float]) -> float:
    """Shannon entropy of the RR histogram (ENTROPY_BINS bins over the range), 0 .. 1."""
    ordered = sorted(x)
    lo = ordered[0]
    span = max(ordered[-1] - lo, 1e-3)  # a perfectly regular window: one bin
    counts = histogram_counts(ordered, lo, lo + span)
    # The sum stays NumPy's (pairwise) so the values are the ones the model was trained on.
    p = np.array([c for c in counts if c], dtype=np.float64) / len(ordered)
    return float(-(p * np.log(p)).sum() / _LOG_BINS)


def turning_point_ratio(x: Sequence[float]) -> float:
    """Share of inner intervals that are a local maximum or minimum (2/3 when random)."""
    turning = sum(
        (b > a and b > c) or (b < a and b < c) for a, b, c in zip(x, x[1:], x[2:], strict=False)
    )
    return turning / (len(x) - 2)


def histogram_counts(ordered: Sequence[float], lo: float, hi: float) -> list[int]:
    """`np.histogram(ordered, bins=ENTROPY_BINS, range=(lo, hi))[0]` of values sorted in
    ascending order, bin for bin: the same edges (as np.linspace makes them), half-open bins
    with the last one closed, values outside [lo, hi] not counted. Sorted values make each
    bin two binary searches."""
    step = (hi - lo) / ENTROPY_BINS
    starts = [bisect.bisect_left(ordered, k * step + lo) for k in range(ENTROPY_BINS)]
    starts.append(bisect.bisect_right(ordered, hi))
    return [b - a for a, b in itertools.pairwise(starts)]


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
