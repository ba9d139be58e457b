"""Beat-by-beat comparison of detections with reference annotations (ANSI/AAMI EC57).

EC57 scores a detector by one-to-one matching of its beats to the reference beats within a
150 ms window; unmatched reference beats are false negatives, unmatched detections false
positives. Ventricular flutter/fibrillation episodes are left out of beat scoring on both
sides, because their waves are not beats. The match keeps the pairs and the leftovers
explicitly, so classification scoring can reuse it beat by beat.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from monitor import contract

#: MIT-BIH symbols that open and close a ventricular flutter/fibrillation episode.
VF_START, VF_END = "[", "]"

#: EC57 beat-by-beat match window: a detection within 150 ms of a reference beat is that beat.
MATCH_WINDOW_S = 0.15


@dataclass(frozen=True)
class Reference:
    """Reference beats of one record and the spans excluded from scoring."""

    #: Positions of beat annotations (sample index at the annotation's rate).
    samples: np.ndarray
    #: Their MIT-BIH symbols.
    symbols: np.ndarray
    #: (start, end) sample spans of VF episodes, inclusive; detections there are not scored.
    excluded: tuple[tuple[int, int], ...] = ()

    def outside_excluded(self, idx: np.ndarray) -> np.ndarray:
        """Boolean mask of the indices that lie outside every excluded span."""
        idx = np.asarray(idx)
        keep = np.ones(len(idx), dtype=bool)
        for start, end in self.excluded:
            keep &= (idx < start) | (idx > end)
        return keep


def reference_beats(ann_symbols: Sequence[str], ann_samples: Sequence[int]) -> Reference:
    """Beat annotations (AAMI-mapped symbols) outside VF episodes ('[' ... ']').

    An episode left open at the end of the record runs to the end of the record.
    """
    symbols = np.asarray(ann_symbols, dtype=object)
    samples = np.asarray(ann_samples, dtype=np.int64)
    if symbols.shape != samples.shape or symbols.ndim != 1:
        raise ValueError(
            f"ann_symbols and ann_samples must be 1-D and equally long, got "
            f"{symbols.shape} and {samples.shape}"
        )
    if np.any(np.diff(samples) < 0):
        raise ValueError("ann_samples must be in non-decreasing order")
    spans: list[tuple[int, int]] = []
    start: int | None = None
    for sym, pos in zip(symbols, samples, strict=True):
        if sym == VF_START and start is None:
            start = int(pos)
        elif sym == VF_END and start is not None:
            spans.append((start, int(pos)))
            start = None
    if start is not None:
        spans.append((start, np.iinfo(np.int64).max))
    is_beat = np.array([s in contract.AAMI_MAP for s in symbols], dtype=bool)
    ref = Reference(samples[is_beat], symbols[is_beat].astype(str), tuple(spans))
    keep = ref.outside_excluded(ref.samples)
    return Reference(ref.samples[keep], ref.symbols[keep], ref.excluded)


@dataclass(frozen=True)
class Score:
    """Gross counts; adding scores of several records gives EC57 gross statistics."""

    tp: int = 0
    fn: int = 0
    fp: int = 0

    def __add__(self, other: Score) -> Score:
        return Score(self.tp + other.tp, self.fn + other.fn, self.fp + other.fp)

    @property
    def se(self) -> float:
        """Sensitivity TP / (TP + FN); NaN when there is no reference beat."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else float("nan")

    @property
    def ppv(self) -> float:
        """Positive predictivity TP / (TP + FP); NaN when there is no detection."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else float("nan")


def gross(scores: Iterable[Score]) -> Score:
    """Sum of per-record counts (EC57 'gross' statistics weight every beat equally)."""
    return sum(scores, Score())


@dataclass(frozen=True)
class Match:
    """One-to-one matching of reference beats to detections.

    All index arrays are positions into the `ref` and `det` arrays given to `match`, so that
    labels kept alongside either side can be looked up directly.
    """

    ref: np.ndarray
    det: np.ndarray
    fs: float
    #: (k, 2) positions: column 0 into `ref`, column 1 into `det`; ordered by reference.
    pairs: np.ndarray
    #: Positions into `ref` of reference beats without a detection (false negatives).
    missed: np.ndarray
    #: Positions into `det` of detections without a reference beat (false positives).
    extra: np.ndarray

    @property
    def score(self) -> Score:
        return Score(len(self.pairs), len(self.missed), len(self.extra))

    @property
    def offsets_s(self) -> np.ndarray:
        """Detection minus reference time of each matched pair, in seconds."""
        return (self.det[self.pairs[:, 1]] - self.ref[self.pairs[:, 0]]) / self.fs


def match(
    ref_idx: Sequence[int] | np.ndarray,
    det_idx: Sequence[int] | np.ndarray,
    fs: float,
    window_s: float = MATCH_WINDOW_S,
    exclude: Reference | None = None,
) -> Match:
    """Pair each reference beat with at most one detection within `window_s`, nearest first.

    Candidate pairs are taken in order of increasing distance (ties: earlier reference first),
    so a detection between two beats goes to the closer one. Detections inside the excluded
    spans of `exclude` are dropped from `extra` (they are neither right nor wrong).
    """
    if not np.isfinite(fs) or fs <= 0:
        raise ValueError(f"fs must be a positive finite rate in Hz, got {fs!r}")
    if not np.isfinite(window_s) or window_s < 0:
        raise ValueError(f"window_s must be a non-negative number of seconds, got {window_s!r}")
    ref = np.asarray(ref_idx, dtype=np.float64).ravel()
    det = np.asarray(det_idx, dtype=np.float64).ravel()
    for name, arr in (("ref_idx", ref), ("det_idx", det)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinite values")
        if np.any(np.diff(arr) < 0):
            raise ValueError(f"{name} must be sorted in non-decreasing order")
    win = window_s * fs
    lo = np.searchsorted(det, ref - win, side="left")
    hi = np.searchsorted(det, ref + win, side="right")
    counts = hi - lo
    i = np.repeat(np.arange(len(ref)), counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)  # where each ref's run starts in j
    j = np.repeat(lo, counts) + np.arange(len(i)) - first
    dist = np.abs(det[j] - ref[i])
    used_ref = np.zeros(len(ref), dtype=bool)
    used_det = np.zeros(len(det), dtype=bool)
    pairs = []
    for k in np.lexsort((i, dist)):
        a, b = i[k], j[k]
        if not used_ref[a] and not used_det[b]:
            used_ref[a] = used_det[b] = True
            pairs.append((a, b))
    pair_arr = np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)
    extra = np.flatnonzero(~used_det)
    if exclude is not None:
        extra = extra[exclude.outside_excluded(det[extra])]
    return Match(ref, det, float(fs), pair_arr, np.flatnonzero(~used_ref), extra)
