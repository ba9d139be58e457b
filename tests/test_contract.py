"""The beat contract travels inside the model file, and a file cut by other rules is refused."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from monitor import contract
from monitor.classifier import (
    DEFAULT_MODEL,
    BeatClassifier,
    file_sha256,
    read_contract,
    torchscript_deprecation_silenced,
)
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
        ("window_rr", 1.3),
        ("local_rr_beats", 6),
        ("long_rr_s", 120.0),
        ("morph_pre_s", 0.25),
        ("template_match_corr", 0.8),
        ("template_learn", 4),
        ("template_family_width", 2.0),
        ("contract_version", 1),
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


def test_every_constant_that_shapes_an_input_is_a_contract_field():
    """Changing one of these constants must refuse an old model, so each is compared."""
    compared = set(contract.BeatContract.__dataclass_fields__) - set(
        contract.BeatContract.PROVENANCE + contract.BeatContract.CHOICES
    )
    shaping = {
        "FS", "BEAT_LEN", "WINDOW_RR", "LOCAL_RR_BEATS", "LONG_RR_S", "MORPH_PRE_S",
        "MORPH_POST_S", "QRS_PRE_S", "QRS_POST_S", "ALIGN_SAMPLES", "CLASSES",
        *(name for name in vars(contract) if name.startswith("TEMPLATE_")),
    }  # fmt: skip
    assert {name.lower() for name in shaping} <= compared
    for name in shaping:
        assert getattr(contract.CURRENT, name.lower()) == getattr(contract, name)


def test_description_is_generated_from_the_fields():
    c = dataclasses.replace(contract.CURRENT, long_rr_s=120.0, features=("rr_available",))
    assert "trailing 120 s" in c.normalisation and "features rr_available" in c.normalisation
    assert c.to_dict()["normalisation"] == c.normalisation


def test_a_version_1_file_is_refused_with_the_version_named(tmp_path):
    """Files exported before contract 2 carry rr_features and no version: refused, not guessed."""
    v1 = {
        "fs": 125.0, "beat_len": 187, "classes": list(contract.CLASSES),
        "normalisation": "min-max", "rr_features": ["rr_prev_ratio"], "model_version": "old",
    }  # fmt: skip
    found = contract.BeatContract.from_dict(v1)
    assert "contract_version: expected 3, file has 1" in contract.CURRENT.mismatches(found)


@pytest.mark.parametrize(
    ("choice", "value"),
    [("channels", ("beat", "morph", "template")), ("features", ()), ("sequence", 3)],
)
def test_a_model_may_read_any_inputs_the_core_computes(tmp_path, choice, value):
    c = dataclasses.replace(contract.CURRENT, **{choice: value})
    n_channels, n_context = c.n_inputs()
    torch.manual_seed(0)
    model = CNNBiLSTM(
        in_channels=n_channels, n_context=n_context, sequence=c.sequence,
        channels=(4, 4, 4), lstm_hidden=4, dense=4,
    )  # fmt: skip
    assert BeatClassifier(export_torchscript(model, c, tmp_path / "m.pt")).contract == c


def test_unknown_inputs_are_refused(tmp_path, model):
    path = export_torchscript(model, contract.CURRENT, tmp_path / "m.pt")
    text = json.dumps({**contract.CURRENT.to_dict(), "features": ["rr_prev_ratio", "qt_ms"]})
    with torchscript_deprecation_silenced():
        module = torch.jit.load(str(path))
        torch.jit.save(module, str(path), _extra_files={"contract.json": text})
    with pytest.raises(ContractError, match="unknown channels or features: qt_ms"):
        BeatClassifier(path, sha256=file_sha256(path))


def test_a_model_file_that_differs_from_its_pin_is_never_loaded(model, tmp_path, monkeypatch):
    """A model file is code: the export pins its SHA-256 beside it, the loader checks first."""
    path = export_torchscript(model, contract.CURRENT, tmp_path / "m.pt")
    pin = tmp_path / "m.pt.sha256"
    assert pin.read_text().split() == [file_sha256(path), "m.pt"]
    assert BeatClassifier(path).version == contract.CURRENT.model_version
    with open(path, "ab") as f:
        f.write(b"\0")  # one byte appended: still a loadable zip archive
    with pytest.raises(ContractError, match="not the pinned"):
        BeatClassifier(path)
    pin.unlink()
    assert BeatClassifier(path).version == contract.CURRENT.model_version  # unpinned: warned
    monkeypatch.setenv("ECG_MODEL_SHA256", "0" * 64)
    with pytest.raises(ContractError, match="not the pinned 0000"):
        BeatClassifier(path)


def test_the_shipped_model_matches_the_pin_in_its_card():
    card = (DEFAULT_MODEL.parent / "README.md").read_text()
    pin = (DEFAULT_MODEL.parent / (DEFAULT_MODEL.name + ".sha256")).read_text().split()[0]
    assert pin == file_sha256(DEFAULT_MODEL)
    assert f"`{pin}`" in card


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
