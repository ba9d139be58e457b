"""The beat classifier: a small CNN for QRS/T morphology, a BiLSTM for its order, context for
the patient.

Morphology alone cannot tell a premature normal-looking (S) beat from a normal one, nor a new
patient's normal beat from a training patient's ectopic one; the patient context can (RR against
the patient's own rhythm, the beat against the patient's own dominant beat), so it joins the
learned features right before the dense layer. The model stores its constructor arguments so a
checkpoint rebuilds itself without the caller knowing them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from monitor import contract


class CNNBiLSTM(nn.Module):
    """Conv blocks (conv + batch norm + ReLU + max-pool) -> BiLSTM -> [features, context] -> dense.

    `in_channels` waveform channels share the conv stack (the beat, and where the contract says
    so the morphology window and the dominant template). `n_context` context values per beat
    join the learned features before the dense layer; with `sequence` > 0 they are the features
    of this beat and of `sequence` earlier beats, read in time order by a small BiLSTM across
    beats. `morph_dropout` (training only) blanks the waveform features of that share of beats.
    """

    def __init__(
        self,
        n_classes: int = len(contract.CLASSES),
        in_channels: int = 1,
        n_context: int = len(contract.FEATURE_GROUPS["rr_local"]),
        sequence: int = 0,
        channels: Sequence[int] = (64, 128, 128),
        kernel_size: int = 5,
        lstm_hidden: int = 64,
        dense: int = 64,
        dropout: float = 0.5,
        morph_dropout: float = 0.0,
        sequence_hidden: int = 16,
    ) -> None:
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"n_classes must be at least 2, got {n_classes}")
        if in_channels < 1:
            raise ValueError(f"in_channels must be at least 1, got {in_channels}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd number, got {kernel_size}")
        if not 0.0 <= morph_dropout < 1.0:
            raise ValueError(f"morph_dropout must be in [0, 1), got {morph_dropout}")
        if morph_dropout and not n_context:
            raise ValueError("morph_dropout needs context: without it the head would see nothing")
        if sequence < 0 or (sequence and n_context % (sequence + 1)):
            raise ValueError(
                f"sequence must be 0 or more and divide the context ({n_context} values) into "
                f"{sequence + 1} equal beats, got {sequence}"
            )
        self.args = {
            "n_classes": n_classes,
            "in_channels": in_channels,
            "n_context": n_context,
            "sequence": sequence,
            "channels": list(channels),
            "kernel_size": kernel_size,
            "lstm_hidden": lstm_hidden,
            "dense": dense,
            "dropout": dropout,
            "morph_dropout": morph_dropout,
            "sequence_hidden": sequence_hidden,
        }
        self.n_context = n_context
        self.sequence = sequence
        self.morph_dropout = morph_dropout
        blocks: list[nn.Module] = []
        c_in = in_channels
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
        self.per_beat = n_context // (sequence + 1)
        self.beats_lstm = (
            nn.LSTM(self.per_beat, sequence_hidden, batch_first=True, bidirectional=True)
            if sequence
            else None
        )
        head_in = 2 * lstm_hidden + n_context + (2 * sequence_hidden if sequence else 0)
        self.head = nn.Sequential(
            nn.Linear(head_in, dense),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(dense, n_classes),
        )

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Logits (n, n_classes) for waveforms `x` (n, in_channels, BEAT_LEN) and context values
        (n, n_context), this beat's first and then each earlier beat's, newest first."""
        h = self.features(x).transpose(1, 2)  # (n, steps, channels)
        out, _ = self.lstm(h)
        half = out.shape[2] // 2
        # Forward direction's last step and backward direction's first: the whole beat each way.
        z = torch.cat([out[:, -1, :half], out[:, 0, half:]], dim=1)
        if self.training and self.morph_dropout > 0:
            # Hide the waveform from some beats, so the head must also learn to decide from
            # context alone: morphology memorises training patients, relative context transfers.
            keep = torch.rand(z.shape[0], 1, device=z.device) >= self.morph_dropout
            z = z * keep.to(z.dtype)
        parts = [z, context]
        if self.beats_lstm is not None:
            # Oldest beat first, this beat last.
            seq = context.reshape(context.shape[0], self.sequence + 1, self.per_beat).flip(1)
            s, _ = self.beats_lstm(seq)
            k = s.shape[2] // 2
            parts.append(torch.cat([s[:, -1, :k], s[:, 0, k:]], dim=1))
        return self.head(torch.cat(parts, dim=1))
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


class Ensemble(nn.Module):
    """Networks trained alike from other seeds, their probabilities averaged.

    One run's answers on patients it never saw move with its seed (the model card's DS1 folds:
    a seed's pooled macro F1 ±0.4 around the mean, S sensitivity far more); the mean of a few
    runs keeps what they agree on. The output is the log of the mean probability, so its
    softmax is that mean and every caller that takes logits takes it unchanged.
    """

    def __init__(self, members: Sequence[CNNBiLSTM]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
        if len({(m.n_context, m.sequence) for m in members}) > 1:
            raise ValueError("ensemble members must read the same inputs")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        total = torch.zeros(0)
        for k, member in enumerate(self.members):
            p = torch.softmax(member(x, context), dim=1)
            total = p if k == 0 else total + p
        return torch.log((total / len(self.members)).clamp_min(1e-12))

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def checkpoint(self, **extra: Any) -> dict[str, Any]:
        """Every member's checkpoint, and `extra`."""
        return {"members": [m.checkpoint() for m in self.members], **extra}


def load_model(ckpt: dict[str, Any]) -> CNNBiLSTM | Ensemble:
    """The network (or ensemble) a checkpoint holds."""
    if "members" in ckpt:
        return Ensemble([CNNBiLSTM.from_checkpoint(m) for m in ckpt["members"]])
    return CNNBiLSTM.from_checkpoint(ckpt)
