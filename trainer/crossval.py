"""Settings compared on every DS1 patient: `python -m trainer.crossval --settings A B`.

The ablation (`trainer.ablation`) validates on four DS1 patients, which hold 190 S beats and no
bundle-branch-block patient, so a setting's S figures swing by ten points between seeds and a
V false positive on a wide-QRS patient never shows. Here each setting trains once per patient
fold (`python -m trainer.train --fold I/N --no-test`, seed 0) and the folds' validation
confusion matrices are added up: every DS1 patient is judged once by a model that never saw
them, and the table is the pooled figure, with the spread of the folds' macro F1 beside it.
DS2 is never touched. Runs go to `--out/<setting>-f<I>-s<seed>/` and are read back when there.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from monitor import contract, metrics
from monitor.errors import InputError, run_cli
from trainer.ablation import SETTINGS, run_many, write_table

#: Classes the pooled macro F1 averages: Q has a handful of DS1 beats, all in one patient.
SCORED = ("N", "S", "V", "F")


def pooled(runs: list[dict]) -> dict:
    """`metrics.summarise` of the folds' validation confusion matrices added up."""
    cm = np.sum([np.asarray(r["val_confusion"]) for r in runs], axis=0)
    return metrics.summarise(cm, contract.CLASSES)


def table(results: dict[str, list[dict]]) -> str:
    """Markdown: pooled figures per setting, and the folds' macro F1 mean ± sd."""
    head = ["setting", "folds", "pooled macro F1 (N S V F)", "fold macro F1",
            *(f"{c} {k}" for c in ("N", "S", "V", "F") for k in ("Se", "+P"))]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, runs in results.items():
        m = pooled(runs)
        f1 = np.mean([m["per_class"][c]["f1"] or 0.0 for c in SCORED])
        folds = np.array([r["val_macro_f1"] for r in runs])
        cells = [SETTINGS[name][0], str(len(runs)), f"{100 * f1:.1f}",
                 f"{100 * folds.mean():.1f} ± {100 * folds.std(ddof=1):.1f}"]  # fmt: skip
        for c in ("N", "S", "V", "F"):
            for k in ("se", "ppv"):
                v = m["per_class"][c][k]
                cells.append("–" if v is None else f"{100 * v:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _main(argv: list[str] | None) -> int:
    p = argparse.ArgumentParser(prog="python -m trainer.crossval", description=__doc__)
    p.add_argument("--settings", nargs="+", choices=list(SETTINGS), required=True)
    p.add_argument("--folds", type=int, default=4, help="patient folds of DS1 (default 4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=2, help="runs at a time (one torch thread each)")
    p.add_argument("--out", default="runs/crossval", help="where the runs go")
    args, extra = p.parse_known_args(argv)
    if args.folds < 2:
        raise InputError(f"--folds must be at least 2, got {args.folds}")
    folds = range(1, args.folds + 1)
    runs = {
        (n, f): (f"{n}-f{f}", SETTINGS[n][1], args.seed, ["--fold", f"{f}/{args.folds}", *extra])
        for n in args.settings for f in folds
    }  # fmt: skip
    done = run_many(runs, Path(args.out), args.jobs)
    write_table(table({n: [done[n, f] for f in folds] for n in args.settings}), Path(args.out))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
