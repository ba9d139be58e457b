"""VF/flutter detector (`monitor.alarms.vf`): window Se/Sp, false alarms, onset delay, cost.

    python benchmarks/vf_detector.py            # tables for the shipped constants
    python benchmarks/vf_detector.py --fit      # re-derive the constants (leave-one-record-out
                                                # figures first, then the final fit's constants)

The constants are fitted on CUDB and the MIT-BIH DS1 records only; DS2 is never fitted on.

Data (read-only): CUDB (Creighton VT/VF, 250 Hz), MIT-BIH Arrhythmia (360 Hz) and NSTDB `em`,
from --cudb-dir / --mitdb-dir / --nstdb-dir, else $ECG_CUDB_DIR / $ECG_MITDB_DIR /
$ECG_NSTDB_DIR, else ../shared/data/{cudb,mitdb,nstdb} beside the repo.

Window labels. CUDB: a window wholly inside a `[`..`]` episode (an unclosed `[` runs to the end
of the record) is shockable; one wholly outside every episode is non-shockable; one straddling
an edge counts for neither. CUDB marks no VT, so its non-shockable windows include some VT and
noise: MIT-BIH is the clean non-shockable reference. MIT-BIH: windows wholly inside a `(VFL`
rhythm (record 207) are shockable; windows touching `(VT` are reported apart (neither class);
windows wholly inside `(N` are "normal sinus rhythm"; straddling windows count for neither.
Coarse VF: shockable windows whose robust peak-to-peak amplitude (the detector's own measure)
is at least 0.2 mV.

Analysable windows. The AHA goals are set for rhythm strips, and a strip that holds a
defibrillation shock or a clipped amplifier is artefact, not a rhythm. CUDB is a resuscitation
database: its `[`..`]` episodes hold the shocks and the saturated seconds around them (15 % of
its VF windows). A window is analysable when the monitor's own signal-quality check
(`monitor.alarms.quality.SignalQuality`, the one behind the `noisy_signal` "saturated" and
`leads_off` technical alarms) found no flat line and no saturation in any of its readings
within the window. Per-window figures are printed over every window and over analysable
windows; the fit and the alarm figures use every window.

Alarm: raised at the `--confirm`-th consecutive shockable reading, held until `--release`
consecutive non-shockable readings. A false alarm is one raised by a reading whose window
touches no VF/flutter episode. Onset delay: from the `[` mark (or `(VFL` note) to the end of the
reading that raises the alarm (a run may begin before the onset, e.g. in preceding VT).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import optimize

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from monitor.alarms import vf  # noqa: E402
from monitor.alarms.quality import SignalQuality  # noqa: E402
from monitor.alarms.settings import AlarmSettings  # noqa: E402
from monitor.alarms.vf import FEATURES, VFSettings, vf_readings  # noqa: E402
from monitor.records import ALL_RECORDS, DS1, read_annotations, read_lead  # noqa: E402
from simulators.noise import load_noise, noise_gain  # noqa: E402

COARSE_MV = 0.2
#: L2 penalty of the logistic fit (on standardised features).
L2 = 1e-2


@dataclass
class Record:
    name: str
    db: str  # "cudb" | "mitdb"
    fs: float
    n: int
    episodes: list[tuple[int, int]]  # shockable [start, end) in samples
    vt: list[tuple[int, int]] = field(default_factory=list)
    normal: list[tuple[int, int]] = field(default_factory=list)
    signal: np.ndarray | None = None


@dataclass
class Scored:
    """One record's readings as arrays."""

    rec: Record
    index: np.ndarray
    amp: np.ndarray
    X: np.ndarray
    label: np.ndarray  # 1 shockable, 0 non-shockable, -1 neither (straddle), 2 VT
    normal: np.ndarray  # bool: wholly inside normal sinus rhythm
    touches_vf: np.ndarray  # bool: window overlaps a VF episode
    shock: np.ndarray  # the detector's own decision (shipped constants)
    analysable: np.ndarray  # bool: no flat or saturated quality reading within the window


def data_dir(flag: str | None, env: str, name: str) -> Path:
    chosen = flag or os.environ.get(env)
    return Path(chosen) if chosen else REPO.parent / "shared" / "data" / name


def _rhythm_intervals(samples, notes, n: int, prefix: str) -> list[tuple[int, int]]:
    out = []
    start = None
    for s, note in zip(samples, notes, strict=True):
        note = note.strip("\x00 ")
        if not note.startswith("("):
            continue
        if start is not None:
            out.append((start, int(s)))
            start = None
        if note == prefix:
            start = int(s)
    if start is not None:
        out.append((start, n))
    return out


def load_cudb(path: Path) -> list[Record]:
    import wfdb

    recs = []
    for name in (path / "RECORDS").read_text().split():
        rec = wfdb.rdrecord(str(path / name), channels=[0])
        x = rec.p_signal[:, 0].astype(np.float64)
        # A few CUDB samples are missing (NaN): hold the last valid value.
        bad = ~np.isfinite(x)
        if bad.any():
            idx = np.where(~bad, np.arange(len(x)), 0)
            np.maximum.accumulate(idx, out=idx)
            x = x[idx]
            x[~np.isfinite(x)] = 0.0
        ann = read_annotations(name, path)
        episodes, start = [], None
        for s, sym in zip(ann.sample, ann.symbol, strict=True):
            if sym == "[":
                start = int(s)
            elif sym == "]" and start is not None:
                episodes.append((start, int(s)))
                start = None
        if start is not None:
            episodes.append((start, len(x)))
        recs.append(Record(name, "cudb", float(rec.fs), len(x), episodes, signal=x))
    return recs


def load_mitdb(path: Path, records: Sequence[str] = ALL_RECORDS) -> list[Record]:
    recs = []
    for name in records:
        lead = read_lead(name, path)
        ann = read_annotations(name, path)
        n = len(lead.signal)
        recs.append(
            Record(
                name,
                "mitdb",
                lead.fs,
                n,
                _rhythm_intervals(ann.sample, ann.aux_note, n, "(VFL"),
                vt=_rhythm_intervals(ann.sample, ann.aux_note, n, "(VT"),
                normal=_rhythm_intervals(ann.sample, ann.aux_note, n, "(N"),
                signal=lead.signal,
            )
        )
    return recs


def _inside(s: np.ndarray, e: np.ndarray, intervals) -> np.ndarray:
    out = np.zeros(len(s), bool)
    for a, b in intervals:
        out |= (s >= a) & (e <= b)
    return out


def _touches(s: np.ndarray, e: np.ndarray, intervals) -> np.ndarray:
    out = np.zeros(len(s), bool)
    for a, b in intervals:
        out |= (s < b) & (e > a)
    return out


def analysable(x: np.ndarray, fs: float, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Windows [start, end) in which no signal-quality reading (each evaluated at its end
    sample) found the lead flat or saturated."""
    bad = np.array(
        [q.index for q in SignalQuality(fs, AlarmSettings()).feed(x) if q.flat or q.saturated],
        dtype=np.int64,
    )
    return np.searchsorted(bad, end, "right") == np.searchsorted(bad, start, "right")


def score_record(rec: Record, x: np.ndarray, settings: VFSettings) -> Scored:
    rs = vf_readings(x, rec.fs, settings)
    index = np.array([r.index for r in rs])
    amp = np.array([r.amplitude_mv for r in rs])
    X = np.array([r.features() for r in rs])
    e = index
    s = e - round(settings.window_s * rec.fs)
    inside = _inside(s, e, rec.episodes)
    touches = _touches(s, e, rec.episodes)
    label = np.where(inside, 1, np.where(touches, -1, 0))
    label[(label == 0) & _touches(s, e, rec.vt)] = 2
    shock = np.array([r.shockable for r in rs])
    return Scored(
        rec, index, amp, X, label, _inside(s, e, rec.normal), touches, shock,
        analysable(x, rec.fs, s, e),
    )  # fmt: skip


# -- logistic regression -------------------------------------------------------------------
def fit_logistic(X: np.ndarray, y: np.ndarray, w: np.ndarray):
    """Weighted L2 logistic regression on standardised X: (mean, scale, coef, intercept)."""
    mean = np.average(X, axis=0, weights=w)
    scale = np.sqrt(np.average((X - mean) ** 2, axis=0, weights=w)) + 1e-12
    Z = (X - mean) / scale
    w = w / w.sum()
    sign = 2 * y - 1

    def loss(theta):
        m = sign * (Z @ theta[1:] + theta[0])
        lo = np.logaddexp(0, -m)
        p = np.exp(-np.logaddexp(0, m))  # sigmoid(-m)
        g = -(w * p * sign)
        grad = np.concatenate([[g.sum()], Z.T @ g]) + L2 * np.concatenate([[0], theta[1:]])
        return float(w @ lo) + 0.5 * L2 * float(theta[1:] @ theta[1:]), grad

    res = optimize.minimize(loss, np.zeros(Z.shape[1] + 1), jac=True, method="L-BFGS-B")
    return mean, scale, res.x[1:], res.x[0]


def training_weights(scored: list[Scored]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """X, y, weights: each class weighs the same; within non-shockable, each database half."""
    X = np.concatenate([sc.X for sc in scored])
    lab = np.concatenate([sc.label for sc in scored])
    db = np.concatenate([[sc.rec.db] * len(sc.label) for sc in scored])
    use = (lab == 0) | (lab == 1)
    X, lab, db = X[use], lab[use], db[use]
    w = np.zeros(len(lab))
    pos = lab == 1
    w[pos] = 1.0 / max(pos.sum(), 1)
    for name in ("cudb", "mitdb"):
        neg = (lab == 0) & (db == name)
        w[neg] = 0.5 / max(neg.sum(), 1)
    return X, lab, w


def decision(sc: Scored, params, settings: VFSettings) -> tuple[np.ndarray, np.ndarray]:
    mean, scale, coef, icpt = params
    score = icpt + ((sc.X - mean) / scale) @ coef
    return score, (score >= settings.score_threshold) & (sc.amp >= settings.amplitude_floor_mv)


# -- alarm-level metrics ---------------------------------------------------------------------
def alarm_track(shock: np.ndarray, confirm: int, release: int) -> tuple[np.ndarray, np.ndarray]:
    """(active per reading, raised-at-this-reading per reading)."""
    active = np.zeros(len(shock), bool)
    raised = np.zeros(len(shock), bool)
    on, run, off = False, 0, 0
    for i, s in enumerate(shock):
        run = run + 1 if s else 0
        off = 0 if s else off + 1
        if not on and run >= confirm:
            on = True
            raised[i] = True
        elif on and off >= release:
            on = False
        active[i] = on
    return active, raised


def evaluate(scored, decisions, settings: VFSettings, confirm: int, release: int) -> dict:
    step = settings.step_s
    out = {k: [0, 0] for k in ("vf", "coarse", "nonshock_cudb", "nonshock_mitdb", "nsr", "vt",
                               "coarse_ok", "nonshock_cudb_ok", "nonshock_mitdb_ok")}  # fmt: skip
    fa = {"cudb": 0, "mitdb": 0}
    hours = {"cudb": 0.0, "mitdb": 0.0}
    onsets = []  # (record, onset s, delay s or inf)
    covered = total_vf = 0.0
    for sc, shock in zip(scored, decisions, strict=True):
        db = sc.rec.db
        lab = sc.label
        for key, mask in (
            ("vf", lab == 1),
            ("coarse", (lab == 1) & (sc.amp >= COARSE_MV)),
            (f"nonshock_{db}", lab == 0),
            ("nsr", (lab == 0) & sc.normal),
            ("vt", lab == 2),
            ("coarse_ok", (lab == 1) & (sc.amp >= COARSE_MV) & sc.analysable),
            (f"nonshock_{db}_ok", (lab == 0) & sc.analysable),
        ):
            out[key][0] += int(shock[mask].sum())
            out[key][1] += int(mask.sum())
        active, raised = alarm_track(shock, confirm, release)
        fa[db] += int((raised & ~sc.touches_vf).sum())
        hours[db] += sc.rec.n / sc.rec.fs / 3600
        for a, b in sc.rec.episodes:
            after = np.flatnonzero((sc.index > a) & active)
            first = after[0] if len(after) else None
            # The alarm must have been raised (or still be held) at this reading and not
            # carried over from more than a window before the onset.
            delay = (sc.index[first] - a) / sc.rec.fs if first is not None else np.inf
            onsets.append((sc.rec.name, a / sc.rec.fs, delay, (b - a) / sc.rec.fs))
            # Coverage on the reading grid: each reading covers the step before its end.
            in_ep = (sc.index - step * sc.rec.fs >= a) & (sc.index <= b)
            covered += float(active[in_ep].sum()) * step
            total_vf += float(in_ep.sum()) * step
    return {"win": out, "fa": fa, "hours": hours, "onsets": onsets,
            "coverage": covered / max(total_vf, 1e-9), "vf_s": total_vf}


def pct(a: int, n: int) -> str:
    return f"{100 * a / n:6.2f} % ({a}/{n})" if n else "   n/a"


def print_report(title: str, clean: dict, noisy: dict | None, confirm: int, release: int) -> None:
    w = clean["win"]
    print(f"\n=== {title} ===")
    print("Per-window (reading) figures, CUDB + MIT-BIH clean:")
    print(f"  shockable Se, all VF/VFL windows        {pct(*w['vf'])}")
    print(f"  shockable Se, coarse VF (>= 0.2 mV)     {pct(*w['coarse'])}   AHA goal > 90 %")
    tn_c = w["nonshock_cudb"][1] - w["nonshock_cudb"][0]
    tn_m = w["nonshock_mitdb"][1] - w["nonshock_mitdb"][0]
    print(f"  non-shockable Sp, CUDB (incl. VT/noise) {pct(tn_c, w['nonshock_cudb'][1])}"
          "   AHA goal > 95 %")
    print(f"  non-shockable Sp, MIT-BIH               {pct(tn_m, w['nonshock_mitdb'][1])}"
          "   AHA goal > 95 %")
    tn_n = w["nsr"][1] - w["nsr"][0]
    print(f"  normal sinus rhythm Sp, MIT-BIH (N)     {pct(tn_n, w['nsr'][1])}   AHA goal > 99 %")
    print(f"  VT windows (MIT-BIH) called shockable   {pct(*w['vt'])}   (reported apart)")
    print("Per-window figures, analysable windows only (no flat line or saturation within):")
    print(f"  shockable Se, coarse VF (>= 0.2 mV)     {pct(*w['coarse_ok'])}   AHA goal > 90 %")
    for db, name in (("cudb", "CUDB (incl. VT/noise)"), ("mitdb", "MIT-BIH")):
        fp, n = w[f"nonshock_{db}_ok"]
        print(f"  non-shockable Sp, {name:21s} {pct(n - fp, n)}   AHA goal > 95 %")
    print(f"Alarm (confirm {confirm} consecutive readings, release after {release}):")
    for name, res in (("clean", clean),) + ((("em 6 dB", noisy),) if noisy else ()):
        h = res["hours"]["mitdb"]
        n = res["fa"]["mitdb"]
        print(f"  MIT-BIH {name:8s}: {n} false alarms in {h:.1f} h = {n / h:.2f}/h "
              f"= {24 * n / h:.1f}/24 h")
    h = clean["hours"]["cudb"]
    print(f"  CUDB non-VF parts: {clean['fa']['cudb']} alarms outside VF in {h:.1f} h "
          "(includes unannotated VT and noise)")
    ons = clean["onsets"]
    delays = np.array([d for _, _, d, _ in ons])
    within = int((delays <= 10).sum())
    print(f"  onsets alarmed within 10 s: {pct(within, len(ons))}   target >= 95 %")
    print(f"  VF seconds covered by the alarm: {100 * clean['coverage']:.1f} % of "
          f"{clean['vf_s']:.0f} s   target >= 90 %")
    print("  onset delays (s; inf = never):")
    for rec, t, d, dur in ons:
        flag = "" if d <= 10 else "   <-- late/missed"
        print(f"    {rec:5s} onset {t:7.1f} s (episode {dur:6.1f} s): {d:6.1f}{flag}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cudb-dir")
    ap.add_argument("--mitdb-dir")
    ap.add_argument("--nstdb-dir")
    ap.add_argument("--fit", action="store_true", help="re-derive the decision constants")
    ap.add_argument("--confirm", type=int, default=3, help="consecutive readings to alarm")
    ap.add_argument("--release", type=int, default=3, help="non-shockable readings to end it")
    ap.add_argument("--window-s", type=float, default=VFSettings().window_s)
    ap.add_argument("--threshold", type=float, default=VFSettings().score_threshold)
    ap.add_argument("--no-noise", action="store_true", help="skip the em 6 dB run")
    args = ap.parse_args(argv)
    settings = VFSettings(window_s=args.window_s, score_threshold=args.threshold)
    cudb = data_dir(args.cudb_dir, "ECG_CUDB_DIR", "cudb")
    mitdb = data_dir(args.mitdb_dir, "ECG_MITDB_DIR", "mitdb")
    nstdb = data_dir(args.nstdb_dir, "ECG_NSTDB_DIR", "nstdb")

    t0 = time.perf_counter()
    records = load_cudb(cudb) + load_mitdb(mitdb)
    cpu = time.process_time()
    scored = [score_record(r, r.signal, settings) for r in records]
    cpu = time.process_time() - cpu
    sig_s = sum(r.n / r.fs for r in records)
    n_read = sum(len(sc.index) for sc in scored)
    noisy = None
    if not args.no_noise:
        noise = load_noise("em", 360.0, nstdb)
        noisy = []
        for r in records:
            if r.db != "mitdb":
                continue
            nz = np.resize(noise, r.n)
            g = noise_gain(r.signal, nz, r.fs, 6.0)
            noisy.append(score_record(r, r.signal + g * nz, settings))
    print(f"scored {len(records)} records ({sig_s / 3600:.1f} h) in "
          f"{time.perf_counter() - t0:.0f} s; features {', '.join(FEATURES)}; "
          f"window {settings.window_s:g} s, step {settings.step_s:g} s")

    if args.fit:
        # Leave-one-record-out: every record scored by a model that never saw it.
        cv_dec, cv_dec_noisy = [], []
        noisy_by_name = {sc.rec.name: sc for sc in noisy or []}
        # Development pool: CUDB and MIT-BIH DS1; DS2 records are only ever scored.
        dev = [sc for sc in scored if sc.rec.db == "cudb" or sc.rec.name in DS1]
        for sc in scored:
            params = fit_logistic(*training_weights([d for d in dev if d is not sc]))
            cv_dec.append(decision(sc, params, settings)[1])
            if sc.rec.name in noisy_by_name and sc.rec.db == "mitdb":
                cv_dec_noisy.append(decision(noisy_by_name[sc.rec.name], params, settings)[1])
        print_report(
            "leave-one-record-out cross-validation (honest)",
            evaluate(scored, cv_dec, settings, args.confirm, args.release),
            evaluate(noisy, cv_dec_noisy, settings, args.confirm, args.release)
            if noisy else None,
            args.confirm, args.release,
        )
        shipped = fit_logistic(*training_weights(dev))
        mean, scale, coef, icpt = shipped
        print("\nconstants for monitor/alarms/vf.py (fit on CUDB and MIT-BIH DS1):")
        fmt = ", ".join
        print(f"FEATURE_MEAN = np.array([{fmt(f'{v:.6g}' for v in mean)}])")
        print(f"FEATURE_SCALE = np.array([{fmt(f'{v:.6g}' for v in scale)}])")
        print(f"COEFFICIENTS = np.array([{fmt(f'{v:.6g}' for v in coef)}])")
        print(f"INTERCEPT = {icpt:.6g}")
    if args.fit:
        dec = [decision(sc, shipped, settings)[1] for sc in scored]
        dec_noisy = [decision(sc, shipped, settings)[1] for sc in noisy] if noisy else None
    else:  # the detector's own decisions
        dec = [sc.shock for sc in scored]
        dec_noisy = [sc.shock for sc in noisy] if noisy else None
    print_report(
        "final constants (fit on CUDB + DS1: optimistic there, held out on DS2)"
        if args.fit else "shipped constants",
        evaluate(scored, dec, settings, args.confirm, args.release),
        evaluate(noisy, dec_noisy, settings, args.confirm, args.release) if noisy else None,
        args.confirm, args.release,
    )
    # Cost: the live shape, 1 s chunks at 360 Hz, one reading per chunk.
    x = records[-1].signal if records[-1].fs == 360 else records[0].signal
    det = vf.VFDetector(360.0, settings)
    chunk = 360
    c0 = time.process_time()
    n_steps = 0
    for i in range(0, min(len(x), 360 * 600), chunk):
        n_steps += len(det.feed(x[i : i + chunk]))
    c1 = time.process_time()
    print(f"\nCPU: {1e3 * (c1 - c0) / max(n_steps, 1):.3f} ms per 1 s step (360 Hz, 1 s chunks, "
          f"feed + features + decision); whole-record scoring {1e3 * cpu / max(n_read, 1):.3f} "
          f"ms per reading, {1e3 * cpu / sig_s:.3f} ms CPU per second of signal")
    return 0


if __name__ == "__main__":
    sys.exit(main())
