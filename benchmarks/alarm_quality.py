"""Alarm episode quality on MIT-BIH: each record streamed through `AlarmEngine`, scored
against the database's rhythm annotations.

    python benchmarks/alarm_quality.py --data-dir D [--labels reference|model] [--model PATH]
        [--records 207 223 ...] [--set vt_beats=4 --set af_nrmssd=0.12 ...] [--per-record]
        [--noise em:6 --nstdb-dir N] [--leads all|one]
    python benchmarks/alarm_quality.py --crossval runs/cv [--seed 0] [--s-gate none|RR]
        [--dominant-gate none|RR,CORR] [--af-v-gate none|CORR,PCOH]
        [--premature-s-gate none|RR,CORR,PCOH,PS] [--wide-qrs-gate none|WIDTH,RR,RESIDUAL]
        [--unlike-s-gate none|CORR,PCOH,RR]

Each record runs through the offline annotator's `annotate_lead`: the worker's `BedPipeline`
(beat cutter, stream clock, alarm engine with every lead) fed in the annotator's one-second
chunks, so the figures are the stream's. The label modes only change who labels the beats the
cutter found:
- reference: the reference beat labels (.atr, AAMI classes), each detected beat taking the class
  of the reference beat within the EC57 match window (150 ms; "Q" for a detection the reference
  has no beat for). This scores the alarm logic on our own R-peaks.
- model: the shipped classifier (models/ecg_cnn_bilstm.pt, or --model / $ECG_MODEL).
- --crossval: the fold models of a `trainer.crossval` run, each on the DS1 patients it held out,
  so the alarms are scored on patients the labelling model never saw, and a decision rule can
  be chosen on them (`--s-gate`, `--dominant-gate`, `--af-v-gate`, `--premature-s-gate`,
  `--wide-qrs-gate`, `--unlike-s-gate`: in place of each model's own) without reading DS2.

Scoring. Reference episodes are the spans between rhythm annotations ('+' with aux_note),
adjacent spans of the same rhythm merged: (VT -> vtach, (SVTA -> svt, (B -> bigeminy,
(T -> trigeminy, (AFIB -> afib, (VFL -> vflutter. An alarm episode spans its start event to
its end event (an episode still open at the end of the record ends there). A reference
episode is detected (sensitivity) when at least one alarm episode of its kind overlaps it
((VFL: any high-priority alarm; (VT: V-tach or V-fib, see DETECTED_BY); an alarm episode is
a true positive (positive predictivity) when it overlaps at least one reference episode of its
rhythm (for vtach: (VT or (VFL, see CONFIRMED_BY).
Overlap is of closed intervals in stream time, with no tolerance. Reference AF episodes with
fewer beats than the AF window (`af_window_beats`) cannot be seen by design and are left out
of sensitivity (they still make an overlapping alarm a true positive); no other rhythm
excludes any episode. A second table gives every alarm kind's episode count and time per hour,
the alarm burden a ward would see. MIT-BIH annotates no asystole, but the sinus pauses of
record 232 (up to 6 s) meet its 4 s definition.

Red alarms. A third table judges every high-priority episode against the reference: V-tach
true when it overlaps a (VT or (VFL episode, V-fib/flutter when one lies within the episode or
the V-fib detector's window (8 s) before it; asystole when a reference RR interval of at least
`asystole_s` less the EC57 match window (150 ms: where an R-peak may lie) overlaps it (or ended
within the engine's hold-back, pause_s plus beat_latency_s, before it); extreme tachycardia /
bradycardia when the median of the `xtachy_beats` / `xbrady_beats` reference RR intervals
before its start is beyond the limit moved by the HR hysteresis. Targets: at most 1 false red
alarm per 24 h of clean signal, 1 per hour with NSTDB electrode-motion noise at 6 dB (`--noise
em:6`: the noise record added over the whole record, cycled, scaled to that SNR by the NST's
definition).

Settings are tuned on DS1 only (de Chazal 2004); DS2 is reported, never tuned on.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from label_robustness import (
    GATE_OPTIONS,
    gate_flag,
    gate_value,
    run_classifier,
    validation_patients,
)

from monitor.alarms import AlarmSettings
from monitor.alarms.vf import VFSettings
from monitor.annotate import annotate_lead
from monitor.classifier import BeatClassifier, Prediction
from monitor.contract import AAMI_MAP, aami_class
from monitor.errors import InputError, run_cli
from monitor.records import (
    DS1,
    DS2,
    Lead,
    list_records,
    read_annotations,
    read_lead,
    resolve_mitdb,
)
from monitor.signal import ec57
from simulators.noise import NoiseSpec, load_noise, noise_gain

#: Reference rhythm -> alarm kind.
RHYTHMS = {
    "(VT": "vtach",
    "(SVTA": "svt",
    "(B": "bigeminy",
    "(T": "trigeminy",
    "(AFIB": "afib",
    "(VFL": "vflutter",
}
#: Alarm kinds whose episodes detect a reference episode of each kind. Ventricular flutter
#: counts as detected by any high-priority alarm: the QRS detector cannot follow flutter waves
#: above ~200/min (the model then reports fast V beats: vtach) and the reference labels have
#: no beats there (asystole). VT also counts as detected by a V-fib alarm: one red alarm shows
#: at a time, V-fib supersedes V-tach, so a VT run during a V-fib alarm raises no V-tach.
DETECTED_BY = {kind: (kind,) for kind in RHYTHMS.values()} | {
    "vflutter": ("vflutter", "vtach", "asystole"),
    "vtach": ("vtach", "vflutter"),
}
#: Reference rhythms that make an alarm episode of each kind a true positive; for the same
#: reason a V-tach alarm during ventricular flutter is a correct high-priority alarm.
CONFIRMED_BY = {kind: (kind,) for kind in RHYTHMS.values()} | {"vtach": ("vtach", "vflutter")}
TARGETS = {"vtach": (0.90, 0.80)}
#: False red alarms allowed per hour: clean signal, and with noise added.
RED_TARGET_PER_H = {"clean": 1 / 24, "noisy": 1.0}
#: The red alarms those targets count (the issue's: V-fib, asystole, extreme rates); false V-tach
#: alarms are reported beside them, and in the "all" rate.
RED_TARGET_KINDS = ("asystole", "vflutter", "xtachy", "xbrady")


@dataclass
class Span:
    start: float
    end: float
    beats: int = 0


@dataclass
class RecordResult:
    record: str
    hours: float
    reference: dict[str, list[Span]] = field(default_factory=dict)
    alarms: dict[str, list[Span]] = field(default_factory=dict)
    #: High-priority episodes judged against the reference: kind -> [true?, ...].
    red: dict[str, list[bool]] = field(default_factory=dict)
    noisy: bool = False


def reference_annotations(record: str, data_dir: Path) -> tuple[np.ndarray, list[str], dict]:
    """Reference beats (sample, AAMI label) and rhythm episodes (kind -> spans in samples)."""
    ann = read_annotations(record, data_dir)
    samples = np.asarray(ann.sample)
    symbols = list(ann.symbol)
    beat_mask = np.array([aami_class(s) is not None for s in symbols], dtype=bool)
    beats = samples[beat_mask]
    labels = [AAMI_MAP[s] for s, keep in zip(symbols, beat_mask, strict=True) if keep]
    changes = [
        (int(s), (aux or "").strip("\x00").strip())
        for s, sym, aux in zip(samples, symbols, ann.aux_note, strict=True)
        if sym == "+"
    ]
    episodes: dict[str, list[list[int]]] = defaultdict(list)
    end_of_record = int(samples[-1]) + 1
    for i, (start, rhythm) in enumerate(changes):
        end = changes[i + 1][0] if i + 1 < len(changes) else end_of_record
        kind = RHYTHMS.get(rhythm)
        if kind is None:
            continue
        spans = episodes[kind]
        if spans and spans[-1][1] == start:
            spans[-1][1] = end  # same rhythm annotated twice in a row
        else:
            spans.append([start, end])
    return beats, labels, episodes


class ReferenceLabels:
    """A stand-in for the classifier that labels each detected beat with the reference class of
    the reference beat within the EC57 match window, "Q" when there is none.

    Beats are those of one record streamed from its start, so a beat's index is the record's.
    """

    def __init__(self, samples: np.ndarray, labels: list[str], fs: float) -> None:
        self.samples = np.asarray(samples, dtype=np.int64)
        self.labels = labels
        self.window = ec57.MATCH_WINDOW_S * fs

    def classify(self, beats: list) -> list[Prediction]:
        out = []
        for b in beats:
            k = int(np.searchsorted(self.samples, b.index))
            near = [j for j in (k - 1, k) if 0 <= j < len(self.samples)]
            j = min(near, key=lambda j: abs(int(self.samples[j]) - b.index), default=None)
            ok = j is not None and abs(int(self.samples[j]) - b.index) <= self.window
            label = self.labels[j] if ok else "Q"
            out.append(Prediction(label, {label: 1.0}))
        return out


def run_record(
    record: str, data_dir: Path, mode: str, settings: AlarmSettings, classifier,
    noise: np.ndarray | None = None, snr_db: float = 0.0, both_leads: bool = True,
) -> RecordResult:
    lead = read_lead(record, data_dir, others=both_leads)
    if noise is not None:  # electrode motion moves every lead
        cycled = noise[np.arange(len(lead.signal)) % len(noise)]
        gain = noise_gain(lead.signal, cycled, lead.fs, snr_db)
        lead = Lead(record, lead.name, lead.fs, lead.signal + gain * cycled,
                    tuple(o + gain * cycled for o in lead.others))  # fmt: skip
    fs = lead.fs
    ref_beats, ref_labels, episodes = reference_annotations(record, data_dir)
    labeller = classifier if mode == "model" else ReferenceLabels(ref_beats, ref_labels, fs)
    alarms = annotate_lead(lead, labeller, settings=settings).alarms
    duration = len(lead.signal) / fs
    result = RecordResult(record, duration / 3600.0)
    for ep in alarms:
        end = duration if ep.end_s is None else ep.end_s  # still active when the record ended
        result.alarms.setdefault(ep.kind, []).append(Span(ep.start_s, end))
    for kind, spans in episodes.items():
        result.reference[kind] = [
            Span(s / fs, e / fs, int(np.sum((ref_beats >= s) & (ref_beats < e)))) for s, e in spans
        ]
    result.red = judge_red(result, ref_beats / fs, settings)
    return result


def judge_red(result: RecordResult, beat_times: np.ndarray, s: AlarmSettings) -> dict:
    """Each high-priority episode, true or false against the reference (module docstring)."""
    rr = np.diff(beat_times)
    ventricular = [r for k in ("vtach", "vflutter") for r in result.reference.get(k, [])]

    def rate_before(t: float, beats: int) -> float:
        k = int(np.searchsorted(beat_times, t, side="right"))
        recent = rr[max(0, k - 1 - beats) : max(0, k - 1)]
        return 60.0 / float(np.median(recent)) if len(recent) else 0.0

    def asystole(a: Span) -> bool:
        # The engine may report a standstill up to its hold-back after the next R-peak; a pause
        # is measured between R-peaks, each placed within the EC57 match window.
        late = s.pause_s + s.beat_latency_s
        long = np.flatnonzero(rr >= s.asystole_s - ec57.MATCH_WINDOW_S)
        return any(overlaps(a, Span(beat_times[i], beat_times[i + 1] + late)) for i in long)

    def ventricular_in_window(a: Span) -> bool:
        # V-fib is judged on the signal of the detector's window before the alarm, so a VT or
        # flutter episode inside that window makes it true (as the PhysioNet/CinC 2015 challenge
        # judged ICU alarms on the seconds before them).
        seen = Span(a.start - VFSettings().window_s, a.end)
        return any(overlaps(seen, r) for r in ventricular)

    band = s.hr_hysteresis_bpm
    truth = {
        "vtach": lambda a: any(overlaps(a, r) for r in ventricular),
        "vflutter": ventricular_in_window,
        "asystole": asystole,
        "xtachy": lambda a: rate_before(a.start, s.xtachy_beats) >= s.xtachy_bpm - band,
        "xbrady": lambda a: 0 < rate_before(a.start, s.xbrady_beats) <= s.xbrady_bpm + band,
    }
    return {kind: [truth[kind](a) for a in result.alarms.get(kind, [])] for kind in truth}


def overlaps(a: Span, b: Span) -> bool:
    return a.start <= b.end and a.end >= b.start


@dataclass
class Score:
    ref: int = 0
    excluded: int = 0
    detected: int = 0
    alarms: int = 0
    true_alarms: int = 0

    def add(self, other: Score) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def score(result: RecordResult, kind: str, min_beats: int) -> Score:
    refs = result.reference.get(kind, [])
    alarms = result.alarms.get(kind, [])
    detectors = [a for k in DETECTED_BY[kind] for a in result.alarms.get(k, [])]
    confirming = [r for k in CONFIRMED_BY[kind] for r in result.reference.get(k, [])]
    scored = [r for r in refs if r.beats >= min_beats]
    return Score(
        ref=len(scored),
        excluded=len(refs) - len(scored),
        detected=sum(any(overlaps(r, a) for a in detectors) for r in scored),
        alarms=len(alarms),
        true_alarms=sum(any(overlaps(a, r) for r in confirming) for a in alarms),
    )


def pct(num: int, den: int) -> str:
    return f"{100.0 * num / den:5.1f}" if den else "    -"


def print_tables(results: list[RecordResult], settings: AlarmSettings, per_record: bool) -> None:
    min_beats = {kind: 0 for kind in RHYTHMS.values()}
    min_beats["afib"] = settings.af_window_beats
    groups = [
        (name, members)
        for name, members in (("DS1", set(DS1)), ("DS2", set(DS2)), ("all", None))
        if any(members is None or r.record in members for r in results)
    ]
    print(
        f"{'split':5} {'rhythm':10} {'ref':>5} {'excl':>5} {'alarms':>6} "
        f"{'Se %':>6} {'+P %':>6}  (detected/ref, true/alarms)"
    )
    for name, members in groups:
        chosen = [r for r in results if members is None or r.record in members]
        for rhythm, kind in RHYTHMS.items():
            total = Score()
            for r in chosen:
                total.add(score(r, kind, min_beats[kind]))
            target = ""
            if kind in TARGETS:
                se_t, p_t = TARGETS[kind]
                ok = total.ref and total.detected / total.ref >= se_t
                ok = ok and total.alarms and total.true_alarms / total.alarms >= p_t
                target = f"  target Se>={se_t:.0%} +P>={p_t:.0%}: {'met' if ok else 'NOT met'}"
            print(
                f"{name:5} {rhythm + ' ' + kind:10} {total.ref:5d} {total.excluded:5d} "
                f"{total.alarms:6d} {pct(total.detected, total.ref):>6} "
                f"{pct(total.true_alarms, total.alarms):>6}  "
                f"({total.detected}/{total.ref}, {total.true_alarms}/{total.alarms}){target}"
            )
    print()
    print("alarm burden: episodes (episodes per hour, % of time active)")
    kinds = sorted({k for r in results for k in r.alarms})
    print(f"{'kind':15} " + " ".join(f"{n:>24}" for n, _ in groups))
    for kind in kinds:
        cells = []
        for _, members in groups:
            chosen = [r for r in results if members is None or r.record in members]
            hours = sum(r.hours for r in chosen)
            n = sum(len(r.alarms.get(kind, [])) for r in chosen)
            active = sum(s.end - s.start for r in chosen for s in r.alarms.get(kind, []))
            cells.append(f"{n:6d} ({n / hours:6.1f}/h, {100 * active / 3600 / hours:5.1f}%)")
        print(f"{kind:15} " + " ".join(f"{c:>24}" for c in cells))
    print()
    print_red(results, groups)
    if per_record:
        print()
        for r in results:
            parts = []
            for kind in RHYTHMS.values():
                s = score(r, kind, min_beats[kind])
                if s.ref or s.alarms:
                    parts.append(f"{kind} {s.detected}/{s.ref} ref, {s.true_alarms}/{s.alarms} al")
            print(f"{r.record}: " + "; ".join(parts))


def print_red(results: list[RecordResult], groups: list) -> None:
    noisy = any(r.noisy for r in results)
    limit = RED_TARGET_PER_H["noisy" if noisy else "clean"]
    print(f"red alarms ({'with noise' if noisy else 'clean'}): episodes, false ones, false per "
          f"hour (target for V-fib, asystole and extreme rates <= {limit:.3g}/h)")
    kinds = ("asystole", "vflutter", "xtachy", "xbrady", "vtach")
    print(f"{'split':5} {'hours':>6} " + " ".join(f"{k:>14}" for k in kinds)
          + f" {'targeted/h':>11} {'all/h':>6}")  # fmt: skip
    for name, members in groups:
        chosen = [r for r in results if members is None or r.record in members]
        hours = sum(r.hours for r in chosen)
        cells, false = [], {}
        for kind in kinds:
            verdicts = [v for r in chosen for v in r.red.get(kind, [])]
            false[kind] = verdicts.count(False)
            cells.append(f"{len(verdicts):4d} {false[kind]:3d} {false[kind] / hours:5.2f}")
        targeted = sum(false[k] for k in RED_TARGET_KINDS) / hours
        met = "met" if targeted <= limit else "NOT met"
        print(f"{name:5} {hours:6.1f} " + " ".join(f"{c:>14}" for c in cells)
              + f" {targeted:8.2f} {met:7} {sum(false.values()) / hours:5.2f}")  # fmt: skip


def fold_classifiers(
    runs: Path, setting: str, seed: int, gates: dict[str, tuple[float, ...]]
) -> dict[str, BeatClassifier]:
    """Record -> the fold model of `setting` and `seed` that held it out for validation, served
    with `gates` (contract fields) in place of its own."""
    dirs = sorted(d for d in runs.glob(f"{setting}-f*-s{seed}") if (d / "model.pt").is_file())
    if not dirs:
        raise InputError(f"no finished run of {setting!r} seed {seed} in {runs}")
    out = {}
    for run_dir in dirs:
        out.update(dict.fromkeys(validation_patients(run_dir), run_classifier(run_dir, gates)))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", help="MIT-BIH directory (default: $ECG_MITDB_DIR)")
    ap.add_argument("--labels", choices=("reference", "model"), default="reference")
    ap.add_argument("--model", help="model file for --labels model (default: the shipped one)")
    ap.add_argument("--records", nargs="+", help="records to run (default: all)")
    ap.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="override a setting"
    )
    ap.add_argument("--per-record", action="store_true", help="also print each record's score")
    ap.add_argument("--leads", choices=("all", "one"), default="all",
                    help="give the alarm engine every lead of the record (default) or one")
    ap.add_argument("--noise", help="add NSTDB noise KIND:SNR_DB to every record, e.g. em:6")
    ap.add_argument("--nstdb-dir", help="NSTDB directory (default: $ECG_NSTDB_DIR)")
    ap.add_argument("--crossval", metavar="DIR",
                    help="trainer.crossval's --out directory: each fold model of --setting and "
                    "--seed labels its own validation patients, which it never saw (--labels "
                    "model implied; records default to every fold's validation patients)")
    ap.add_argument("--setting", default="af_evidence",
                    help="with --crossval (default %(default)s)")  # fmt: skip
    ap.add_argument("--seed", type=int, default=0, help="with --crossval (default %(default)s)")
    for option, (fld, form) in GATE_OPTIONS.items():
        ap.add_argument(gate_flag(option), default="own", metavar="GATE",
                        help=f"with --crossval: own, none or {form}, the {fld} the fold models "
                        "are served with (default: each model's own)")
    args = ap.parse_args(argv)
    overrides = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep:
            raise InputError(f"--set expects NAME=VALUE, got {item!r}")
        overrides[name.strip()] = value.strip()
    try:
        settings = AlarmSettings.from_mapping(overrides)
    except ValueError as exc:
        raise InputError(f"--set: {exc}") from exc
    data_dir = resolve_mitdb(args.data_dir, args.records)
    records = args.records or list_records(data_dir)
    classifier = None
    by_record = {}
    if args.crossval:
        args.labels = "model"
        by_record = fold_classifiers(Path(args.crossval), args.setting, args.seed, {
            fld: value for option, (fld, _) in GATE_OPTIONS.items()
            if (value := gate_value(option, getattr(args, f"{option}_gate"))) is not None
        })  # fmt: skip
        records = [r for r in (args.records or by_record) if r in by_record]
        if not records:
            raise InputError(f"--records: none is a validation patient of {args.crossval}")
        gates = ", ".join(f"{o} gate {getattr(args, f'{o}_gate')}" for o in GATE_OPTIONS)
        print(f"fold models: {args.crossval} {args.setting} seed {args.seed}; {gates}")
    elif args.labels == "model":
        classifier = BeatClassifier(args.model, device="cpu")
        print(f"model: {classifier.path} (version {classifier.version})")
    changed = {k: getattr(settings, k) for k in overrides}
    print(f"labels: {args.labels}; leads: {args.leads}; records: {len(records)}; "
          f"settings changed: {changed or 'none'}")
    spec = NoiseSpec.parse(args.noise) if args.noise else None
    noise = {}
    if spec is not None:
        print(f"noise: NSTDB {spec.kind} at {spec.snr_db:g} dB SNR over every whole record")
    results = []
    for record in records:
        fs = read_lead(record, data_dir).fs
        if spec is not None and fs not in noise:
            noise[fs] = load_noise(spec.kind, fs, args.nstdb_dir)
        result = run_record(record, data_dir, args.labels, settings,
                            by_record.get(record, classifier),
                            noise.get(fs), spec.snr_db if spec else 0.0,
                            both_leads=args.leads == "all")  # fmt: skip
        result.noisy = spec is not None
        results.append(result)
        print(f"  {record} done", file=sys.stderr, flush=True)
    print_tables(results, settings, args.per_record)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
