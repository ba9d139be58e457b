"""Offline analysis of an uploaded file with the same beat core and classifier as the live ward.

Accepted uploads (at most `MAX_UPLOAD_MB` in total, `MAX_BEATS` beats):

- Kaggle "ECG Heartbeat Categorization" CSV: one beat per row, 187 values in [0, 1] (125 Hz,
  cut as in Kachuee et al. 2018), optionally a 188th label column (0-4 or N/S/V/F/Q). Rows carry
  no rhythm and no patient, so they go to the classifier with every context input absent, as
  the trainer shows some of its beats.
- A single-lead signal CSV (one column, mV, optional header) with its sampling rate: cut into
  beats by `monitor.beats.extract_beats`, exactly as a bedside stream is.
- A WFDB record: .hea + .dat, optionally .atr. The lead is chosen as everywhere else
  (`monitor.records.read_lead`), beats are cut as above (a stretch of invalid samples is a gap:
  the cutter starts over after it, as the annotator and a live bed do), and with an .atr the
  beats are paired with the reference (EC57, 150 ms, VF episodes excluded) to score the
  prediction.

Everything a person can get wrong raises `InputError` with one sentence saying what to fix.
"""

from __future__ import annotations

import base64
import binascii
import csv
import dataclasses
import io
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from monitor import contract
from monitor.beats import extract_beats
from monitor.errors import InputError
from monitor.inputs import absent_context, select, stack_beats
from monitor.metrics import evaluate
from monitor.records import read_lead, runs_of, skipped_note
from monitor.validate import MAX_FS

MAX_UPLOAD_MB = 20
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024
MAX_BEATS = 30_000
#: Kaggle's numeric labels are the AAMI classes in the model's order.
KAGGLE_LABELS = dict(enumerate(contract.CLASSES))
_WFDB_SUFFIXES = {".hea", ".dat", ".atr"}


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes


@dataclass
class UploadedBeats:
    """Beats ready for the classifier, with whatever the upload said about them."""

    source: str
    #: The core's full input catalogue (`monitor.inputs.stack_beats` / `absent_context`):
    #: channels, context features and earlier beats' features.
    inputs: tuple[np.ndarray, np.ndarray, np.ndarray]
    #: Seconds from the start of the signal (None for Kaggle rows, which have no time).
    times: np.ndarray | None = None
    #: Reference class per beat (None where unknown), or None when the upload has no labels.
    labels: list[str | None] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def waveforms(self) -> np.ndarray:
        """The Kachuee beats (n, BEAT_LEN)."""
        return self.inputs[0][:, 0]

    @property
    def context_available(self) -> np.ndarray:
        """Whether each beat had rhythm context (False for Kaggle rows)."""
        return self.inputs[1][:, list(contract.FEATURES).index("rr_available")] > 0


@dataclass
class Analysis:
    beats: UploadedBeats
    probs: np.ndarray
    predicted: list[str]
    model_version: str
    #: `monitor.metrics.evaluate` output over the labelled beats, or None without labels.
    metrics: dict | None

    def counts(self) -> dict[str, int]:
        found = Counter(self.predicted)
        return {c: found.get(c, 0) for c in contract.CLASSES}


def decode_upload(contents: str, name: str) -> Upload:
    """A dcc.Upload data URL ("data:<type>;base64,<data>") as bytes."""
    if not isinstance(contents, str) or "," not in contents:
        raise InputError(f"{name}: the browser sent no file contents; upload the file again")
    header, _, payload = contents.partition(",")
    if not header.endswith(";base64"):
        raise InputError(f"{name}: unexpected upload encoding {header!r}")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"{name}: the upload is corrupt ({exc}); upload the file again") from exc
    return Upload(name, data)


def load(files: list[Upload], fs: float | None = None) -> UploadedBeats:
    """Beats of an upload: one CSV file, or the files of one WFDB record."""
    if not files:
        raise InputError("no file uploaded")
    total = sum(len(f.data) for f in files)
    if total > MAX_UPLOAD_BYTES:
        raise InputError(
            f"the upload is {total / 2**20:.1f} MB; the limit is {MAX_UPLOAD_MB} MB "
            "(split a Kaggle CSV into parts, or upload one record at a time)"
        )
    suffixes = {Path(f.name).suffix.lower() for f in files}
    if suffixes <= {".csv", ".txt"}:
        if len(files) != 1:
            raise InputError(f"upload one CSV file at a time, got {len(files)}")
        return load_csv(files[0], fs)
    if suffixes <= _WFDB_SUFFIXES:
        return load_wfdb(files)
    names = ", ".join(f.name for f in files)
    raise InputError(
        f"cannot read {names}: upload a .csv (Kaggle beat rows or a one-column signal) or a "
        "WFDB record's .hea and .dat (and optionally .atr) together"
    )


def _text(upload: Upload) -> str:
    try:
        return upload.data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{upload.name} is not a text CSV file (byte {exc.start} is not "
                         "UTF-8); is it a binary file?") from exc


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def load_csv(upload: Upload, fs: float | None) -> UploadedBeats:
    """A Kaggle beat-row CSV (187/188 columns) or a one-column signal CSV."""
    lines = [ln for ln in _text(upload).splitlines() if ln.strip()]
    if not lines:
        raise InputError(f"{upload.name} is empty")
    delimiter = ";" if ";" in lines[0] and "," not in lines[0] else ","
    rows = list(csv.reader(lines, delimiter=delimiter))
    first_data = 1 if not all(_is_number(c) for c in rows[0]) else 0
    rows = rows[first_data:]
    if not rows:
        raise InputError(f"{upload.name} has a header line but no data")
    n_cols = len(rows[0])
    bad = next((i for i, r in enumerate(rows) if len(r) != n_cols), None)
    if bad is not None:
        raise InputError(
            f"{upload.name} line {bad + 1 + first_data} has {len(rows[bad])} columns, the first "
            f"data line {n_cols}; every line must have the same columns"
        )
    if n_cols in (contract.BEAT_LEN, contract.BEAT_LEN + 1):
        return _kaggle(upload.name, rows, first_data)
    if n_cols == 1:
        return _signal(upload.name, rows, first_data, fs)
    raise InputError(
        f"{upload.name} has {n_cols} columns; expected {contract.BEAT_LEN} (Kaggle beat rows), "
        f"{contract.BEAT_LEN + 1} (beat rows plus a label column) or 1 (a single-lead signal)"
    )


def _floats(name: str, rows: list[list[str]], first_line: int, what: str) -> np.ndarray:
    try:
        values = np.array(rows, dtype=np.float64)
    except ValueError:
        for i, row in enumerate(rows):
            for j, cell in enumerate(row):
                if not _is_number(cell):
                    raise InputError(
                        f"{name} line {i + 1 + first_line}, column {j + 1}: {cell!r} is not a "
                        f"number ({what})"
                    ) from None
        raise
    if not np.all(np.isfinite(values)):
        i = int(np.argwhere(~np.isfinite(values))[0][0])
        raise InputError(f"{name} line {i + 1 + first_line} holds NaN or infinite values")
    return values


def _kaggle(name: str, rows: list[list[str]], first_line: int) -> UploadedBeats:
    if len(rows) > MAX_BEATS:
        raise InputError(f"{name} has {len(rows)} beat rows; the limit is {MAX_BEATS}")
    has_label = len(rows[0]) == contract.BEAT_LEN + 1
    x = _floats(name, [r[: contract.BEAT_LEN] for r in rows], first_line, "beat samples")
    labels = _kaggle_labels(name, [r[-1] for r in rows], first_line) if has_label else None
    notes = [f"{len(x)} beat rows at {contract.FS:g} Hz; no rhythm or patient context, so every "
             "context input is 'absent' for every beat, as for beats without context in training"]
    outside = np.any((x < -1e-6) | (x > 1 + 1e-6), axis=1)
    if outside.any():
        lo, hi = x[outside].min(axis=1, keepdims=True), x[outside].max(axis=1, keepdims=True)
        x[outside] = np.divide(x[outside] - lo, hi - lo, out=np.zeros_like(x[outside]),
                               where=hi > lo)
        notes.append(f"{int(outside.sum())} rows were not within [0, 1] and were min-max scaled "
                     "as the model's beats are")
    return UploadedBeats(f"{name}: Kaggle beat rows", absent_context(x), None, labels, notes)


def _kaggle_labels(name: str, cells: list[str], first_line: int) -> list[str | None]:
    labels: list[str | None] = []
    for i, cell in enumerate(cells):
        c = cell.strip()
        if c.upper() in contract.CLASSES:
            labels.append(c.upper())
            continue
        try:
            k = float(c)
        except ValueError:
            k = -1.0
        if k != int(k) or int(k) not in KAGGLE_LABELS:
            raise InputError(
                f"{name} line {i + 1 + first_line}: label {cell!r} in column "
                f"{contract.BEAT_LEN + 1} is neither 0-4 nor one of {'/'.join(contract.CLASSES)}"
            )
        labels.append(KAGGLE_LABELS[int(k)])
    return labels


def _signal(name: str, rows: list[list[str]], first_line: int, fs: float | None) -> UploadedBeats:
    if fs is None:
        raise InputError(
            f"{name} is a one-column signal: enter its sampling rate (Hz) and upload it again"
        )
    if not np.isfinite(fs) or fs < contract.MIN_SOURCE_FS:
        raise InputError(
            f"sampling rate {fs:g} Hz is too low: the beat detector needs at least "
            f"{contract.MIN_SOURCE_FS:g} Hz"
        )
    if fs > MAX_FS:
        raise InputError(f"sampling rate {fs:g} Hz is above {MAX_FS:g} Hz: check the unit")
    x = _floats(name, rows, first_line, "signal samples, mV")[:, 0]
    if np.ptp(x) == 0:
        raise InputError(f"{name}: the signal is a flat line")
    beats = _cut(name, x, fs)
    return UploadedBeats(
        f"{name}: single-lead signal, {len(x) / fs:.1f} s at {fs:g} Hz",
        stack_beats(beats),
        np.array([b.index / fs for b in beats]),
        None,
        ["samples taken as millivolts; beats cut by the live pipeline's detector"],
    )


def _cut(name: str, x: np.ndarray, fs: float) -> list:
    """Beats of `x`, each stretch of valid samples cut on its own (indices from x's start)."""
    beats = []
    try:
        for start, stop in runs_of(np.isfinite(x)):
            beats += [dataclasses.replace(b, index=start + b.index)
                      for b in extract_beats(x[start:stop], fs)]  # fmt: skip
    except ValueError as exc:
        raise InputError(f"{name}: {exc}") from exc
    if not beats:
        raise InputError(
            f"{name}: no beats found in {len(x) / fs:.1f} s of signal; is it an ECG lead, and is "
            "the sampling rate right?"
        )
    if len(beats) > MAX_BEATS:
        raise InputError(f"{name}: {len(beats)} beats found; the limit is {MAX_BEATS}")
    return beats


def load_wfdb(files: list[Upload]) -> UploadedBeats:
    """A WFDB record from its uploaded .hea/.dat (+ .atr) files."""
    headers = [f for f in files if f.name.lower().endswith(".hea")]
    if len(headers) != 1:
        raise InputError(
            f"a WFDB upload needs exactly one .hea header, got {len(headers)}; upload the "
            "record's .hea and .dat files together"
        )
    record = Path(headers[0].name).stem
    if not any(f.name.lower().endswith(".dat") for f in files):
        raise InputError(f"record {record}: the .dat signal file is missing from the upload")
    with tempfile.TemporaryDirectory(prefix="ecg-upload-") as tmp:
        for f in files:
            (Path(tmp) / Path(f.name).name).write_bytes(f.data)
        lead = read_lead(record, tmp, invalid_ok=True)
        beats = _cut(f"record {record}", lead.signal, lead.fs)
        atr = Path(tmp) / f"{record}.atr"
        labels, notes = (_reference_labels(atr, beats, lead.fs) if atr.is_file()
                         else (None, []))
    invalid = ~np.isfinite(lead.signal)
    if invalid.any():
        notes.append(skipped_note(len(runs_of(invalid)), np.count_nonzero(invalid) / lead.fs))
    return UploadedBeats(
        f"WFDB record {record}, lead {lead.name}, {len(lead.signal) / lead.fs:.0f} s at "
        f"{lead.fs:g} Hz",
        stack_beats(beats),
        np.array([b.index / lead.fs for b in beats]),
        labels,
        notes,
    )


def _reference_labels(atr: Path, beats: list, fs: float) -> tuple[list[str | None], list[str]]:
    """Reference class of each detected beat by EC57 matching with the .atr annotations."""
    import wfdb

    from monitor.signal.ec57 import match, reference_beats

    try:
        ann = wfdb.rdann(str(atr.with_suffix("")), "atr")
    except Exception as exc:  # wfdb raises many types for a malformed file
        raise InputError(f"{atr.name} is not a readable WFDB annotation file: {exc}") from exc
    ref = reference_beats(list(ann.symbol), list(ann.sample))
    m = match(ref.samples, [b.index for b in beats], fs, exclude=ref)
    labels: list[str | None] = [None] * len(beats)
    for i, j in m.pairs:
        labels[j] = contract.aami_class(str(ref.symbols[i]))
    notes = [f"{len(m.pairs)} beats matched to {len(ref.samples)} reference beats within "
             f"150 ms; {len(m.missed)} reference beats were not detected and {len(m.extra)} "
             "detections have no reference beat (both left out of the scores)"]
    return labels, notes


def analyse(beats: UploadedBeats, classifier) -> Analysis:
    """Classify every beat; score against the labels where the upload has them."""
    x, context = select(classifier.contract, *beats.inputs)
    probs = np.asarray(classifier.predict(x, context), dtype=np.float64)
    classes = tuple(classifier.classes)
    predicted = [classes[k] for k in probs.argmax(axis=1)]
    metrics = None
    if beats.labels is not None:
        scored = [(t, p) for t, p in zip(beats.labels, predicted, strict=True) if t is not None]
        if scored:
            index = {c: k for k, c in enumerate(classes)}
            metrics = evaluate(np.array([index[t] for t, _ in scored]),
                               np.array([index[p] for _, p in scored]), classes)
    return Analysis(beats, probs, predicted, classifier.version, metrics)


def table(analysis: Analysis) -> list[dict]:
    """One row per beat: number, time, prediction, confidence, probabilities, reference."""
    out = []
    b = analysis.beats
    for i, (label, p) in enumerate(zip(analysis.predicted, analysis.probs, strict=True)):
        row: dict = {"id": i, "beat": i + 1}
        if b.times is not None:
            row["time_s"] = round(float(b.times[i]), 3)
        row["predicted"] = label
        row["confidence"] = round(float(p.max()), 4)
        row.update({f"p_{c}": round(float(v), 4) for c, v in zip(contract.CLASSES, p,
                                                                  strict=True)})
        if b.labels is not None:
            ref = b.labels[i]
            row["reference"] = ref or ""
            row["agrees"] = "" if ref is None else ("yes" if ref == label else "no")
        out.append(row)
    return out


def to_csv(analysis: Analysis) -> str:
    rows = table(analysis)
    buf = io.StringIO()
    fields = [k for k in rows[0] if k != "id"] if rows else ["beat"]
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()
