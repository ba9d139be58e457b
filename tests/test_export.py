"""Export: the TorchScript file answers exactly as the trained network, and stays small."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from monitor import contract
from monitor.beats import Beat
from monitor.classifier import BeatClassifier, torchscript_deprecation_silenced
from monitor.errors import ContractError
from trainer.export import MAX_BYTES, export_torchscript
from trainer.model import CNNBiLSTM


def _inputs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.random((n, contract.BEAT_LEN), dtype=np.float32)
    rr = np.column_stack([rng.uniform(0.5, 1.5, (n, 2)), rng.uniform(0.4, 1.5, n), np.ones(n)])
    return x, rr.astype(np.float32)


def _eager_probs(model: CNNBiLSTM, x: np.ndarray, rr: np.ndarray) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(x).unsqueeze(1), torch.from_numpy(rr))
    return torch.softmax(logits, dim=1).numpy()


@pytest.mark.parametrize("use_rr", [True, False])
def test_exported_model_matches_eager_model(tmp_path, use_rr):
    torch.manual_seed(1)
    model = CNNBiLSTM(use_rr=use_rr)
    # Non-trivial batch-norm statistics, so eval mode is really exercised.
    model.train()
    with torch.no_grad():
        model(torch.rand(64, 1, contract.BEAT_LEN), torch.rand(64, 4))
    path = export_torchscript(model, contract.CURRENT, tmp_path / "m.pt")
    x, rr = _inputs(64)
    expected = _eager_probs(model, x, rr)

    with torchscript_deprecation_silenced():
        loaded = torch.jit.load(str(path))
    with torch.no_grad():
        got = loaded(torch.from_numpy(x).unsqueeze(1), torch.from_numpy(rr)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)

    probs = BeatClassifier(path, device="cpu").predict(x, rr)
    assert probs.dtype == np.float32 and probs.shape == (64, len(contract.CLASSES))
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert path.stat().st_size < MAX_BYTES


def test_rr_features_change_the_answer_only_when_used(tmp_path):
    torch.manual_seed(2)
    x, rr = _inputs(20)
    rr_other = rr.copy()
    rr_other[:, 0] *= 0.5
    for use_rr in (True, False):
        model = CNNBiLSTM(use_rr=use_rr)
        clf = BeatClassifier(export_torchscript(model, contract.CURRENT, tmp_path / "m.pt"))
        differs = not np.allclose(clf.predict(x, rr), clf.predict(x, rr_other))
        assert differs == use_rr


def test_checkpoint_rebuilds_the_same_model():
    torch.manual_seed(3)
    model = CNNBiLSTM(use_rr=False, kernel_size=3, lstm_hidden=16)
    rebuilt = CNNBiLSTM.from_checkpoint(model.checkpoint(epoch=1))
    assert rebuilt.args == model.args
    x, rr = _inputs(8)
    np.testing.assert_array_equal(_eager_probs(rebuilt, x, rr), _eager_probs(model, x, rr))


def test_classify_beats_and_reject_bad_shapes(tmp_path):
    torch.manual_seed(4)
    model = CNNBiLSTM()
    clf = BeatClassifier(export_torchscript(model, contract.CURRENT, tmp_path / "m.pt"))
    x, rr = _inputs(3)
    beats = [
        Beat(
            index=100 * i,
            index_125=35 * i,
            waveform=x[i],
            rr_prev=0.8 * r[0],
            rr_next=0.8 * r[1],
            rr_local=0.8,
        )
        for i, r in enumerate(rr)
    ]
    preds = clf.classify(beats)
    probs = clf.predict(x, np.stack([b.rr_features() for b in beats]))
    assert [p.label for p in preds] == [contract.CLASSES[i] for i in probs.argmax(axis=1)]
    assert list(preds[0].probs) == list(contract.CLASSES)
    assert clf.classify([]) == []
    with pytest.raises(ValueError, match="waveforms must have shape"):
        clf.predict(x[:, :100], rr)
    with pytest.raises(ValueError, match="rr must have shape"):
        clf.predict(x, rr[:2])
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        clf.predict(bad, rr)


def test_classifier_refuses_a_model_exported_with_other_classes(tmp_path):
    model = CNNBiLSTM(n_classes=3)
    other = dataclasses.replace(contract.CURRENT, classes=("N", "S", "V"))
    with pytest.raises(ContractError, match="classes"):
        BeatClassifier(export_torchscript(model, other, tmp_path / "m.pt"))
