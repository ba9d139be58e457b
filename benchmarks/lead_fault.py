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
TECHNICAL = ("leads_off", "lead_fault", "noisy_signal")


def faulty(lead: Lead, kind: str, noise: np.ndarray) -> np.ndarray:
    """The analysed lead with FAULT replaced by a flat line or by pure noise."""
    x = lead.signal.copy()
    a, b = (round(t * lead.fs) for t in FAULT)
    if kind == "flat":
        x[a:b] = 0.0
    else:
        n = noise[: b - a]
        x[a:b] = n / max(np.ptp(n), 1e-9) * qrs_amplitude(lead.signal, lead.fs)
    return x


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
        for kind in ("flat", "noise"):
            x = faulty(lead, kind, noise)
            for leads in ("one", "two"):
                others = lead.others if leads == "two" else ()
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
        asys = sum(e.kind == "asystole" for _, red, _ in got for e in red)
        vf = sum(e.kind == "vflutter" for _, red, _ in got for e in red)
        tech = sum(t for _, _, t in got)
        which = " ".join(r for r, red, _ in got if red) or "-"
        print(f"{kind:6} {leads:5} {asys:9d} {vf:6d} {tech:5d}/{len(got):<4d}  {which}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
