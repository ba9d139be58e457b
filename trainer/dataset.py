"""Labelled beats for training: cut by the serving code, labelled from the reference annotations.

Training beats are cut by `monitor.beats.BeatExtractor`, the very code the stream agent runs, so
the model learns from the beats it will be shown: positions from our own QRS detector, windows
from our own RR bookkeeping. Each detected beat takes the label of the reference beat it matches
(EC57 rule, 150 ms); detections with no reference beat, and reference symbols without an AAMI
class, are left out and counted.

Building a record takes seconds, so results are cached per record, keyed by the settings, by the
source text of every module that shapes a beat, and by the record files themselves: a change to
the detector or the cut rebuilds automatically, and a stale cache can never be read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

import monitor
import simulators.noise
from monitor import contract
from monitor.beats import extract_beats
from monitor.context import MAX_SEQUENCE
from monitor.errors import InputError
from monitor.inputs import absent_context, select, stack_beats
from monitor.records import read_annotations, read_lead
from monitor.signal import ec57
from simulators.noise import NoiseSpec, load_noise, noise_gain

log = logging.getLogger(__name__)

#: Where built records are kept between runs (overridable per call, or with $ECG_BEAT_CACHE).
DEFAULT_CACHE_DIR = Path(
    os.environ.get("ECG_BEAT_CACHE", Path.home() / ".cache" / "ecg-monitor" / "beats")
)
#: Kaggle "ECG Heartbeat Categorization" label order (Kachuee et al. 2018).
KAGGLE_CLASSES: tuple[str, ...] = ("N", "S", "V", "F", "Q")

_MONITOR_DIR = Path(monitor.__file__).resolve().parent
#: Modules whose source decides what a labelled beat is; any edit to them rebuilds the cache.
_BEAT_CORE = (
    _MONITOR_DIR / "contract.py",
    _MONITOR_DIR / "beats.py",
    _MONITOR_DIR / "context.py",
    _MONITOR_DIR / "inputs.py",
    _MONITOR_DIR / "records.py",
    *sorted((_MONITOR_DIR / "signal").glob("*.py")),
    Path(__file__).resolve(),
)
#: Where the noisy copies' noise is read and scaled (their cache key holds its source too).
_NOISE_SOURCE = Path(simulators.noise.__file__).resolve()


@dataclass(frozen=True)
class BeatSet:
    """Parallel arrays, one row per beat; rows of different records may be mixed."""

    channels: np.ndarray  # (n, len(CHANNELS), BEAT_LEN) float32, contract.CHANNELS
    features: np.ndarray  # (n, len(FEATURES)) float32, contract.FEATURES
    previous: np.ndarray  # (n, MAX_SEQUENCE, len(FEATURES)) float32, earlier beats' features
    labels: np.ndarray  # (n,) int64 index into contract.CLASSES
    records: np.ndarray  # (n,) str
    index: np.ndarray  # (n,) int64 detected R-peak, source samples
    ref_index: np.ndarray  # (n,) int64 matched reference annotation, source samples (-1: none)
    symbols: np.ndarray  # (n,) str reference symbol

    def __post_init__(self) -> None:
        n = len(self.labels)
        for f in fields(self):
            if len(getattr(self, f.name)) != n:
                raise ValueError(f"BeatSet.{f.name} has {len(getattr(self, f.name))} rows, not {n}")
        shapes = {
            "channels": (len(contract.CHANNELS), contract.BEAT_LEN),
            "features": (len(contract.FEATURES),),
            "previous": (MAX_SEQUENCE, len(contract.FEATURES)),
        }
        for name, shape in shapes.items():
            if getattr(self, name).shape[1:] != shape:
                raise ValueError(f"BeatSet.{name} must be (n, {', '.join(map(str, shape))})")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, mask_or_idx: np.ndarray | Sequence[int]) -> BeatSet:
        """Rows selected by a boolean mask or an index array, in that order."""
        sel = np.asarray(mask_or_idx)
        if sel.dtype != bool:
            sel = sel.astype(np.int64)
        elif len(sel) != len(self):
            raise ValueError(f"mask has {len(sel)} entries for {len(self)} beats")
        return BeatSet(**{f.name: getattr(self, f.name)[sel] for f in fields(self)})

    @property
    def waveforms(self) -> np.ndarray:
        """The Kachuee beats (n, BEAT_LEN): the first channel."""
        return self.channels[:, 0]

    def inputs(self, bc: contract.BeatContract) -> tuple[np.ndarray, np.ndarray]:
        """What a model under contract `bc` reads: (x, context), as `monitor.inputs` builds it."""
        return select(bc, self.channels, self.features, self.previous)

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(contract.CLASSES))
        return dict(zip(contract.CLASSES, counts.tolist(), strict=True))

    def fingerprint(self) -> str:
        """Short hash of the beats and labels: names the exact data a model was trained on."""
        h = hashlib.sha256()
        for arr in (self.channels, self.features, self.previous, self.labels):
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()[:16]

    @staticmethod
    def concat(parts: Iterable[BeatSet]) -> BeatSet:
        parts = list(parts)
        if not parts:
            return empty_beatset()
        return BeatSet(
            **{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(BeatSet)}
        )


def empty_beatset() -> BeatSet:
    channels, features, previous = absent_context(np.zeros((0, contract.BEAT_LEN), np.float32))
    return BeatSet(
        channels=channels,
        features=features,
        previous=previous,
        labels=np.zeros(0, np.int64),
        records=np.zeros(0, "<U8"),
        index=np.zeros(0, np.int64),
        ref_index=np.zeros(0, np.int64),
        symbols=np.zeros(0, "<U1"),
    )


# ---------------------------------------------------------------------------------------------
# MIT-BIH records


def build_beatset(
    data_dir: str | Path,
    records: Sequence[str],
    cache_dir: str | Path | None = None,
    progress: bool = True,
    other_lead: bool = False,
    noise: NoiseSpec | None = None,
    nstdb_dir: str | Path | None = None,
    artefacts_as_q: bool = False,
) -> BeatSet:
    """Detected, reference-labelled beats of `records` (names in the WFDB dir `data_dir`), cut
    from the lead the monitor analyses, or with `other_lead` from each record's other ECG lead
    (a record with none gives no beats); with `noise`, from that lead with NSTDB noise added
    (`noisy`), and with `artefacts_as_q` its false detections too, labelled Q."""
    if artefacts_as_q and noise is None:
        raise ValueError("artefacts_as_q labels a noisy copy's false detections: give noise")
    if isinstance(records, str):
        raise ValueError("records must be a sequence of record names, not one string")
    if not records:
        raise ValueError("records is empty: name at least one record")
    data_dir = Path(data_dir)
    cache = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
    from tqdm import tqdm

    parts, totals = [], Counter()
    desc = "other-lead beats" if other_lead else "beats"
    if noise is not None:
        desc += f" with {noise.kind} noise at {noise.snr_db:g} dB"
    bar = tqdm(list(records), desc=desc, unit="rec", disable=not progress)
    for record in bar:
        bar.set_postfix_str(record)
        part, stats = _cached_record(
            data_dir, str(record), cache, other_lead, noise, nstdb_dir, artefacts_as_q
        )
        parts.append(part)
        totals.update(stats)
    log.info(
        "%d records: %d labelled beats; %s %d false detections, %d detections in VF "
        "episodes and %d beats with a non-AAMI symbol; %d reference beats not detected",
        len(records),
        totals["labelled"],
        "labelled Q" if artefacts_as_q else "left out",
        totals["false_detections"],
        totals["in_vf"],
        totals["unmapped"],
        totals["missed"],
    )
    return BeatSet.concat(parts)


def cache_key() -> str:
    """Hash of the labelling settings and of the beat-core source: the cache's version."""
    h = hashlib.sha256()
    settings = {
        "match_tolerance_s": ec57.MATCH_WINDOW_S,
        "contract": contract.CURRENT.to_dict(),
    }
    h.update(json.dumps(settings, sort_keys=True).encode())
    for path in _BEAT_CORE:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _record_fingerprint(data_dir: Path, record: str) -> str:
    """Sizes and times of the record's files: a replaced record is rebuilt, not read stale."""
    parts = []
    for ext in ("hea", "dat", "atr"):
        p = data_dir / f"{record}.{ext}"
        if p.is_file():
            st = p.stat()
            parts.append(f"{ext}:{st.st_size}:{st.st_mtime_ns}")
    return ";".join(parts)


def _cached_record(
    data_dir: Path,
    record: str,
    cache: Path,
    other_lead: bool = False,
    noise: NoiseSpec | None = None,
    nstdb_dir: str | Path | None = None,
    artefacts_as_q: bool = False,
) -> tuple[BeatSet, dict[str, int]]:
    key = f"{cache_key()}|{_record_fingerprint(data_dir, record)}"
    stem = f"{record}.other" if other_lead else record
    if noise is not None:
        # A noisy copy also rests on how the noise is read and scaled.
        key += f"|{noise}|{hashlib.sha256(_NOISE_SOURCE.read_bytes()).hexdigest()}"
        stem += f".{noise.kind}{noise.snr_db:g}dB"
    if artefacts_as_q:
        key += "|artefacts as Q"
        stem += ".q"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    path = cache / f"{stem}-{digest}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                stats = json.loads(str(z["stats"]))
                return BeatSet(**{f.name: z[f.name] for f in fields(BeatSet)}), stats
        except (OSError, ValueError, KeyError) as exc:
            log.warning("rebuilding %s: unreadable cache file (%s)", path, exc)
    beats, stats = label_record(data_dir, record, other_lead, noise, nstdb_dir, artefacts_as_q)
    cache.mkdir(parents=True, exist_ok=True)
    for stale in cache.glob(f"{stem}-*.npz"):
        if ".tmp." not in stale.name:  # another process's half-written file is its own
            stale.unlink(missing_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(
        tmp, stats=json.dumps(stats), **{f.name: getattr(beats, f.name) for f in fields(beats)}
    )
    tmp.replace(path)  # atomic: a concurrent reader sees a whole file or none
    return beats, stats


def label_record(
    data_dir: str | Path,
    record: str,
    other_lead: bool = False,
    noise: NoiseSpec | None = None,
    nstdb_dir: str | Path | None = None,
    artefacts_as_q: bool = False,
) -> tuple[BeatSet, dict[str, int]]:
    """Cut one record as the stream would and label each detected beat from its .atr; with
    `other_lead`, cut from its other ECG lead (the reference beats are the same heartbeats);
    with `noise`, from the lead with NSTDB noise added (`noisy`). With `artefacts_as_q` the
    detections no reference beat matches are kept as Q (MIT-BIH's `|`, a QRS-like artefact):
    what the network must learn not to call V when a patient moves."""
    data_dir = Path(data_dir)
    lead = read_lead(record, data_dir, others=other_lead)
    ann = read_annotations(record, data_dir)
    signal = lead.signal
    if other_lead:
        signal = lead.others[0] if lead.others else np.zeros(0)
    if noise is not None and len(signal):
        signal = noisy(signal, lead.fs, record, noise, nstdb_dir)
    beats = extract_beats(signal, lead.fs)
    ref = ec57.reference_beats(ann.symbol, ann.sample)
    det_idx = np.array([b.index for b in beats], dtype=np.int64)
    m = ec57.match(ref.samples, det_idx, lead.fs, ec57.MATCH_WINDOW_S, exclude=ref)
    ref_pos, keep = m.pairs[:, 0], m.pairs[:, 1]
    labels = np.array([_class_index(s) for s in ref.symbols[ref_pos]], dtype=np.int64)
    ref_index = ref.samples[ref_pos].astype(np.int64)
    symbols = ref.symbols[ref_pos].astype("<U1")
    if artefacts_as_q:
        order = np.argsort(np.concatenate([keep, m.extra]), kind="stable")
        keep = np.concatenate([keep, m.extra])[order]
        labels = np.concatenate([labels, np.full(len(m.extra), QRS_ARTEFACT_CLASS)])[order]
        ref_index = np.concatenate([ref_index, np.full(len(m.extra), -1)])[order]
        symbols = np.concatenate([symbols, np.full(len(m.extra), "|", "<U1")])[order]
    n = len(keep)
    channels, features, previous = (
        stack_beats([beats[d] for d in keep])
        if n
        else absent_context(np.zeros((0, contract.BEAT_LEN), np.float32))
    )
    out = BeatSet(
        channels=channels,
        features=features,
        previous=previous,
        labels=labels,
        records=np.full(n, record, dtype=f"<U{max(8, len(record))}"),
        index=det_idx[keep],
        ref_index=ref_index,
        symbols=symbols,
    )
    stats = {
        "labelled": len(ref_pos),
        "false_detections": len(m.extra),
        "in_vf": len(det_idx) - len(ref_pos) - len(m.extra),
        "unmapped": sum(s in NON_AAMI_BEATS for s in ann.symbol),
        "missed": len(m.missed),
    }
    return out, stats


#: The NSTDB channel the noisy copies take: the benchmarks and the simulator add the first, so
#: a model trained with noisy copies is not scored on the noise samples it learnt from (the two
#: electrode pairs of one recording session, so not independent either: em's correlate -0.44).
TRAINING_NOISE_CHANNEL = 1


def noisy(
    signal: np.ndarray, fs: float, record: str, noise: NoiseSpec, nstdb_dir: str | Path | None
) -> np.ndarray:
    """`signal` with NSTDB noise at the NST's signal-to-noise ratio, as a patient who moves
    would show it. Each record starts at its own place in the noise recording (a fixed
    function of its name), so the training patients do not all share one stretch of noise."""
    n = load_noise(noise.kind, fs, nstdb_dir, channel=TRAINING_NOISE_CHANNEL)
    n = np.resize(np.roll(n, -(zlib.crc32(record.encode()) % len(n))), len(signal))
    return signal + noise_gain(signal, n, fs, noise.snr_db) * n


#: The class a noisy copy's false detection takes with `artefacts_as_q`: AAMI's Q holds the
#: unclassifiable beats, and MIT-BIH marks a QRS-like artefact `|`.
QRS_ARTEFACT_CLASS = contract.CLASSES.index("Q")


def _class_index(symbol: str) -> int:
    return contract.CLASSES.index(contract.AAMI_MAP[symbol])


#: WFDB beat symbols (isqrs) without an AAMI class: never references, never training beats.
NON_AAMI_BEATS = frozenset("NLRBAaJSVrFejnE/fQ?") - set(contract.AAMI_MAP)


# ---------------------------------------------------------------------------------------------
# Kaggle "ECG Heartbeat Categorization" CSV files


def load_kaggle_csv(path: str | Path) -> BeatSet:
    """mitbih_train.csv / mitbih_test.csv: 187 samples then a label 0..4 (N S V F Q) per row.

    These beats come without rhythm or patient context, so every context input is absent.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Kaggle CSV {path} not found; give the folder holding mitbih_train.csv")
    width = contract.BEAT_LEN + 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # an empty file is reported below
            rows = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "unreadable"
        raise InputError(f"{path}: not a numeric {width}-column CSV ({reason})") from exc
    if rows.shape[0] == 0:
        raise InputError(f"{path}: no rows")
    if rows.shape[1] != width:
        raise InputError(
            f"{path}: {rows.shape[1]} columns, expected {width} "
            f"({contract.BEAT_LEN} samples and a label)"
        )
    if not np.all(np.isfinite(rows)):
        bad = int(np.argwhere(~np.isfinite(rows))[0, 0])
        raise InputError(f"{path}: row {bad + 1} has NaN or infinite values")
    raw = rows[:, -1]
    labels = raw.astype(np.int64)
    bad = np.flatnonzero((raw != labels) | (labels < 0) | (labels >= len(KAGGLE_CLASSES)))
    if len(bad):
        raise InputError(
            f"{path}: row {bad[0] + 1} has label {raw[bad[0]]:g}; labels are 0..4 "
            f"({' '.join(KAGGLE_CLASSES)})"
        )
    n = len(rows)
    to_ours = np.array([contract.CLASSES.index(c) for c in KAGGLE_CLASSES], dtype=np.int64)
    channels, features, previous = absent_context(rows[:, : contract.BEAT_LEN])
    return BeatSet(
        channels=channels,
        features=features,
        previous=previous,
        labels=to_ours[labels],
        records=np.full(n, f"kaggle:{path.stem}"),
        index=np.arange(n, dtype=np.int64),
        ref_index=np.full(n, -1, dtype=np.int64),
        symbols=np.asarray(KAGGLE_CLASSES, dtype="<U1")[labels],
    )
