"""What the classifier says after the network: no supraventricular ectopy in atrial fibrillation,
no class the training data could not teach, no supraventricular ectopic beat that is not
premature, no PVC that is neither early nor unlike the patient's own beat, in fibrillation
no PVC shaped like the patient's own beat, out of it no premature beat conducted like the
patient's own called normal, and no supraventricular beat with a QRS much wider than the
patient's own or, out of fibrillation, shaped unlike it.

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
annotator, offline page, evaluation, the trainer's test figures) goes through `decide`.

The second rule reports the classes of `BeatContract.report_as_n` as N. MIT-BIH's DS1 holds its
fusion beats (F) in essentially one patient (208), so the network cannot learn what F looks like
on another: on DS1 cross-validation 0.6 % of its F calls were right, and most of the rest were
normal beats. A beat it calls F is therefore reported N, and no other call moves. A fusion beat
is a normal conduction met by a ventricular one; reported as N it costs nothing a ward uses (no
alarm counts F), where a false F takes a normal beat.

The third rule asks of a V call what a bedside monitor asks of a PVC: is the beat premature,
and does its QRS differ from the patient's dominant beat? A beat that comes no earlier than the
patient's long-term mean RR (`rr_prev_long`) and whose QRS matches the dominant template
(`template_corr`, only once a template is learned) is reported N (`BeatContract.dominant_gate`).
On DS1 cross-validation over half of the network's false V calls were such beats, the normal
beats of a patient whose conducted QRS is wide and varies (203: 1 094 of its 2 500 normal beats
called V); normal beats that noise distorts look the same. A ventricular escape beat is late
but differs from the template, and the beats of a ventricular tachycardia come early, so both
keep their V; what it costs is the V beats that match the template on time, as in a patient
whose frequent PVCs became the dominant shape (208).

The fourth rule asks of an S call what the third asks of a V call: is the beat premature? A
premature atrial or junctional beat (AAMI's S) is premature by definition; a late
supraventricular beat is an escape beat, which AAMI counts as N. A beat called S whose previous
RR is at least `BeatContract.s_gate` times the patient's long-term mean RR (`rr_prev_long`, once
a template is learned, so after the bed's learning period) is reported N. On DS1
cross-validation the network's S calls on normal beats had a median `rr_prev_long` of 0.91, its
S calls on S beats 0.70 (a tenth above 0.85): the normal beats of irregular rhythms. What it
costs is the S beats of a supraventricular run sustained for minutes, once the 5-minute mean
has come down towards the run's rate (its alarm has been raised by then). Asking also that an
S call's QRS match the template (else V) found more V beats but raised false VT alarms in a
fibrillating patient with a varying QRS, and was left out (models/README.md).

The fifth rule is the third one in atrial fibrillation, where "on time" means nothing: every
conducted beat comes early or late by chance, so the third rule never reaches the early
conducted beats of a patient whose QRS is wide and varies, and the network, trained on other
patients' shapes, calls them V (on DS1 cross-validation, after the third rule, a third of the
false V calls, 1 122 of 3 128 over the 12 fold runs, and most of the false VT alarms on patients
the model never saw were such beats of one patient, 203; the rule took 851 false V calls, 794
of them 203's, and 34 true ones). A beat called V whose RR evidence is that of fibrillation
(the AF gate's test), whose QRS matches the learned dominant template (`template_corr` at
least the first of `BeatContract.af_v_gate`) and whose template shows no consistent P wave
(`p_coherence` below the second: fibrillation seen in the waveform too, not only in the RR) is
reported N. A PVC in fibrillation differs from the dominant beat and keeps its V; what it costs
is the V beats of a run that resembles the conducted QRS (models/README.md).

The sixth rule is the fourth one turned round: a premature beat conducted like the patient's own is
what AAMI calls S, and the network, which learnt the S beats of a few training patients, calls many
of them N on a patient it never saw (on DS1 cross-validation, after the other rules, 733 of 2 793 S
beats over the 12 fold runs, two thirds of them early against the 5-minute mean: median
`rr_prev_long` 0.76). A beat called N whose previous RR is below the first of
`BeatContract.premature_s_gate` times the long-term mean (`rr_prev_long`), whose QRS matches the
learned dominant template (`template_corr` at least the second), whose template shows a consistent P
wave (`p_coherence` at least the third: the AF V gate's bound, so not a fibrillation the RR test
missed) and to which the network gives S at least the fourth probability, out of fibrillation by the
AF gate's test, is reported S. Over the 12 fold runs it made 207 S beats S (154 of them 209's), and
49 normal beats, 18 V beats the network had called N and 8 detections with no reference beat S; what
it costs is the early sinus beats of a rate that rises faster than the 5-minute mean follows, which
the floor on the network's S probability keeps few.

The seventh rule asks of an S call the other half of a bedside monitor's PVC question: is its QRS
the patient's own width? A supraventricular beat reaches the ventricles through the conduction
system and keeps the patient's QRS; a beat whose QRS is much wider than the dominant template's
(`width_log2` above the first of `BeatContract.wide_qrs_gate`: 0.5, over 1.4 times as wide) is
ventricular, or conducted aberrantly (MIT-BIH's `a`, which AAMI counts as S: what the rule
costs). Such a beat called S, once a template is learned, is reported V. On DS1
cross-validation, after the other rules, the network called 388 V beats S over the 12 fold runs,
a third of them over 1.4 times as wide as the template, where a tenth of the S beats are; the
rule made 181 S calls V: 129 V beats, 29 normal beats, 12 S beats and 11 detections with no
reference beat (56 of the 181 in 223, 39 in 106). Asked with the correlation to the template
instead of the width, the rule raised false VT alarms (the fourth rule's note); asked with the
width it raised none on the unseen patients; DS2, read once after the choice, disagreed (129 of
its S beats and 115 normal beats made V, models/README.md). A beat less than the second
threshold (half) times the long-term mean RR after the last one is left as the network calls
it: with electrode-motion noise such detections are mostly noise, whose "QRS" is wide too, and
as V they would start false VT runs.

The width is read on one beat, from the first to the last crossing of 30 % of its QRS range, in
8 ms samples: noise, a P or T wave near the QRS or a slurred onset move a crossing by several,
while the template's width is read on an average. A QRS that is wider in truth also differs
from the template in shape, so the rule asks for that too: a QRS residual against the template
(`residual`) of at least the third threshold, 0.01, the least that DS1's own dominant templates
show once widened 1.4 times about their R-peak (the fifth percentile, 0.0096:
`benchmarks/width_stretch.py`; not fitted to labels). On DS1 cross-validation, of the 129 S
calls the rule made V that the eighth rule would not have, the guard left 8 S beats and 14
normal beats as the network called them, and no V beat.

The eighth rule is the sixth turned round, asked with the same bounds: out of fibrillation, a
beat called S whose QRS does not match the learned dominant template (`template_corr` below the
first of `BeatContract.unlike_s_gate`, the sixth rule's 0.8) is ventricular, however wide, and is
reported V. "Out of fibrillation" is the template's consistent P wave (`p_coherence` at least
the second, the fifth and sixth rules' 0.2), and the seventh rule's floor on the previous RR
(the third) keeps detections far too early to be a beat as the network calls them. Asked
without the P-wave bound (the fourth rule's note), the rule turned the early conducted beats of
a fibrillating patient with a varying QRS (203, whose AF the RR test does not always see) into
V and raised false VT alarms; all of those beats had a P-wave coherence below 0.11, and on the
unseen patients the bound takes five false VT alarms of 21 away and no VT episode. With the
bound, on DS1 cross-validation after the other rules, it made 243 S calls V over the 12 fold
runs: 241 V beats (217 of them 215's PVCs, taller than its dominant beat and unlike it, which
the network called S) and 2 S beats (models/README.md).
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


def _moved(
    probs: np.ndarray, rows: np.ndarray, label: str, bc: contract.BeatContract, to: str = "N"
) -> np.ndarray:
    """`probs` with `label`'s probability of the beats in `rows` added to `to`'s (N's unless
    asked; not in place)."""
    if not rows.any():
        return probs
    src, dst = bc.classes.index(label), bc.classes.index(to)
    out = probs.copy()
    out[rows, dst] += out[rows, src]
    out[rows, src] = 0.0
    return out


def gate_af(probs: np.ndarray, context: np.ndarray, bc: contract.BeatContract) -> np.ndarray:
    """`probs` (n, classes) with the S probability of beats in fibrillation moved to N."""
    return _moved(probs, in_af(context, bc), "S", bc)


def report_as_n(probs: np.ndarray, bc: contract.BeatContract) -> np.ndarray:
    """`probs` (n, classes) with `bc.report_as_n`'s classes never called: a beat the network
    calls one of them is N (their probability added to N's); on any other beat their share is
    spread over the other classes in proportion, so its call does not change (a ventricular beat
    with some fusion probability stays V)."""
    if not bc.report_as_n:
        return probs
    n = bc.classes.index("N")
    cols = [bc.classes.index(c) for c in bc.report_as_n]
    out = probs.copy()
    called = np.isin(out.argmax(axis=1), cols)
    out[called, n] += out[called][:, cols].sum(axis=1)
    out[:, cols] = 0.0
    rest = out[~called]
    out[~called] = rest / np.maximum(rest.sum(axis=1, keepdims=True), np.finfo(out.dtype).tiny)
    return out


def gate_dominant(
    probs: np.ndarray, context: np.ndarray, bc: contract.BeatContract
) -> np.ndarray:
    """`probs` (n, classes) with the V probability of beats called V moved to N where the beat
    is on time and shaped like the dominant beat under `bc.dominant_gate`."""
    if not bc.dominant_gate:
        return probs
    min_rr_long, min_corr = bc.dominant_gate
    rr_long, learned, corr = (
        context[:, bc.features.index(f)] for f in contract.DOMINANT_GATE_FEATURES
    )
    hit = (
        (probs.argmax(axis=1) == bc.classes.index("V")) & (learned > 0.5)
        & (rr_long >= min_rr_long) & (corr >= min_corr)
    )  # fmt: skip
    return _moved(probs, hit, "V", bc)


def gate_s(probs: np.ndarray, context: np.ndarray, bc: contract.BeatContract) -> np.ndarray:
    """`probs` (n, classes) with the S probability of beats called S moved to N where the beat
    is not premature under `bc.s_gate`."""
    if not bc.s_gate:
        return probs
    (min_rr_long,) = bc.s_gate
    learned, rr_long = (context[:, bc.features.index(f)] for f in contract.S_GATE_FEATURES)
    hit = (probs.argmax(axis=1) == bc.classes.index("S")) & (learned > 0.5) & (
        rr_long >= min_rr_long
    )
    return _moved(probs, hit, "S", bc)


def gate_af_v(probs: np.ndarray, context: np.ndarray, bc: contract.BeatContract) -> np.ndarray:
    """`probs` (n, classes) with the V probability of beats called V moved to N where the beat
    is in fibrillation and shaped like the dominant beat under `bc.af_v_gate`."""
    if not bc.af_v_gate:
        return probs
    min_corr, max_coherence = bc.af_v_gate
    learned, corr, coherence = (
        context[:, bc.features.index(f)] for f in contract.AF_V_GATE_FEATURES[-3:]
    )
    hit = (
        (probs.argmax(axis=1) == bc.classes.index("V")) & in_af(context, bc) & (learned > 0.5)
        & (corr >= min_corr) & (coherence < max_coherence)
    )  # fmt: skip
    return _moved(probs, hit, "V", bc)


def gate_premature_s(
    probs: np.ndarray, context: np.ndarray, bc: contract.BeatContract
) -> np.ndarray:
    """`probs` (n, classes) with the N probability of beats called N moved to S where the beat
    is premature, shaped like the dominant beat, under a P wave and out of fibrillation, and
    the network gives S some probability, under `bc.premature_s_gate`."""
    if not bc.premature_s_gate:
        return probs
    max_rr_long, min_corr, min_coherence, min_s = bc.premature_s_gate
    learned, rr_long, corr, coherence = (
        context[:, bc.features.index(f)] for f in contract.PREMATURE_S_GATE_FEATURES[-4:]
    )
    hit = (
        (probs.argmax(axis=1) == bc.classes.index("N")) & ~in_af(context, bc) & (learned > 0.5)
        & (rr_long < max_rr_long) & (corr >= min_corr) & (coherence >= min_coherence)
        & (probs[:, bc.classes.index("S")] >= min_s)
    )  # fmt: skip
    return _moved(probs, hit, "N", bc, to="S")


def gate_wide_qrs(probs: np.ndarray, context: np.ndarray, bc: contract.BeatContract) -> np.ndarray:
    """`probs` (n, classes) with the S probability of beats called S moved to V where the
    beat's QRS is much wider than the dominant template's and it is not far too early to be a
    beat, under `bc.wide_qrs_gate`."""
    if not bc.wide_qrs_gate:
        return probs
    called_s = probs.argmax(axis=1) == bc.classes.index("S")
    learned, width, rr_long, residual = (
        context[:, bc.features.index(f)] for f in contract.WIDE_QRS_GATE_FEATURES
    )
    # A file cut before the residual guard carries two thresholds: served without it.
    min_width_log2, min_rr_long, min_residual = (*bc.wide_qrs_gate, 0.0)[:3]
    hit = (
        called_s & (learned > 0.5) & (width > min_width_log2) & (rr_long >= min_rr_long)
        & (residual >= min_residual)
    )  # fmt: skip
    return _moved(probs, hit, "S", bc, to="V")


def gate_unlike_s(probs: np.ndarray, context: np.ndarray, bc: contract.BeatContract) -> np.ndarray:
    """`probs` (n, classes) with the S probability of beats called S moved to V where the
    beat's QRS is unlike the dominant template's, out of fibrillation, and it is not far too
    early to be a beat, under `bc.unlike_s_gate`."""
    if not bc.unlike_s_gate:
        return probs
    called_s = probs.argmax(axis=1) == bc.classes.index("S")
    learned, corr, coherence, rr_long = (
        context[:, bc.features.index(f)] for f in contract.UNLIKE_S_GATE_FEATURES
    )
    max_corr, min_coherence, min_rr_long = bc.unlike_s_gate
    hit = (
        called_s & (learned > 0.5) & (corr < max_corr) & (coherence >= min_coherence)
        & (rr_long >= min_rr_long)
    )  # fmt: skip
    return _moved(probs, hit, "S", bc, to="V")


def decide(probs: np.ndarray, context: np.ndarray, bc: contract.BeatContract) -> np.ndarray:
    """The served probabilities: the network's `probs` through the model's decision rules."""
    probs = report_as_n(gate_af(probs, context, bc), bc)
    probs = gate_af_v(gate_dominant(probs, context, bc), context, bc)
    probs = gate_premature_s(gate_s(probs, context, bc), context, bc)
    return gate_unlike_s(gate_wide_qrs(probs, context, bc), context, bc)
