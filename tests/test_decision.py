"""The decision rules after the network: S in atrial fibrillation goes to N, nothing else moves;
the classes a model does not call are reported as N; a V call on a beat that is on time and
shaped like the dominant beat is N, and so is an S call on a beat that is not premature, and a
V call in fibrillation shaped like the dominant beat; an N call on a premature beat with the
patient's own QRS and P wave, out of fibrillation, is S, and an S call on a beat whose QRS is
much wider than the patient's is V."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from monitor import contract
from monitor.classifier import BeatClassifier
from monitor.context import ABSENT
from monitor.decision import (
    decide,
    gate_af,
    gate_af_v,
    gate_dominant,
    gate_premature_s,
    gate_s,
    gate_unlike_s,
    gate_wide_qrs,
    in_af,
    report_as_n,
)
from monitor.errors import InputError
from monitor.inputs import select
from trainer.train import (
    AF_V_GATE,
    DEFAULT_REPORT_AS_N,
    DOMINANT_GATE,
    PREMATURE_S_GATE,
    S_GATE,
    UNLIKE_S_GATE,
    WIDE_QRS_GATE,
    default_af_gate,
    model_contract,
    parse_args,
)

FEATURES = "rr_local,rr_long,rhythm,af"
#: What the dominant-beat gate reads besides.
TEMPLATE_FEATURES = FEATURES + ",template"
#: What the AF V gate reads besides.
PWAVE_FEATURES = TEMPLATE_FEATURES + ",pwave"


def _context(bc: contract.BeatContract, entropy: float, turning: float, irregularity: float):
    """One beat's model context with these RR evidence values, the rest as if absent."""
    return _with(bc, rr_entropy=entropy, rr_turning=turning, rr_irregularity=irregularity)


def _with(bc: contract.BeatContract, **values: float) -> np.ndarray:
    """One beat's model context with these feature values, the rest as if absent."""
    features = ABSENT.copy()
    names = list(contract.FEATURES)
    for name, value in values.items():
        features[names.index(name)] = value
    previous = np.tile(ABSENT, (1, 4, 1))
    channels = np.zeros((1, len(contract.CHANNELS), contract.BEAT_LEN), dtype=np.float32)
    return select(bc, channels, features[None].astype(np.float32), previous.astype(np.float32))[1]


def test_the_gate_moves_s_to_n_only_in_fibrillation():
    bc = model_contract("beat", FEATURES, 0)
    assert bc.af_gate == default_af_gate()
    probs = np.array([[0.2, 0.7, 0.05, 0.05, 0.0]], dtype=np.float32)
    before = probs.copy()
    af = _context(bc, 0.9, 0.66, 0.2)
    ectopy = _context(bc, 0.5, 0.9, 0.2)  # a few RR values in a pattern: frequent ectopy
    steady = _context(bc, 0.9, 0.66, 0.02)  # flat histogram but hardly any irregularity
    gated = gate_af(probs, af, bc)
    np.testing.assert_allclose(gated, [[0.9, 0.0, 0.05, 0.05, 0.0]])
    for ctx in (ectopy, steady):
        np.testing.assert_array_equal(gate_af(probs, ctx, bc), probs)
    np.testing.assert_array_equal(probs, before)  # not in place
    v = np.array([[0.1, 0.1, 0.8, 0.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(gate_af(v, af, bc), [[0.2, 0.0, 0.8, 0.0, 0.0]])  # V stays V


def test_absent_evidence_and_models_without_a_gate_are_not_gated():
    bc = model_contract("beat", FEATURES, 2)
    absent = select(bc, np.zeros((1, len(contract.CHANNELS), contract.BEAT_LEN), np.float32),
                    ABSENT[None], np.tile(ABSENT, (1, 4, 1)))[1]  # fmt: skip
    assert not in_af(absent, bc).any()  # a Kaggle row, or a stream's first beats
    off = model_contract("beat", FEATURES, 0, af_gate=False)
    assert off.af_gate == () and not in_af(_context(off, 0.9, 0.66, 0.2), off).any()
    assert model_contract("beat", "rr_local", 0).af_gate == ()  # no evidence to gate on


def test_the_gate_travels_in_the_contract_and_is_checked():
    bc = model_contract("beat", FEATURES, 1)
    back = contract.BeatContract.from_dict(bc.to_dict())
    assert back == bc and back.af_gate == default_af_gate()
    assert contract.BeatContract.from_dict({**bc.to_dict(), "af_gate": []}).af_gate == ()
    with pytest.raises(ValueError, match="af_gate"):
        dataclasses.replace(bc, af_gate=(0.7, 0.5, 0.85))
    with pytest.raises(ValueError, match="af_gate"):
        dataclasses.replace(contract.CURRENT, af_gate=default_af_gate())  # reads no AF evidence


def test_the_shipped_model_gates_its_s_beats_in_fibrillation():
    clf = BeatClassifier(device="cpu")
    assert clf.contract.af_gate == default_af_gate()
    n_channels, _ = clf.contract.n_inputs()
    rng = np.random.default_rng(0)
    x = rng.random((64, n_channels, contract.BEAT_LEN), dtype=np.float32)
    ctx = np.repeat(_context(clf.contract, 0.9, 0.66, 0.2), 64, axis=0)
    probs = clf.predict(x, ctx)
    assert (probs[:, contract.CLASSES.index("S")] == 0).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_a_beat_called_a_class_reported_as_n_is_n_and_no_other_call_changes():
    bc = model_contract("beat", FEATURES, 0, report_as_n=("F",))
    probs = np.array([[0.3, 0.1, 0.2, 0.4, 0.0], [0.1, 0.0, 0.5, 0.4, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(
        report_as_n(probs, bc),
        [[0.7, 0.1, 0.2, 0.0, 0.0], [1 / 6, 0.0, 5 / 6, 0.0, 0.0]],  # V stays V
        rtol=1e-6,
    )
    assert probs[0, 3] == np.float32(0.4)  # not in place
    plain = model_contract("beat", FEATURES, 0)
    np.testing.assert_array_equal(report_as_n(probs, plain), probs)
    both = decide(np.array([[0.2, 0.5, 0.0, 0.3, 0.0]]), _context(bc, 0.9, 0.66, 0.2), bc)
    np.testing.assert_allclose(both, [[1.0, 0.0, 0.0, 0.0, 0.0]])  # AF gate, then F as N


def test_report_as_n_travels_in_the_contract_and_is_checked():
    bc = model_contract("beat", FEATURES, 0, report_as_n=("F", "Q"))
    back = contract.BeatContract.from_dict(bc.to_dict())
    assert back == bc and back.report_as_n == ("F", "Q")
    old = {k: v for k, v in bc.to_dict().items() if k != "report_as_n"}
    assert contract.BeatContract.from_dict(old).report_as_n == ()  # a file from before the rule
    for bad in (("N",), ("X",)):
        with pytest.raises(ValueError, match="report_as_n"):
            dataclasses.replace(bc, report_as_n=bad)
    assert parse_args([]).inputs.report_as_n == DEFAULT_REPORT_AS_N == ("F",)
    assert parse_args(["--report-as-n", "none"]).inputs.report_as_n == ()
    with pytest.raises(InputError, match="report-as-n"):
        parse_args(["--report-as-n", "N"])


def test_the_shipped_model_reports_no_fusion_beats():
    clf = BeatClassifier(device="cpu")
    assert clf.contract.report_as_n == ("F",)
    rng = np.random.default_rng(1)
    probs = clf.predict_bare(rng.random((256, contract.BEAT_LEN), dtype=np.float32))
    assert (probs[:, contract.CLASSES.index("F")] == 0).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_a_v_call_on_time_and_shaped_like_the_dominant_beat_is_n():
    bc = model_contract("beat", TEMPLATE_FEATURES, 0)
    assert bc.dominant_gate == DOMINANT_GATE == (1.0, 0.7)
    probs = np.array([[0.1, 0.05, 0.8, 0.05, 0.0]], dtype=np.float32)

    def gated(**values: float) -> np.ndarray:
        return gate_dominant(probs, _with(bc, template_available=1.0, **values), bc)

    np.testing.assert_allclose(gated(rr_prev_long=1.05, template_corr=0.9),
                               [[0.9, 0.05, 0.0, 0.05, 0.0]])  # fmt: skip
    premature = {"rr_prev_long": 0.8, "template_corr": 0.95}
    escape = {"rr_prev_long": 1.3, "template_corr": 0.2}  # late, but not the dominant shape
    for kept in (premature, escape):
        np.testing.assert_array_equal(gated(**kept), probs)
    unlearned = _with(bc, rr_prev_long=1.1, template_corr=0.95)  # no template yet
    np.testing.assert_array_equal(gate_dominant(probs, unlearned, bc), probs)
    normal = np.array([[0.6, 0.0, 0.4, 0.0, 0.0]], dtype=np.float32)  # only V calls move
    np.testing.assert_array_equal(gate_dominant(normal, _with(bc, template_available=1.0), bc),
                                  normal)  # fmt: skip
    assert probs[0, 2] == np.float32(0.8)  # not in place
    off = model_contract("beat", TEMPLATE_FEATURES, 0, dominant_gate=False)
    on_time = _with(off, template_available=1.0, rr_prev_long=1.1, template_corr=0.95)
    np.testing.assert_array_equal(gate_dominant(probs, on_time, off), probs)
    assert model_contract("beat", FEATURES, 0).dominant_gate == ()  # no template to compare with


@pytest.mark.parametrize(
    ("name", "shipped", "bad"),
    [
        ("dominant_gate", DOMINANT_GATE, (1.0,)),
        ("s_gate", S_GATE, (0.8, 0.95)),
        ("af_v_gate", AF_V_GATE, (0.8,)),
        ("premature_s_gate", PREMATURE_S_GATE, (0.8, 0.8, 0.2)),
        ("wide_qrs_gate", WIDE_QRS_GATE, (0.5,)),
        ("unlike_s_gate", UNLIKE_S_GATE, (0.8, 0.2)),
    ],
)
def test_a_gate_travels_in_the_contract_and_is_checked(name, shipped, bad):
    bc = model_contract("beat", PWAVE_FEATURES, 1)
    back = contract.BeatContract.from_dict(bc.to_dict())
    assert back == bc and getattr(back, name) == shipped
    old = {k: v for k, v in bc.to_dict().items() if k != name}
    assert getattr(contract.BeatContract.from_dict(old), name) == ()  # a file from before it
    with pytest.raises(ValueError, match=name):
        dataclasses.replace(bc, **{name: bad})
    with pytest.raises(ValueError, match=name):  # no template to compare with
        dataclasses.replace(model_contract("beat", FEATURES, 0), **{name: shipped})
    assert getattr(model_contract("beat", FEATURES, 0), name) == ()
    assert getattr(parse_args([]).inputs, name) == shipped
    flag = "--no-" + name.replace("_", "-")
    assert getattr(parse_args([flag]).inputs, name) == ()


def test_an_s_call_that_is_not_premature_is_n():
    bc = model_contract("beat", TEMPLATE_FEATURES, 0)
    assert bc.s_gate == S_GATE == (0.95,)
    probs = np.array([[0.3, 0.45, 0.2, 0.05, 0.0]], dtype=np.float32)

    def gated(**values: float) -> np.ndarray:
        return gate_s(probs, _with(bc, template_available=1.0, **values), bc)

    np.testing.assert_allclose(gated(rr_prev_long=0.97), [[0.75, 0.0, 0.2, 0.05, 0.0]])
    np.testing.assert_array_equal(gated(rr_prev_long=0.7), probs)  # premature: S stays
    unlearned = _with(bc, rr_prev_long=1.2)  # the bed's learning period: no verdict
    np.testing.assert_array_equal(gate_s(probs, unlearned, bc), probs)
    np.testing.assert_array_equal(gate_s(probs, _with(bc), bc), probs)  # every feature absent
    normal = np.array([[0.6, 0.3, 0.1, 0.0, 0.0]], dtype=np.float32)  # only S calls move
    np.testing.assert_array_equal(
        gate_s(normal, _with(bc, template_available=1.0, rr_prev_long=1.1), bc), normal
    )
    assert probs[0, 1] == np.float32(0.45)  # not in place
    off = model_contract("beat", TEMPLATE_FEATURES, 0, s_gate=False)
    np.testing.assert_array_equal(
        gate_s(probs, _with(off, template_available=1.0, rr_prev_long=1.1), off), probs
    )
    late = _with(bc, template_available=1.0, rr_prev_long=1.1)
    assert decide(probs, late, bc).argmax() == contract.CLASSES.index("N")  # served so


def test_a_v_call_in_fibrillation_shaped_like_the_dominant_beat_is_n():
    bc = model_contract("beat", PWAVE_FEATURES, 0)
    assert bc.af_v_gate == AF_V_GATE == (0.8, 0.2)
    probs = np.array([[0.2, 0.05, 0.7, 0.05, 0.0]], dtype=np.float32)
    fibrillating = {"rr_entropy": 0.9, "rr_turning": 0.66, "rr_irregularity": 0.3}
    regular = {"rr_entropy": 0.3, "rr_turning": 0.4, "rr_irregularity": 0.02}

    def gated(rhythm: dict, **values: float) -> np.ndarray:
        return gate_af_v(probs, _with(bc, template_available=1.0, **rhythm, **values), bc)

    like = {"template_corr": 0.9, "p_coherence": 0.05}
    np.testing.assert_allclose(gated(fibrillating, **like), [[0.9, 0.05, 0.0, 0.05, 0.0]])
    for kept in (
        gated(fibrillating, template_corr=0.4, p_coherence=0.05),  # a PVC's own shape
        gated(fibrillating, template_corr=0.9, p_coherence=0.6),  # P waves: not fibrillation
        gated(regular, **like),  # regular RR: the dominant-beat gate's question, not this one
    ):
        np.testing.assert_array_equal(kept, probs)
    unlearned = _with(bc, **fibrillating, **like)  # no template yet
    np.testing.assert_array_equal(gate_af_v(probs, unlearned, bc), probs)
    normal = np.array([[0.6, 0.0, 0.4, 0.0, 0.0]], dtype=np.float32)  # only V calls move
    inside = _with(bc, template_available=1.0, **fibrillating, **like)
    np.testing.assert_array_equal(gate_af_v(normal, inside, bc), normal)
    assert probs[0, 2] == np.float32(0.7)  # not in place
    assert decide(probs, inside, bc).argmax() == contract.CLASSES.index("N")  # served so
    assert model_contract("beat", PWAVE_FEATURES, 0, af_gate=False).af_v_gate == ()
    with pytest.raises(ValueError, match="af_gate"):
        dataclasses.replace(bc, af_gate=())


def test_an_n_call_on_a_premature_beat_with_the_patients_own_qrs_is_s():
    bc = model_contract("beat", PWAVE_FEATURES, 0)
    assert bc.premature_s_gate == PREMATURE_S_GATE == (0.8, 0.8, 0.2, 0.05)
    probs = np.array([[0.8, 0.15, 0.05, 0.0, 0.0]], dtype=np.float32)
    regular = {"rr_entropy": 0.3, "rr_turning": 0.4, "rr_irregularity": 0.02}
    fibrillating = {"rr_entropy": 0.9, "rr_turning": 0.66, "rr_irregularity": 0.3}
    premature = {"rr_prev_long": 0.7, "template_corr": 0.95, "p_coherence": 0.6}

    def gated(p: np.ndarray = probs, rhythm: dict = regular, **values: float) -> np.ndarray:
        context = _with(bc, template_available=1.0, **rhythm, **{**premature, **values})
        return gate_premature_s(p, context, bc)

    np.testing.assert_allclose(gated(), [[0.0, 0.95, 0.05, 0.0, 0.0]])
    for kept in (
        gated(rr_prev_long=0.85),  # on time against the 5-minute mean
        gated(template_corr=0.5),  # not the patient's own QRS
        gated(p_coherence=0.1),  # no consistent P wave: fibrillation in the waveform
        gated(rhythm=fibrillating),  # an early beat in fibrillation is no premature beat
    ):
        np.testing.assert_array_equal(kept, probs)
    sure = np.array([[0.97, 0.01, 0.02, 0.0, 0.0]], dtype=np.float32)  # S all but excluded
    np.testing.assert_array_equal(gated(sure), sure)
    unlearned = _with(bc, **regular, **premature)  # the bed's learning period: no verdict
    np.testing.assert_array_equal(gate_premature_s(probs, unlearned, bc), probs)
    np.testing.assert_array_equal(gate_premature_s(probs, _with(bc), bc), probs)  # all absent
    ventricular = np.array([[0.3, 0.1, 0.6, 0.0, 0.0]], dtype=np.float32)  # only N calls move
    np.testing.assert_array_equal(gated(ventricular), ventricular)
    assert probs[0, 0] == np.float32(0.8)  # not in place
    inside = _with(bc, template_available=1.0, **regular, **premature)
    assert decide(probs, inside, bc).argmax() == contract.CLASSES.index("S")  # served so
    off = model_contract("beat", PWAVE_FEATURES, 0, premature_s_gate=False)
    np.testing.assert_array_equal(gate_premature_s(probs, inside, off), probs)
    assert model_contract("beat", PWAVE_FEATURES, 0, af_gate=False).premature_s_gate == ()
    with pytest.raises(ValueError, match="premature_s_gate asks af_gate"):
        dataclasses.replace(bc, af_gate=(), af_v_gate=())


#: The rules that report an S call V: gate, the features it needs, its shipped thresholds, the
#: context of a beat it moves, and changes to it that each keep the S call.
S_TO_V_GATES = {
    "wide_qrs_gate": (gate_wide_qrs, TEMPLATE_FEATURES, WIDE_QRS_GATE, (0.5, 0.5, 0.01),
                      {"width_log2": 1.0, "rr_prev_long": 0.7, "residual": 0.04}, (
        {"width_log2": 0.3},  # the patient's own width, or near it
        {"rr_prev_long": 0.4},  # far too early to be a beat: most often noise
        {"residual": 0.005},  # the template's own shape: the width reading is off
    )),
    "unlike_s_gate": (gate_unlike_s, PWAVE_FEATURES, UNLIKE_S_GATE, (0.8, 0.2, 0.5),
                      {"template_corr": 0.6, "p_coherence": 0.5, "rr_prev_long": 0.7}, (
        {"template_corr": 0.9},  # shaped like the patient's own beat: supraventricular
        {"p_coherence": 0.05},  # no consistent P wave: fibrillation, whose QRS varies
        {"rr_prev_long": 0.4},  # far too early to be a beat: most often noise
    )),
}  # fmt: skip


@pytest.mark.parametrize("name", list(S_TO_V_GATES))
def test_an_s_call_wider_than_or_unlike_the_patients_beat_is_v(name):
    gate, features, shipped, value, moved, keeps = S_TO_V_GATES[name]
    bc = model_contract("beat", features, 0)
    assert getattr(bc, name) == shipped == value
    probs = np.array([[0.3, 0.5, 0.15, 0.05, 0.0]], dtype=np.float32)

    def gated(p: np.ndarray = probs, **values: float) -> np.ndarray:
        return gate(p, _with(bc, template_available=1.0, **{**moved, **values}), bc)

    np.testing.assert_allclose(gated(), [[0.3, 0.0, 0.65, 0.05, 0.0]])
    for kept in keeps:
        np.testing.assert_array_equal(gated(**kept), probs)
    normal = np.array([[0.6, 0.3, 0.1, 0.0, 0.0]], dtype=np.float32)  # only S calls move
    np.testing.assert_array_equal(gated(normal), normal)
    unlearned = _with(bc, **moved)  # the bed's learning period: no verdict
    np.testing.assert_array_equal(gate(probs, unlearned, bc), probs)
    np.testing.assert_array_equal(gate(probs, _with(bc), bc), probs)  # all absent
    assert probs[0, 1] == np.float32(0.5)  # not in place
    inside = _with(bc, template_available=1.0, **moved)
    assert decide(probs, inside, bc).argmax() == contract.CLASSES.index("V")  # served so
    off = model_contract("beat", features, 0, **{name: False})
    np.testing.assert_array_equal(gate(probs, inside, off), probs)


def test_a_wide_qrs_gate_from_before_the_residual_guard_is_served_without_it():
    bc = model_contract("beat", TEMPLATE_FEATURES, 0)
    old = contract.BeatContract.from_dict({**bc.to_dict(), "wide_qrs_gate": [0.5, 0.5]})
    assert old.wide_qrs_gate == (0.5, 0.5)
    probs = np.array([[0.3, 0.5, 0.15, 0.05, 0.0]], dtype=np.float32)
    same_shape = _with(old, template_available=1.0, width_log2=1.0, rr_prev_long=0.7,
                       residual=0.0)  # fmt: skip
    assert gate_wide_qrs(probs, same_shape, old).argmax() == contract.CLASSES.index("V")
    assert gate_wide_qrs(probs, same_shape, bc).argmax() == contract.CLASSES.index("S")


def test_the_s_to_v_rules_need_what_they_read():
    bc = model_contract("beat", TEMPLATE_FEATURES, 0)
    with pytest.raises(ValueError, match="calls S and V"):
        dataclasses.replace(bc, classes=("N", "S"), s_gate=(), af_gate=(), dominant_gate=())
    assert bc.unlike_s_gate == ()  # no P-wave input: no fibrillation test in the waveform


def _wide_beats() -> np.ndarray:
    """Kachuee beats of a wide QRS (40-120 ms Gaussian and its opposite swing), either polarity:
    what the network calls ventricular."""
    t = np.arange(contract.BEAT_LEN) / contract.FS
    beats = []
    for width in (0.04, 0.06, 0.08, 0.1, 0.12):
        w = np.exp(-0.5 * (t / width) ** 2) - 0.4 * np.exp(-0.5 * ((t - 3 * width) / width) ** 2)
        for shape in (w, -w):
            beats.append((shape - shape.min()) / (shape.max() - shape.min()))
    return np.array(beats, dtype=np.float32)[:, None, :]


def test_the_shipped_model_calls_no_on_time_dominant_beat_v():
    clf = BeatClassifier(device="cpu")
    assert clf.contract.dominant_gate == DOMINANT_GATE
    assert clf.contract.s_gate == S_GATE
    assert clf.contract.af_v_gate == AF_V_GATE
    assert clf.contract.premature_s_gate == PREMATURE_S_GATE
    assert clf.contract.wide_qrs_gate == WIDE_QRS_GATE
    assert clf.contract.unlike_s_gate == UNLIKE_S_GATE
    x = _wide_beats()
    v = contract.CLASSES.index("V")
    on_time = np.repeat(_with(clf.contract, template_available=1.0, rr_prev_long=1.05,
                              template_corr=0.9), len(x), axis=0)  # fmt: skip
    early_unlike = np.repeat(_with(
        clf.contract, template_available=1.0, rr_prev_long=0.6, rr_prev_ratio=0.6,
        template_corr=0.1, template_corr_wide=0.1, width_log2=1.0, residual=0.5,
        cluster_share=0.05,
    ), len(x), axis=0)  # fmt: skip
    assert (clf.predict(x, early_unlike).argmax(axis=1) == v).all()
    assert (clf.predict(x, on_time).argmax(axis=1) != v).all()
    clf.contract = dataclasses.replace(clf.contract, dominant_gate=())  # the network's own calls
    assert (clf.predict(x, on_time).argmax(axis=1) == v).sum() >= len(x) // 2
