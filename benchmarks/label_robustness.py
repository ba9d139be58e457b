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

`--dominant-gate` scores the same runs with the dominant-beat gate (`monitor.decision`) of
each setting given, in place of the one in the run's contract, so a rule after the network is
chosen on unseen patients without retraining: `own` (the run's), `none`, or `RR,CORR`.
`--s-gate` does the same for the S gate: `own`, `none` or `RR`; `--af-v-gate` for the AF V
gate: `own`, `none` or `CORR,PCOH`; `--premature-s-gate` for the premature S gate: `own`,
`none` or `RR,CORR,PCOH,PS`; `--wide-qrs-gate` for the wide-QRS gate: `own`, `none` or
`WIDTH,RR,RESIDUAL`; `--unlike-s-gate` for the unlike-S gate: `own`, `none` or `CORR,PCOH,RR`.
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
from monitor.classifier import BeatClassifier
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


#: The gates a run can be scored with in place of its own: option (its flag is --OPTION-gate,
#: dashes for underscores), contract field, value form.
GATE_OPTIONS = {
    "dominant": ("dominant_gate", "RR,CORR"),
    "s": ("s_gate", "RR"),
    "af_v": ("af_v_gate", "CORR,PCOH"),
    "premature_s": ("premature_s_gate", "RR,CORR,PCOH,PS"),
    "wide_qrs": ("wide_qrs_gate", "WIDTH,RR,RESIDUAL"),
    "unlike_s": ("unlike_s_gate", "CORR,PCOH,RR"),
}


def gate_flag(option: str) -> str:
    """The command-line flag of a GATE_OPTIONS option."""
    return f"--{option.replace('_', '-')}-gate"


def gate_value(option: str, text: str) -> tuple[float, ...] | None:
    """A --OPTION-gate value: None for the run's own, () for none, else its thresholds."""
    if text == "own":
        return None
    if text == "none":
        return ()
    form = GATE_OPTIONS[option][1]
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != len(form.split(",")):
        raise InputError(f"{gate_flag(option)} takes own, none or {form}, got {text!r}")
    return values


def gate_variants(args: argparse.Namespace) -> dict[str, dict[str, tuple[float, ...]]]:
    """Every combination of the gate options' values: a name for the table ("own": the run's
    own gates) and the contract fields it replaces."""
    variants: dict[str, dict[str, tuple[float, ...]]] = {"own": {}}
    for option, (field, _) in GATE_OPTIONS.items():
        combined = {}
        for name, fields in variants.items():
            for text in getattr(args, f"{option}_gate"):
                value = gate_value(option, text)
                if value is None:
                    combined[name] = fields
                    continue
                label = f"{option} gate {text}"
                combined[label if name == "own" else f"{name}, {label}"] = {**fields, field: value}
        variants = combined
    return variants


def run_classifier(run_dir: Path, gates: dict[str, tuple[float, ...]]) -> BeatClassifier:
    """The run's model, served with `gates` (contract field: thresholds) in place of its own."""
    classifier = load_classifier(run_dir / "model.pt", "cpu")
    classifier.contract = dataclasses.replace(classifier.contract, **gates)
    return classifier


def score_run(
    run_dir: Path, data_dir: Path, conditions: list[str], nstdb_dir: str | None,
    gates: dict[str, tuple[float, ...]] | None = None,
) -> dict[str, np.ndarray]:
    """EC57 confusion matrices of the run's model on its validation patients, per condition,
    with `gates` (contract field: thresholds) in place of its own."""
    classifier = run_classifier(run_dir, gates or {})
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


def macro_f1(cm: np.ndarray) -> float:
    """Macro F1 over the scored classes, as trainer.crossval computes it."""
    f1 = metrics.class_rates(cm, len(contract.CLASSES))["f1"]
    return float(np.mean([np.nan_to_num(f1[contract.CLASSES.index(c)]) for c in SCORED]))


def row(setting: str, condition: str, by_seed: dict[int, np.ndarray], n_runs: int) -> str:
    """One table row: the macro F1 of each seed's pooled folds (mean ± sd over seeds, as
    trainer.crossval gives it), and per class every run pooled."""
    k = len(contract.CLASSES)
    cm = sum(by_seed.values())
    rates = metrics.class_rates(cm, k)
    f1 = [100 * macro_f1(m) for m in by_seed.values()]
    at = {c: contract.CLASSES.index(c) for c in contract.CLASSES}
    cells = [f"{100 * rates['se'][at[c]]:.1f} / {100 * rates['ppv'][at[c]]:.1f}" for c in "NSV"]
    det = metrics.detection_rates(cm, k)
    return (
        f"| {setting} | {condition} | {n_runs} | {np.mean(f1):.1f} ± {np.std(f1):.1f} | "
        + " | ".join(cells) + f" | {100 * det['se']:.2f} / {100 * det['ppv']:.2f} |"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", required=True, help="trainer.crossval's --out directory")
    p.add_argument("--settings", nargs="+", required=True)
    p.add_argument("--conditions", nargs="+", default=["analysed", "other"],
                   help="analysed, other, KIND:SNR (bw, em, ma; e.g. em:6)")  # fmt: skip
    p.add_argument("--data-dir", help="MIT-BIH directory (default: $ECG_MITDB_DIR)")
    p.add_argument("--nstdb-dir", help="NSTDB directory (default: $ECG_NSTDB_DIR)")
    for option, (field, form) in GATE_OPTIONS.items():
        p.add_argument(gate_flag(option), nargs="+", default=["own"], metavar="GATE",
                       help=f"own, none or {form}: the {field} each run is scored with (default: "
                       "the run's own); several values score the runs once each")  # fmt: skip
    args = p.parse_args(argv)
    variants = gate_variants(args)
    for condition in args.conditions:
        if condition not in ("analysed", "other"):
            NoiseSpec.parse(condition)  # a bad one fails before an hour of scoring
    runs = Path(args.runs)
    cms: dict[tuple[str, str], dict[int, np.ndarray]] = defaultdict(lambda: defaultdict(int))
    counts: dict[str, int] = defaultdict(int)
    for setting in args.settings:
        dirs = sorted(d for d in runs.glob(f"{setting}-f*-s*") if (d / "model.pt").is_file())
        if not dirs:
            raise InputError(f"no finished run of {setting!r} in {runs}")
        for variant, gates in variants.items():
            name = setting if variant == "own" else f"{setting}, {variant}"
            for run_dir in dirs:
                seed = int(run_dir.name.rsplit("-s", 1)[1])
                data_dir = resolve_mitdb(args.data_dir, validation_patients(run_dir))
                for condition, cm in score_run(
                    run_dir, data_dir, args.conditions, args.nstdb_dir, gates
                ).items():
                    cms[name, condition][seed] = cms[name, condition][seed] + cm
                counts[name] += 1
                print(f"{run_dir.name} ({variant}) scored", file=sys.stderr, flush=True)
    print("\nValidation patients of each run, end to end (EC57, 150 ms); macro F1 of each seed's "
          "folds pooled, mean ± sd over seeds; per class every run pooled\n")  # fmt: skip
    print("| setting | condition | runs | macro F1 (N S V F) | N Se / +P | S Se / +P | V Se / +P | "
          "detection Se / +P |")  # fmt: skip
    print("| --- | --- | ---: | ---: | --- | --- | --- | --- |")
    for (name, condition), by_seed in cms.items():
        print(row(name, condition, by_seed, counts[name]))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
