"""A faulty analysed lead on a two-lead bed: red alarms with one lead and with both.

    python benchmarks/lead_fault.py [--mitdb-dir M] [--nstdb-dir N] [--records 100 ...]

For each MIT-BIH record, three minutes from 5:00 run through the offline annotator's pipeline
(`BedPipeline`, the shipped classifier, the alarm engine) with the analysed lead replaced, from
the first to the second minute, by a flat line (electrodes off) or by pure NSTDB electrode-motion
noise scaled to the lead's QRS amplitude (a loose electrode rubbing). Run once with the analysed
lead alone and once with the record's other lead beside it (as the simulator sends them).

Counted per condition: asystole and V-fib episodes starting during the fault (or within 10 s
after it: beats come late), which are false, the heart beat throughout; and the share of records
where a technical alarm (leads_off, lead_fault, noisy_signal) was active during the fault. The
target of the two-lead runs: no asystole or V-fib at all, a technical alarm instead.

The other side of the same rules: a cardiac standstill for the minute (every lead at its
baseline with 20 uV of noise), where asystole must be raised within 10 s (`standstill`), and
the same with the other lead's electrode rubbing (`standstill_noisy`: pure noise there, which
a second lead's R-peak detector may take for beats, as it would on a lone lead).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from vf_detector import data_dir  # noqa: E402

from monitor.annotate import annotate_lead  # noqa: E402
from monitor.errors import run_cli  # noqa: E402
from monitor.records import ALL_RECORDS, Lead, read_lead  # noqa: E402
from simulators.noise import load_noise, qrs_amplitude  # noqa: E402

START_S, LENGTH_S = 300.0, 180.0
FAULT = (60.0, 120.0)
LATE_S = 10.0
RED = ("asystole", "vflutter")
KINDS = ("flat", "noise", "standstill", "standstill_noisy", "flat_standstill")
#: `flat_standstill`: the analysed lead's electrodes are off from the fault's start; the
#: heart stops this much later, seen on the other lead only.
STANDSTILL_AFTER_FLAT_S = 90.0
STANDSTILL = ("standstill", "standstill_noisy", "flat_standstill")
TECHNICAL = ("leads_off", "lead_fault", "noisy_signal")


def faulty(lead: Lead, kind: str, noise: np.ndarray) -> np.ndarray:
    """The analysed lead with FAULT replaced by a flat line, by pure noise, or by a cardiac
    standstill (`standstill`)."""
    x = lead.signal.copy()
    a, b = (round(t * lead.fs) for t in FAULT)
    if kind in ("flat", "flat_standstill"):
        x[a:b] = 0.0
    elif kind == "noise":
        x[a:b] = scaled_noise(noise[: b - a], x, lead.fs)
    else:
        x[a:b] = standstill(x[a], b - a, lead.fs)
    return x


def scaled_noise(n: np.ndarray, x: np.ndarray, fs: float) -> np.ndarray:
    """Noise as large as the lead's QRS complexes."""
    return n / max(np.ptp(n), 1e-9) * qrs_amplitude(x, fs)


def standstill(level: float, n: int, fs: float) -> np.ndarray:
    """A heart that stopped, as a lead still attached shows it: the baseline with 20 uV of
    noise and a 0.05 mV, 0.3 Hz wander."""
    t = np.arange(n) / fs
    rng = np.random.default_rng(n)
    return level + 0.025 * np.sin(2 * np.pi * 0.3 * t) + rng.normal(0.0, 0.02, n)


def other_lead(lead: Lead, kind: str, noise: np.ndarray) -> np.ndarray:
    """The other lead: intact, or for a standstill the same standstill, or (the risk a second
    lead brings) pure noise from a rubbing electrode."""
    y = lead.others[0].copy()
    a, b = (round(t * lead.fs) for t in FAULT)
    if kind == "standstill":
        y[a:b] = standstill(y[a], b - a, lead.fs)
    elif kind == "flat_standstill":
        m = round(STANDSTILL_AFTER_FLAT_S * lead.fs)
        y[m:b] = standstill(y[m], b - m, lead.fs)
    elif kind == "standstill_noisy":
        y[a:b] = scaled_noise(noise[: b - a], y, lead.fs)
    return y


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mitdb-dir")
    ap.add_argument("--nstdb-dir")
    ap.add_argument("--records", nargs="+", default=list(ALL_RECORDS))
    args = ap.parse_args(argv)
    from monitor.classifier import BeatClassifier

    classifier = BeatClassifier(device="cpu")
    mitdb = data_dir(args.mitdb_dir, "ECG_MITDB_DIR", "mitdb")
    noise = load_noise("em", 360.0, data_dir(args.nstdb_dir, "ECG_NSTDB_DIR", "nstdb"))
    rows: dict[tuple[str, str], list] = {}
    for record in args.records:
        full = read_lead(record, mitdb, others=True)
        if not full.others:
            continue
        a, b = (round(t * full.fs) for t in (START_S, START_S + LENGTH_S))
        lead = Lead(record, full.name, full.fs, full.signal[a:b], (full.others[0][a:b],))
        for kind in KINDS:
            x = faulty(lead, kind, noise)
            for leads in ("one", "two"):
                if leads == "one" and kind in ("standstill_noisy", "flat_standstill"):
                    continue
                others = (other_lead(lead, kind, noise),) if leads == "two" else ()
                alarms = annotate_lead(Lead(record, lead.name, lead.fs, x, others),
                                       classifier).alarms  # fmt: skip
                red = [e for e in alarms if e.kind in RED
                       and FAULT[0] <= e.start_s <= FAULT[1] + LATE_S]  # fmt: skip
                tech = any(e.kind in TECHNICAL and e.start_s < FAULT[1]
                           and (e.end_s is None or e.end_s > FAULT[0]) for e in alarms)  # fmt: skip
                rows.setdefault((kind, leads), []).append((record, red, tech))
        print(f"  {record} done", file=sys.stderr, flush=True)
    n = len(rows.get(("flat", "one"), []))
    print(f"{n} two-lead MIT-BIH records, analysed lead replaced for 60 s; false red alarms "
          "(asystole / V-fib) and records with a technical alarm during the fault")  # fmt: skip
    print(f"{'fault':6} {'leads':5} {'asystole':>9} {'V-fib':>6} {'technical':>10}  "
          "records with a red alarm")  # fmt: skip
    for (kind, leads), got in rows.items():
        if kind in STANDSTILL:
            continue
        asys = sum(e.kind == "asystole" for _, red, _ in got for e in red)
        vf = sum(e.kind == "vflutter" for _, red, _ in got for e in red)
        tech = sum(t for _, _, t in got)
        which = " ".join(r for r, red, _ in got if red) or "-"
        print(f"{kind:6} {leads:5} {asys:9d} {vf:6d} {tech:5d}/{len(got):<4d}  {which}")
    print("\ncardiac standstill: records with asystole raised within 10 s of its onset, and "
          "records with one before it")  # fmt: skip
    for (kind, leads), got in rows.items():
        if kind not in STANDSTILL:
            continue
        onset = STANDSTILL_AFTER_FLAT_S if kind == "flat_standstill" else FAULT[0]
        starts = {r: [e.start_s for e in red if e.kind == "asystole"] for r, red, _ in got}
        alarmed = [r for r, t in starts.items() if any(onset <= s <= onset + LATE_S for s in t)]
        early = " ".join(r for r, t in starts.items() if any(s < onset for s in t)) or "-"
        missed = " ".join(r for r, _, _ in got if r not in alarmed) or "-"
        print(f"{kind:16} {leads:5} {len(alarmed):3d}/{len(got):<3d} missed: {missed}; "
              f"before: {early}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
