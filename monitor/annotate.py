"""Offline annotator: the serving pipeline over WFDB records, written as WFDB annotations.

It runs exactly what a bedside stream runs (`BeatExtractor` fed in one-second chunks, then the
TorchScript classifier on batches of beats), so its output files score the whole product with
PhysioNet's own tools, e.g. `bxb -r 100 -a atr ecgm`, on any annotated database at any rate.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from monitor import contract
from monitor.beats import Beat, BeatExtractor
from monitor.errors import InputError, run_cli
from monitor.records import ENV_MITDB, Lead, read_lead

if TYPE_CHECKING:
    from monitor.classifier import BeatClassifier

#: WFDB annotator name of our output files.
EXTENSION = "ecgm"
#: Seconds of signal per chunk fed to the extractor, as a bedside monitor would send them.
CHUNK_S = 1.0
#: Beats per classifier call.
DEFAULT_BATCH = 256
_RECORD_SUFFIXES = (".hea", ".dat", ".atr")


@dataclass(frozen=True)
class Annotation:
    """Classified beats of one record."""

    record: str
    fs: float
    #: R-peak positions in samples of the record's own rate, increasing.
    samples: np.ndarray
    #: AAMI class per beat, one of `contract.CLASSES`.
    labels: tuple[str, ...]
    #: Length of the annotated lead, in samples.
    n_samples: int

    def counts(self) -> dict[str, int]:
        found = Counter(self.labels)
        return {c: found.get(c, 0) for c in contract.CLASSES}


def annotate_lead(
    lead: Lead,
    classifier: BeatClassifier,
    chunk_s: float = CHUNK_S,
    batch_size: int = DEFAULT_BATCH,
) -> Annotation:
    """Stream `lead` through a fresh `BeatExtractor` and label its beats `batch_size` at a time."""
    if not np.isfinite(chunk_s) or chunk_s <= 0:
        raise ValueError(f"chunk_s must be a positive number of seconds, got {chunk_s!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size!r}")
    extractor = BeatExtractor(lead.fs)
    chunk = max(1, round(chunk_s * lead.fs))
    samples: list[int] = []
    labels: list[str] = []
    pending: list[Beat] = []

    def drain(final: bool) -> None:
        nonlocal pending
        while len(pending) >= batch_size or (final and pending):
            batch, pending = pending[:batch_size], pending[batch_size:]
            labels.extend(p.label for p in classifier.classify(batch))
            samples.extend(b.index for b in batch)

    for start in range(0, len(lead.signal), chunk):
        pending.extend(extractor.feed(lead.signal[start : start + chunk]))
        drain(final=False)
    pending.extend(extractor.flush())
    drain(final=True)
    return Annotation(
        record=lead.record,
        fs=lead.fs,
        samples=np.asarray(samples, dtype=np.int64),
        labels=tuple(labels),
        n_samples=len(lead.signal),
    )


def load_classifier(model: str | Path | None = None, device: str = "auto") -> BeatClassifier:
    """The shipped model (or `model`) on `device`; refused with one sentence when unusable."""
    import torch

    from monitor.classifier import BeatClassifier

    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA GPU is available here; use --device cpu or auto")
    return BeatClassifier(model, device=device)


def write_annotation(ann: Annotation, out_dir: str | Path) -> Path:
    """Write `out_dir/<record>.ecgm` atomically: a reader sees the old file or the new, never half.

    The file is written into a private directory beside the target and renamed over it, which is
    atomic on one file system.
    """
    if len(ann.samples) == 0:
        raise InputError(
            f"record {ann.record!r}: no beats found in {ann.n_samples / ann.fs:.0f} s of signal; "
            "is this an ECG lead? nothing written"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{ann.record}.{EXTENSION}"
    import wfdb

    tmp = Path(tempfile.mkdtemp(prefix=f".{ann.record}.", dir=out_dir))
    try:
        wfdb.wrann(
            ann.record,
            EXTENSION,
            sample=ann.samples,
            symbol=list(ann.labels),
            fs=ann.fs,
            write_dir=str(tmp),
        )
        os.replace(tmp / target.name, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _locate(record: str, data_dir: Path | None) -> tuple[str, Path]:
    """(record name, directory) from a name plus --data-dir, a path, or $ECG_MITDB_DIR."""
    if data_dir is not None:
        return record, data_dir
    path = Path(record).expanduser()
    if path.suffix in _RECORD_SUFFIXES:
        path = path.with_suffix("")
    if path.parent != Path(".") or Path(f"{path}.hea").is_file():
        return path.name, path.parent
    env = os.environ.get(ENV_MITDB)
    if env:
        return record, Path(env).expanduser()
    raise InputError(
        f"no --data-dir and ${ENV_MITDB} unset; pass --data-dir DIR or a path such as DIR/RECORD"
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ecg-annotate",
        description="Label every beat of WFDB records (any sampling rate >= 100 Hz) with the "
        "serving pipeline; writes OUT/RECORD.ecgm (symbols N S V F Q), readable by "
        "wfdb.rdann(path, 'ecgm') and PhysioNet's bxb.",
    )
    p.add_argument("records", nargs="+", metavar="RECORD", help="record name, or path DIR/RECORD")
    p.add_argument("--data-dir", help=f"directory of the records (default: ${ENV_MITDB})")
    p.add_argument("--out", required=True, help="directory for the .ecgm files")
    p.add_argument("--model", help="TorchScript model (default: the shipped model, or $ECG_MODEL)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help="beats per model call")
    return p


def run(argv: list[str] | None = None) -> int:
    """Annotate each record; a bad record is reported and skipped, and the exit code says so."""
    args = _parser().parse_args(argv)
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {args.batch_size}")
    data_dir = Path(args.data_dir).expanduser() if args.data_dir is not None else None
    if data_dir is not None and not data_dir.is_dir():
        raise InputError(f"data directory {data_dir} (from --data-dir) does not exist")
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output directory --out {out}: {exc}") from exc
    classifier = load_classifier(args.model, args.device)
    failed = 0
    for record in args.records:
        t0 = time.perf_counter()
        name = record
        try:
            name, directory = _locate(record, data_dir)
            lead = read_lead(name, directory)
            ann = annotate_lead(lead, classifier, batch_size=args.batch_size)
            path = write_annotation(ann, out)
        except InputError as exc:
            # With several records, every line must say which record it is about.
            named = f"record {name!r}" in str(exc)
            print(f"error: {exc}" if named else f"error: record {record!r}: {exc}", file=sys.stderr)
            failed += 1
            continue
        counts = " ".join(f"{c}={n}" for c, n in ann.counts().items())
        print(
            f"{name}: {len(ann.samples)} beats ({counts}) in {ann.n_samples / ann.fs:.0f} s of "
            f"{lead.name} at {ann.fs:g} Hz, took {time.perf_counter() - t0:.1f} s -> {path}",
            flush=True,
        )
    return 2 if failed else 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(run, argv)


if __name__ == "__main__":
    sys.exit(main())
