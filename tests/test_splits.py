"""Splits: no DS2 patient ever trains or validates, and every split is reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from monitor import contract
from monitor.errors import InputError
from monitor.inputs import absent_context
from trainer.dataset import BeatSet
from trainer.splits import DS1, DS2, PACED, patient_folds, split_indices


def synthetic(records: tuple[str, ...], seed: int = 0) -> BeatSet:
    """Beats of many patients, ectopic classes concentrated in a few, as in MIT-BIH."""
    rng = np.random.default_rng(seed)
    recs, labels = [], []
    for i, r in enumerate(records):
        n = int(rng.integers(200, 400))
        lab = np.zeros(n, dtype=np.int64)
        if i % 3 == 0:
            lab[: n // 5] = 1  # S
        if i % 4 == 1:
            lab[: n // 4] = 2  # V
        if i % 7 == 2:
            lab[:30] = 3  # F
        recs += [r] * n
        labels.append(lab)
    labels = np.concatenate(labels)
    n = len(labels)
    channels, features, previous = absent_context(np.zeros((n, contract.BEAT_LEN), np.float32))
    return BeatSet(
        channels=channels,
        features=features,
        previous=previous,
        labels=labels,
        records=np.array(recs),
        index=np.arange(n),
        ref_index=np.arange(n),
        symbols=np.array([contract.CLASSES[i] for i in labels]),
    )


def test_inter_split_validates_on_whole_ds1_patients_and_tests_on_ds2():
    beats = synthetic(DS1 + DS2 + PACED)
    train, val, test = split_indices(beats, "inter", seed=0)
    tr, va, te = (set(beats.records[i]) for i in (train, val, test))
    assert tr | va == set(DS1) and not tr & va
    assert te == set(DS2)
    assert 3 <= len(va) <= 6
    # Validation patients carry about a fifth of each ectopic class, not none of it.
    for c in (1, 2):
        share = np.sum(beats.labels[val] == c) / np.sum(
            np.isin(beats.records, DS1) & (beats.labels == c)
        )
        assert 0.1 < share < 0.35
    again = split_indices(beats, "inter", seed=0)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again, strict=True))
    other = split_indices(beats, "inter", seed=1)
    assert not np.array_equal(other[1], val)


def test_intra_split_is_stratified_over_beats_and_disjoint():
    beats = synthetic(DS1 + DS2 + PACED)
    train, val, test = split_indices(beats, "intra", seed=0)
    assert len(np.intersect1d(train, val)) == len(np.intersect1d(train, test)) == 0
    assert len(train) + len(val) + len(test) == len(beats)
    for c in range(4):
        total = np.sum(beats.labels == c)
        assert np.sum(beats.labels[test] == c) == round(0.2 * total)
    assert set(beats.records[test]) == set(beats.records[train])  # the same patients


def test_all_split_has_no_test_set_and_validates_by_patient():
    beats = synthetic(DS1 + DS2 + PACED)
    train, val, test = split_indices(beats, "all", seed=0)
    assert len(test) == 0
    assert not set(beats.records[train]) & set(beats.records[val])
    assert len(train) + len(val) == len(beats)


def test_inter_split_needs_two_ds1_patients():
    with pytest.raises(InputError, match="at least two records of DS1"):
        split_indices(synthetic(("101", "100")), "inter", seed=0)
    with pytest.raises(ValueError, match="kind must be one of"):
        split_indices(synthetic(("101", "106")), "loso", seed=0)


def test_patient_folds_validate_every_ds1_patient_once_on_the_same_folds_for_every_seed():
    beats = synthetic(DS1 + DS2 + PACED)
    vals = [set(beats.records[split_indices(beats, "inter", 0, (i, 4))[1]]) for i in range(4)]
    assert set().union(*vals) == set(DS1) and sum(len(v) for v in vals) == len(DS1)
    assert vals == [set(f) for f in patient_folds(beats.subset(np.isin(beats.records, DS1)), 4)]
    again = [set(beats.records[split_indices(beats, "inter", 3, (i, 4))[1]]) for i in range(4)]
    assert again == vals
    for i in range(4):
        train, val, test = split_indices(beats, "inter", 0, (i, 4))
        assert not set(beats.records[train]) & set(beats.records[val])
        assert set(beats.records[test]) == set(DS2)
    # Ectopic beats are shared out: no fold validates on none of the S beats.
    for v in vals:
        assert np.sum(np.isin(beats.records, list(v)) & (beats.labels == 1)) > 0
    with pytest.raises(InputError, match="fold 6 of 5"):
        split_indices(beats, "inter", 0, (5, 5))
