"""Per-class Se/+P and macro F1 as reported by the trainer."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.metrics import confusion_matrix, evaluate, format_report


def test_per_class_figures_from_a_known_confusion():
    y_true = np.array([0] * 8 + [1] * 2 + [2] * 4)
    y_pred = np.array([0] * 7 + [1] + [1, 0] + [2, 2, 2, 0])
    m = evaluate(y_true, y_pred)
    s = m["per_class"]["S"]
    assert (s["se"], s["ppv"], s["f1"]) == (0.5, 0.5, 0.5)
    assert m["per_class"]["V"]["ppv"] == 1.0 and m["per_class"]["V"]["se"] == 0.75
    assert m["per_class"]["F"] == {
        "se": None,
        "ppv": None,
        "f1": None,
        "support": 0,
        "predicted": 0,
    }
    assert m["accuracy"] == pytest.approx(11 / 14)
    f1_n = 2 * 7 / (8 + 9)
    assert m["macro_f1"] == pytest.approx((f1_n + 0.5 + 2 * 3 / 7) / 3)  # classes with beats
    assert "S        2   50.0%   50.0%" in format_report(m)


def test_confusion_rejects_labels_out_of_range():
    with pytest.raises(ValueError, match="y_pred has labels outside"):
        confusion_matrix(np.array([0, 1]), np.array([0, 5]), 5)
