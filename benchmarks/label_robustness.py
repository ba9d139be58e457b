"""Beat labels where other hospitals' recordings differ from MIT-BIH, on unseen patients.

Other databases do not all lead with MIT-BIH's MLII (SVDB and LTAFDB name their channels
ECG1/ECG2, the European ST-T database starts with V4 or MLIII; `monitor.records` falls back to
the first ECG channel when there is no lead II), and their patients move and wander more. This
benchmark asks what the labels are worth there. It takes the runs of `trainer.crossval` (each
fold's model never saw its validation patients), annotates each run's validation patients end to
end under each condition, and scores them against the reference beats as `trainer.evaluate`
does (EC57, 150 ms). Conditions: `analysed` (the lead the monitor analyses, as cross-validated),
`other` (the record's other lead, V1 in most MIT-BIH records), and `KIND:SNR` (the analysed
lead with NSTDB noise `bw` baseline wander, `em` electrode motion or `ma` muscle at that
signal-to-noise ratio in dB, the NST's definition, on every lead). DS2 is never read.

    python -m trainer.crossval --settings af_evidence --seeds 0 --out runs/cv
    python benchmarks/label_robustness.py --runs runs/cv --settings af_evidence \
        --conditions analysed other bw:6 em:6 ma:6
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor import contract, metrics
from monitor.annotate import annotate_lead, load_classifier
from monitor.errors import InputError, run_cli
from monitor.records import Lead, read_annotations, read_lead, resolve_mitdb
from simulators.noise import NoiseSpec, load_noise, noise_gain
from trainer.crossval import SCORED
from trainer.evaluate import record_confusion


def validation_patients(run_dir: Path) -> list[str]:
    """The validation patients a crossval run names in its model's split description."""
    split = json.loads((run_dir / "config.json").read_text())["split"]
    found = re.search(r"validation patients ([^;]+);", split)
    if found is None:
        raise InputError(f"{run_dir}: no validation patients in its split description")
    return found.group(1).split()


def shown(lead: Lead, condition: str, nstdb_dir: str | None) -> Lead | None:
    """The record as `condition` presents it (None: the record has no other lead)."""
    if condition == "analysed":
        return lead
    if condition == "other":
        if not lead.others:
            return None
        return dataclasses.replace(lead, signal=lead.others[0], others=(lead.signal,))
    spec = NoiseSpec.parse(condition)
    noise = load_noise(spec.kind, lead.fs, nstdb_dir)
    noise = np.resize(noise, len(lead.signal))  # the noise record repeats, as the simulator's
    gain = noise_gain(lead.signal, noise, lead.fs, spec.snr_db)
    return dataclasses.replace(
        lead, signal=lead.signal + gain * noise, others=tuple(o + gain * noise for o in lead.others)
    )


def score_run(
    run_dir: Path, data_dir: Path, conditions: list[str], nstdb_dir: str | None
) -> dict[str, np.ndarray]:
    """EC57 confusion matrices of the run's model on its validation patients, per condition."""
    classifier = load_classifier(run_dir / "model.pt", "cpu")
    out = {condition: 0 for condition in conditions}
    for record in validation_patients(run_dir):
        lead = read_lead(record, data_dir, others=True)
        atr = read_annotations(record, data_dir)
        for condition in conditions:
            seen = shown(lead, condition, nstdb_dir)
            if seen is None:
                continue
            ann = annotate_lead(seen, classifier)
            out[condition] = out[condition] + record_confusion(
                atr.symbol, atr.sample, ann.samples, ann.labels, lead.fs
            )
    return out


def row(setting: str, condition: str, cm: np.ndarray, n_runs: int) -> str:
    """One table row: the pooled macro F1 as trainer.crossval averages it, and per class."""
    k = len(contract.CLASSES)
    rates = metrics.class_rates(cm, k)
    at = {c: contract.CLASSES.index(c) for c in contract.CLASSES}
    f1 = np.mean([np.nan_to_num(rates["f1"][at[c]]) for c in SCORED])
    cells = [f"{100 * rates['se'][at[c]]:.1f} / {100 * rates['ppv'][at[c]]:.1f}" for c in "NSV"]
    det = metrics.detection_rates(cm, k)
    return (
        f"| {setting} | {condition} | {n_runs} | {100 * f1:.1f} | " + " | ".join(cells)
        + f" | {100 * det['se']:.2f} / {100 * det['ppv']:.2f} |"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", required=True, help="trainer.crossval's --out directory")
    p.add_argument("--settings", nargs="+", required=True)
    p.add_argument("--conditions", nargs="+", default=["analysed", "other"],
                   help="analysed, other, KIND:SNR (bw, em, ma; e.g. em:6)")  # fmt: skip
    p.add_argument("--data-dir", help="MIT-BIH directory (default: $ECG_MITDB_DIR)")
    p.add_argument("--nstdb-dir", help="NSTDB directory (default: $ECG_NSTDB_DIR)")
    args = p.parse_args(argv)
    for condition in args.conditions:
        if condition not in ("analysed", "other"):
            NoiseSpec.parse(condition)  # a bad one fails before an hour of scoring
    runs = Path(args.runs)
    cms: dict[tuple[str, str], np.ndarray] = defaultdict(int)
    counts: dict[str, int] = defaultdict(int)
    for setting in args.settings:
        dirs = sorted(d for d in runs.glob(f"{setting}-f*-s*") if (d / "model.pt").is_file())
        if not dirs:
            raise InputError(f"no finished run of {setting!r} in {runs}")
        for run_dir in dirs:
            data_dir = resolve_mitdb(args.data_dir, validation_patients(run_dir))
            for condition, cm in score_run(
                run_dir, data_dir, args.conditions, args.nstdb_dir
            ).items():
                cms[setting, condition] = cms[setting, condition] + cm
            counts[setting] += 1
            print(f"{run_dir.name} scored", file=sys.stderr, flush=True)
    print("\nValidation patients of each run, end to end (EC57, 150 ms), every fold and seed "
          "pooled\n")  # fmt: skip
    print("| setting | condition | runs | macro F1 (N S V F) | N Se / +P | S Se / +P | V Se / +P | "
          "detection Se / +P |")  # fmt: skip
    print("| --- | --- | ---: | ---: | --- | --- | --- | --- |")
    for (setting, condition), cm in cms.items():
        print(row(setting, condition, cm, counts[setting]))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
