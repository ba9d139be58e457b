"""Which inputs earn their place: `python -m trainer.ablation` trains each setting with several
seeds on DS1 and prints the validation table of the model card (mean ± sd over seeds).

Every run is `python -m trainer.train --no-test` with the setting's flags, so the figures are
those of the real trainer, on the validation patients only: DS2 is never touched here. Runs go
to `--out/<setting>-s<seed>/`; a run whose metrics are already there is read, not repeated, so
an interrupted ablation resumes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from monitor.errors import InputError, run_cli

#: Training choices of today's model, pinned so that the input rows stay reproducible whatever
#: the trainer's defaults become.
_V1_TRAINING = ["--conv-channels", "64,128,128", "--natural", "none", "--noisy-copies", "none"]
_TODAY = ["--channels", "beat", "--features", "rr_local", "--context-dropout", "0", *_V1_TRAINING]
_TEMPLATE = ["--features", "rr_local,rr_long,template", *_V1_TRAINING]
_SHIPPED = ["--channels", "beat", "--features", "rr_local,rr_long,template", "--natural", "F,Q",
            "--noisy-copies", "none"]  # fmt: skip
_RHYTHM = ["--channels", "beat", "--natural", "F,Q", "--conv-channels", "32,64,64",
           "--sequence", "2", "--noisy-copies", "none"]  # fmt: skip
_AF_EVIDENCE = ["--features", "rr_local,rr_long,rhythm,template,pwave,af", *_RHYTHM]
#: Each input setting adds one thing to the one before it; flags go to trainer.train.
SETTINGS: dict[str, tuple[str, list[str]]] = {
    "today": ("today's model (beat, local RR)", _TODAY),
    "long_rr": (
        "+ long-term RR",
        ["--channels", "beat", "--features", "rr_local,rr_long", *_V1_TRAINING],
    ),
    "template": ("+ template features", ["--channels", "beat", *_TEMPLATE]),
    "pwave": ("+ P-wave segment (morph channel)", ["--channels", "beat,morph", *_TEMPLATE]),
    "template_channel": (
        "+ template channel",
        ["--channels", "beat,morph,template", *_TEMPLATE],
    ),
    "sequence": (
        "+ beat sequence (2 earlier beats)",
        ["--channels", "beat,morph,template", *_TEMPLATE, "--sequence", "2"],
    ),
    # Training choices for the inputs kept (beat channel, local and long-term RR, template).
    "natural_f": (
        "template features, F and Q not boosted",
        [*_SHIPPED, "--conv-channels", "64,128,128"],
    ),
    "slim": (
        "… and a conv stack of 32-64-64 channels",
        [*_SHIPPED, "--conv-channels", "32,64,64"],
    ),
    "slim_sequence": (
        "… and 2 earlier beats (version-2 model)",
        [*_SHIPPED, "--conv-channels", "32,64,64", "--sequence", "2"],
    ),
    "rhythm": (
        "… and rhythm irregularity (version-3 model)",
        ["--features", "rr_local,rr_long,rhythm,template", *_RHYTHM],
    ),
    "p_wave": (
        "… and P-wave features (beat vs template, template coherence; shipped)",
        ["--features", "rr_local,rr_long,rhythm,template,pwave", *_RHYTHM],
    ),
    "more_dropout": (
        "… and the waveform hidden for 80 % of training beats (60 %)",
        ["--features", "rr_local,rr_long,rhythm,template,pwave", *_RHYTHM,
         "--morph-dropout", "0.8"],
    ),
    "sequence_4": (
        "… and 4 earlier beats (2)",
        ["--features", "rr_local,rr_long,rhythm,template,pwave", *_RHYTHM, "--sequence", "4"],
    ),
    "af_evidence": (
        "… and atrial-fibrillation evidence (RR entropy, turning points) on the shipped inputs",
        _AF_EVIDENCE,
    ),
    "weight_average": (
        "… and the weights averaged over about the last 200 steps (EMA 0.995)",
        [*_AF_EVIDENCE, "--ema", "0.995"],
    ),
    "cosine_last": (
        "… and a cosine learning rate over 20 epochs, the last epoch kept (blind to validation)",
        [*_AF_EVIDENCE, "--schedule", "cosine", "--select", "last"],
    ),
    "epochs_30": (
        "… and up to 30 epochs (20), the best validation epoch kept",
        [*_AF_EVIDENCE, "--epochs", "30"],
    ),
    "constant_last": (
        "… and a constant learning rate, the last of 20 epochs kept (blind to validation)",
        [*_AF_EVIDENCE, "--schedule", "constant", "--select", "last"],
    ),
    "constant_last_30": (
        "… and a constant learning rate, the last of 30 epochs kept (blind to validation)",
        [*_AF_EVIDENCE, "--schedule", "constant", "--select", "last", "--epochs", "30"],
    ),
    "constant_average": (
        "… and a constant learning rate, the weights of the last 10 of 20 epochs averaged",
        [*_AF_EVIDENCE, "--schedule", "constant", "--select", "last", "--average-epochs", "10"],
    ),
    "distilled": (
        "… and taught by the three seeds' runs of af_evidence (knowledge distillation, weight "
        "0.5, temperature 2)",
        _AF_EVIDENCE,
    ),
    "distilled_soft": (
        "… and taught as `distilled`, their answers weighing 0.9 at temperature 4",
        [*_AF_EVIDENCE, "--distill", "0.9", "--temperature", "4"],
    ),
    "small": (
        "… and a conv stack of 16-32-32 channels and a BiLSTM of 32 units (a third of the "
        "forward pass: an ensemble member)",
        [*_AF_EVIDENCE, "--conv-channels", "16,32,32", "--lstm-hidden", "32"],
    ),
    "small_members": (
        "… and three of those networks (seeds SEED to SEED+2), their probabilities averaged",
        [*_AF_EVIDENCE, "--conv-channels", "16,32,32", "--lstm-hidden", "32", "--members", "3"],
    ),
    "other_leads": (
        "… and the training patients' other lead (mostly V1) as more training beats",
        [*_AF_EVIDENCE, "--other-leads"],
    ),
    "noisy_copies": (
        "… and the training patients' analysed lead with NSTDB electrode-motion and muscle "
        "noise at 12 dB as more training beats",
        [*_AF_EVIDENCE, "--noisy-copies", "em:12", "ma:12", "--no-artefacts-as-q"],
    ),
    "artefacts_q": (
        "… and the training patients' analysed lead with electrode motion at 6 dB and muscle "
        "noise at 12 dB, the detector's false detections in them labelled Q",
        [*_AF_EVIDENCE, "--noisy-copies", "em:6", "ma:12", "--artefacts-as-q"],
    ),
    "stretch": (
        "… and each training beat's waves widened or narrowed by up to 15 %",
        [*_AF_EVIDENCE, "--stretch", "0.15"],
    ),
    "long_only": (
        "… and RR ratios over the long-term mean only",
        ["--features", "rr_local_s,rr_available,rr_long,rhythm,template", *_RHYTHM],
    ),
}
#: Settings whose runs learn from another setting's runs of the same patients and seeds
#: (`--teachers`), which therefore train first.
TAUGHT_BY: dict[str, str] = {"distilled": "af_evidence", "distilled_soft": "af_evidence"}
#: Validation figures of the table: (column, key in the best epoch's record).
COLUMNS = (
    ("macro F1", "val_macro_f1"),
    ("N Se", "val_se_N"),
    ("S Se", "val_se_S"),
    ("S +P", "val_ppv_S"),
    ("V Se", "val_se_V"),
    ("V +P", "val_ppv_V"),
    ("F Se", "val_se_F"),
    ("F +P", "val_ppv_F"),
)


def run_one(name: str, flags: list[str], seed: int, out: Path, extra: list[str]) -> dict:
    """The best validation epoch of one training run (trained now, or read back)."""
    run_dir = out / f"{name}-s{seed}"
    metrics = run_dir / "metrics.json"
    log_path = out / f"{name}-s{seed}.log"
    if not metrics.is_file():
        if run_dir.exists():  # an interrupted run: start it again
            for f in run_dir.iterdir():
                f.unlink()
        cmd = [
            sys.executable, "-m", "trainer.train", "--no-test", "--no-progress",
            "--seed", str(seed), "--out", str(run_dir), *flags, *extra,
        ]  # fmt: skip
        out.mkdir(parents=True, exist_ok=True)
        with open(log_path, "w") as log:
            done = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False)
        if done.returncode != 0:
            raise InputError(f"{' '.join(cmd)} failed; see {log_path}")
    record = json.loads(metrics.read_text())
    served = record.get("val_served")  # through the model's decision rule, where it has one
    return {
        **record["best"],
        "train_seconds": record["train_seconds"],
        "served_confusion": served["confusion"] if served else None,
    }


def table(results: dict[str, list[dict]]) -> str:
    """Markdown: one row per setting, mean ± sd over its seeds."""
    head = ["setting", "seeds", *(c for c, _ in COLUMNS), "best epoch", "minutes"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, runs in results.items():
        cells = [SETTINGS[name][0], str(len(runs))]
        for _, key in COLUMNS:
            v = np.array([r[key] for r in runs if r.get(key) is not None], dtype=float)
            cells.append(f"{100 * v.mean():.1f} ± {100 * v.std(ddof=1):.1f}" if len(v) > 1
                         else (f"{100 * v[0]:.1f}" if len(v) else "–"))
        cells.append(" ".join(str(r["epoch"]) for r in runs))
        cells.append(f"{np.mean([r['train_seconds'] for r in runs]) / 60:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_many(runs: dict, out: Path, jobs: int) -> dict:
    """Train every run, `jobs` at a time (one torch thread each): `runs` maps a key to (name,
    flags, seed, extra flags); returns each key's best validation record."""
    if jobs < 1:
        raise InputError(f"--jobs must be at least 1, got {jobs}")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {
            key: pool.submit(run_one, name, flags, seed, out, ["--threads", "1", *extra])
            for key, (name, flags, seed, extra) in runs.items()
        }
        done = {}
        for key, fut in futures.items():
            done[key] = fut.result()
            minutes = (time.perf_counter() - t0) / 60
            print(f"{runs[key][0]} seed {runs[key][2]} done ({minutes:.0f} min)",
                  file=sys.stderr, flush=True)  # fmt: skip
    return done


def rounds(settings: list[str]) -> list[list[str]]:
    """The settings to train, in order: first every one that is taught by none, with the
    teachers of the others (trained even when not asked for), then the taught ones."""
    taught = [n for n in settings if n in TAUGHT_BY]
    first = [n for n in settings if n not in TAUGHT_BY]
    first += sorted({TAUGHT_BY[n] for n in taught} - set(first))
    return [r for r in (first, taught) if r]


def teachers_of(name: str, seeds: list[int], run_dir: Callable[[str, int], Path]) -> list[str]:
    """The `--teachers` flags of a setting taught by another (`TAUGHT_BY`): that setting's
    runs (`run_dir(setting, seed)`), one per seed."""
    if name not in TAUGHT_BY:
        return []
    return ["--teachers", *(str(run_dir(TAUGHT_BY[name], s) / "best.pt") for s in seeds)]


def write_table(text: str, out: Path) -> None:
    (out / "table.md").write_text(text + "\n")
    print(text)


def _main(argv: list[str] | None) -> int:
    p = argparse.ArgumentParser(prog="python -m trainer.ablation", description=__doc__)
    p.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--jobs", type=int, default=2, help="runs at a time (one torch thread each)")
    p.add_argument("--out", default="runs/ablation", help="where the runs go")
    args, extra = p.parse_known_args(argv)
    out = Path(args.out)
    done: dict = {}
    for names in rounds(args.settings):
        runs = {
            (n, s): (n, SETTINGS[n][1], s,
                     [*teachers_of(n, args.seeds, lambda t, s: out / f"{t}-s{s}"), *extra])
            for n in names for s in args.seeds
        }  # fmt: skip
        done |= run_many(runs, out, args.jobs)
    results = {n: [done[n, s] for s in args.seeds] for n in args.settings}
    write_table(table(results), Path(args.out))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
