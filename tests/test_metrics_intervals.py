"""Matrix metrics, EC57 "no beat" counting and bootstrap intervals against hand-worked examples."""

from __future__ import annotations

import json

import numpy as np
import pytest

from monitor import metrics

# Reference 0 0 0 1 1 2 against prediction 0 0 1 1 2 2.
CM3 = np.array([[2, 1, 0], [0, 1, 1], [0, 0, 1]])

# EC57 style: classes N, V plus "no beat". Reference N: 8 right, 1 called V, 1 missed;
# reference V: 3 right, 1 missed; 2 extra detections labelled N.
CM_EC57 = np.array([[8, 1, 1], [0, 3, 1], [2, 0, 0]])


def test_class_rates_by_hand() -> None:
    r = metrics.class_rates(CM3, 3)
    np.testing.assert_allclose(r["se"], [2 / 3, 1 / 2, 1.0])
    np.testing.assert_allclose(r["ppv"], [1.0, 1 / 2, 1 / 2])
    np.testing.assert_allclose(r["f1"], [0.8, 0.5, 2 / 3])
    np.testing.assert_array_equal(r["support"], [3, 2, 1])
    np.testing.assert_array_equal(r["predicted"], [2, 2, 2])


def test_summary_scores_by_hand() -> None:
    s = metrics.summary_scores(CM3, 3)
    assert s["accuracy"] == pytest.approx(4 / 6)
    assert s["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert s["weighted_f1"] == pytest.approx((0.8 * 3 + 0.5 * 2 + 2 / 3 * 1) / 6)


def test_absent_class_is_undefined_and_left_out_of_the_averages() -> None:
    # Class 1 is never in the reference but predicted once: no sensitivity, so no F1 to average;
    # the false positive still costs class 0 its sensitivity.
    cm = np.array([[3, 1, 0], [0, 0, 0], [0, 0, 0]])
    r = metrics.class_rates(cm, 3)
    assert np.isnan(r["f1"][1]) and r["ppv"][1] == 0.0
    assert np.isnan(r["se"][2]) and np.isnan(r["ppv"][2])
    s = metrics.summary_scores(cm, 3)
    assert s["macro_f1"] == pytest.approx(2 * 3 / (4 + 3))
    assert s["weighted_f1"] == pytest.approx(2 * 3 / (4 + 3))


def test_missed_and_extra_beats_count_against_se_and_ppv() -> None:
    r = metrics.class_rates(CM_EC57, 2)
    np.testing.assert_allclose(r["se"], [8 / 10, 3 / 4])
    np.testing.assert_allclose(r["ppv"], [8 / 10, 3 / 4])
    np.testing.assert_array_equal(r["support"], [10, 4])
    assert metrics.summary_scores(CM_EC57, 2)["accuracy"] == pytest.approx(11 / 16)
    d = metrics.detection_rates(CM_EC57, 2)
    assert (d["tp"], d["fn"], d["fp"]) == (12, 2, 2)
    assert d["se"] == pytest.approx(12 / 14) and d["ppv"] == pytest.approx(12 / 14)


def test_detection_rates_need_a_no_beat_label() -> None:
    with pytest.raises(ValueError, match="no beat"):
        metrics.detection_rates(CM3, 3)


def test_rates_work_on_a_stack_of_matrices() -> None:
    stack = np.stack([CM3, CM3 * 2])
    np.testing.assert_allclose(metrics.class_rates(stack, 3)["se"], [[2 / 3, 0.5, 1.0]] * 2)
    np.testing.assert_allclose(metrics.summary_scores(stack, 3)["accuracy"], [4 / 6] * 2)


def test_bootstrap_items_keeps_the_total_and_is_seeded() -> None:
    boot = metrics.bootstrap_items(CM3, 500, seed=1)
    assert boot.shape == (500, 3, 3)
    assert (boot.sum(axis=(1, 2)) == CM3.sum()).all()
    assert (boot[:, 0, 2] == 0).all()  # an empty cell can never be drawn
    np.testing.assert_array_equal(boot, metrics.bootstrap_items(CM3, 500, seed=1))
    assert not np.array_equal(boot, metrics.bootstrap_items(CM3, 500, seed=2))
    np.testing.assert_allclose(boot.mean(axis=0), CM3, atol=0.25)


def test_bootstrap_groups_resamples_whole_groups() -> None:
    a = np.array([[5, 0], [0, 0]])
    b = np.array([[0, 0], [1, 3]])
    boot = metrics.bootstrap_groups(np.stack([a, b]), 200, seed=0)
    # Every resample is two groups drawn with replacement: a+a, a+b or b+b.
    allowed = {(a + a).tobytes(), (a + b).tobytes(), (b + b).tobytes()}
    assert {m.tobytes() for m in boot} == allowed
    assert (metrics.bootstrap_groups(a[None], 10, seed=0) == a).all()


def test_interval_is_a_percentile_interval_ignoring_undefined_resamples() -> None:
    samples = np.concatenate([np.arange(1, 1001, dtype=float), [np.nan] * 50])
    lo, hi = metrics.interval(samples, 0.95)
    assert lo == pytest.approx(np.percentile(np.arange(1, 1001), 2.5))
    assert hi == pytest.approx(np.percentile(np.arange(1, 1001), 97.5))
    assert all(np.isnan(metrics.interval(np.array([np.nan, np.nan]))))


def test_intervals_are_json_and_bracket_the_point_estimates() -> None:
    boot = metrics.bootstrap_items(CM_EC57, 300, seed=0)
    rep = metrics.with_intervals(CM_EC57, boot, ("N", "V"))
    json.dumps(rep, allow_nan=False)
    se_n = rep["per_class"]["N"]["se"]
    assert se_n["value"] == pytest.approx(0.8)
    assert se_n["ci"][0] <= 0.8 <= se_n["ci"][1]
    assert (rep["detection"]["tp"], rep["detection"]["fn"], rep["detection"]["fp"]) == (12, 2, 2)
    # A class never seen has null rates and null intervals rather than NaN.
    only_n = np.array([[4, 0], [0, 0]])
    absent = metrics.with_intervals(only_n, only_n[None], ("N", "V"))
    assert absent["per_class"]["V"]["se"] == {"value": None, "ci": [None, None]}


def test_ec57_ectopic_rates_leave_out_the_calls_ec57_does_not_count() -> None:
    # Rows N S V F Q (extra), columns N S V F Q (missed).
    cm = np.array(
        [
            [90, 4, 3, 0, 0, 1],
            [2, 10, 1, 0, 0, 1],
            [1, 1, 20, 0, 0, 2],
            [3, 0, 5, 0, 0, 0],
            [0, 2, 1, 0, 0, 0],
            [1, 1, 2, 0, 0, 0],
        ]
    )
    r = metrics.ec57_ectopic_rates(cm)
    plain = metrics.class_rates(cm, 5)
    # VEB: fusion (5) and unknown (1) beats called V are no false positives; N, S and extra are.
    assert (r["veb"]["tp"], r["veb"]["fn"], r["veb"]["fp"]) == (20, 4, 3 + 1 + 2)
    assert r["veb"]["se"] == pytest.approx(plain["se"][2])
    assert r["veb"]["ppv"] == pytest.approx(20 / 26) and plain["ppv"][2] == pytest.approx(20 / 32)
    # SVEB: only unknown beats called S are left out (2).
    assert (r["sveb"]["tp"], r["sveb"]["fn"], r["sveb"]["fp"]) == (10, 4, 4 + 1 + 1)
    rep = metrics.with_intervals(
        cm, metrics.bootstrap_items(cm, 50, seed=0), metrics.contract.CLASSES
    )
    assert rep["ec57"]["veb"]["ppv"]["value"] == pytest.approx(20 / 26)
    with pytest.raises(ValueError, match="no beat"):
        metrics.ec57_ectopic_rates(cm[:5, :5])
