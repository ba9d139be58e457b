"""Serving-side beat classification from a TorchScript model file.

Only torch, numpy and monitor are imported: a monitor deployment needs no trainer code. The
file's embedded contract is checked against this code base before any beat is classified, so a
model cut by different rules (rate, length, scaling, context rules, classes) is refused up front
instead of producing confident nonsense. The contract also names the inputs the model reads;
`monitor.inputs` selects them from what the per-bed core computed.
"""

from __future__ import annotations

import hashlib
import json
import logging
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
from monitor.decision import decide
from monitor.errors import ContractError, InputError
from monitor.inputs import absent_context, beat_inputs, select

if TYPE_CHECKING:
    from monitor.beats import Beat

log = logging.getLogger(__name__)

ENV_MODEL = "ECG_MODEL"
#: A model file is executable code (TorchScript): its SHA-256, when pinned here or in a
#: `<model>.sha256` file beside it (written by the trainer's export), is checked before loading.
ENV_MODEL_SHA256 = "ECG_MODEL_SHA256"
PIN_SUFFIX = ".sha256"
#: The shipped model.
DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "models" / "ecg_cnn_bilstm.pt"
#: Name of the contract inside the TorchScript archive (written by trainer.export).
CONTRACT_FILE = "contract.json"
#: Beats per forward pass: bounds memory, and larger batches run slower on CPU (cache; see
#: benchmarks/inference.py, 2 cores, 2026-12-02: 5.3k and 7.7k beats/s at 256 in two runs,
#: 5.0k and 7.3k at 1024).
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


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pinned_sha256(path: Path, sha256: str | None = None) -> str | None:
    """The SHA-256 the model file must have: the argument, else $ECG_MODEL_SHA256, else the
    first word of `<model>.sha256` beside it (sha256sum's format); None when nothing pins it."""
    if sha256:
        return sha256.strip().lower()
    if os.environ.get(ENV_MODEL_SHA256):
        return os.environ[ENV_MODEL_SHA256].strip().lower()
    pin = path.with_name(path.name + PIN_SUFFIX)
    if pin.is_file():
        words = pin.read_text().split()
        return words[0].lower() if words else ""
    return None


def check_pin(path: Path, sha256: str | None = None) -> bool:
    """Refuse a model file whose SHA-256 differs from its pin; False when it has none."""
    expected = pinned_sha256(path, sha256)
    if expected is None:
        return False
    found = file_sha256(path)
    if found != expected:
        raise ContractError(
            f"{path} has SHA-256 {found}, not the pinned {expected or '(empty pin)'}: refusing "
            f"to load it (a model file is code); re-export it or fix the pin"
        )
    return True


def frozen(module: torch.jit.ScriptModule) -> torch.jit.ScriptModule:
    """The module in eval mode with its weights made constants and batch norm folded into the
    convolutions (`torch.jit.freeze`): on the 2-core CPU machine about a quarter less CPU per
    beat at batch 256 (`benchmarks/inference.py`), probabilities within 1e-6 of the module as
    loaded (which itself differs by as much between batch sizes)."""
    with torchscript_deprecation_silenced():
        return torch.jit.freeze(module.eval())


def _pick_device(device: str | torch.device) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:n]', got {device!r}") from exc


def read_contract(
    path: str | Path, sha256: str | None = None
) -> tuple[torch.jit.ScriptModule, BeatContract]:
    """Load a model file and its embedded contract, refusing a file that is not a model or
    that differs from its pinned SHA-256."""
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"model file {path} not found; train one (python -m trainer.train --export {path}) "
            f"or point ${ENV_MODEL} at one"
        )
    if not check_pin(path, sha256):
        log.warning(
            "model file %s has no pinned SHA-256 (%s or %s%s): it is loaded unchecked, and a "
            "model file is code", path, ENV_MODEL_SHA256, path.name, PIN_SUFFIX,
        )  # fmt: skip
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
    """A loaded model: beats (or their inputs) in, class probabilities out."""

    def __init__(
        self, path: str | Path | None = None, device: str = "auto", sha256: str | None = None
    ) -> None:
        self.path = resolve_model_path(path)
        self.device = _pick_device(device)
        module, found = read_contract(self.path, sha256)
        diffs = contract.CURRENT.mismatches(found)
        if diffs:
            raise ContractError(
                f"{self.path} was exported under a different beat contract ({'; '.join(diffs)}); "
                f"retrain and export it with this version: python -m trainer.train "
                f"--export {self.path}"
            )
        self.contract = found
        self.classes = found.classes
        self._module = frozen(module.to(self.device))

    @property
    def version(self) -> str:
        return self.contract.model_version

    def predict(self, x: np.ndarray, context: np.ndarray) -> np.ndarray:
        """Class probabilities (n, n_classes) float32 for model inputs built by `monitor.inputs`:
        waveform channels `x` (n, channels, beat_len) and context values (n, k); the model's
        decision rules (`monitor.decision`) applied."""
        x = np.asarray(x, dtype=np.float32)
        r = np.asarray(context, dtype=np.float32)
        n_channels, n_context = self.contract.n_inputs()
        shape = (n_channels, self.contract.beat_len)
        if x.ndim != 3 or x.shape[1:] != shape:
            raise ValueError(f"x must have shape (n, {shape[0]}, {shape[1]}), got {x.shape}")
        if r.shape != (len(x), n_context):
            raise ValueError(f"context must have shape ({len(x)}, {n_context}), got {r.shape}")
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(r))):
            raise ValueError("x and context must be finite (NaN or infinite values found)")
        out = np.zeros((len(x), len(self.classes)), dtype=np.float32)
        with torch.inference_mode():
            for i in range(0, len(x), BATCH):
                xb = torch.from_numpy(x[i : i + BATCH]).to(self.device)
                rb = torch.from_numpy(r[i : i + BATCH]).to(self.device)
                out[i : i + BATCH] = self._module(xb, rb).float().cpu().numpy()
        return decide(out, r, self.contract)

    def predict_beats(self, beats: Sequence[Beat]) -> np.ndarray:
        """Class probabilities (n, n_classes) for beats cut by `monitor.beats.BeatExtractor`."""
        if not beats:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        return self.predict(*beat_inputs(self.contract, beats))

    def predict_bare(self, waveforms: np.ndarray) -> np.ndarray:
        """Class probabilities for bare 187-sample beats (Kaggle rows): every context absent."""
        w = np.asarray(waveforms, dtype=np.float32)
        if w.ndim != 2 or w.shape[1] != self.contract.beat_len:
            raise ValueError(
                f"waveforms must have shape (n, {self.contract.beat_len}), got {w.shape}"
            )
        return self.predict(*select(self.contract, *absent_context(w)))

    def classify(self, beats: Sequence[Beat]) -> list[Prediction]:
        """One prediction per beat, in order."""
        return [
            Prediction(
                label=self.classes[int(np.argmax(p))],
                probs={c: float(v) for c, v in zip(self.classes, p, strict=True)},
            )
            for p in self.predict_beats(beats)
        ]
