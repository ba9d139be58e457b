"""A model's inputs from beats: the channels and context features its contract names, in order.

The core computes every channel and feature of `contract.CHANNELS` / `contract.FEATURES` for
every beat; a model reads the ones its contract lists. Selecting them here, once, is what keeps
the trainer, the worker, the annotator and the dashboard feeding a model identically.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from monitor import contract
from monitor.context import ABSENT, MAX_SEQUENCE

if TYPE_CHECKING:
    from monitor.beats import Beat

_CHANNEL = {name: i for i, name in enumerate(contract.CHANNELS)}
_FEATURE = {name: i for i, name in enumerate(contract.FEATURES)}


def stack_beats(beats: Sequence[Beat]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every channel (n, CHANNELS, BEAT_LEN), feature (n, FEATURES) and earlier beats' features
    (n, MAX_SEQUENCE, FEATURES) of `beats`: the full catalogue, as the trainer stores it."""
    channels = np.stack(
        [np.stack([b.waveform, b.context.morph, b.context.template]) for b in beats]
    ).astype(np.float32, copy=False)
    features = np.stack([b.context.features for b in beats]).astype(np.float32, copy=False)
    previous = np.stack([b.previous for b in beats]).astype(np.float32, copy=False)
    return channels, features, previous


def select(
    bc: contract.BeatContract,
    channels: np.ndarray,
    features: np.ndarray,
    previous: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The model's (x, context) from the full catalogue: x (n, len(bc.channels), BEAT_LEN) and
    context (n, len(bc.features) * (1 + bc.sequence)), this beat's features first."""
    x = channels[:, [_CHANNEL[c] for c in bc.channels]]
    cols = [_FEATURE[f] for f in bc.features]
    parts = [features[:, cols]] + [previous[:, k, cols] for k in range(bc.sequence)]
    return np.ascontiguousarray(x), np.ascontiguousarray(np.concatenate(parts, axis=1))


def beat_inputs(bc: contract.BeatContract, beats: Sequence[Beat]) -> tuple[np.ndarray, np.ndarray]:
    """The model's inputs for beats cut by `monitor.beats.BeatExtractor`."""
    return select(bc, *stack_beats(beats))


def absent_context(waveforms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full catalogue for bare beats (Kaggle rows): the waveform, every other input absent."""
    w = np.asarray(waveforms, dtype=np.float32)
    n = len(w)
    channels = np.zeros((n, len(contract.CHANNELS), contract.BEAT_LEN), dtype=np.float32)
    channels[:, 0] = w
    features = np.tile(ABSENT, (n, 1))
    previous = np.tile(ABSENT, (n, MAX_SEQUENCE, 1))
    return channels, features, previous
