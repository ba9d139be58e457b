"""Beat labels when the same ECG arrives at other sampling rates: EC57 figures per rate.

Each record's analysed lead is resampled from its own rate (MIT-BIH: 360 Hz) to each rate with
SciPy's anti-aliased polyphase filter (`monitor.signal.resample.resample`) and run through the
offline annotator's pipeline (`BedPipeline` and the shipped classifier, as the worker runs
them); the reference beats move
to the same rate. The beat core brings every source to 125 Hz itself, so the rows should agree:
a gap between them is a step that depends on the source rate (detection, the RR and template
context, the cut) and is a bug. Other hospitals send 128, 250, 500 or 1000 Hz.

The default records are DS1: most are the shipped model's training patients, so the absolute
figures are optimistic; the rows are there to be compared with each other. Rows: EC57 gross
detection Se / +P and per-class Se / +P over every reference beat (missed beats and extra
detections counted), 150 ms match window.

    python benchmarks/sampling_rates.py [--data-dir M] [--rates 128 250 360 500 1000]
                                        [--records 100 ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor import contract, metrics
from monitor.annotate import annotate_lead, load_classifier
from monitor.errors import run_cli
from monitor.records import DS1, Lead, read_annotations, read_lead, resolve_mitdb
from monitor.signal.resample import resample
from trainer.evaluate import K, record_confusion

SHOWN = ("N", "S", "V")


def at_rate(lead: Lead, rate: float) -> Lead:
    """`lead` resampled to `rate` (its other leads dropped: the beat labels use one)."""
    return Lead(lead.record, lead.name, rate, resample(lead.signal, lead.fs, rate))


def confusion_at(rate: float, records: list[str], data_dir: Path, classifier) -> np.ndarray:
    """The records' EC57 confusion matrix (classes plus "no beat") with the ECG at `rate`."""
    total = np.zeros((K + 1, K + 1), dtype=np.int64)
    for record in records:
        source = read_lead(record, data_dir)
        lead = at_rate(source, rate)
        atr = read_annotations(record, data_dir)
        ann = annotate_lead(lead, classifier)
        ref = np.round(np.asarray(atr.sample) * lead.fs / source.fs).astype(np.int64)
        total += record_confusion(atr.symbol, ref, ann.samples, ann.labels, lead.fs)
    return total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir")
    ap.add_argument("--rates", type=float, nargs="+", default=[128, 250, 360, 500, 1000])
    ap.add_argument("--records", nargs="+", default=list(DS1))
    args = ap.parse_args(argv)
    for rate in args.rates:
        if not contract.MIN_SOURCE_FS <= rate <= 10_000:
            raise SystemExit(f"error: --rates: {rate:g} Hz is outside "
                             f"{contract.MIN_SOURCE_FS:g}..10000 Hz")  # fmt: skip
    data_dir = resolve_mitdb(args.data_dir, args.records)
    classifier = load_classifier(device="cpu")
    print(f"model {classifier.version}; {len(args.records)} records; EC57 gross, every "
          "reference beat, Se / +P in %\n")  # fmt: skip
    head = ["rate (Hz)", "beats detected Se / +P", *(f"{c} Se / +P" for c in SHOWN), "seconds"]
    print("| " + " | ".join(head) + " |\n|" + " ---: |" * len(head))
    for rate in args.rates:
        t0 = time.perf_counter()
        cm = confusion_at(rate, args.records, data_dir, classifier)
        det = metrics.detection_rates(cm, K)
        cells = [f"{rate:g}", f"{100 * det['se']:.2f} / {100 * det['ppv']:.2f}"]
        for c in SHOWN:
            i = contract.CLASSES.index(c)
            # Missed beats count against Se, extra detections called c against +P.
            cells.append(f"{100 * cm[i, i] / cm[i].sum():.1f} / "
                         f"{100 * cm[i, i] / cm[:, i].sum():.1f}")  # fmt: skip
        cells.append(f"{time.perf_counter() - t0:.0f}")
        print("| " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
