"""Re-export: the same network and weights, today's decision rules, a new version."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from monitor import contract
from monitor.classifier import BeatClassifier, check_pin, read_contract
from monitor.errors import ContractError
from trainer import reexport
from trainer.export import export_torchscript, fingerprints
from trainer.model import CNNBiLSTM
from trainer.train import UNLIKE_S_GATE, model_contract

FEATURES = "rr_local,rr_long,rhythm,template,pwave,af"


def _exported(tmp_path, **rules: bool) -> tuple[CNNBiLSTM, contract.BeatContract]:
    """A small network exported under the trainer's rules less those turned off."""
    bc = model_contract("beat", FEATURES, 2, **rules)
    torch.manual_seed(3)
    n_channels, n_context = bc.n_inputs()
    model = CNNBiLSTM(in_channels=n_channels, n_context=n_context, sequence=2).eval()
    weights, _ = fingerprints(model.state_dict(), bc)
    bc = dataclasses.replace(
        bc, model_version="cnn-bilstm-inter-20260101-00000000",
        extra={"weights_hash": weights, "command": "python -m trainer.train --seed 0"},
    )  # fmt: skip
    export_torchscript(model, bc, tmp_path / "m.pt")
    return model, bc


def _network(path) -> np.ndarray:
    """The file's network answers (before any decision rule) on fixed inputs."""
    module, bc = read_contract(path)
    n_channels, n_context = bc.n_inputs()
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.random((8, n_channels, contract.BEAT_LEN), dtype=np.float32))
    ctx = torch.from_numpy(rng.uniform(0.4, 1.5, (8, n_context)).astype(np.float32))
    with torch.no_grad():
        return module(x, ctx).numpy()


def test_a_reexported_model_keeps_its_network_and_takes_todays_rules(tmp_path, capsys):
    _, old = _exported(tmp_path, unlike_s_gate=False)
    path = tmp_path / "m.pt"
    before = _network(path)
    assert old.unlike_s_gate == ()
    assert reexport.main([str(path)]) == 0
    assert "unlike_s_gate: none -> (0.8, 0.2, 0.5)" in capsys.readouterr().out
    assert check_pin(path)  # the pin is written again with the file
    new = BeatClassifier(path).contract
    assert new.unlike_s_gate == UNLIKE_S_GATE
    assert [getattr(new, g) for g in old.GATES if g != "unlike_s_gate"] == [
        getattr(old, g) for g in old.GATES if g != "unlike_s_gate"
    ]
    np.testing.assert_array_equal(_network(path), before)  # the same weights, bit for bit
    assert new.extra["weights_hash"] == old.extra["weights_hash"]
    assert new.extra["command"] == old.extra["command"]  # how the weights were trained
    assert new.extra["reexported_from"] == old.model_version
    assert new.model_version.startswith("cnn-bilstm-inter-")
    assert new.model_version != old.model_version


def test_a_model_cut_by_other_beat_rules_is_refused(tmp_path):
    model, bc = _exported(tmp_path)
    other = dataclasses.replace(bc, window_rr=bc.window_rr + 0.1)
    export_torchscript(model, other, tmp_path / "m.pt")
    with pytest.raises(ContractError, match="window_rr"):
        reexport.reexported(tmp_path / "m.pt", [])


def test_a_model_whose_weights_do_not_match_its_record_is_refused(tmp_path):
    model, bc = _exported(tmp_path)
    wrong = dataclasses.replace(bc, extra={**bc.extra, "weights_hash": "deadbeef"})
    export_torchscript(model, wrong, tmp_path / "m.pt")
    with pytest.raises(ContractError, match="weights_hash"):
        reexport.reexported(tmp_path / "m.pt", [])
