"""Beat-level classification figures in the terms cardiology papers use (Se, +P per class).

Everything works on confusion matrices (rows = reference, columns = prediction), which keeps one
definition of each figure for training, validation and the end-to-end EC57 evaluation. That
evaluation's matrix has one extra label, "no beat": its row holds extra detections (counted
against the +P of the class they were given), its column missed reference beats (counted against
the sensitivity of their class). Resampling confusion matrices instead of beat lists keeps a
1000-fold bootstrap over tens of thousands of beats to milliseconds.

Macro F1 averages the classes present in the reference only: a class with no reference beat
has no sensitivity, and letting its F1 count as 0 would make the figure depend on which rare
classes a patient set happens to contain.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from monitor import contract


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts (n_classes, n_classes): rows are the reference class, columns the prediction."""
    y_true = np.asarray(y_true, dtype=np.int64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.int64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in shape")
    if n_classes < 1:
        raise ValueError(f"n_classes must be at least 1, got {n_classes}")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if len(y) and (y.min() < 0 or y.max() >= n_classes):
            raise ValueError(f"{name} has labels outside 0..{n_classes - 1}")
    return np.bincount(y_true * n_classes + y_pred, minlength=n_classes**2).reshape(
        n_classes, n_classes
    )


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with NaN where den == 0: an undefined rate is not a zero rate."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _check_cm(cm: np.ndarray, n_classes: int) -> np.ndarray:
    cm = np.asarray(cm)
    if cm.ndim < 2 or cm.shape[-1] != cm.shape[-2]:
        raise ValueError(f"cm must be square (..., L, L), got shape {cm.shape}")
    if not 1 <= n_classes <= cm.shape[-1]:
        raise ValueError(f"n_classes must be in 1..{cm.shape[-1]}, got {n_classes}")
    return cm.astype(np.float64)


def class_rates(cm: np.ndarray, n_classes: int) -> dict[str, np.ndarray]:
    """Per-class sensitivity, positive predictivity, F1, reference and predicted counts.

    Scores the first `n_classes` labels; a further "no beat" label is an error, never a class.
    Works on one matrix (L, L) or a stack (..., L, L); a rate with an empty denominator is NaN.
    """
    cm = _check_cm(cm, n_classes)
    k = np.arange(n_classes)
    tp = cm[..., k, k]
    support = cm.sum(axis=-1)[..., :n_classes]
    predicted = cm.sum(axis=-2)[..., :n_classes]
    f1 = np.where(support > 0, _ratio(2 * tp, support + predicted), np.nan)
    return {
        "se": _ratio(tp, support),
        "ppv": _ratio(tp, predicted),
        "f1": f1,
        "support": support,
        "predicted": predicted,
    }


def summary_scores(cm: np.ndarray, n_classes: int) -> dict[str, np.ndarray]:
    """Accuracy, macro F1 and support-weighted F1 of one matrix or a stack.

    Accuracy counts every cell of the matrix, so a missed beat or an extra detection is an error.
    """
    cm = _check_cm(cm, n_classes)
    rates = class_rates(cm, n_classes)
    k = np.arange(n_classes)
    present = rates["support"] > 0
    f1 = np.where(present, rates["f1"], 0.0)
    return {
        "accuracy": _ratio(cm[..., k, k].sum(axis=-1), cm.sum(axis=(-2, -1))),
        "macro_f1": _ratio(f1.sum(axis=-1), present.sum(axis=-1)),
        "weighted_f1": _ratio((f1 * rates["support"]).sum(axis=-1), rates["support"].sum(-1)),
    }


def detection_rates(cm: np.ndarray, n_classes: int) -> dict[str, np.ndarray]:
    """EC57 gross QRS detection statistics from a matrix whose last label is "no beat".

    Any matched pair is a true positive whatever its classes; the "no beat" column holds missed
    reference beats (FN), the "no beat" row extra detections (FP).
    """
    cm = _check_cm(cm, n_classes)
    if cm.shape[-1] != n_classes + 1:
        raise ValueError(
            f"detection statistics need an (n_classes + 1)-square matrix with a 'no beat' label, "
            f"got shape {cm.shape} for n_classes={n_classes}"
        )
    tp = cm[..., :n_classes, :n_classes].sum(axis=(-2, -1))
    fn = cm[..., :n_classes, n_classes].sum(axis=-1)
    fp = cm[..., n_classes, :n_classes].sum(axis=-1)
    return {"tp": tp, "fn": fn, "fp": fp, "se": _ratio(tp, tp + fn), "ppv": _ratio(tp, tp + fp)}


#: EC57's ectopic-beat statistics (as its reference comparator, PhysioNet's bxb, computes them):
#: the reference classes whose beats given the class do *not* count as its false positives. A
#: fusion beat is part ventricular and an unknown beat has no class, so calling either V is no
#: false VEB; an unknown beat called S is no false SVEB. Every other call counts, an extra
#: detection included, and every reference beat of the class counts for sensitivity.
EC57_NOT_FALSE = {"V": ("F", "Q"), "S": ("Q",)}


def ec57_ectopic_rates(
    cm: np.ndarray, classes: Sequence[str] = contract.CLASSES
) -> dict[str, dict[str, np.ndarray]]:
    """EC57 VEB and SVEB Se and +P of a matrix (or stack) with the "no beat" label last (of
    the classes present among `classes`).

    Sensitivity equals `class_rates`'; positive predictivity leaves out the calls of
    `EC57_NOT_FALSE`, so it is at least `class_rates`' +P.
    """
    n = len(classes)
    cm = _check_cm(cm, n)
    if cm.shape[-1] != n + 1:
        raise ValueError(
            f"EC57 statistics need an (n_classes + 1)-square matrix with a 'no beat' label, "
            f"got shape {cm.shape} for {n} classes"
        )
    classes = list(classes)
    out = {}
    for name, c in (("veb", "V"), ("sveb", "S")):
        if c not in classes:
            continue
        k = classes.index(c)
        tp = cm[..., k, k]
        fn = cm[..., k, :].sum(axis=-1) - tp
        excluded = [k, *(classes.index(x) for x in EC57_NOT_FALSE[c] if x in classes)]
        fp = cm[..., :, k].sum(axis=-1) - cm[..., excluded, k].sum(axis=-1)
        out[name] = {
            "tp": tp,
            "fn": fn,
            "fp": fp,
            "se": _ratio(tp, tp + fn),
            "ppv": _ratio(tp, tp + fp),
        }
    return out


def json_float(x: float) -> float | None:
    """JSON has no NaN: an undefined rate is written as null."""
    x = float(x)
    return x if np.isfinite(x) else None


def summarise(cm: np.ndarray, classes: Sequence[str] = contract.CLASSES) -> dict:
    """Accuracy, macro/weighted F1 and per-class Se, +P, F1 from a confusion matrix.

    Undefined ratios (no reference beat, no prediction) are None, not 0.
    """
    cm = np.asarray(cm, dtype=np.int64)
    n = len(classes)
    rates, scores = class_rates(cm, n), summary_scores(cm, n)
    per_class = {
        c: {
            **{m: json_float(rates[m][i]) for m in ("se", "ppv", "f1")},
            "support": int(rates["support"][i]),
            "predicted": int(rates["predicted"][i]),
        }
        for i, c in enumerate(classes)
    }
    return {
        "n": int(cm.sum()),
        **{m: json_float(v) for m, v in scores.items()},
        "per_class": per_class,
        "confusion": cm.tolist(),
    }


def evaluate(
    y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str] = contract.CLASSES
) -> dict:
    """`summarise` of the confusion matrix of labels against predictions."""
    return summarise(confusion_matrix(y_true, y_pred, len(classes)), classes)


def bootstrap_groups(group_cms: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Confusion matrices (n_boot, L, L) of groups (e.g. patients) resampled with replacement.

    Beats of one patient are correlated; resampling whole patients gives intervals that speak
    for a new patient rather than for more beats of the same ones.
    """
    group_cms = np.asarray(group_cms)
    if group_cms.ndim != 3 or len(group_cms) == 0:
        raise ValueError(f"group_cms must be a non-empty (G, L, L) stack, got {group_cms.shape}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    g, n_labels = group_cms.shape[0], group_cms.shape[-1]
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(g, np.full(g, 1.0 / g), size=n_boot)
    flat = weights @ group_cms.reshape(g, -1).astype(np.int64)
    return flat.reshape(n_boot, n_labels, n_labels)


def bootstrap_items(cm: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Confusion matrices (n_boot, L, L) of the individual items resampled with replacement.

    Drawing n items with replacement from a matrix of n items is a multinomial draw over its
    cells, so this equals resampling the item list without ever building it.
    """
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"cm must be a square (L, L) matrix, got shape {cm.shape}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    total = int(cm.sum())
    if total == 0:
        raise ValueError("cm is empty: nothing to resample")
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(total, cm.ravel() / total, size=n_boot)
    return draws.reshape(n_boot, *cm.shape)


def interval(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap samples, ignoring resamples where the rate is undefined."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    samples = np.asarray(samples, dtype=np.float64)
    samples = samples[np.isfinite(samples)]
    if len(samples) == 0:
        return (float("nan"), float("nan"))
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(samples, [tail, 100 - tail])
    return (float(lo), float(hi))


def with_intervals(
    cm: np.ndarray, boot_cms: np.ndarray, classes: Sequence[str], level: float = 0.95
) -> dict:
    """Point estimates with bootstrap intervals, as plain JSON-ready numbers (None: undefined)."""
    n = len(classes)
    rates, boot_rates = class_rates(cm, n), class_rates(boot_cms, n)
    scores, boot_scores = summary_scores(cm, n), summary_scores(boot_cms, n)

    def est(value: float, samples: np.ndarray) -> dict:
        lo, hi = interval(samples, level)
        return {"value": json_float(value), "ci": [json_float(lo), json_float(hi)]}

    out = {
        "per_class": {
            c: {
                "support": int(rates["support"][i]),
                **{m: est(rates[m][i], boot_rates[m][:, i]) for m in ("se", "ppv", "f1")},
            }
            for i, c in enumerate(classes)
        },
        **{m: est(scores[m], boot_scores[m]) for m in ("accuracy", "macro_f1", "weighted_f1")},
    }
    if cm.shape[-1] == n + 1:
        det, boot_det = detection_rates(cm, n), detection_rates(boot_cms, n)
        out["detection"] = {
            **{m: int(det[m]) for m in ("tp", "fn", "fp")},
            **{m: est(det[m], boot_det[m]) for m in ("se", "ppv")},
        }
        ec57, boot_ec57 = ec57_ectopic_rates(cm, classes), ec57_ectopic_rates(boot_cms, classes)
        out["ec57"] = {
            name: {
                **{m: int(r[m]) for m in ("tp", "fn", "fp")},
                **{m: est(r[m], boot_ec57[name][m]) for m in ("se", "ppv")},
            }
            for name, r in ec57.items()
        }
    return out


def format_report(m: dict, title: str = "") -> str:
    """A plain-text table of `summarise` output, for terminals and logs."""

    def pct(v: float | None) -> str:
        return "   -  " if v is None else f"{100 * v:5.1f}%"

    classes = list(m["per_class"])
    lines = [title] if title else []
    lines.append(
        f"beats {m['n']}  accuracy {pct(m['accuracy'])}  macro F1 {m['macro_f1'] or 0:.3f}  "
        f"weighted F1 {m['weighted_f1'] or 0:.3f}"
    )
    lines.append(f"{'class':>5} {'support':>8} {'Se':>7} {'+P':>7} {'F1':>6}")
    for c in classes:
        pc = m["per_class"][c]
        f1 = "    -" if pc["f1"] is None else f"{pc['f1']:.3f}"
        lines.append(f"{c:>5} {pc['support']:>8} {pct(pc['se']):>7} {pct(pc['ppv']):>7} {f1:>6}")
    lines.append("confusion (rows reference, columns predicted): " + " ".join(classes))
    width = max(len(str(v)) for row in m["confusion"] for v in row)
    for c, row in zip(classes, m["confusion"], strict=True):
        lines.append(f"{c:>5} " + " ".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)
