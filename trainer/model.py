"""The beat classifier: a small CNN for QRS/T morphology, a BiLSTM for its order, RR for rhythm.

Morphology alone cannot tell a premature normal-looking (S) beat from a normal one; the RR
ratios can, so they join the learned features right before the dense layer. The model stores
its constructor arguments so a checkpoint rebuilds itself without the caller knowing them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from monitor import contract


class CNNBiLSTM(nn.Module):
    """Conv blocks (conv + batch norm + ReLU + max-pool) -> BiLSTM -> [features, RR] -> dense.

    `morph_dropout` (training only) blanks the waveform features of that share of beats.
    """

    def __init__(
        self,
        n_classes: int = len(contract.CLASSES),
        use_rr: bool = True,
        channels: Sequence[int] = (64, 128, 128),
        kernel_size: int = 5,
        lstm_hidden: int = 64,
        dense: int = 64,
        dropout: float = 0.5,
        n_rr: int = len(contract.RR_FEATURES),
        morph_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"n_classes must be at least 2, got {n_classes}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd number, got {kernel_size}")
        if not 0.0 <= morph_dropout < 1.0:
            raise ValueError(f"morph_dropout must be in [0, 1), got {morph_dropout}")
        if morph_dropout and not use_rr:
            raise ValueError("morph_dropout needs use_rr: without RR the head would see nothing")
        self.args = {
            "n_classes": n_classes,
            "use_rr": use_rr,
            "channels": list(channels),
            "kernel_size": kernel_size,
            "lstm_hidden": lstm_hidden,
            "dense": dense,
            "dropout": dropout,
            "n_rr": n_rr,
            "morph_dropout": morph_dropout,
        }
        self.use_rr = use_rr
        self.morph_dropout = morph_dropout
        blocks: list[nn.Module] = []
        c_in = 1
        for c_out in channels:
            blocks += [
                nn.Conv1d(c_in, c_out, kernel_size, padding=kernel_size // 2, bias=False),
                nn.BatchNorm1d(c_out),
                nn.ReLU(inplace=True),
                nn.MaxPool1d(2),
            ]
            c_in = c_out
        self.features = nn.Sequential(*blocks)
        self.lstm = nn.LSTM(c_in, lstm_hidden, batch_first=True, bidirectional=True)
        head_in = 2 * lstm_hidden + (n_rr if use_rr else 0)
        self.head = nn.Sequential(
            nn.Linear(head_in, dense),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(dense, n_classes),
        )

    def forward(self, x: torch.Tensor, rr: torch.Tensor) -> torch.Tensor:
        """Logits (n, n_classes) for waveforms `x` (n, 1, BEAT_LEN) and RR features `rr` (n, 4).

        `rr` is taken even when unused so every model has the same calling convention.
        """
        h = self.features(x).transpose(1, 2)  # (n, steps, channels)
        out, _ = self.lstm(h)
        half = out.shape[2] // 2
        # Forward direction's last step and backward direction's first: the whole beat each way.
        z = torch.cat([out[:, -1, :half], out[:, 0, half:]], dim=1)
        if self.training and self.morph_dropout > 0:
            # Hide the waveform from some beats, so the head must also learn to decide from
            # rhythm alone: morphology memorises training patients, RR ratios transfer.
            keep = torch.rand(z.shape[0], 1, device=z.device) >= self.morph_dropout
            z = z * keep.to(z.dtype)
        if self.use_rr:
            z = torch.cat([z, rr], dim=1)
        return self.head(z)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def checkpoint(self, **extra: Any) -> dict[str, Any]:
        """Everything needed to rebuild this model: constructor args, weights, and `extra`."""
        return {"model_args": dict(self.args), "state_dict": self.state_dict(), **extra}

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> CNNBiLSTM:
        model = cls(**ckpt["model_args"])
        model.load_state_dict(ckpt["state_dict"])
        return model
