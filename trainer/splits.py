"""Which beats train, which choose the checkpoint, which test: the splits the numbers rest on.

The inter-patient split (de Chazal et al. 2004) is the honest one: no patient of the test set
DS2 is ever seen, and the validation patients that pick epochs and settings come from DS1 only.
The intra-patient split mixes every patient's beats into train and test, reproducing the Kaggle
"ECG Heartbeat Categorization" setting; it is kept for comparison with that literature, and its
figures are not a claim about unseen patients.
"""

from __future__ import annotations

import numpy as np

from monitor import contract
from monitor.errors import InputError
from monitor.records import ALL_RECORDS, DS1, DS2, PACED
from trainer.dataset import BeatSet

#: The inter-patient split's records live with the data access (`monitor.records`), where the
#: simulator reads them too; they are re-exported here for the trainer's callers.
__all__ = ["ALL_RECORDS", "DS1", "DS2", "PACED", "records_for", "split_indices"]

KINDS = ("inter", "intra", "all")
#: Share of training patients held out to validate (inter, all) ...
VAL_PATIENT_FRACTION = 0.2
#: ... and of training beats (intra).
VAL_BEAT_FRACTION = 0.1
#: Share of all beats tested in the intra-patient split.
INTRA_TEST_FRACTION = 0.2
#: Random patient subsets tried when choosing validation patients.
_GROUP_TRIALS = 4000
#: Generator seed of the patient folds (`patient_folds`).
FOLD_SEED = 0
#: Classes with fewer beats than this do not steer the choice of validation patients.
_MIN_CLASS_BEATS = 50


def records_for(kind: str) -> tuple[str, ...]:
    """The records a split of this kind reads."""
    _check_kind(kind)
    return DS1 + DS2 if kind == "inter" else ALL_RECORDS


def split_indices(
    beats: BeatSet, kind: str, seed: int, fold: tuple[int, int] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) row indices of `beats` for the split `kind`, reproducible by `seed`.

    - "inter": train and validation patients from DS1, test = DS2.
    - "intra": stratified 80/20 beat split over every record; validation from the 80 %.
    - "all": every record trains (production model); validation by patient; no test.

    `fold` = (i, n) validates on the i-th of n patient folds (`patient_folds`) instead, so that
    n runs validate every patient once (inter and all only).
    """
    _check_kind(kind)
    rng = np.random.default_rng(seed)
    if kind == "intra":
        pool, test = stratified_split(beats.labels, INTRA_TEST_FRACTION, rng)
        train, val = stratified_split(beats.labels[pool], VAL_BEAT_FRACTION, rng)
        return np.sort(pool[train]), np.sort(pool[val]), np.sort(test)
    if kind == "inter":
        pool_mask = np.isin(beats.records, DS1)
        test = np.flatnonzero(np.isin(beats.records, DS2))
        pool_name = "DS1"
    else:
        pool_mask = np.ones(len(beats), dtype=bool)
        test = np.zeros(0, dtype=np.int64)
        pool_name = "the data"
    pool_records = sorted(set(beats.records[pool_mask].tolist()))
    if len(pool_records) < 2:
        raise InputError(
            f"the {kind} split validates on whole patients and needs at least two records of "
            f"{pool_name}, got {len(pool_records) or 'none'}; add records or use --split intra"
        )
    if fold is None:
        val_records = choose_validation_patients(
            beats.subset(pool_mask), VAL_PATIENT_FRACTION, rng
        )
    else:
        i, n = fold
        if not 0 <= i < n <= len(pool_records):
            raise InputError(
                f"fold {i + 1} of {n}: need 1 <= fold <= folds <= {len(pool_records)} patients"
            )
        val_records = patient_folds(beats.subset(pool_mask), n)[i]
    val_mask = pool_mask & np.isin(beats.records, val_records)
    return np.flatnonzero(pool_mask & ~val_mask), np.flatnonzero(val_mask), test


def stratified_split(
    labels: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held-out) indices with `fraction` of every class held out."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    held = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        held.append(idx[: round(fraction * len(idx))])
    held_idx = np.sort(np.concatenate(held)) if held else np.zeros(0, np.int64)
    kept = np.setdiff1d(np.arange(len(labels)), held_idx)
    return kept, held_idx


def choose_validation_patients(
    beats: BeatSet, fraction: float, rng: np.random.Generator
) -> list[str]:
    """About `fraction` of the patients, chosen so each class loses about `fraction` of its beats.

    Ectopic beats cluster in few patients; a plain random draw often validates on no S or F
    beat at all, and the checkpoint would then be chosen blind to them.
    """
    records = np.array(sorted(set(beats.records.tolist())))
    k = min(len(records) - 1, max(1, round(fraction * len(records))))
    counts = np.stack(
        [
            np.bincount(beats.labels[beats.records == r], minlength=len(contract.CLASSES))
            for r in records
        ]
    ).astype(float)
    totals = counts.sum(axis=0)
    # A class with a handful of beats in one patient cannot be shared out; it would only add noise.
    present = totals >= _MIN_CLASS_BEATS if np.any(totals >= _MIN_CLASS_BEATS) else totals > 0
    best, best_score = None, np.inf
    for _ in range(_GROUP_TRIALS):
        pick = rng.choice(len(records), size=k, replace=False)
        share = counts[pick].sum(axis=0)[present] / totals[present]
        score = float(np.sum((share - fraction) ** 2))
        if score < best_score:
            best, best_score = pick, score
    return sorted(records[best].tolist())


def patient_folds(beats: BeatSet, n: int) -> list[list[str]]:
    """The patients of `beats` in `n` folds, each holding about 1/n of every class's beats.

    Drawn fold by fold (`choose_validation_patients` over the patients left), with a fixed
    generator: the folds do not change with a run's seed, so settings are compared on the same
    patients.
    """
    rng = np.random.default_rng(FOLD_SEED)
    left = np.ones(len(beats), dtype=bool)
    folds = []
    for k in range(n - 1):
        rest = beats.subset(left)
        fold = choose_validation_patients(rest, 1.0 / (n - k), rng)
        folds.append(fold)
        left &= ~np.isin(beats.records, fold)
    folds.append(sorted(set(beats.records[left].tolist())))
    return folds


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
