"""Beat augmentation that stays inside the contract: every output is still a scaled beat.

Beats arrive min-max scaled to [0, 1] over their window and zero-padded after it, so a plain
amplitude scale is undone by the scaling and would teach nothing. What varies between patients
and electrodes, and survives the scaling, is baseline drift, noise, where the detector puts
the R-peak and (optionally) how wide the waves are; those are simulated here and each beat is
then scaled again over its own window.
"""

from __future__ import annotations

import math

import torch


def window_lengths(x: torch.Tensor) -> torch.Tensor:
    """Samples up to the last non-zero one: the part of each beat before the zero padding."""
    nonzero = x > 0
    last = x.shape[1] - 1 - torch.argmax(nonzero.flip(1).to(torch.int8), dim=1)
    return torch.where(nonzero.any(dim=1), last + 1, torch.zeros_like(last))


def augment(
    x: torch.Tensor,
    context: torch.Tensor,
    generator: torch.Generator,
    ratio_cols: list[int],
    *,
    baseline: float = 0.15,
    noise: float = 0.03,
    shift: int = 3,
    rr_jitter: float = 0.03,
    stretch: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Randomly perturbed copies of beats `x` (n, L) and their context values (n, k).

    Each beat gets a linear-plus-sine baseline of up to `baseline`, Gaussian noise of up to
    `noise` (fractions of its range) and an R-peak shift of up to `shift` samples; the RR
    ratios in columns `ratio_cols` of `context` share one relative jitter of up to `rr_jitter`
    per beat, as a slightly mis-timed R-peak would shift them together. With `stretch` > 0
    each beat's waves are also widened or narrowed in time by up to that fraction about its
    R-peak, the window keeping its length (which carries the RR): patients differ in QRS and
    QT duration, and a network that has seen only its training patients' widths learns them.
    At 0 no random number is drawn for it, so earlier runs are reproduced bit for bit.
    """
    n, length = x.shape
    if n == 0:
        return x, context

    def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(*shape, generator=generator)

    valid = window_lengths(x)
    pos = torch.arange(length).expand(n, length)
    inside = pos < valid[:, None]

    # Detector jitter: the window starts up to `shift` samples early or late (edges repeated).
    s = torch.randint(-shift, shift + 1, (n, 1), generator=generator)
    last = (valid[:, None] - 1).clamp(min=0)
    if stretch > 0:
        factor = uniform(1 - stretch, 1 + stretch, n, 1)
        where = torch.minimum((pos + s).clamp(min=0).to(x.dtype) / factor, last.to(x.dtype))
        below = where.floor().long()
        frac = where - below
        y = torch.lerp(torch.gather(x, 1, below),
                       torch.gather(x, 1, torch.minimum(below + 1, last)), frac)  # fmt: skip
    else:
        y = torch.gather(x, 1, torch.minimum((pos + s).clamp(min=0), last))

    t = pos.to(x.dtype) / length
    drift = uniform(-baseline, baseline, n, 1) * t + uniform(-baseline, baseline, n, 1) * torch.sin(
        2 * math.pi * uniform(0.2, 1.0, n, 1) * t + uniform(0, 2 * math.pi, n, 1)
    )
    y = y + drift + uniform(0, noise, n, 1) * torch.randn(n, length, generator=generator)

    big = torch.finfo(x.dtype).max
    lo = torch.where(inside, y, big).min(dim=1, keepdim=True).values
    hi = torch.where(inside, y, -big).max(dim=1, keepdim=True).values
    span = (hi - lo).clamp(min=1e-6)
    y = torch.where(inside, (y - lo) / span, torch.zeros_like(y))

    if ratio_cols:
        context = context.clone()
        context[:, ratio_cols] *= 1 + uniform(-rr_jitter, rr_jitter, n, 1)
    return y, context
