"""EC57 beat-detection benchmark of the streaming R-peak detector on MIT-BIH.

Runs the product's own chain for each record (read_lead -> StreamResampler to 125 Hz ->
QRSDetector fed in chunks), maps the 125 Hz peaks back to the source rate as `Beat.index` does,
and matches them to the reference beats (VF episodes excluded) within 150 ms. Prints per-record
counts, gross rows for the de Chazal DS1/DS2 split and all records, the fiducial offset
(detection minus annotation) and the detector's time per record.

    python benchmarks/detector_ec57.py --data-dir /path/to/mitdb [--records 100 119] [--chunk 31]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor import contract
from monitor.errors import InputError, run_cli
from monitor.records import DS1, DS2, list_records, read_annotations, read_lead, resolve_mitdb
from monitor.signal import ec57
from monitor.signal.detect import QRSDetector
from monitor.signal.resample import StreamResampler


@dataclass
class RecordResult:
    record: str
    match: ec57.Match
    seconds: float  # detector CPU time only (robust to other load on the machine)
    duration_s: float  # signal length


def detect_stream(x125: np.ndarray, chunk: int) -> list[int]:
    detector = QRSDetector(contract.FS)
    peaks: list[int] = []
    for start in range(0, len(x125), chunk):
        peaks += detector.feed(x125[start : start + chunk])
    return peaks + detector.flush()


def run_record(record: str, data_dir: Path, chunk: int | None, window_s: float) -> RecordResult:
    lead = read_lead(record, data_dir)
    resampler = StreamResampler(lead.fs, contract.FS)
    x125 = np.concatenate([resampler.feed(lead.signal), resampler.flush()])
    t0 = time.process_time()
    peaks = detect_stream(x125, chunk or len(x125))
    seconds = time.process_time() - t0
    ann = read_annotations(record, data_dir)
    ref = ec57.reference_beats(ann.symbol, ann.sample)
    det = np.round(np.asarray(peaks, dtype=np.float64) * lead.fs / contract.FS)
    m = ec57.match(ref.samples, det, lead.fs, window_s=window_s, exclude=ref)
    return RecordResult(record, m, seconds, len(lead.signal) / lead.fs)


def _row(name: str, s: ec57.Score, extra: str = "") -> str:
    return (
        f"{name:<8} {s.tp + s.fn:>7} {s.tp:>7} {s.fn:>5} {s.fp:>5} "
        f"{100 * s.se:>7.2f} {100 * s.ppv:>7.2f}{extra}"
    )


def report(results: list[RecordResult]) -> str:
    lines = [
        f"{'record':<8} {'beats':>7} {'TP':>7} {'FN':>5} {'FP':>5} {'Se%':>7} {'+P%':>7}"
        f" {'off ms':>7} {'cpu s':>7}"
    ]
    for r in results:
        off = np.median(r.match.offsets_s) * 1000 if len(r.match.pairs) else float("nan")
        lines.append(_row(r.record, r.match.score, f" {off:>7.1f} {r.seconds:>7.3f}"))
    lines.append("-" * len(lines[0]))
    groups = {"DS1": set(DS1), "DS2": set(DS2), "all": {r.record for r in results}}
    for name, members in groups.items():
        chosen = [r for r in results if r.record in members]
        if chosen:
            lines.append(_row(name, ec57.gross(r.match.score for r in chosen)))
    offsets = np.concatenate([r.match.offsets_s for r in results]) * 1000
    if len(offsets):
        q1, med, q3 = np.percentile(offsets, [25, 50, 75])
        lines.append(
            f"offset detection - reference: median {med:.1f} ms, IQR {q1:.1f} .. {q3:.1f} ms, "
            f"|offset| > 50 ms: {np.mean(np.abs(offsets) > 50) * 100:.2f} % of matched beats"
        )
    total = sum(r.seconds for r in results)
    hours = sum(r.duration_s for r in results) / 3600
    lines.append(
        f"detector CPU time: {total / len(results):.3f} s per record (mean), {total:.2f} s for "
        f"{hours:.1f} h of signal ({hours * 3600 / total:.0f}x real time)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="MIT-BIH directory (default: $ECG_MITDB_DIR)")
    parser.add_argument("--records", nargs="+", help="record names (default: all in RECORDS)")
    parser.add_argument(
        "--chunk",
        type=int,
        default=None,
        help="feed the detector in chunks of this many 125 Hz samples (default: whole record)",
    )
    parser.add_argument("--window-ms", type=float, default=150.0, help="match window (ms)")
    args = parser.parse_args(argv)
    if args.chunk is not None and args.chunk < 1:
        raise InputError(f"--chunk must be a positive number of samples, got {args.chunk}")
    data_dir = resolve_mitdb(args.data_dir, args.records)
    records = args.records or list_records(data_dir)
    results = [run_record(r, data_dir, args.chunk, args.window_ms / 1000) for r in records]
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
