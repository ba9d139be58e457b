"""Ship a trained model as one TorchScript file that carries its own beat contract.

The serving side loads the file with `torch.jit.load` alone (no trainer code, no Python class
definitions), and reads the embedded contract to refuse a model cut by different rules. Beside
it goes `<model>.sha256`, its pin: a model file is code, and the loader checks the pin first.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import torch
from torch import nn

from monitor.classifier import (
    CONTRACT_FILE,
    PIN_SUFFIX,
    file_sha256,
    torchscript_deprecation_silenced,
)
from monitor.contract import BeatContract

#: A model file beyond this is a mistake (the network has ~0.23 M parameters, about 1 MB).
MAX_BYTES = 20 * 1024 * 1024


class ProbabilityModel(nn.Module):
    """The network with its softmax: the exported file answers in probabilities."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, rr: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(x, rr), dim=1)


def export_torchscript(model: nn.Module, contract: BeatContract, path: str | Path) -> Path:
    """Script `model` (logits out) into `path` (probabilities out) with `contract` embedded."""
    wrapped = ProbabilityModel(copy.deepcopy(model).cpu().eval()).eval()
    with torchscript_deprecation_silenced():
        scripted = torch.jit.script(wrapped)
    return save_scripted(scripted, contract, path)


def save_scripted(
    scripted: torch.jit.ScriptModule, contract: BeatContract, path: str | Path
) -> Path:
    """Write a scripted model (probabilities out) with `contract` embedded, and its pin."""
    if not isinstance(contract, BeatContract):
        raise ValueError(f"contract must be a BeatContract, got {type(contract).__name__}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    extra = {CONTRACT_FILE: json.dumps(contract.to_dict(), indent=2, sort_keys=True)}
    with torchscript_deprecation_silenced():
        torch.jit.save(scripted, str(tmp), _extra_files=extra)
    size = tmp.stat().st_size
    if size > MAX_BYTES:
        tmp.unlink()
        raise ValueError(f"exported model is {size / 2**20:.1f} MB, over the 20 MB limit")
    tmp.replace(path)  # a serving process never sees a half-written model
    pin = path.with_name(path.name + PIN_SUFFIX)
    pin.write_text(f"{file_sha256(path)}  {path.name}\n")  # sha256sum -c reads it too
    return path


def fingerprints(weights: dict[str, torch.Tensor], contract: BeatContract) -> tuple[str, str]:
    """(weights hash, version hash) of a network's `weights` (its state dict) served under
    `contract`: the version hash covers the weights and the model's choices (inputs and
    decision rules), so the same weights served by other rules are another version."""
    h = hashlib.sha256()
    for v in weights.values():
        h.update(v.detach().cpu().numpy().tobytes())
    weights_hash = h.hexdigest()[:8]
    choices = {name: getattr(contract, name) for name in BeatContract.CHOICES}
    h.update(json.dumps(choices, sort_keys=True).encode())
    return weights_hash, h.hexdigest()[:8]
