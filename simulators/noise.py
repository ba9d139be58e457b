"""Recorded electrode noise added at a chosen signal-to-noise ratio, as in the MIT-BIH NST.

The MIT-BIH Noise Stress Test Database (Moody, Muldrow & Mark 1984) holds 30 minutes each of
baseline wander (`bw`), electrode motion (`em`) and muscle artifact (`ma`) recorded from active
but ECG-free electrodes. Its `nst` tool scales the noise so that S / N hits a target SNR, with S
the power of a sine whose peak-to-peak amplitude is the QRS amplitude (A^2 / 8) and N the mean
square of the noise. `noise_gain` follows that definition, measuring the QRS amplitude as the
median peak-to-peak amplitude of one-second windows (each holds at least one QRS at >= 60 bpm,
and the QRS dominates its amplitude), so no beat annotations are needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monitor.errors import InputError
from monitor.records import read_lead, resolve_physionet
from monitor.signal.resample import resample

ENV_NSTDB = "ECG_NSTDB_DIR"
NOISE_KINDS = ("bw", "em", "ma")


@dataclass(frozen=True)
class NoiseSpec:
    """Which noise record and at what SNR, from a `KIND:SNR_DB` argument such as `em:6`."""

    kind: str
    snr_db: float

    @classmethod
    def parse(cls, text: str, flag: str = "--noise") -> NoiseSpec:
        kind, sep, snr = text.partition(":")
        if kind not in NOISE_KINDS or not sep:
            raise InputError(
                f"{flag} must be KIND:SNR_DB with KIND one of {', '.join(NOISE_KINDS)} "
                f"(e.g. em:6), got {text!r}"
            )
        try:
            snr_db = float(snr)
        except ValueError:
            raise InputError(f"{flag} SNR must be a number of dB, got {snr!r}") from None
        if not np.isfinite(snr_db):
            raise InputError(f"{flag} SNR must be finite, got {snr!r}")
        return cls(kind, snr_db)


def qrs_amplitude(signal_mv: np.ndarray, fs: float) -> float:
    """Typical QRS peak-to-peak amplitude (mV): median over one-second windows."""
    x = np.asarray(signal_mv, dtype=np.float64)
    w = max(1, round(fs))
    n = len(x) // w
    if n == 0:
        raise ValueError(f"signal_mv must hold at least one second ({w} samples), got {len(x)}")
    windows = x[: n * w].reshape(n, w)
    return float(np.median(windows.max(axis=1) - windows.min(axis=1)))


def noise_gain(signal_mv: np.ndarray, noise: np.ndarray, fs: float, snr_db: float) -> float:
    """Factor for `noise` so that the NST's S / N of `signal_mv` plus it is `snr_db`."""
    s_power = qrs_amplitude(signal_mv, fs) ** 2 / 8.0
    n_power = float(np.var(np.asarray(noise, dtype=np.float64)))
    if n_power <= 0:
        raise ValueError("noise is constant: it has no power to scale")
    return float(np.sqrt(s_power / (n_power * 10.0 ** (snr_db / 10.0))))


def load_noise(
    kind: str, fs: float, nstdb_dir: str | Path | None, channel: int = 0
) -> np.ndarray:
    """Channel `channel` (0 or 1) of NSTDB record `kind` (mV, mean removed) at rate `fs`. The
    two channels are two electrode pairs of the same recording: the benchmarks and the
    simulator add the first, the trainer's noisy copies the second."""
    if channel not in (0, 1):
        raise ValueError(f"channel must be 0 or 1 (NSTDB records have two), got {channel!r}")
    lead = read_lead(kind, resolve_nstdb(nstdb_dir, kind), others=channel > 0)
    x = lead.others[0] if channel else lead.signal
    noise = x - x.mean()
    return noise if lead.fs == fs else resample(noise, lead.fs, fs)


def resolve_nstdb(data_dir: str | Path | None, kind: str) -> Path:
    """The NSTDB directory holding `kind` (`--nstdb-dir`, else $ECG_NSTDB_DIR, else download)."""
    return resolve_physionet("nstdb", data_dir, ENV_NSTDB, [kind])
