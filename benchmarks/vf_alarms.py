"""VF/flutter alarms of the whole pipeline on CUDB and MIT-BIH 207: onset delay and VF coverage.

    python benchmarks/vf_alarms.py [--cudb-dir C] [--mitdb-dir M] [--model PATH] [--set k=v ...]

Each record runs through the offline annotator's `annotate_lead`, i.e. the worker's
`BedPipeline` (beat cutter, the shipped classifier, the alarm engine with its signal-level VF
detector), in bedside chunks (`monitor.validate.BEDSIDE_CHUNK_S`).
`benchmarks/vf_detector.py` scores the detector's readings alone; this scores the alarms a ward
would see.

- Onsets: CUDB `[` marks and MIT-BIH 207's `(VFL` notes. An onset is found when a `vflutter`
  episode (or, second column, any high-priority alarm) starts within 10 s after it, or is
  already active at it.
- Coverage: the share of VF/flutter seconds (inside `[`..`]`, `(VFL`) under an active
  `vflutter` episode, and under any high-priority episode.
- Outside VF: `vflutter` episodes that touch no VF episode. CUDB annotates VT and noise poorly,
  so these count with care; MIT-BIH's false red alarms are `benchmarks/alarm_quality.py`'s.

The shipped VF detector was fitted on these very records (CUDB and MIT-BIH DS1, 207 included),
so its figures here are in-sample. `--held-out` gives the honest ones: each record runs with the
detector's constants refitted without it (`vf_detector.py --fit`'s leave-one-record-out fits),
as a VF record from another database would meet it.

Targets (onsets within 10 s >= 95 %, coverage >= 90 %) are printed with the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from vf_detector import (  # noqa: E402
    _rhythm_intervals,
    data_dir,
    fit_logistic,
    load_cudb,
    load_mitdb,
    score_record,
    training_weights,
)

from monitor.alarms import AlarmSettings, vf  # noqa: E402
from monitor.annotate import Episode, annotate_lead  # noqa: E402
from monitor.errors import InputError, run_cli  # noqa: E402
from monitor.records import Lead, read_annotations, read_lead  # noqa: E402

ONSET_S = 10.0
TARGET_ONSETS = 0.95
TARGET_COVERAGE = 0.90


def covered_s(episodes: list[tuple[float, float]], spans: list[Episode], length_s: float) -> float:
    """Seconds of `episodes` under any of `spans` (an open span runs to `length_s`)."""
    total = 0.0
    for start, end in episodes:
        grid = np.arange(start, end, 0.1)
        on = np.zeros(len(grid), dtype=bool)
        for a in spans:
            on |= (grid >= a.start_s) & (grid < (a.end_s if a.end_s is not None else length_s))
        total += float(on.mean()) * (end - start) if len(grid) else 0.0
    return total


def found(onset: float, spans: list[Episode], length_s: float) -> float | None:
    """Seconds from `onset` to the alarm (0 when already active), None when not within 10 s."""
    for a in sorted(spans, key=lambda a: a.start_s):
        end = a.end_s if a.end_s is not None else length_s
        if a.start_s <= onset < end:
            return 0.0
        if onset <= a.start_s <= onset + ONSET_S:
            return a.start_s - onset
    return None


def held_out_fits(cudb: Path, mitdb: Path) -> dict[str, tuple]:
    """Per development record, the detector's constants fitted on every other one."""
    from monitor.records import DS1

    dev = load_cudb(cudb) + load_mitdb(mitdb, DS1)
    scored = [score_record(r, r.signal, vf.VFSettings()) for r in dev]
    return {
        sc.rec.name: fit_logistic(*training_weights([d for d in scored if d is not sc]))
        for sc in scored
    }


@contextlib.contextmanager
def detector_constants(params: tuple | None) -> Iterator[None]:
    """Serve the VF detector with other fitted constants (mean, scale, coef, intercept)."""
    names = ("FEATURE_MEAN", "FEATURE_SCALE", "COEFFICIENTS", "INTERCEPT")
    saved = [getattr(vf, n) for n in names]
    try:
        if params is not None:
            for n, v in zip(names, params, strict=True):
                setattr(vf, n, v)
        yield
    finally:
        for n, v in zip(names, saved, strict=True):
            setattr(vf, n, v)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cudb-dir")
    ap.add_argument("--mitdb-dir")
    ap.add_argument("--model", help="model file (default: the shipped one)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="override an alarm setting")  # fmt: skip
    ap.add_argument("--held-out", action="store_true",
                    help="run each record with the VF detector refitted without it")  # fmt: skip
    args = ap.parse_args(argv)
    try:
        settings = AlarmSettings.from_mapping(dict(item.split("=", 1) for item in args.set))
    except ValueError as exc:
        raise InputError(f"--set: {exc}") from exc
    from monitor.classifier import BeatClassifier

    classifier = BeatClassifier(args.model, device="cpu")
    cases = []
    for rec in load_cudb(data_dir(args.cudb_dir, "ECG_CUDB_DIR", "cudb")):
        episodes = [(s / rec.fs, e / rec.fs) for s, e in rec.episodes]
        cases.append((rec.name, Lead(rec.name, "ECG", rec.fs, rec.signal), episodes))
    mitdb = data_dir(args.mitdb_dir, "ECG_MITDB_DIR", "mitdb")
    fits = held_out_fits(data_dir(args.cudb_dir, "ECG_CUDB_DIR", "cudb"), mitdb) if (
        args.held_out) else {}  # fmt: skip

    lead = read_lead("207", mitdb, others=True)  # both leads, as the simulator sends them
    ann = read_annotations("207", mitdb)
    vfl = _rhythm_intervals(ann.sample, ann.aux_note, len(lead.signal), "(VFL")
    cases.append(("207", lead, [(s / lead.fs, e / lead.fs) for s, e in vfl]))

    print(f"model {classifier.version}; VF detector "
          f"{'refitted without each record' if fits else 'as shipped'}; onset found = alarm "
          f"active at it or starting within {ONSET_S:g} s after it")  # fmt: skip
    print(f"{'record':7} {'VF s':>6} {'onsets':>6} {'found VF':>9} {'found red':>9} "
          f"{'VF cover':>9} {'red cover':>9} {'VF alarms outside VF':>21}")  # fmt: skip
    tot = dict(vf_s=0.0, onsets=0, found_vf=0, found_red=0, cov_vf=0.0, cov_red=0.0, outside=0)
    delays = []
    for name, lead, episodes in cases:
        with detector_constants(fits.get(name)):
            alarms = annotate_lead(lead, classifier, settings=settings).alarms
        length_s = len(lead.signal) / lead.fs
        vfl = [a for a in alarms if a.kind == "vflutter"]
        red = [a for a in alarms if a.priority == "high"]
        hits_vf = [found(s, vfl, length_s) for s, _ in episodes]
        hits_red = [found(s, red, length_s) for s, _ in episodes]
        delays += [d for d in hits_vf if d is not None]
        outside = sum(
            not any(a.start_s <= e and (a.end_s or length_s) >= s for s, e in episodes) for a in vfl
        )
        row = dict(
            vf_s=sum(e - s for s, e in episodes), onsets=len(episodes),
            found_vf=sum(d is not None for d in hits_vf),
            found_red=sum(d is not None for d in hits_red),
            cov_vf=covered_s(episodes, vfl, length_s), cov_red=covered_s(episodes, red, length_s),
            outside=outside,
        )  # fmt: skip
        for k, v in row.items():
            tot[k] += v
        print(f"{name:7} {row['vf_s']:6.0f} {row['onsets']:6d} {row['found_vf']:9d} "
              f"{row['found_red']:9d} {_pct(row['cov_vf'], row['vf_s']):>9} "
              f"{_pct(row['cov_red'], row['vf_s']):>9} {outside:21d}", flush=True)  # fmt: skip
    print(f"{'all':7} {tot['vf_s']:6.0f} {tot['onsets']:6d} {tot['found_vf']:9d} "
          f"{tot['found_red']:9d} {_pct(tot['cov_vf'], tot['vf_s']):>9} "
          f"{_pct(tot['cov_red'], tot['vf_s']):>9} {tot['outside']:21d}")  # fmt: skip
    onsets_ok = tot["found_vf"] / tot["onsets"]
    cover_ok = tot["cov_red"] / tot["vf_s"]
    verdict = "met" if onsets_ok >= TARGET_ONSETS else "NOT met"
    print(f"\nonsets with a V-fib alarm within {ONSET_S:g} s: {100 * onsets_ok:.1f} % "
          f"(target >= {100 * TARGET_ONSETS:.0f} %: {verdict}); median delay "
          f"{np.median(delays):.1f} s")  # fmt: skip
    print(f"VF seconds under a red alarm: {100 * cover_ok:.1f} % (target >= "
          f"{100 * TARGET_COVERAGE:.0f} %: {'met' if cover_ok >= TARGET_COVERAGE else 'NOT met'}); "
          f"under the V-fib alarm itself {_pct(tot['cov_vf'], tot['vf_s']).strip()} %")  # fmt: skip
    return 0


def _pct(num: float, den: float) -> str:
    return f"{100 * num / den:.1f}" if den else "-"


if __name__ == "__main__":
    sys.exit(run_cli(main))
