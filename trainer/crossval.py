"""Settings compared on every DS1 patient: `python -m trainer.crossval --settings A B`.

The ablation (`trainer.ablation`) validates on four DS1 patients, which hold 190 S beats and no
bundle-branch-block patient, so a setting's S figures swing by ten points between seeds and a
V false positive on a wide-QRS patient never shows. Here each setting trains once per patient
fold and seed (`python -m trainer.train --fold I/N --seed S --no-test`) and the folds'
validation confusion matrices are added up: every DS1 patient is judged once per seed by a
model that never saw them. The table gives the pooled macro F1 of each seed (mean ± sd over
seeds), and the per-class figures of all seeds' matrices added up.
DS2 is never touched. Runs go to `--out/<setting>-f<I>-s<seed>/` and are read back when there.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from monitor import contract, metrics
from monitor.errors import InputError, run_cli
from trainer.ablation import SETTINGS, rounds, run_many, teachers_of, write_table

#: Classes the pooled macro F1 averages: Q has a handful of DS1 beats, all in one patient.
SCORED = ("N", "S", "V", "F")


def pooled(runs: list[dict]) -> dict:
    """`metrics.summarise` of the folds' validation confusion matrices added up."""
    cm = np.sum([np.asarray(r["val_confusion"]) for r in runs], axis=0)
    return metrics.summarise(cm, contract.CLASSES)


def macro_f1(runs: list[dict]) -> float:
    """Macro F1 over the SCORED classes of the runs' pooled validation matrix."""
    m = pooled(runs)
    return float(np.mean([m["per_class"][c]["f1"] or 0.0 for c in SCORED]))


def served(results: dict[str, dict[int, list[dict]]]) -> dict[str, dict[int, list[dict]]]:
    """The settings whose every run has figures through the decision rules (AF gate, F as N,
    dominant-beat gate, AF V gate, S gate, premature S gate, wide-QRS gate), as they are
    served: their rows again, the served confusion matrices in place."""
    out = {}
    for name, by_seed in results.items():
        runs = [r for folds in by_seed.values() for r in folds]
        if runs and all(r.get("served_confusion") is not None for r in runs):
            out[name] = {
                seed: [{**r, "val_confusion": r["served_confusion"]} for r in folds]
                for seed, folds in by_seed.items()
            }
    return out


def table(results: dict[str, dict[int, list[dict]]]) -> str:
    """Markdown: per setting, the pooled macro F1 of each seed (mean ± sd) and the per-class
    figures of every fold and seed pooled. `results` maps setting -> seed -> the folds' runs."""
    head = ["setting", "folds × seeds", "pooled macro F1 (N S V F)",
            *(f"{c} {k}" for c in ("N", "S", "V", "F") for k in ("Se", "+P"))]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, by_seed in results.items():
        runs = [r for folds in by_seed.values() for r in folds]
        m = pooled(runs)
        f1 = np.array([macro_f1(folds) for folds in by_seed.values()])
        spread = f" ± {100 * f1.std(ddof=1):.1f}" if len(f1) > 1 else ""
        cells = [SETTINGS[name][0], f"{len(runs) // len(by_seed)} × {len(by_seed)}",
                 f"{100 * f1.mean():.1f}{spread}"]  # fmt: skip
        for c in ("N", "S", "V", "F"):
            for k in ("se", "ppv"):
                v = m["per_class"][c][k]
                cells.append("–" if v is None else f"{100 * v:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def fold_runs(out: Path, fold: int) -> Callable[[str, int], Path]:
    """Where a setting's run of `fold` and a seed goes."""
    return lambda setting, seed: out / f"{setting}-f{fold}-s{seed}"


def _main(argv: list[str] | None) -> int:
    p = argparse.ArgumentParser(prog="python -m trainer.crossval", description=__doc__)
    p.add_argument("--settings", nargs="+", choices=list(SETTINGS), required=True)
    p.add_argument("--folds", type=int, default=4, help="patient folds of DS1 (default 4)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--jobs", type=int, default=2, help="runs at a time (one torch thread each)")
    p.add_argument("--out", default="runs/crossval", help="where the runs go")
    args, extra = p.parse_known_args(argv)
    if args.folds < 2:
        raise InputError(f"--folds must be at least 2, got {args.folds}")
    folds = range(1, args.folds + 1)
    out = Path(args.out)
    done: dict = {}
    for names in rounds(args.settings):
        runs = {
            (n, f, s): (f"{n}-f{f}", SETTINGS[n][1], s, [
                "--fold", f"{f}/{args.folds}", *extra,
                *teachers_of(n, args.seeds, fold_runs(out, f))])
            for n in names for s in args.seeds for f in folds
        }  # fmt: skip
        done |= run_many(runs, out, args.jobs)
    results = {
        n: {s: [done[n, f, s] for f in folds] for s in args.seeds} for n in args.settings
    }
    text = table(results)
    gated = served(results)
    if gated:
        text += "\n\nAs served, through the model's decision rules (monitor.decision):\n\n"
        text += table(gated)
    write_table(text, Path(args.out))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
