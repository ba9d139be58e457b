"""What the classifier says after the network: no supraventricular ectopy in atrial fibrillation.

In atrial fibrillation every conducted beat comes early or late by chance, so a short RR says
nothing about an atrial premature beat, and AAMI practice labels the conducted beats of AF
normal (MIT-BIH does). The network learns that from the two AF patients of its training set
only, and on patients it never saw it still calls the early beats of fibrillation S: on DS1
cross-validation most of its false S beats lay in 201 and 203. The gate takes the network's
S probability to N for a beat whose own RR evidence is that of fibrillation, with the alarm
engine's AF thresholds (Dash et al. 2009: a flat RR histogram, a random turning-point ratio)
and a floor on the beat-to-beat irregularity, so a regular rhythm with a few ectopics keeps
its S beats. V, F and Q are untouched: a ventricular beat in AF is still one.

The thresholds are a model's choice, stored in its contract (`BeatContract.af_gate`); a model
without them (empty) is served as its network answers. Every path that classifies (worker,
annotator, offline page, evaluation, the trainer's test figures) goes through `gate_af`.
"""

from __future__ import annotations

import numpy as np

from monitor import contract


def in_af(context: np.ndarray, bc: contract.BeatContract) -> np.ndarray:
    """Per beat, whether its RR evidence (this beat's features, the first of `context`'s
    columns as `monitor.inputs.select` lays them out) is that of atrial fibrillation under
    `bc.af_gate`; all False for a model without a gate."""
    n = len(context)
    if not bc.af_gate:
        return np.zeros(n, dtype=bool)
    entropy_min, turning_low, turning_high, irregularity_min = bc.af_gate
    entropy, turning, irregularity = (
        context[:, bc.features.index(f)] for f in contract.AF_GATE_FEATURES
    )
    return (
        (entropy >= entropy_min)
        & (turning >= turning_low)
        & (turning <= turning_high)
        & (irregularity >= irregularity_min)
    )


def gate_af(probs: np.ndarray, context: np.ndarray, bc: contract.BeatContract) -> np.ndarray:
    """`probs` (n, classes) with the S probability of beats in fibrillation moved to N."""
    af = in_af(context, bc)
    if not af.any():
        return probs
    s, n = bc.classes.index("S"), bc.classes.index("N")
    out = probs.copy()
    out[af, n] += out[af, s]
    out[af, s] = 0.0
    return out
