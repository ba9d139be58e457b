"""Export: the TorchScript file answers exactly as the trained network, and stays small."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from monitor import contract
from monitor.beats import extract_beats
from monitor.classifier import BeatClassifier, torchscript_deprecation_silenced
from monitor.errors import ContractError
from monitor.inputs import beat_inputs
from tests.synthetic import synthetic_ecg
from trainer.export import MAX_BYTES, export_torchscript
from trainer.model import CNNBiLSTM

#: A contract reading every input the core computes: three channels, every feature, 2 beats back.
FULL = dataclasses.replace(
    contract.CURRENT,
    channels=contract.CHANNELS,
    features=tuple(contract.FEATURES),
    sequence=2,
)


def _model(bc: contract.BeatContract, **kwargs) -> CNNBiLSTM:
    n_channels, n_context = bc.n_inputs()
    return CNNBiLSTM(in_channels=n_channels, n_context=n_context, sequence=bc.sequence, **kwargs)


def _inputs(bc: contract.BeatContract, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n_channels, n_context = bc.n_inputs()
    x = rng.random((n, n_channels, contract.BEAT_LEN), dtype=np.float32)
    return x, rng.uniform(0.4, 1.5, (n, n_context)).astype(np.float32)


def _eager_probs(model: CNNBiLSTM, x: np.ndarray, ctx: np.ndarray) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(x), torch.from_numpy(ctx))
    return torch.softmax(logits, dim=1).numpy()


@pytest.mark.parametrize("bc", [contract.CURRENT, FULL], ids=["default", "full"])
def test_exported_model_matches_eager_model(tmp_path, bc):
    torch.manual_seed(1)
    model = _model(bc)
    # Non-trivial batch-norm statistics, so eval mode is really exercised.
    model.train()
    with torch.no_grad():
        model(*(torch.from_numpy(a) for a in _inputs(bc, 64, seed=9)))
    path = export_torchscript(model, bc, tmp_path / "m.pt")
    x, ctx = _inputs(bc, 64)
    expected = _eager_probs(model, x, ctx)

    with torchscript_deprecation_silenced():
        loaded = torch.jit.load(str(path))
    with torch.no_grad():
        got = loaded(torch.from_numpy(x), torch.from_numpy(ctx)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)

    served = BeatClassifier(path, device="cpu")
    # Served frozen: the weights are constants and batch norm is folded into the convolutions.
    assert not list(served._module.parameters())
    assert "BatchNorm" not in str(served._module.graph)
    probs = served.predict(x, ctx)
    assert probs.dtype == np.float32 and probs.shape == (64, len(contract.CLASSES))
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert path.stat().st_size < MAX_BYTES


def test_context_changes_the_answer_only_when_the_model_reads_it(tmp_path):
    torch.manual_seed(2)
    for bc in (dataclasses.replace(contract.CURRENT, features=()), contract.CURRENT):
        x, ctx = _inputs(bc, 20)
        other = ctx * 0.5
        if not bc.features:  # nothing to change: compare with a context of the right width
            ctx, other = np.zeros((20, 0), np.float32), np.zeros((20, 0), np.float32)
        clf = BeatClassifier(export_torchscript(_model(bc), bc, tmp_path / "m.pt"))
        differs = not np.allclose(clf.predict(x, ctx), clf.predict(x, other))
        assert differs == bool(bc.features)


def test_checkpoint_rebuilds_the_same_model():
    torch.manual_seed(3)
    model = _model(FULL, kernel_size=3, lstm_hidden=16)
    rebuilt = CNNBiLSTM.from_checkpoint(model.checkpoint(epoch=1))
    assert rebuilt.args == model.args
    x, ctx = _inputs(FULL, 8)
    np.testing.assert_array_equal(_eager_probs(rebuilt, x, ctx), _eager_probs(model, x, ctx))


def test_classify_beats_and_reject_bad_shapes(tmp_path):
    torch.manual_seed(4)
    clf = BeatClassifier(export_torchscript(_model(FULL), FULL, tmp_path / "m.pt"))
    r_times = np.arange(0.5, 10, 0.8)
    beats = extract_beats(synthetic_ecg(r_times, 10.5, np.random.default_rng(0)), 250.0)[:3]
    preds = clf.classify(beats)
    x, ctx = beat_inputs(FULL, beats)
    assert x.shape == (3, 3, contract.BEAT_LEN) and ctx.shape == (3, 3 * len(contract.FEATURES))
    probs = clf.predict(x, ctx)
    assert [p.label for p in preds] == [contract.CLASSES[i] for i in probs.argmax(axis=1)]
    assert list(preds[0].probs) == list(contract.CLASSES)
    assert clf.classify([]) == []
    assert clf.predict_bare(x[:, 0]).shape == (3, len(contract.CLASSES))
    with pytest.raises(ValueError, match="x must have shape"):
        clf.predict(x[:, :, :100], ctx)
    with pytest.raises(ValueError, match="context must have shape"):
        clf.predict(x, ctx[:2])
    bad = x.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        clf.predict(bad, ctx)


def test_classifier_refuses_a_model_exported_with_other_classes(tmp_path):
    model = CNNBiLSTM(n_classes=3)
    other = dataclasses.replace(contract.CURRENT, classes=("N", "S", "V"))
    with pytest.raises(ContractError, match="classes"):
        BeatClassifier(export_torchscript(model, other, tmp_path / "m.pt"))
