"""Offline annotator: the serving pipeline over WFDB records, written as WFDB annotations.

It runs exactly what a bedside stream runs (a worker's `BedPipeline` fed in bedside chunks:
the beat cutter, the TorchScript classifier on batches of beats, the alarm engine), so its
output scores the whole product with PhysioNet's own tools, e.g. `bxb -r 100 -a atr ecgm`, on
any annotated database at any rate, and its alarms are the ones a ward would have seen.

The alarms go into the same annotation file the way MIT-BIH writes rhythms: a `+` annotation
whose aux note names the rhythm alarm now shown (the most severe active one: `(VFL`, `(ASYS`,
`(VT`, ...; `(N` when none is), and, every kind included, into RECORD.alarms.csv and .json.
"""

from __future__ import annotations

import argparse
import csv
import json
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
from monitor.alarms import AlarmEvent, AlarmSettings
from monitor.bed import BedPipeline, PendingBeat
from monitor.errors import InputError, run_cli
from monitor.records import ENV_MITDB, Lead, read_lead, runs_of, skipped_note
from monitor.validate import BEDSIDE_CHUNK_S, Chunk

if TYPE_CHECKING:
    from monitor.classifier import BeatClassifier

#: WFDB annotator name of our output files.
EXTENSION = "ecgm"
#: Beats per classifier call.
DEFAULT_BATCH = 256
_RECORD_SUFFIXES = (".hea", ".dat", ".atr")
#: Rhythm alarms written as rhythm changes, most severe first, with their aux notes (MIT-BIH's
#: own rhythm codes where it has one). `(N`: no rhythm alarm active.
RHYTHM_NOTES = {
    "asystole": "(ASYS",
    "vflutter": "(VFL",
    "vtach": "(VT",
    "xtachy": "(XTACHY",
    "xbrady": "(XBRADY",
    "svt": "(SVTA",
    "afib": "(AFIB",
    "bigeminy": "(B",
    "trigeminy": "(T",
}
NO_RHYTHM_ALARM = "(N"


@dataclass(frozen=True)
class Episode:
    """One alarm episode, seconds from the record's start."""

    kind: str
    priority: str
    start_s: float
    #: None: still active when the record ended.
    end_s: float | None
    start_index: int
    end_index: int | None
    message: str


def episodes(events: list[AlarmEvent]) -> tuple[Episode, ...]:
    """Start/end events paired into episodes, in start order."""
    started: dict[str, AlarmEvent] = {}
    out: list[Episode] = []
    for e in events:
        if e.state == "start":
            started[e.alarm_id] = e
            continue
        s = started.pop(e.alarm_id)
        out.append(Episode(s.kind, s.priority, s.time, e.time, s.index, e.index, s.message))
    out += [Episode(s.kind, s.priority, s.time, None, s.index, None, s.message)
            for s in started.values()]  # fmt: skip
    return tuple(sorted(out, key=lambda ep: (ep.start_index, ep.kind)))


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
    #: Alarm episodes the bed's alarm engine raised on the record.
    alarms: tuple[Episode, ...] = ()
    #: Stretches of invalid (NaN) samples skipped, and their samples in all.
    gaps: int = 0
    gap_samples: int = 0

    def counts(self) -> dict[str, int]:
        found = Counter(self.labels)
        return {c: found.get(c, 0) for c in contract.CLASSES}


def annotate_lead(
    lead: Lead,
    classifier: BeatClassifier,
    chunk_s: float = BEDSIDE_CHUNK_S,
    batch_size: int = DEFAULT_BATCH,
    settings: AlarmSettings | None = None,
) -> Annotation:
    """Stream `lead` (and its `others`, for the alarms) through a fresh `BedPipeline`, labelling
    beats `batch_size` at a time.

    Stream time is seconds from the record's start; no wall clock is involved (so no no_data).
    Invalid (NaN) samples of the lead are not sent: the pipeline sees a gap there and starts
    over after it, as a live bed does when samples go missing.
    """
    if not np.isfinite(chunk_s) or chunk_s <= 0:
        raise ValueError(f"chunk_s must be a positive number of seconds, got {chunk_s!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size!r}")
    chunk = max(1, round(chunk_s * lead.fs))
    pipeline: BedPipeline | None = None
    labelled: list[PendingBeat] = []
    pending: list[PendingBeat] = []
    events: list[AlarmEvent] = []

    def drain(final: bool) -> None:
        nonlocal pending
        while len(pending) >= batch_size or (final and pending):
            batch, pending = pending[:batch_size], pending[batch_size:]
            for p, prediction in zip(batch, classifier.classify([p.beat for p in batch]),
                                     strict=True):  # fmt: skip
                p.label, p.probs = prediction.label, prediction.probs
            labelled.extend(batch)

    finite = np.isfinite(lead.signal)
    runs = runs_of(finite)
    for start, stop in ((s, min(s + chunk, b)) for a, b in runs for s in range(a, b, chunk)):
        piece = Chunk(lead.record, lead.record, lead.fs, start, start / lead.fs,
                      np.asarray(lead.signal[start:stop], dtype=np.float64),
                      tuple(np.asarray(o[start:stop], dtype=np.float64)
                            for o in lead.others))  # fmt: skip
        if pipeline is None:
            pipeline = BedPipeline(piece, settings)
        _, beats = pipeline.accept(piece, wall_time=piece.end_time, sent=0.0)
        pending.extend(beats)
        drain(final=False)
        if not pending:  # every queued beat has its label: the alarm engine may run
            events += pipeline.run_alarms()
    drain(final=True)
    samples = [p.index for p in labelled]
    labels = [p.label for p in labelled]
    if pipeline is not None:
        events += pipeline.run_alarms()
        # A stream never ends; a file does: its last beats wait for no next R-peak. They are
        # labelled for the annotation file but, as live, reach no alarm.
        tail = pipeline.extractor.flush()
        samples += [pipeline.segment_start + b.index for b in tail]
        labels += [p.label for p in classifier.classify(tail)] if tail else []
    return Annotation(
        record=lead.record,
        fs=lead.fs,
        samples=np.asarray(samples, dtype=np.int64),
        labels=tuple(labels),
        n_samples=len(lead.signal),
        alarms=episodes(events),
        gaps=len(runs_of(~finite)),
        gap_samples=int(np.count_nonzero(~finite)),
    )


def rhythm_changes(alarms: tuple[Episode, ...], n_samples: int) -> list[tuple[int, str]]:
    """(sample, aux note) each time the most severe active rhythm alarm changes."""
    rank = {kind: i for i, kind in enumerate(RHYTHM_NOTES)}
    edges = sorted(
        {ep.start_index for ep in alarms if ep.kind in rank}
        | {ep.end_index for ep in alarms if ep.kind in rank and ep.end_index is not None}
    )
    out: list[tuple[int, str]] = []
    shown = NO_RHYTHM_ALARM
    for at in edges:
        active = [ep.kind for ep in alarms if ep.kind in rank and ep.start_index <= at
                  and (ep.end_index is None or ep.end_index > at)]  # fmt: skip
        note = RHYTHM_NOTES[min(active, key=rank.__getitem__)] if active else NO_RHYTHM_ALARM
        if note != shown and at < n_samples:
            out.append((at, note))
            shown = note
    return out


def load_classifier(model: str | Path | None = None, device: str = "auto") -> BeatClassifier:
    """The shipped model (or `model`) on `device`; refused with one sentence when unusable."""
    import torch

    from monitor.classifier import BeatClassifier

    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA GPU is available here; use --device cpu or auto")
    return BeatClassifier(model, device=device)


def write_annotation(ann: Annotation, out_dir: str | Path) -> Path:
    """Write `out_dir/<record>.ecgm` (beats and rhythm-alarm changes) and the alarm list as
    `<record>.alarms.csv` / `.json`, each atomically: a reader sees the old file or the new.

    Files are written into a private directory beside the targets and renamed over them,
    which is atomic on one file system.
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

    changes = rhythm_changes(ann.alarms, ann.n_samples)
    marks = sorted(
        [(int(s), 0, label, "") for s, label in zip(ann.samples, ann.labels, strict=True)]
        + [(at, -1, "+", note) for at, note in changes]  # a change before a beat at its sample
    )
    tmp = Path(tempfile.mkdtemp(prefix=f".{ann.record}.", dir=out_dir))
    try:
        wfdb.wrann(
            ann.record,
            EXTENSION,
            sample=np.array([m[0] for m in marks], dtype=np.int64),
            symbol=[m[2] for m in marks],
            aux_note=[m[3] for m in marks],
            fs=ann.fs,
            write_dir=str(tmp),
        )
        rows = [
            {"kind": ep.kind, "priority": ep.priority, "start_s": round(ep.start_s, 3),
             "end_s": None if ep.end_s is None else round(ep.end_s, 3), "message": ep.message}
            for ep in ann.alarms
        ]  # fmt: skip
        with open(tmp / "alarms.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["kind", "priority", "start_s", "end_s",
                                                   "message"])  # fmt: skip
            writer.writeheader()
            writer.writerows(rows)
        (tmp / "alarms.json").write_text(json.dumps(
            {"record": ann.record, "fs": ann.fs, "seconds": ann.n_samples / ann.fs,
             "alarms": rows}, indent=1))  # fmt: skip
        os.replace(tmp / target.name, target)
        for kind in ("csv", "json"):
            os.replace(tmp / f"alarms.{kind}", out_dir / f"{ann.record}.alarms.{kind}")
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
        "serving pipeline; writes OUT/RECORD.ecgm (symbols N S V F Q, and rhythm alarms as "
        "'+' annotations with aux notes), readable by wfdb.rdann(path, 'ecgm') and PhysioNet's "
        "bxb, and the alarm episodes as OUT/RECORD.alarms.csv and .json.",
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
            # every lead, as the simulator sends; invalid samples are gaps, as in a stream
            lead = read_lead(name, directory, others=True, invalid_ok=True)
            ann = annotate_lead(lead, classifier, batch_size=args.batch_size)
            path = write_annotation(ann, out)
        except InputError as exc:
            # With several records, every line must say which record it is about.
            named = f"record {name!r}" in str(exc)
            print(f"error: {exc}" if named else f"error: record {record!r}: {exc}", file=sys.stderr)
            failed += 1
            continue
        counts = " ".join(f"{c}={n}" for c, n in ann.counts().items())
        kinds = Counter(ep.kind for ep in ann.alarms)
        alarms = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) or "none"
        notes = ""
        if ann.gaps:
            notes += f"; {skipped_note(ann.gaps, ann.gap_samples / ann.fs)}"
        if lead.left_out:
            notes += f"; left out: {', '.join(lead.left_out)}"
        print(
            f"{name}: {len(ann.samples)} beats ({counts}) in {ann.n_samples / ann.fs:.0f} s of "
            f"{lead.name} at {ann.fs:g} Hz, took {time.perf_counter() - t0:.1f} s -> {path}; "
            f"alarm episodes: {alarms}{notes}",
            flush=True,
        )
    return 2 if failed else 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(run, argv)


if __name__ == "__main__":
    sys.exit(main())
