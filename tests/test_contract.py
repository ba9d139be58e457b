"""The beat contract travels inside the model file, and a file cut by other rules is refused."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from monitor import contract
from monitor.classifier import BeatClassifier, read_contract, torchscript_deprecation_silenced
from monitor.errors import ContractError, InputError
from trainer.export import export_torchscript
from trainer.model import CNNBiLSTM


@pytest.fixture(scope="module")
def model() -> CNNBiLSTM:
    torch.manual_seed(0)
    return CNNBiLSTM(channels=(4, 4, 4), lstm_hidden=4, dense=4)


def test_contract_dict_round_trip():
    c = dataclasses.replace(contract.CURRENT, model_version="v1", extra={"seed": "3"})
    assert contract.BeatContract.from_dict(c.to_dict()) == c


def test_contract_round_trips_through_saved_file(model, tmp_path):
    c = dataclasses.replace(
        contract.CURRENT, model_version="v7", data_split="inter", data_hash="abc", extra={"k": "v"}
    )
    path = export_torchscript(model, c, tmp_path / "m.pt")
    _, found = read_contract(path)
    assert found == c
    clf = BeatClassifier(path, device="cpu")
    assert clf.contract == c
    assert clf.version == "v7"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("fs", 360.0),
        ("beat_len", 186),
        ("classes", ("N", "S", "V", "F")),
        ("normalisation", "z-score"),
        ("rr_features", ("rr_prev",)),
    ],
)
def test_classifier_refuses_a_different_contract_naming_the_field(model, tmp_path, field, value):
    path = export_torchscript(
        model, dataclasses.replace(contract.CURRENT, **{field: value}), tmp_path / "m.pt"
    )
    with pytest.raises(ContractError) as err:
        BeatClassifier(path, device="cpu")
    message = str(err.value)
    assert f"{field}: expected" in message
    assert "retrain and export" in message
    assert "\n" not in message


def test_provenance_differences_are_accepted(model, tmp_path):
    c = dataclasses.replace(contract.CURRENT, model_version="other", data_hash="x", extra={})
    assert BeatClassifier(export_torchscript(model, c, tmp_path / "m.pt")).version == "other"


def test_file_without_contract_is_refused(model, tmp_path):
    path = tmp_path / "bare.pt"
    with torchscript_deprecation_silenced():
        torch.jit.save(torch.jit.script(model.eval()), str(path))
    with pytest.raises(ContractError, match="carries no beat contract"):
        BeatClassifier(path)


def test_missing_and_garbage_files_are_input_errors(tmp_path):
    with pytest.raises(InputError, match=r"nope\.pt not found"):
        BeatClassifier(tmp_path / "nope.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(InputError, match="not a TorchScript model file"):
        BeatClassifier(junk)


def test_env_var_selects_the_model(model, tmp_path, monkeypatch):
    path = export_torchscript(
        model, dataclasses.replace(contract.CURRENT, model_version="from-env"), tmp_path / "e.pt"
    )
    monkeypatch.setenv("ECG_MODEL", str(path))
    assert BeatClassifier().version == "from-env"
