"""Reading one ECG lead out of WFDB records, and finding the MIT-BIH data on disk.

Data access for every tool goes through here, so the lead choice (MLII by name, else lead II,
else the first ECG channel) and the error messages a person sees are the same for trainer,
simulator and annotator. Records from ICU monitors also hold pressure, pulse-oximetry and
respiration channels; those are never read as ECG leads (a 100 mmHg pressure wave taken for a
100 mV lead would decide the two-lead alarms).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monitor import contract
from monitor.errors import InputError
from monitor.signal.resample import rational_ratio

ENV_MITDB = "ECG_MITDB_DIR"
#: PhysioNet databases the tools read: slug -> (name shown to people, command-line flag).
PHYSIONET = {"mitdb": ("MIT-BIH", "--data-dir"), "nstdb": ("NSTDB", "--nstdb-dir")}

# The de Chazal et al. (2004) inter-patient split of MIT-BIH. Kept here, with data access, so
# the trainer, the simulator (whose default beds are the test patients) and the benchmarks
# share one definition without the serving side importing the trainer.
#: Training records (paced records excluded).
DS1: tuple[str, ...] = (
    "101", "106", "108", "109", "112", "114", "115", "116", "118", "119", "122",
    "124", "201", "203", "205", "207", "208", "209", "215", "220", "223", "230",
)  # fmt: skip
#: Test records: never used to choose anything.
DS2: tuple[str, ...] = (
    "100", "103", "105", "111", "113", "117", "121", "123", "200", "202", "210",
    "212", "213", "214", "219", "221", "222", "228", "231", "232", "233", "234",
)  # fmt: skip
#: Records with a pacemaker, left out of DS1 and DS2 (AAMI EC57).
PACED: tuple[str, ...] = ("102", "104", "107", "217")
#: Every MIT-BIH Arrhythmia record.
ALL_RECORDS: tuple[str, ...] = tuple(sorted(DS1 + DS2 + PACED))
#: Lead names in order of preference (the model learnt from MLII; lead II is its nearest).
PREFERRED_LEADS: tuple[str, ...] = ("MLII", "II")
#: Units of an ECG channel (wfdb reads a header without units as mV).
ECG_UNITS = frozenset({"mv", "uv", "µv", "v"})
#: Name prefixes of the non-ECG channels of monitor recordings, for headers whose units say
#: nothing: pulse oximetry, arterial / pulmonary / venous / intracranial pressures, respiration,
#: gases, temperature and the other biosignals a polysomnogram holds.
NON_ECG_NAMES: tuple[str, ...] = (
    "PLETH", "PPG", "SPO2", "SAO2", "ABP", "ART", "PAP", "CVP", "ICP", "NBP", "BP", "RESP",
    "CO2", "O2", "TEMP", "PULSE", "HR", "EEG", "EOG", "EMG", "SV", "CO",
)  # fmt: skip
#: Where records fetched from PhysioNet are kept between runs.
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ecg-monitor"


@dataclass(frozen=True)
class Lead:
    """One lead of one record, in millivolts."""

    record: str
    name: str
    fs: float
    signal: np.ndarray
    #: The record's other leads (mV, same length), when read with `others=True`.
    others: tuple[np.ndarray, ...] = ()
    #: The record's channels not in `others`, each with why ("V (invalid samples)").
    left_out: tuple[str, ...] = ()


def _lead_name(name: str) -> str:
    """A signal name without case, blanks, dashes or an "ECG" prefix ("ECG II" -> "II")."""
    key = "".join(name.upper().replace("-", " ").split())
    return key[3:] if key.startswith("ECG") and len(key) > 3 else key


def is_ecg(name: str, units: str | None = None) -> bool:
    """Whether a channel is an ECG lead: its units are a voltage, and its name is no other
    monitored signal's."""
    if units is not None and units.strip().lower() not in ECG_UNITS:
        return False
    key = _lead_name(name)
    return not any(key.startswith(prefix) for prefix in NON_ECG_NAMES)


def ecg_channels(sig_names: list[str], units: Sequence[str | None] | None = None) -> list[int]:
    """Indices of the ECG leads among a record's channels, in header order."""
    units = list(units) if units is not None else [None] * len(sig_names)
    return [i for i, (n, u) in enumerate(zip(sig_names, units, strict=True)) if is_ecg(n, u)]


def choose_lead(sig_names: list[str], units: Sequence[str | None] | None = None) -> int:
    """Index of the lead to use: MLII by name, else lead II, else the first ECG channel."""
    if not sig_names:
        raise InputError("the header lists no signals; give a record with at least one ECG lead")
    leads = ecg_channels(sig_names, units)
    if not leads:
        raise InputError(
            f"no ECG lead among the signals {', '.join(sig_names)} (units "
            f"{', '.join(str(u) for u in units or [])}); an ECG lead is in mV, uV or V"
        )
    for preferred in PREFERRED_LEADS:
        for i in leads:
            if _lead_name(sig_names[i]) == preferred:
                return i
    return leads[0]


#: Longest record read, in hours of signal: a day-long Holter fits, a forged header does not.
MAX_RECORD_HOURS = 48.0
#: Samples a data file can hold per byte at most (compressed WFDB formats included).
_MAX_SAMPLES_PER_BYTE = 16


def _check_length(record: str, data_dir: Path, hdr, fs: float) -> None:
    """Refuse a header whose length the data cannot hold, before wfdb allocates for it."""
    n = int(hdr.sig_len or 0)
    if n > MAX_RECORD_HOURS * 3600 * fs:
        raise InputError(
            f"record {record!r}: the header says {n} samples ({n / fs / 3600:.0f} h at "
            f"{fs:g} Hz); the limit is {MAX_RECORD_HOURS:g} h"
        )
    files = {data_dir / f for f in (hdr.file_name or []) if f}
    size = sum(f.stat().st_size for f in files if f.is_file())
    if files and n * int(hdr.n_sig or 1) > _MAX_SAMPLES_PER_BYTE * size:
        raise InputError(
            f"record {record!r}: the header says {n} samples per signal but its data files "
            f"hold {size} bytes; the header does not match the data"
        )


def read_lead(
    record: str, data_dir: str | Path, others: bool = False, invalid_ok: bool = False
) -> Lead:
    """Read the chosen lead of `record` (a name inside `data_dir`) as mV at its own rate, and
    with `others` its other ECG leads too (a lead that cannot be used is left out, and named in
    `Lead.left_out`).

    Invalid samples (the WFDB format's "no value", read as NaN) refuse the record, unless
    `invalid_ok`: the chosen lead then keeps them as NaN for a caller that treats them as
    gaps in the signal, as the stream treats missing samples.
    """
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
    units = list(hdr.units or [None] * len(names))
    channel = choose_lead(names, units)
    ecg = ecg_channels(names, units)
    fs = float(hdr.fs or 0)
    if fs < contract.MIN_SOURCE_FS:
        raise InputError(
            f"record {record!r} is sampled at {fs:g} Hz; the beat detector needs at least "
            f"{contract.MIN_SOURCE_FS:g} Hz"
        )
    try:
        rational_ratio(fs, contract.FS)
    except ValueError as exc:
        raise InputError(f"record {record!r}: {exc}") from None
    _check_length(record, data_dir, hdr, fs)
    channels = [channel] + ([c for c in ecg if c != channel] if others else [])
    try:
        rec = wfdb.rdrecord(str(data_dir / record), channels=channels, physical=True)
    except Exception as exc:
        raise InputError(f"record {record!r}: cannot read samples: {exc}") from exc
    leads = [_to_mv(rec.p_signal[:, k], (rec.units or ["mV"] * len(channels))[k])
             for k in range(len(channels))]  # fmt: skip
    signal = leads[0]
    finite = np.isfinite(signal)
    if not finite.all() and not (invalid_ok and finite.any()):
        raise InputError(
            f"record {record!r} lead {names[channel]}: {np.count_nonzero(~finite)} samples are "
            "NaN or infinite (invalid samples in the .dat file)"
        )
    if len(signal) == 0 or np.ptp(signal[finite]) == 0:
        raise InputError(f"record {record!r} lead {names[channel]}: the signal is a flat line")
    usable, left_out = [], []
    for c, x in zip(channels[1:], leads[1:], strict=True):
        if not np.all(np.isfinite(x)):
            left_out.append(f"{names[c]} (invalid samples)")
        elif np.ptp(x) == 0:
            left_out.append(f"{names[c]} (a flat line)")
        else:
            usable.append(x)
    left_out += [f"{n} (not an ECG lead)" for c, n in enumerate(names) if others and c not in ecg]
    return Lead(record=record, name=names[channel], fs=fs, signal=signal, others=tuple(usable),
                left_out=tuple(left_out))  # fmt: skip


def read_annotations(record: str, data_dir: str | Path, extension: str = "atr"):
    """The reference annotations of `record` (`wfdb.Annotation`: samples, symbols, aux notes),
    or an InputError that names the file: wfdb raises many types for a missing or malformed one.
    """
    import wfdb

    path = Path(data_dir) / record
    try:
        return wfdb.rdann(str(path), extension)
    except Exception as exc:
        raise InputError(
            f"record {record!r}: cannot read reference annotations {path}.{extension}: {exc}"
        ) from exc


def _to_mv(x: np.ndarray, units: str) -> np.ndarray:
    x = x.astype(np.float64)
    if units.lower() in ("uv", "µv"):
        return x / 1000.0
    if units.lower() == "v":
        return x * 1000.0
    return x


def list_records(data_dir: str | Path) -> list[str]:
    """Record names in a WFDB directory: from its RECORDS file, else every header."""
    data_dir = Path(data_dir)
    listing = data_dir / "RECORDS"
    if listing.is_file():
        return [ln.strip() for ln in listing.read_text().splitlines() if ln.strip()]
    return sorted(p.stem for p in data_dir.glob("*.hea"))


def resolve_physionet(
    db: str, data_dir: str | Path | None, env_var: str, records: Sequence[str] | None = None
) -> Path:
    """A PhysioNet database's directory: the flag, else $`env_var`, else a download (cached).

    The download goes to a user cache, is reused once it holds `records` (every record when
    None), and needs internet access to physionet.org. `db` is the PhysioNet slug, a key of
    `PHYSIONET`.
    """
    name, flag = PHYSIONET[db]
    chosen = data_dir or os.environ.get(env_var)
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_dir():
            source = flag if data_dir else f"${env_var}"
            raise InputError(f"{name} directory {path} (from {source}) does not exist")
        return path
    target = CACHE_DIR / db
    if list_records(target) and all((target / f"{r}.hea").is_file() for r in records or []):
        return target
    what = f"record(s) {' '.join(records)}" if records else "every record"
    print(
        f"no {flag} and ${env_var} unset: downloading {name} {what} from PhysioNet into "
        f"{target} (once)",
        file=sys.stderr,
    )
    import wfdb

    target.mkdir(parents=True, exist_ok=True)
    try:
        wfdb.dl_database(db, str(target), records=list(records) if records else "all")
    except Exception as exc:
        raise InputError(
            f"could not download {name} from PhysioNet ({exc}); download it yourself and pass "
            f"{flag} or set ${env_var}"
        ) from exc
    return target


def resolve_mitdb(data_dir: str | Path | None, records: Sequence[str] | None = None) -> Path:
    """The MIT-BIH Arrhythmia Database directory (`--data-dir`, else $ECG_MITDB_DIR)."""
    return resolve_physionet("mitdb", data_dir, ENV_MITDB, records)


def skipped_note(stretches: int, seconds: float) -> str:
    """What the beat cutter skipped of a lead with invalid samples, for a person to read."""
    noun = "stretch" if stretches == 1 else "stretches"
    return (f"{stretches} {noun} of invalid samples ({seconds:.1f} s) skipped, the beat cutter "
            "starting over after each")  # fmt: skip


def runs_of(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True in `mask`, in order."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))
