"""Train the beat classifier: `python -m trainer.train` (console script `ecg-train`).

The default is the honest setting: inter-patient split, train and choose on DS1 only, report
on DS2. A run writes everything it did into its run directory (config, per-epoch log, curves,
the kept checkpoint `best.pt` (best validation epoch, or the last with `--select last`), test
metrics, TorchScript model) and replaces the shipped model only when asked with --export, so
an experiment can never silently change what the monitor serves.
"""

from __future__ import annotations

import argparse
import copy
import csv
import dataclasses
import importlib.util
import itertools
import json
import logging
import os
import random
import shlex
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from torch import nn

from monitor import contract, decision, metrics
from monitor.alarms import AlarmSettings
from monitor.context import MAX_SEQUENCE
from monitor.errors import InputError, missing_extra, run_cli
from monitor.inputs import absent_context, select
from monitor.records import resolve_mitdb
from simulators.noise import NoiseSpec
from trainer.augment import augment
from trainer.dataset import BeatSet, build_beatset, load_kaggle_csv
from trainer.export import export_torchscript, fingerprints
from trainer.model import CNNBiLSTM, Ensemble, load_model
from trainer.splits import (
    DS1,
    DS2,
    VAL_BEAT_FRACTION,
    records_for,
    split_indices,
    stratified_split,
)

log = logging.getLogger("trainer.train")

BALANCE_MODES = ("sampler", "weights", "both", "none")
#: Each balancing step corrects class frequencies by this power: sampler or weights alone move
#: class mass from n_c to n_c ** 0.5, both together to equal mass. Full inverse-frequency
#: balancing from one step would replay DS1's few hundred S beats a hundred times an epoch.
BALANCE_POWER = 0.5
#: Epochs without a better validation macro F1 before training stops.
DEFAULT_PATIENCE = 8
#: Chosen on DS1 validation patients (models/README.md): 0, 0.3, 0.6 gave macro F1 0.518,
#: 0.536, 0.546 and S F1 0.05, 0.09, 0.28 at their best epochs.
DEFAULT_MORPH_DROPOUT = 0.6
EVAL_BATCH = 2048
#: Share of training beats shown without any context; chosen so the absent-context path (Kaggle
#: rows, a stream's first beats) is learned without costing the beats that have context.
DEFAULT_CONTEXT_DROPOUT = 0.05
#: Largest relative widening or narrowing of a training beat's waves (`trainer.augment`).
DEFAULT_STRETCH = 0.0
#: Context features that are RR ratios: augmentation jitters them together.
RATIO_FEATURES = ("rr_prev_ratio", "rr_next_ratio", "rr_prev_long", "rr_next_long")
#: The shipped model's inputs (models/README.md: chosen by ablation and DS1 cross-validation).
DEFAULT_CHANNELS: tuple[str, ...] = ("beat",)
DEFAULT_FEATURES: tuple[str, ...] = ("rr_local", "rr_long", "rhythm", "template", "pwave", "af")
DEFAULT_SEQUENCE = 2
DEFAULT_CONV: tuple[int, ...] = (32, 64, 64)
DEFAULT_LSTM_HIDDEN = 64
DEFAULT_MEMBERS = 1
DEFAULT_NATURAL: tuple[str, ...] = ("F", "Q")
#: Noisy copies of the training patients for the inter and all splits, their false detections
#: labelled Q: on DS1 cross-validation (4 folds x 3 seeds, models/README.md) false VT alarms on
#: the unseen patients fell from 1019 to 615 in 33 h under electrode motion at 6 dB and from 16
#: to 7 clean, macro F1 62.6 +- 1.1 -> 63.1 +- 0.6; noisy copies without the Q labels (em:12
#: ma:12) raised them (334 -> 441 on seed 0). 6 dB leaves artefacts to learn from: 515 false
#: detections over a fold's 16 patients, 67 at 12 dB.
DEFAULT_NOISY_COPIES: tuple[str, ...] = ("em:6", "ma:12")
#: The AF gate's floor on `rr_irregularity` (median successive RR change over the median RR):
#: on DS1 cross-validation (4 folds x 3 seeds, the shipped setting's saved validation outputs)
#: floors of 0.05, 0.08, 0.10, 0.12, 0.15, 0.20 gave pooled macro F1 58.0, 57.8, 57.6, 57.4,
#: 56.9, 56.2 (± 0.4-0.5) against 54.9 ± 0.6 without the gate, S Se / +P 56.7 / 57.3 ... 63.2
#: / 41.7; 0.10 keeps more S beats than the lower floors, within one sd of the best.
AF_GATE_IRREGULARITY = 0.10
#: Classes the shipped model reports as N (`monitor.decision.report_as_n`). DS1 holds its F beats
#: in one patient; on DS1 cross-validation (4 folds x 3 seeds, the shipped setting's saved
#: validation outputs, through the AF gate) 0.6 % of the network's F calls were right. Beats
#: called F reported N moved pooled N Se from 96.2 to 96.9, V unchanged (macro F1 57.6 -> 57.5,
#: F's F1 0.5 -> 0); F's probability added to N on every beat gave N 97.0 but turned V beats to
#: N and split a VT run of 223; added to V, V +P fell from 69.9 to 64.6.
DEFAULT_REPORT_AS_N: tuple[str, ...] = ("F",)
#: The dominant-beat gate (`monitor.decision.gate_dominant`): a V call on a beat whose previous
#: RR is at least this times the long-term mean RR and whose QRS correlates with the dominant
#: template at least this is reported N. Chosen on DS1 cross-validation, end to end on the
#: validation patients of the shipped setting's 12 fold runs through the other two rules
#: (benchmarks/label_robustness.py --dominant-gate, models/README.md): the pairs (1.0 or 0.95,
#: 0.7 or 0.8) gave macro F1 58.3-58.4 against 57.3 (sd 0.3 over seeds); this one keeps the
#: most V beats (V Se / +P 85.2 / 69.6 -> 83.5 / 77.8, N Se 96.6 -> 97.7), and with NSTDB noise
#: at 6 dB (seed 0) electrode motion 33.1 -> 35.4, muscle 47.9 -> 49.6.
DOMINANT_GATE: tuple[float, float] = (1.0, 0.7)
#: The S gate (`monitor.decision.gate_s`), chosen on saved outputs of the same 12 fold runs,
#: then benchmarks/label_robustness.py --s-gate (models/README.md): S calls with RR >= 0.85,
#: 0.9, 0.95 or 1.0 times the long-term mean reported N gave macro F1 59.6, 59.7, 59.3 and
#: 58.8 against 58.4; 0.95 keeps S Se (53.2 -> 53.0), the class furthest from its target,
#: where 0.9 trades 2 points of it for +P and varies more across seeds (sd 1.3 against 1.0).
S_GATE: tuple[float] = (0.95,)
#: The AF V gate (`monitor.decision.gate_af_v`): in fibrillation, a V call whose QRS
#: correlates with the dominant template at least this, the template's P-wave coherence below
#: this, is reported N. 0.2 splits the coherence of normal beats in fibrillation (DS1 median
#: 0.03, q90 0.07) from that of other rhythms (0.78, q10 0.42). Chosen on saved outputs of the
#: 12 fold runs, then benchmarks/label_robustness.py --af-v-gate and alarm_quality.py
#: --crossval (models/README.md): macro F1 59.2 -> 60.0, V +P 81.8 -> 87.4 at V Se -0.3, false
#: VT alarms on unseen patients 62 -> 18 for 5 of 117 VT episodes.
AF_V_GATE: tuple[float, float] = (0.8, 0.2)
#: The premature S gate (`monitor.decision.gate_premature_s`): out of fibrillation, an N call
#: whose previous RR is below this times the long-term mean (at least a fifth early), whose QRS
#: correlates with the dominant template at least this, whose template's P-wave coherence is at
#: least this (the AF V gate's bound: no fibrillation in the waveform either) and whose S
#: probability is at least this is reported S. Chosen on saved outputs of the 12 fold runs,
#: then benchmarks/label_robustness.py --premature-s-gate and alarm_quality.py --crossval
#: (models/README.md): macro F1 60.0 -> 61.2 (sd 1.0 -> 0.3), S Se / +P 53.0 / 54.1 -> 60.3 /
#: 55.9, SVT episodes found on unseen patients 46 -> 52 of 63 at SVT +P 62 -> 64 %.
PREMATURE_S_GATE: tuple[float, float, float, float] = (0.8, 0.8, 0.2, 0.05)
#: The wide-QRS gate (`monitor.decision.gate_wide_qrs`): an S call whose QRS is wider than the
#: dominant template's by more than this (log2 of the ratio: over 1.4 times) and whose previous
#: RR is at least this times the long-term mean (not a detection far too early to be a beat) is
#: reported V. Chosen on saved outputs of the 12 fold runs, then
#: benchmarks/label_robustness.py --wide-qrs-gate and alarm_quality.py --crossval
#: (models/README.md): widths 0.4-0.8 all gave macro F1 61.7 against 61.3 on the saved outputs;
#: the RR floor halves what the rule adds to false V runs with electrode-motion noise. The third:
#: the least QRS residual against the template (`monitor.context.qrs_residual`) of a QRS that
#: is that much wider in truth, so a width read off by the 30 %-level crossing on one noisy
#: beat does not decide alone. Not fitted to labels: DS1's dominant templates widened 2**0.5
#: times about the R-peak differ from themselves by at least 0.0096 in 95 % of them
#: (benchmarks/width_stretch.py); on the saved outputs, of the 129 S calls the rule made V that
#: the unlike-S gate would not have, it keeps 8 S beats and 14 normal beats as called, and no V
#: beat (macro F1 62.59 -> 62.63).
WIDE_QRS_GATE: tuple[float, float, float] = (0.5, 0.5, 0.01)
#: The unlike-S gate (`monitor.decision.gate_unlike_s`): an S call whose QRS correlates with the
#: dominant template below this (the premature S gate's "shaped like the dominant beat"), whose
#: template's P-wave coherence is at least this (the premature S and AF V gates' "no
#: fibrillation in the waveform") and whose previous RR is at least this times the long-term
#: mean (the wide-QRS gate's floor) is reported V. No threshold of its own: the other rules'
#: bounds, asked of the S calls they leave. On saved outputs of the 12 fold runs, then
#: benchmarks/label_robustness.py --unlike-s-gate and alarm_quality.py --crossval
#: (models/README.md): macro F1 61.7 -> 62.6 (every seed), S +P 57.0 -> 62.0, V Se 90.0 ->
#: 92.1 at V +P 87.9 -> 88.2; without the P-wave bound it turned 203's conducted beats V.
UNLIKE_S_GATE: tuple[float, float, float] = (0.8, 0.2, 0.5)
SELECT_MODES = ("best", "last")
SCHEDULES = ("plateau", "cosine", "constant")
DEFAULT_SELECT = "best"
DEFAULT_SCHEDULE = "plateau"
#: Per-step decay of the weight average that is validated and shipped (0: the raw weights).
DEFAULT_EMA = 0.0
#: Knowledge distillation (Hinton et al. 2015): the share of the loss given to the teachers'
#: answers, and the temperature that lets their second choices show.
DEFAULT_DISTILL = 0.5
DEFAULT_TEACHER_SEEDS = 0
DEFAULT_TEMPERATURE = 2.0


@dataclass
class Split:
    """The three parts a run works on, and how they were chosen (for the contract and card)."""

    train: BeatSet
    val: BeatSet
    test: BeatSet
    name: str
    description: str


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="ecg-train",
        description="Train the CNN-BiLSTM beat classifier on MIT-BIH (default: inter-patient, "
        "DS1 train/validation, DS2 test).",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data-dir", help="MIT-BIH directory (else $ECG_MITDB_DIR, else download)")
    src.add_argument(
        "--kaggle-csv",
        metavar="DIR",
        help="train on DIR/mitbih_train.csv and test on DIR/mitbih_test.csv instead",
    )
    p.add_argument(
        "--split",
        choices=("inter", "intra", "all"),
        help="inter: DS1 -> DS2 (default); intra: 80/20 beats of all records; all: production",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--split-seed",
        type=int,
        help="seed of the split where it draws (validation patients, the intra and Kaggle "
        "beat splits) (default: --seed); teachers take their student's",
    )
    p.add_argument(
        "--epochs", type=int, default=20,
        help="epochs (most epochs with --select best: early stopping may end sooner)",
    )  # fmt: skip
    p.add_argument(
        "--patience", type=int, default=DEFAULT_PATIENCE,
        help=f"--select best: epochs without a better validation macro F1 before training "
        f"stops (default {DEFAULT_PATIENCE})",
    )  # fmt: skip
    p.add_argument(
        "--select",
        choices=SELECT_MODES,
        default=DEFAULT_SELECT,
        help="which epoch's weights the run keeps: best (validation macro F1, early stopping) "
        f"or last (every epoch runs; validation only watched) (default {DEFAULT_SELECT})",
    )
    p.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default=DEFAULT_SCHEDULE,
        help="learning rate: plateau (halved after 2 epochs without a better validation macro "
        "F1), cosine (from --lr down to 0 over --epochs) or constant (--lr throughout); the "
        f"last two are blind to validation (default {DEFAULT_SCHEDULE})",
    )
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument(
        "--epoch-beats",
        type=int,
        default=16384,
        help="training beats drawn per epoch; validation runs after each (default 16384)",
    )
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--balance", choices=BALANCE_MODES, default="sampler")
    p.add_argument(
        "--natural",
        default=",".join(DEFAULT_NATURAL),
        help="classes the balancing leaves at their natural share, comma-separated (default "
        f"{','.join(DEFAULT_NATURAL) or 'none'}; 'none' balances every class)",
    )
    p.add_argument("--no-augment", action="store_true", help="train on the beats as cut")
    p.add_argument(
        "--stretch",
        type=float,
        default=DEFAULT_STRETCH,
        help="augmentation: widen or narrow each training beat's waves in time by up to this "
        f"fraction (default {DEFAULT_STRETCH:g})",
    )
    p.add_argument(
        "--other-leads",
        action="store_true",
        help="also train on the training patients' other ECG lead (validation and test stay "
        "on the analysed lead)",
    )
    p.add_argument(
        "--noisy-copies",
        nargs="+",
        metavar="KIND:SNR_DB",
        help="also train on the training patients' analysed lead with NSTDB noise of KIND (bw, "
        "em, ma) at SNR_DB, from the noise record's second channel (validation and test stay "
        f"clean; default {' '.join(DEFAULT_NOISY_COPIES)} with the inter or all split, 'none' "
        "for clean beats only)",
    )
    p.add_argument(
        "--artefacts-as-q",
        action=argparse.BooleanOptionalAction,
        help="also train on the noisy copies' false detections, labelled Q (the artefacts a "
        "moving patient makes the detector take for beats; default on with noisy copies)",
    )
    p.add_argument(
        "--nstdb-dir",
        help="MIT-BIH Noise Stress Test directory for --noisy-copies (else $ECG_NSTDB_DIR, "
        "else download)",
    )
    p.add_argument(
        "--channels",
        default=",".join(DEFAULT_CHANNELS),
        help="waveform channels the model reads, comma-separated, 'beat' first; from "
        f"{', '.join(contract.CHANNELS)} (default {','.join(DEFAULT_CHANNELS)})",
    )
    p.add_argument(
        "--features",
        default=",".join(DEFAULT_FEATURES),
        help="context features, comma-separated names or groups ("
        + "; ".join(f"{g}: {' '.join(n)}" for g, n in contract.FEATURE_GROUPS.items())
        + f"); 'none' for the waveform alone (default {','.join(DEFAULT_FEATURES)})",
    )
    p.add_argument(
        "--sequence",
        type=int,
        default=DEFAULT_SEQUENCE,
        help="earlier beats whose context features the model also reads, through a BiLSTM "
        f"across beats (0-{MAX_SEQUENCE}; default {DEFAULT_SEQUENCE})",
    )
    p.add_argument(
        "--conv-channels",
        default=",".join(map(str, DEFAULT_CONV)),
        help="output channels of each conv block, comma-separated (default "
        f"{','.join(map(str, DEFAULT_CONV))}); the conv stack is most of the serving cost",
    )
    p.add_argument(
        "--lstm-hidden",
        type=int,
        default=DEFAULT_LSTM_HIDDEN,
        help=f"units each way of the BiLSTM over the conv steps (default {DEFAULT_LSTM_HIDDEN})",
    )
    p.add_argument(
        "--morph-dropout",
        type=float,
        help="share of training beats whose waveform features are hidden, so the model learns "
        f"to use the context too (default {DEFAULT_MORPH_DROPOUT}; 0 without features or "
        "with --kaggle-csv)",
    )
    p.add_argument(
        "--context-dropout",
        type=float,
        default=DEFAULT_CONTEXT_DROPOUT,
        help="share of training beats shown with every context input absent, as a Kaggle row "
        f"or a stream's first beats are (default {DEFAULT_CONTEXT_DROPOUT})",
    )
    p.add_argument(
        "--ema",
        type=float,
        default=DEFAULT_EMA,
        metavar="DECAY",
        help="validate and keep an exponential moving average of the weights, this decay per "
        "step (e.g. 0.995: about the last 200 steps); one epoch's last batches then weigh "
        f"less in which epoch wins (default {DEFAULT_EMA:g}: the raw weights)",
    )
    p.add_argument(
        "--average-epochs",
        type=int,
        default=0,
        metavar="K",
        help="keep the equal average of the weights at the end of each of the last K epochs "
        "(stochastic weight averaging; needs --select last) (default 0: the raw weights)",
    )
    p.add_argument(
        "--teachers",
        nargs="+",
        metavar="CKPT",
        help="checkpoints (a run's best.pt) of models trained on the same patients: the model "
        "also learns their averaged answers (knowledge distillation: an ensemble's answers at "
        "one network's serving cost)",
    )
    p.add_argument(
        "--members",
        type=int,
        default=DEFAULT_MEMBERS,
        metavar="K",
        help="train K networks one after another, seeds SEED to SEED+K-1 (each in "
        "RUN/member-sSEED/, with its own progress and ETA), and ship their averaged "
        f"probabilities as one model (default {DEFAULT_MEMBERS})",
    )
    p.add_argument(
        "--teacher-seeds",
        type=int,
        default=DEFAULT_TEACHER_SEEDS,
        metavar="K",
        help="first train K teachers, this command with seeds SEED+1 to SEED+K (all at once, "
        "one torch thread each, in RUN/teachers/), then learn from them as with --teachers "
        f"(default {DEFAULT_TEACHER_SEEDS}; 0: learn from the labels alone)",
    )
    p.add_argument(
        "--distill",
        type=float,
        default=DEFAULT_DISTILL,
        help="with --teachers: weight of the teachers' answers in the loss, the labels taking "
        f"the rest (default {DEFAULT_DISTILL:g})",
    )
    p.add_argument(
        "--temperature",
        type=float,
        default=DEFAULT_TEMPERATURE,
        help="with --teachers: softmax temperature of the teachers' and the model's answers "
        f"in the distillation term (default {DEFAULT_TEMPERATURE:g})",
    )
    p.add_argument(
        "--no-af-gate",
        action="store_true",
        help="serve the network's answer as it is, without the decision rule that takes the S "
        "probability of beats in atrial fibrillation to N (monitor.decision)",
    )
    p.add_argument(
        "--no-dominant-gate",
        action="store_true",
        help="serve the network's V calls as they are, without the decision rule that reports "
        "N for a beat called V that is on time and shaped like the patient's dominant beat "
        "(monitor.decision)",
    )
    p.add_argument(
        "--no-s-gate",
        action="store_true",
        help="serve the network's S calls as they are, without the decision rule that reports "
        "N for a beat called S that is not premature against the long-term mean RR "
        "(monitor.decision)",
    )
    p.add_argument(
        "--no-af-v-gate",
        action="store_true",
        help="serve the network's V calls in fibrillation as they are, without the decision "
        "rule that reports N for a beat called V there that is shaped like the patient's "
        "dominant beat (monitor.decision)",
    )
    p.add_argument(
        "--no-premature-s-gate",
        action="store_true",
        help="serve the network's N calls as they are, without the decision rule that reports "
        "S for a beat called N that is premature against the long-term mean RR, shaped like "
        "the patient's dominant beat and out of fibrillation (monitor.decision)",
    )
    p.add_argument(
        "--no-wide-qrs-gate",
        action="store_true",
        help="serve the network's S calls as they are, without the decision rule that reports "
        "V for a beat called S whose QRS is much wider than the patient's dominant beat's "
        "(monitor.decision)",
    )
    p.add_argument(
        "--no-unlike-s-gate",
        action="store_true",
        help="serve the network's S calls as they are, without the decision rule that reports "
        "V for a beat called S whose QRS is unlike the patient's dominant beat, out of "
        "fibrillation (monitor.decision)",
    )
    p.add_argument(
        "--report-as-n",
        default=",".join(DEFAULT_REPORT_AS_N),
        metavar="CLASSES",
        help="classes the served model never calls, comma-separated: a beat the network calls "
        f"one of them is reported N (default {','.join(DEFAULT_REPORT_AS_N) or 'none'}: the "
        "network's F calls on unseen patients are almost all normal beats; 'none': every class)",
    )
    p.add_argument(
        "--refit",
        action="store_true",
        help="the validation patients train too, so the model learns from every patient of "
        "the pool (for the model to ship, once settings and epochs are chosen by validation); "
        "nothing is left to validate, so it needs --select last and a schedule blind to validation",
    )
    p.add_argument(
        "--fold",
        metavar="I/N",
        help="validate on the I-th of N patient folds of DS1 instead of the default validation "
        "patients (cross-validation: `python -m trainer.crossval`)",
    )
    p.add_argument("--out", help="run directory (default runs/<timestamp>-<split>)")
    p.add_argument(
        "--export",
        metavar="PATH",
        help="also write the TorchScript model here (models/ecg_cnn_bilstm.pt replaces the "
        "shipped model); the run directory always gets model.pt",
    )
    p.add_argument("--records", nargs="+", help="only these records (quick runs), e.g. 101 106")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--cache-dir", help="beat cache (default ~/.cache/ecg-monitor/beats)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--no-test",
        action="store_true",
        help="do not evaluate on the test set (for runs that choose settings: never tune on DS2)",
    )
    args = p.parse_args(argv)
    args.teacher_flags = teacher_flags(p, args)
    if args.split_seed is None:
        args.split_seed = args.seed
    for name in ("epochs", "patience", "batch_size", "epoch_beats", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise InputError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if not args.lr > 0:
        raise InputError(f"--lr must be positive, got {args.lr}")
    if args.teacher_seeds < 0:
        raise InputError(f"--teacher-seeds must be at least 0, got {args.teacher_seeds}")
    if args.members < 1:
        raise InputError(f"--members must be at least 1, got {args.members}")
    if args.members > 1 and args.teacher_seeds:
        raise InputError("--members and --teacher-seeds both train this command with other "
                         "seeds; give one of them")  # fmt: skip
    if args.teachers and args.teacher_seeds:
        raise InputError("--teachers names the teachers, --teacher-seeds trains them: give "
                         "one of the two")  # fmt: skip
    if not 0.0 <= args.distill <= 1.0:
        raise InputError(f"--distill must be in [0, 1], got {args.distill}")
    if not args.temperature > 0:
        raise InputError(f"--temperature must be positive, got {args.temperature}")
    if args.kaggle_csv and (args.split or args.records):
        raise InputError("--split and --records do not apply to --kaggle-csv (already split)")
    args.inputs = model_contract(
        args.channels, args.features, args.sequence, af_gate=not args.no_af_gate,
        report_as_n=_classes(args.report_as_n), dominant_gate=not args.no_dominant_gate,
        s_gate=not args.no_s_gate, af_v_gate=not args.no_af_v_gate,
        premature_s_gate=not args.no_premature_s_gate, wide_qrs_gate=not args.no_wide_qrs_gate,
        unlike_s_gate=not args.no_unlike_s_gate,
    )  # fmt: skip
    args.natural = _classes(args.natural)
    if set(args.natural) - set(contract.CLASSES):
        raise InputError(f"--natural takes classes of {'/'.join(contract.CLASSES)}, "
                         f"got {','.join(args.natural)}")  # fmt: skip
    try:
        args.conv_channels = [int(c) for c in args.conv_channels.split(",") if c]
    except ValueError:
        raise InputError(f"--conv-channels must be integers, got {args.conv_channels!r}") from None
    if not args.conv_channels or min(args.conv_channels) < 1:
        raise InputError(f"--conv-channels must be positive integers, got {args.conv_channels}")
    if args.lstm_hidden < 1:
        raise InputError(f"--lstm-hidden must be a positive integer, got {args.lstm_hidden}")
    if not args.inputs.features and args.morph_dropout:
        raise InputError("--morph-dropout needs context features; drop one or the other")
    if args.morph_dropout is None:  # Kaggle rows carry no context: hiding the waveform hides all
        no_context = args.kaggle_csv or not args.inputs.features
        args.morph_dropout = 0.0 if no_context else DEFAULT_MORPH_DROPOUT
    for name in ("morph_dropout", "context_dropout", "ema", "stretch"):
        if not 0.0 <= getattr(args, name) < 1.0:
            flag = "--" + name.replace("_", "-")
            raise InputError(f"{flag} must be in [0, 1), got {getattr(args, name)}")
    args.split = args.split or ("kaggle" if args.kaggle_csv else "inter")
    args.fold = _fold(args.fold, args.split)
    if args.noisy_copies is None:
        more_views = args.split in ("inter", "all")
        args.noisy_copies = list(DEFAULT_NOISY_COPIES) if more_views else []
    args.noisy_copies = [text for text in args.noisy_copies if text != "none"]
    if args.artefacts_as_q is None:
        args.artefacts_as_q = bool(args.noisy_copies)
    if args.average_epochs < 0 or args.average_epochs > args.epochs:
        raise InputError(f"--average-epochs must be between 0 and --epochs ({args.epochs}), "
                         f"got {args.average_epochs}")  # fmt: skip
    if args.average_epochs and (args.select != "last" or args.ema):
        raise InputError("--average-epochs averages the last epochs: it needs --select last "
                         "and no --ema")  # fmt: skip
    if args.refit and (args.select != "last" or args.schedule == "plateau"):
        raise InputError(
            "--refit leaves no validation set to choose an epoch or to slow the learning "
            "rate: add --select last and --schedule cosine or constant"
        )
    if args.refit and (args.fold or args.split not in ("inter", "all")):
        raise InputError("--refit trains on the validation patients of the inter or all split: "
                         "not with --fold, the intra split or --kaggle-csv")  # fmt: skip
    for text in args.noisy_copies:
        noise_spec(text)
    if args.artefacts_as_q and not args.noisy_copies:
        raise InputError("--artefacts-as-q labels the noisy copies' false detections: add "
                         "--noisy-copies")  # fmt: skip
    for flag, given in (("--other-leads", args.other_leads),
                        ("--noisy-copies", args.noisy_copies)):  # fmt: skip
        if given and args.split not in ("inter", "all"):
            raise InputError(
                f"{flag} adds more views of the training patients: the inter or all split "
                "only (in the intra split the same beats are tested)"
            )
    if args.records:
        args.records = [r for item in args.records for r in item.split(",") if r]
    return args


def noise_spec(text: str) -> NoiseSpec:
    """One `--noisy-copies` value."""
    return NoiseSpec.parse(text, flag="--noisy-copies")


def _classes(text: str) -> tuple[str, ...]:
    """A comma-separated class flag (--natural, --report-as-n); 'none' names no class."""
    return tuple(c for c in text.split(",") if c and c != "none")


#: Options of this command that its teachers do not share: each teacher has its own seed and
#: run directory, and neither exports, tests nor has teachers of its own.
NOT_FOR_TEACHERS = ("seed", "split_seed", "out", "export", "no_test", "no_progress", "threads",
                    "teachers", "teacher_seeds", "members")  # fmt: skip


def teacher_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    """The flags the user gave (as parsed, so abbreviations and `--flag=value` are read alike)
    that shape the model, for the teachers to train with."""
    flags: list[str] = []
    for action in parser._actions:
        value = getattr(args, action.dest, None)
        if value is None or value == action.default or action.dest in NOT_FOR_TEACHERS:
            continue  # not given (or --help, which leaves no value)
        if isinstance(action, argparse.BooleanOptionalAction):  # --flag / --no-flag
            flags.append(action.option_strings[0 if value else 1])
            continue
        flags.append(action.option_strings[-1])
        if action.nargs == 0:  # store_true
            continue
        flags += [str(v) for v in value] if isinstance(value, list) else [str(value)]
    return flags


def train_teachers(args: argparse.Namespace, run_dir: Path) -> list[str]:
    """Train the `--teacher-seeds` teachers: this command's flags and split, seeds SEED+1 to
    SEED+K, all at once with one torch thread each (on two cores three of them take two thirds
    of the time of two rounds); their checkpoints."""
    from trainer.ablation import run_many  # the runner of the ablation and cross-validation

    seeds = range(args.seed + 1, args.seed + 1 + args.teacher_seeds)
    out = run_dir / "teachers"
    log.info("training %d teachers (seeds %s) at once in %s; logs there", len(seeds),
             ", ".join(map(str, seeds)), out)  # fmt: skip
    flags = [*args.teacher_flags, "--split-seed", str(args.split_seed)]  # the student's split
    run_many({s: ("teacher", flags, s, []) for s in seeds}, out, jobs=len(seeds))
    return [str(out / f"teacher-s{s}" / "best.pt") for s in seeds]


def _fold(text: str | None, split: str) -> tuple[int, int] | None:
    """--fold I/N as a 0-based (index, count)."""
    if text is None:
        return None
    if split not in ("inter", "all"):
        raise InputError(f"--fold validates on patient folds: not for the {split} split")
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise InputError(f"--fold must be I/N, e.g. 2/4, got {text!r}") from None
    if not 1 <= i <= n or n < 2:
        raise InputError(f"--fold must be I/N with 1 <= I <= N and N >= 2, got {text!r}")
    return i - 1, n


def model_contract(
    channels: str,
    features: str,
    sequence: int,
    af_gate: bool = True,
    report_as_n: tuple[str, ...] = (),
    dominant_gate: bool = True,
    s_gate: bool = True,
    af_v_gate: bool = True,
    premature_s_gate: bool = True,
    wide_qrs_gate: bool = True,
    unlike_s_gate: bool = True,
) -> contract.BeatContract:
    """The contract of a model reading these inputs (names or groups, comma-separated), with
    the AF gate, the dominant-beat gate, the S gate, the AF V gate, the premature S gate, the
    wide-QRS gate and the unlike-S gate (`monitor.decision`) where asked and the features
    they read are there, and `report_as_n`'s classes reported as N."""
    chans = tuple(c for c in channels.split(",") if c)
    names: list[str] = []
    for item in (f for f in features.split(",") if f and f != "none"):
        for name in contract.FEATURE_GROUPS.get(item, (item,)):
            if name not in names:
                names.append(name)
    if not 0 <= sequence <= MAX_SEQUENCE:
        raise InputError(f"--sequence must be between 0 and {MAX_SEQUENCE}, got {sequence}")
    if sequence and not names:
        raise InputError("--sequence reads earlier beats' features: give --features too")
    try:
        gate = af_gate and set(contract.AF_GATE_FEATURES) <= set(names)
        dominant = dominant_gate and set(contract.DOMINANT_GATE_FEATURES) <= set(names)
        s_rule = s_gate and set(contract.S_GATE_FEATURES) <= set(names)
        af_v = gate and af_v_gate and set(contract.AF_V_GATE_FEATURES) <= set(names)
        premature_s = (
            gate and premature_s_gate and set(contract.PREMATURE_S_GATE_FEATURES) <= set(names)
        )
        wide_qrs = wide_qrs_gate and set(contract.WIDE_QRS_GATE_FEATURES) <= set(names)
        unlike_s = unlike_s_gate and set(contract.UNLIKE_S_GATE_FEATURES) <= set(names)
        return dataclasses.replace(
            contract.CURRENT, channels=chans, features=tuple(names), sequence=sequence,
            af_gate=default_af_gate() if gate else (), report_as_n=report_as_n,
            dominant_gate=DOMINANT_GATE if dominant else (),
            s_gate=S_GATE if s_rule else (), af_v_gate=AF_V_GATE if af_v else (),
            premature_s_gate=PREMATURE_S_GATE if premature_s else (),
            wide_qrs_gate=WIDE_QRS_GATE if wide_qrs else (),
            unlike_s_gate=UNLIKE_S_GATE if unlike_s else (),
        )  # fmt: skip
    except ValueError as exc:
        raise InputError(f"--channels/--features/--report-as-n: {exc}") from None


def default_af_gate() -> tuple[float, float, float, float]:
    """The AF gate's thresholds: the alarm engine's AF entropy and turning-point band (one
    definition of fibrillation's RR evidence), and AF_GATE_IRREGULARITY."""
    s = AlarmSettings()
    return (s.af_entropy, s.af_tpr_low, s.af_tpr_high, AF_GATE_IRREGULARITY)


def decide(model: nn.Module, data: BeatSet, bc: contract.BeatContract) -> np.ndarray:
    """Class indices as the served model gives them: the network's probabilities through the
    contract's decision rules (`monitor.decision`)."""
    x, ctx = data.inputs(bc)
    logits = torch.from_numpy(network_logits(model, x, ctx))
    return decision.decide(torch.softmax(logits, dim=1).numpy(), ctx, bc).argmax(1)


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


# -- data ------------------------------------------------------------------------------------


def load_split(args: argparse.Namespace) -> Split:
    if args.kaggle_csv:
        folder = Path(args.kaggle_csv)
        pool = load_kaggle_csv(folder / "mitbih_train.csv")
        test = load_kaggle_csv(folder / "mitbih_test.csv")
        train, val = stratified_split(
            pool.labels, VAL_BEAT_FRACTION, np.random.default_rng(args.split_seed)
        )
        return Split(
            pool.subset(train),
            pool.subset(val),
            test,
            "kaggle",
            f"Kaggle CSV {folder}: mitbih_train.csv (validation: stratified "
            f"{VAL_BEAT_FRACTION:.0%} of it), test mitbih_test.csv",
        )
    records = args.records or list(records_for(args.split))
    if args.split == "inter":
        stray = [r for r in records if r not in DS1 + DS2]
        if stray:
            raise InputError(
                f"records {' '.join(stray)} are in neither DS1 nor DS2; the inter split uses "
                "only those (paced records are left out)"
            )
    data_dir = resolve_mitdb(args.data_dir, records)
    beats = build_beatset(data_dir, records, args.cache_dir, progress=not args.no_progress)
    tr, va, te = split_indices(beats, args.split, args.split_seed, args.fold)
    if args.refit:
        tr, va = np.union1d(tr, va), va[:0]
    parts = [beats.subset(i) for i in (tr, va, te)]
    trained = sorted(set(parts[0].records.tolist()))
    if args.other_leads:
        # The training patients' other lead: the same heartbeats seen from another angle, so
        # a database whose first lead is not MIT-BIH's MLII is not a new world to the model.
        other = build_beatset(
            data_dir, trained, args.cache_dir, progress=not args.no_progress, other_lead=True
        )
        parts[0] = BeatSet.concat([parts[0], other])
    # The training patients as a patient who moves shows them: the beats the detector still
    # finds in noise, with the context (RR, template) that noise leaves them.
    noisy = [
        build_beatset(data_dir, trained, args.cache_dir, progress=not args.no_progress,
                      noise=noise_spec(text), nstdb_dir=args.nstdb_dir,
                      artefacts_as_q=args.artefacts_as_q)
        for text in args.noisy_copies
    ]  # fmt: skip
    parts[0] = BeatSet.concat([parts[0], *noisy])

    def recs(b: BeatSet) -> str:
        return " ".join(sorted(set(b.records.tolist()))) or "none"

    if args.split == "intra":
        desc = (
            f"intra-patient: stratified beats of {recs(beats)}; validation "
            f"{VAL_BEAT_FRACTION:.0%} of training beats; test 20 % of beats"
        )
    else:
        held = "none (--refit: the validation patients train too)" if args.refit else recs(parts[1])
        desc = (
            f"{args.split}: train {recs(parts[0])}"
            + (" (both leads)" if args.other_leads else "")
            + "".join(f" (and with {n.kind} noise at {n.snr_db:g} dB)"
                      for n in map(noise_spec, args.noisy_copies))
            + (" (their false detections as Q)" if args.artefacts_as_q else "")
            + f"; validation patients {held}; test {recs(parts[2])}"
        )
    return Split(*parts, args.split, desc)


def balance_weights(labels: np.ndarray, natural: tuple[str, ...] = ()) -> np.ndarray:
    """Per-class factor n_c ** -BALANCE_POWER, scaled so an average training beat weighs 1.

    Classes in `natural` keep the weight of the most frequent class (their natural share): a
    class learned from one or two patients, boosted, is called on new patients' normal beats.
    """
    counts = np.bincount(labels, minlength=len(contract.CLASSES)).astype(float)
    w = np.where(counts > 0, np.maximum(counts, 1.0) ** -BALANCE_POWER, 0.0)
    for name in natural:
        w[contract.CLASSES.index(name)] = w[int(np.argmax(counts))]
    return w / (w[labels].mean())


# -- training --------------------------------------------------------------------------------


def predict_logits(model: nn.Module, data: BeatSet, bc: contract.BeatContract) -> np.ndarray:
    return network_logits(model, *data.inputs(bc))


def network_logits(model: nn.Module, x_all: np.ndarray, ctx_all: np.ndarray) -> np.ndarray:
    """The network's logits for model inputs (waveform channels, context), in batches."""
    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(x_all), EVAL_BATCH):
            x = torch.from_numpy(x_all[i : i + EVAL_BATCH])
            out.append(model(x, torch.from_numpy(ctx_all[i : i + EVAL_BATCH])).numpy())
    return np.concatenate(out) if out else np.zeros((0, len(contract.CLASSES)), np.float32)


def absent_inputs(bc: contract.BeatContract) -> tuple[torch.Tensor, torch.Tensor]:
    """One beat's inputs with every context input absent (channels after the first, features)."""
    x, ctx = select(bc, *absent_context(np.zeros((1, contract.BEAT_LEN), np.float32)))
    return torch.from_numpy(x[0, 1:]), torch.from_numpy(ctx[0])


def hide_context(
    x: torch.Tensor, ctx: torch.Tensor, share: float, bc: contract.BeatContract,
    gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Show `share` of the beats as a beat without context is shown: Kaggle rows, first beats."""
    hide = torch.rand(len(x), generator=gen) < share
    if not hide.any():
        return x, ctx
    absent_x, absent_ctx = absent_inputs(bc)
    x, ctx = x.clone(), ctx.clone()
    x[hide, 1:] = absent_x
    ctx[hide] = absent_ctx
    return x, ctx


def train_epoch(
    model: nn.Module,
    data: BeatSet,
    opt: torch.optim.Optimizer,
    loss_fn: nn.Module,
    args: argparse.Namespace,
    sample_weights: torch.Tensor | None,
    gen: torch.Generator,
    desc: str,
    average: WeightAverage | None = None,
    taught: torch.Tensor | None = None,
) -> float:
    """One epoch; `taught` holds the teachers' tempered probabilities of every training beat
    (`teacher_targets`), learnt beside the labels with weight `args.distill`."""
    from tqdm import tqdm

    model.train()
    draws = args.epoch_beats or len(data)
    if sample_weights is not None:
        order = torch.multinomial(sample_weights, draws, replacement=True, generator=gen)
    else:  # without replacement: an epoch is (a share of) one pass over the data
        order = torch.randperm(len(data), generator=gen)[:draws]
    bc = args.inputs
    x_np, ctx_np = data.inputs(bc)
    x_all, ctx_all = torch.from_numpy(x_np), torch.from_numpy(ctx_np)
    y_all = torch.from_numpy(data.labels)
    ratio_cols = [i for i, f in enumerate(bc.features) if f in RATIO_FEATURES]
    total, seen = 0.0, 0
    bar = tqdm(
        range(0, len(order), args.batch_size), desc=desc, unit="batch", leave=False,
        disable=args.no_progress,
    )  # fmt: skip
    for start in bar:
        idx = order[start : start + args.batch_size]
        x, ctx, y = x_all[idx], ctx_all[idx], y_all[idx]
        if not args.no_augment:
            beat, ctx = augment(x[:, 0], ctx, gen, ratio_cols, stretch=args.stretch)
            x = torch.cat([beat.unsqueeze(1), x[:, 1:]], dim=1)
        if args.context_dropout:
            x, ctx = hide_context(x, ctx, args.context_dropout, bc, gen)
        logits = model(x, ctx)
        loss = loss_fn(logits, y)
        if taught is not None:
            loss = (1 - args.distill) * loss + args.distill * distillation_loss(
                logits, taught[idx], args.temperature)  # fmt: skip
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if average is not None:
            average.update(model)
        total += loss.item() * len(idx)
        seen += len(idx)
        bar.set_postfix(loss=f"{total / seen:.4f}")
    return total / max(seen, 1)


def distillation_loss(
    logits: torch.Tensor, taught: torch.Tensor, temperature: float
) -> torch.Tensor:
    """KL divergence from the teachers' tempered probabilities to the model's, times T² so
    its gradients keep their size whatever the temperature (Hinton et al. 2015)."""
    log_p = nn.functional.log_softmax(logits / temperature, dim=1)
    return nn.functional.kl_div(log_p, taught, reduction="batchmean") * temperature**2


def teacher_targets(
    paths: list[str], data: BeatSet, bc: contract.BeatContract, temperature: float
) -> torch.Tensor:
    """The teachers' tempered probabilities of every beat of `data`, averaged over teachers.
    A teacher must read the same inputs as the model it teaches and have learnt from the same
    beats (a teacher that saw the validation patients would leak them into the model)."""
    probs, learnt = [], data.fingerprint()
    for path in paths:
        try:
            ckpt = torch.load(path, weights_only=False, map_location="cpu")
        except (OSError, RuntimeError, EOFError) as e:
            raise InputError(f"cannot read teacher checkpoint {path}: {e}") from None
        if ckpt.get("inputs") != bc.to_dict():
            raise InputError(f"teacher {path} reads other inputs than this model "
                             "(channels, features, sequence, decision rules): train it with "
                             "the same flags")  # fmt: skip
        if ckpt.get("train_data", learnt) != learnt:  # older checkpoints do not say
            raise InputError(f"teacher {path} learnt from other beats than this model (another "
                             "split, fold or record list)")  # fmt: skip
        logits = predict_logits(load_model(ckpt), data, bc)
        probs.append(torch.softmax(torch.from_numpy(logits) / temperature, dim=1))
    return torch.stack(probs).mean(0)


class WeightAverage:
    """An average of a model's weights: exponential (Polyak averaging, `decay` per update) or,
    without `decay`, the equal mean of every update (stochastic weight averaging, Izmailov et
    al. 2018, over end-of-epoch snapshots).

    Validation picks the best epoch from a handful of noisy end-of-epoch snapshots; with the
    heavy class balancing the last few hundred batches can move the rare classes' boundary a
    long way, so the same setting's runs differ more than settings do. The average smooths
    those last steps away. Batch-norm statistics are averaged like the weights; the batch
    counter is copied.
    """

    def __init__(self, model: nn.Module, decay: float | None = None) -> None:
        if decay is not None and not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        share = 1.0 / self.updates if self.decay is None else 1.0 - self.decay
        mine = itertools.chain(self.model.parameters(), self.model.buffers())
        theirs = itertools.chain(model.parameters(), model.buffers())
        for avg, now in zip(mine, theirs, strict=True):
            if avg.dtype.is_floating_point:
                avg.lerp_(now.detach(), share)
            else:
                avg.copy_(now)


def fit(model: CNNBiLSTM, split: Split, args: argparse.Namespace, run_dir: Path) -> dict:
    """Train; return the kept epoch's record (of the weight average with `--ema` or
    `--average-epochs`): the best validation macro F1 with early stopping (`--select best`),
    else the last epoch's."""
    gen = seed_everything(args.seed)
    cw = torch.tensor(balance_weights(split.train.labels, args.natural), dtype=torch.float32)
    loss_fn = nn.CrossEntropyLoss(weight=cw if args.balance in ("weights", "both") else None)
    sample_weights = cw[split.train.labels] if args.balance in ("sampler", "both") else None
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    if args.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    elif args.schedule == "plateau":
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.5, patience=2)
    else:  # constant
        sched = None
    average = WeightAverage(model, args.ema) if args.ema else None
    snapshots = WeightAverage(model) if args.average_epochs else None
    judged = average.model if average else model
    learnt = split.train.fingerprint()
    taught = None
    if args.teachers:
        taught = teacher_targets(args.teachers, split.train, args.inputs, args.temperature)
        log.info("distilling %d teachers (weight %g, temperature %g)", len(args.teachers),
                 args.distill, args.temperature)  # fmt: skip
    history: list[dict] = []
    best: dict | None = None
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        lr = opt.param_groups[0]["lr"]
        train_loss = train_epoch(
            model, split.train, opt, loss_fn, args, sample_weights, gen, f"epoch {epoch}",
            average, taught,
        )  # fmt: skip
        if snapshots is not None and epoch > args.epochs - args.average_epochs:
            snapshots.update(model)
            judged = snapshots.model
        val, confusion = validate(judged, split.val, args.inputs)
        row = {"epoch": epoch, "train_loss": train_loss, **val, "lr": lr,
               "seconds": time.perf_counter() - t0}  # fmt: skip
        history.append(row)
        f1 = row["val_macro_f1"]
        improved = f1 is not None and (best is None or f1 > best["val_macro_f1"])
        if improved or args.select == "last":
            best = {**row, "val_confusion": confusion}
            torch.save(
                judged.checkpoint(epoch=epoch, inputs=args.inputs.to_dict(), train_data=learnt),
                run_dir / "best.pt",
            )
        write_log(history, run_dir)
        watched = "" if f1 is None else (
            f"  val loss {row['val_loss']:.4f}  val macro F1 {f1:.4f}  ("
            + " ".join(f"{c} {row[f'val_f1_{c}']:.2f}" for c in contract.CLASSES
                       if row[f"val_f1_{c}"] is not None) + ")"
        )  # fmt: skip
        log.info(
            "epoch %d/%d  loss %.4f%s  lr %.1e  %.0f s%s  %s",
            epoch, args.epochs, train_loss, watched, lr, row["seconds"],
            "  *best" if improved else "",
            eta(history, args.epochs, args.patience, best["epoch"], args.select),
        )  # fmt: skip
        if args.schedule == "plateau":
            sched.step(f1)
        elif sched is not None:
            sched.step()
        if args.select == "best" and epoch - best["epoch"] >= args.patience:
            log.info("no better validation macro F1 for %d epochs: stopping", args.patience)
            break
    plot_curves(history, run_dir / "curves.png")
    return best


def new_network(args: argparse.Namespace) -> CNNBiLSTM:
    """A freshly initialised network of the command's shape."""
    n_channels, n_context = args.inputs.n_inputs()
    return CNNBiLSTM(
        in_channels=n_channels,
        n_context=n_context,
        sequence=args.inputs.sequence,
        channels=args.conv_channels,
        lstm_hidden=args.lstm_hidden,
        morph_dropout=args.morph_dropout,
    )


def fit_members(
    first: CNNBiLSTM, split: Split, args: argparse.Namespace, run_dir: Path
) -> tuple[Ensemble, dict]:
    """Train `--members` networks, seeds SEED, SEED+1, ... (`first` is the first's fresh
    network), each exactly as a one-network run of its seed; their ensemble and its record
    (validation figures of the averaged answers, the members' kept epochs)."""
    members, epochs = [], []
    for k in range(args.members):
        seed = args.seed + k
        log.info("member %d of %d: seed %d", k + 1, args.members, seed)
        if k:
            seed_everything(seed)  # as a run with --seed SEED+k: initial weights included
        member_dir = run_dir / f"member-s{seed}"
        member_dir.mkdir()
        member_args = argparse.Namespace(**{**vars(args), "seed": seed})
        kept = fit(first if k == 0 else new_network(args), split, member_args, member_dir)
        members.append(load_model(torch.load(member_dir / "best.pt", weights_only=False)))
        epochs.append(str(kept["epoch"]))
    ensemble = Ensemble(members)
    val, confusion = validate(ensemble, split.val, args.inputs)
    best = {"epoch": " ".join(epochs), **val, "val_confusion": confusion}
    torch.save(ensemble.checkpoint(epoch=best["epoch"], inputs=args.inputs.to_dict(),
                                   train_data=split.train.fingerprint()),
               run_dir / "best.pt")  # fmt: skip
    if best["val_macro_f1"] is not None:
        log.info("the %d members averaged: val macro F1 %.4f", args.members, best["val_macro_f1"])
    return ensemble, best


def validate(
    model: nn.Module, val: BeatSet, bc: contract.BeatContract
) -> tuple[dict, list | None]:
    """One epoch's validation figures (log columns) and confusion matrix; every figure None
    when the run has no validation set (`--refit`)."""
    per_class = [(k, c) for k in ("f1", "se", "ppv") for c in contract.CLASSES]
    if not len(val):
        keys = ["val_loss", "val_macro_f1", "val_accuracy"]
        return dict.fromkeys(keys + [f"val_{k}_{c}" for k, c in per_class]), None
    logits = predict_logits(model, val, bc)
    loss = nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(val.labels))
    m = metrics.evaluate(val.labels, logits.argmax(1))
    figures = {f"val_{k}_{c}": m["per_class"][c][k] for k, c in per_class}
    return {"val_loss": float(loss), "val_macro_f1": m["macro_f1"],
            "val_accuracy": m["accuracy"], **figures}, m["confusion"]  # fmt: skip


def eta(
    history: list[dict], epochs: int, patience: int, best_epoch: int, select: str = "best"
) -> str:
    """Time left at the mean epoch time so far: the sooner figure if no better epoch comes
    within `patience` (early stopping), the later one if training runs all `epochs`."""
    done = len(history)
    late = epochs - done
    soon = min(epochs, best_epoch + patience) - done if select == "best" else late
    if late <= 0 or soon <= 0:
        return "last epoch"
    mean = sum(h["seconds"] for h in history) / done
    return f"ETA {soon * mean / 60:.1f}-{late * mean / 60:.1f} min"


def write_log(history: list[dict], run_dir: Path) -> None:
    (run_dir / "log.json").write_text(json.dumps(history, indent=1))
    with open(run_dir / "log.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(history[0]))
        w.writeheader()
        w.writerows(history)


def plot_curves(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    a.plot(ep, [h["train_loss"] for h in history], label="train")
    a.plot(ep, [h["val_loss"] for h in history], label="validation")
    a.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    a.legend()
    b.plot(ep, [h["val_macro_f1"] for h in history], "k", lw=2, label="macro F1")
    for c in contract.CLASSES:
        ys = [h[f"val_f1_{c}"] for h in history]
        if any(y is not None for y in ys):
            b.plot(ep, [np.nan if y is None else y for y in ys], label=f"F1 {c}", alpha=0.7)
    b.set(xlabel="epoch", ylabel="F1", title="validation", ylim=(0, 1))
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- main ------------------------------------------------------------------------------------


def export_contract(model: nn.Module, split: Split, args: argparse.Namespace, best: dict):
    """The shipped contract: the current beat rules plus where this model came from.

    The version ends in a hash of the weights and of the model's choices (inputs and decision
    rules), so the same weights served by other rules are another version; the weights' own
    hash is kept beside it (`extra["weights_hash"]`)."""
    weights, version = fingerprints(model.state_dict(), args.inputs)
    now = datetime.now(timezone.utc)
    return dataclasses.replace(
        args.inputs,
        model_version=f"cnn-bilstm-{split.name}-{now:%Y%m%d}-{version}",
        data_split=split.description,
        data_hash=split.train.fingerprint(),
        extra={
            "weights_hash": weights,
            "trained_utc": now.isoformat(timespec="seconds"),
            "seed": str(args.seed),
            "best_epoch": str(best["epoch"]),
            "val_macro_f1": "none" if best["val_macro_f1"] is None
            else f"{best['val_macro_f1']:.4f}",
            "balance": args.balance,
            "natural": ",".join(args.natural) or "none",
            "augment": str(not args.no_augment),
            "stretch": f"{args.stretch:g}",
            "morph_dropout": str(args.morph_dropout),
            "context_dropout": str(args.context_dropout),
            "members": f"{args.members} (seeds {args.seed} to {args.seed + args.members - 1}), "
            "probabilities averaged" if args.members > 1 else "1",
            "distilled_from": f"{len(args.teachers)} teachers, weight {args.distill:g}, "
            f"temperature {args.temperature:g}" if args.teachers else "none",
            "train_beats": json.dumps(split.train.class_counts()),
            "command": "python -m trainer.train " + shlex.join(args.argv),
        },
    )


def _main(argv: list[str] | None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    args.argv = argv
    for module in ("tqdm", "matplotlib"):  # progress bars and curves: the train extra
        if importlib.util.find_spec(module) is None:
            raise missing_extra("training", module, "train")
    if args.threads:
        torch.set_num_threads(args.threads)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = Path(args.out or Path("runs") / f"{stamp}-{args.split}")
    if run_dir.exists() and any(run_dir.iterdir()):
        raise InputError(f"run directory {run_dir} is not empty; choose another --out")
    seed_everything(args.seed)

    t_start = time.perf_counter()
    split = load_split(args)
    for name in ("train",) if args.refit else ("train", "val"):
        if len(getattr(split, name)) == 0:
            raise InputError(f"the {name} set is empty; give more records")
    run_dir.mkdir(parents=True, exist_ok=True)
    log.info("split: %s", split.description)
    for name in ("train", "val", "test"):
        part = getattr(split, name)
        log.info("%-5s %6d beats %s", name, len(part), part.class_counts())

    model = new_network(args)
    log.info("inputs: %s", args.inputs.normalisation)
    log.info(
        "model: %d parameters%s; %d torch threads", model.n_parameters(),
        f" per member, {args.members} members" if args.members > 1 else "",
        torch.get_num_threads(),
    )  # fmt: skip
    config = {
        "args": {k: v for k, v in vars(args).items() if k not in ("argv", "inputs")},
        "inputs": args.inputs.to_dict(),
        "command": "python -m trainer.train " + shlex.join(argv),
        "split": split.description,
        "counts": {n: getattr(split, n).class_counts() for n in ("train", "val", "test")},
        "train_data_hash": split.train.fingerprint(),
        "parameters": model.n_parameters(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
    }
    (run_dir / "config.json").write_text(json.dumps(config, indent=1))

    if args.teacher_seeds:
        args.teachers = train_teachers(args, run_dir)
    t_fit = time.perf_counter()
    if args.members > 1:
        model, best = fit_members(model, split, args, run_dir)
    else:
        best = fit(model, split, args, run_dir)
        model = load_model(torch.load(run_dir / "best.pt", weights_only=False))
    train_s = time.perf_counter() - t_fit
    watched = "" if best["val_macro_f1"] is None else f": val macro F1 {best['val_macro_f1']:.4f}"
    log.info("%s epoch %d%s; trained in %.0f s", "kept" if args.select == "last" else "best",
             best["epoch"], watched, train_s)  # fmt: skip

    results = {"best": best, "train_seconds": train_s}
    served = any(getattr(args.inputs, g) for g in contract.BeatContract.GATES) or (
        args.inputs.report_as_n
    )
    if served and len(split.val):  # the kept epoch's validation as served
        gated = metrics.evaluate(split.val.labels, decide(model, split.val, args.inputs))
        results["val_served"] = gated
        log.info("validation macro F1 as served %.4f", gated["macro_f1"])
    if args.no_test:
        print("test set not evaluated (--no-test)")
    elif len(split.test):
        m = metrics.evaluate(split.test.labels, decide(model, split.test, args.inputs))
        results["test"] = m
        where = {
            "inter": "DS2, detected and matched beats",
            "intra": "held-out 20 % of beats",
            "kaggle": "mitbih_test.csv",
        }[split.name]
        print(metrics.format_report(m, f"test ({where}), {args.select} epoch:"))
    else:
        print("no test set for this split (every record trains); see the validation figures")

    bc = export_contract(model, split, args, best)
    path = export_torchscript(model, bc, run_dir / "model.pt")
    results["model"] = {
        "path": str(path),
        "version": bc.model_version,
        "bytes": path.stat().st_size,
    }
    if args.export:
        shipped = export_torchscript(model, bc, args.export)
        log.info("exported %s (%s)", shipped, bc.model_version)
    results["total_seconds"] = time.perf_counter() - t_start
    (run_dir / "metrics.json").write_text(json.dumps(results, indent=1))
    log.info("run directory %s; model %s", run_dir, path)
    if not args.export:
        log.info("(the shipped model is unchanged: pass --export models/ecg_cnn_bilstm.pt)")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
