"""Reading one ECG lead out of WFDB records, and finding the MIT-BIH data on disk.

Data access for every tool goes through here, so the lead choice (MLII by name, else the first
channel) and the error messages a person sees are the same for trainer, simulator and annotator.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monitor import contract
from monitor.errors import InputError

ENV_MITDB = "ECG_MITDB_DIR"
PREFERRED_LEAD = "MLII"
#: Where records fetched from PhysioNet are kept between runs.
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ecg-monitor"


@dataclass(frozen=True)
class Lead:
    """One lead of one record, in millivolts."""

    record: str
    name: str
    fs: float
    signal: np.ndarray


def choose_lead(sig_names: list[str]) -> int:
    """Index of the lead to use: MLII by name wherever it is, else the first channel."""
    if not sig_names:
        raise InputError("the header lists no signals; give a record with at least one ECG lead")
    for i, name in enumerate(sig_names):
        if name.strip().upper() == PREFERRED_LEAD:
            return i
    return 0


def read_lead(record: str, data_dir: str | Path) -> Lead:
    """Read the chosen lead of `record` (a name inside `data_dir`) as mV at its own rate."""
    import wfdb

    data_dir = Path(data_dir)
    header = data_dir / f"{record}.hea"
    if not header.is_file():
        raise InputError(
            f"record {record!r} not found: no {header}; check the record name and --data-dir"
        )
    try:
        hdr = wfdb.rdheader(str(data_dir / record))
    except Exception as exc:  # wfdb raises many types for a malformed header
        raise InputError(f"record {record!r}: cannot read header {header}: {exc}") from exc
    names = list(hdr.sig_name or [])
    channel = choose_lead(names)
    fs = float(hdr.fs or 0)
    if fs < contract.MIN_SOURCE_FS:
        raise InputError(
            f"record {record!r} is sampled at {fs:g} Hz; the beat detector needs at least "
            f"{contract.MIN_SOURCE_FS:g} Hz"
        )
    try:
        rec = wfdb.rdrecord(str(data_dir / record), channels=[channel], physical=True)
    except Exception as exc:
        raise InputError(f"record {record!r}: cannot read samples: {exc}") from exc
    units = (rec.units or ["mV"])[0]
    signal = rec.p_signal[:, 0].astype(np.float64)
    if units.lower() in ("uv", "µv"):
        signal = signal / 1000.0
    elif units.lower() == "v":
        signal = signal * 1000.0
    if not np.all(np.isfinite(signal)):
        raise InputError(
            f"record {record!r} lead {names[channel]}: samples contain NaN or infinite values "
            "(invalid samples in the .dat file)"
        )
    if len(signal) == 0 or np.ptp(signal) == 0:
        raise InputError(f"record {record!r} lead {names[channel]}: the signal is a flat line")
    return Lead(record=record, name=names[channel], fs=fs, signal=signal)


def list_records(data_dir: str | Path) -> list[str]:
    """Record names in a WFDB directory: from its RECORDS file, else every header."""
    data_dir = Path(data_dir)
    listing = data_dir / "RECORDS"
    if listing.is_file():
        return [ln.strip() for ln in listing.read_text().splitlines() if ln.strip()]
    return sorted(p.stem for p in data_dir.glob("*.hea"))


def resolve_mitdb(data_dir: str | Path | None, records: list[str] | None = None) -> Path:
    """The MIT-BIH directory: the flag, else $ECG_MITDB_DIR, else a PhysioNet download.

    The download goes to a user cache and is reused; it needs internet access to physionet.org.
    """
    chosen = data_dir or os.environ.get(ENV_MITDB)
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_dir():
            source = "--data-dir" if data_dir else f"${ENV_MITDB}"
            raise InputError(f"MIT-BIH directory {path} (from {source}) does not exist")
        return path
    target = CACHE_DIR / "mitdb"
    if list_records(target) and all((target / f"{r}.hea").is_file() for r in records or []):
        return target
    print(
        f"no --data-dir and ${ENV_MITDB} unset: downloading MIT-BIH from PhysioNet into {target} "
        "(about 100 MB, once)",
        file=sys.stderr,
    )
    import wfdb

    target.mkdir(parents=True, exist_ok=True)
    try:
        wfdb.dl_database("mitdb", str(target), records=records or "all")
    except Exception as exc:
        raise InputError(
            f"could not download MIT-BIH from PhysioNet ({exc}); download it yourself and pass "
            f"--data-dir or set ${ENV_MITDB}"
        ) from exc
    return target
