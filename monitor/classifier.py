"""Serving-side beat classification from a TorchScript model file.

Only torch, numpy and monitor are imported: a monitor deployment needs no trainer code. The
file's embedded contract is checked against this code base before any beat is classified, so a
model cut by different rules (rate, length, scaling, RR inputs, classes) is refused up front
instead of producing confident nonsense.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from monitor import contract
from monitor.contract import BeatContract
from monitor.errors import ContractError, InputError

if TYPE_CHECKING:
    from monitor.beats import Beat

ENV_MODEL = "ECG_MODEL"
#: The shipped model.
DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "models" / "ecg_cnn_bilstm.pt"
#: Name of the contract inside the TorchScript archive (written by trainer.export).
CONTRACT_FILE = "contract.json"
#: Beats per forward pass: bounds memory, and larger batches run slower on CPU (cache; see
#: benchmarks/inference.py: 4.5k beats/s at 256 against 3.5k at 1024 on 2 cores).
BATCH = 256


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one beat."""

    label: str
    probs: dict[str, float]


@contextmanager
def torchscript_deprecation_silenced() -> Iterator[None]:
    """TorchScript is deprecated upstream, but it is this project's file format on purpose.

    A .pt file that `torch.jit.load` alone can run needs no Python class definitions on the
    serving side; the warning would only repeat on every load and export.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"`torch\.jit\.\w+` is deprecated", category=DeprecationWarning
        )
        yield


def resolve_model_path(path: str | Path | None = None) -> Path:
    """The model to load: the argument, else $ECG_MODEL, else the shipped model."""
    chosen = path or os.environ.get(ENV_MODEL) or DEFAULT_MODEL
    return Path(chosen).expanduser()


def _pick_device(device: str | torch.device) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:n]', got {device!r}") from exc


def read_contract(path: str | Path) -> tuple[torch.jit.ScriptModule, BeatContract]:
    """Load a model file and its embedded contract, refusing a file that is not a model."""
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"model file {path} not found; train one (python -m trainer.train --export {path}) "
            f"or point ${ENV_MODEL} at one"
        )
    extra = {CONTRACT_FILE: ""}
    try:
        with torchscript_deprecation_silenced():
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as exc:  # torch raises RuntimeError/ValueError/zip errors for bad files
        raise InputError(f"{path} is not a TorchScript model file: {exc}") from exc
    if not extra[CONTRACT_FILE]:
        raise ContractError(
            f"{path} carries no beat contract; export it with trainer.export.export_torchscript"
        )
    try:
        found = BeatContract.from_dict(json.loads(extra[CONTRACT_FILE]))
    except (ValueError, TypeError) as exc:
        raise ContractError(f"{path}: unreadable embedded contract ({exc})") from exc
    return module, found


class BeatClassifier:
    """A loaded model: waveforms + RR features in, class probabilities out."""

    def __init__(self, path: str | Path | None = None, device: str = "auto") -> None:
        self.path = resolve_model_path(path)
        self.device = _pick_device(device)
        module, found = read_contract(self.path)
        diffs = contract.CURRENT.mismatches(found)
        if diffs:
            raise ContractError(
                f"{self.path} was exported under a different beat contract ({'; '.join(diffs)}); "
                f"retrain and export it with this version: python -m trainer.train "
                f"--export {self.path}"
            )
        self.contract = found
        self.classes = found.classes
        self._module = module.to(self.device).eval()

    @property
    def version(self) -> str:
        return self.contract.model_version

    def predict(self, waveforms: np.ndarray, rr: np.ndarray) -> np.ndarray:
        """Class probabilities (n, n_classes) float32 for beats (n, BEAT_LEN) and RR (n, 4)."""
        x = np.asarray(waveforms, dtype=np.float32)
        r = np.asarray(rr, dtype=np.float32)
        beat_len, n_rr = self.contract.beat_len, len(self.contract.rr_features)
        if x.ndim != 2 or x.shape[1] != beat_len:
            raise ValueError(f"waveforms must have shape (n, {beat_len}), got {x.shape}")
        if r.shape != (len(x), n_rr):
            raise ValueError(f"rr must have shape ({len(x)}, {n_rr}), got {r.shape}")
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(r))):
            raise ValueError("waveforms and rr must be finite (NaN or infinite values found)")
        out = np.zeros((len(x), len(self.classes)), dtype=np.float32)
        with torch.inference_mode():
            for i in range(0, len(x), BATCH):
                xb = torch.from_numpy(x[i : i + BATCH]).unsqueeze(1).to(self.device)
                rb = torch.from_numpy(r[i : i + BATCH]).to(self.device)
                out[i : i + BATCH] = self._module(xb, rb).float().cpu().numpy()
        return out

    def classify(self, beats: Sequence[Beat]) -> list[Prediction]:
        """One prediction per beat, in order."""
        if not beats:
            return []
        probs = self.predict(
            np.stack([b.waveform for b in beats]), np.stack([b.rr_features() for b in beats])
        )
        return [
            Prediction(
                label=self.classes[int(np.argmax(p))],
                probs={c: float(v) for c, v in zip(self.classes, p, strict=True)},
            )
            for p in probs
        ]
