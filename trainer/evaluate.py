"""How good the model is, in the two settings users ask about.

- inter (default): end to end on the de Chazal DS2 patients, none of whom trained the model, and
  EC57-style: our detector's beats against every reference beat, matched within 150 ms, so a
  missed beat costs the sensitivity of its class and an extra detection the positive
  predictivity of the class it was given. Intervals come from resampling patients.
- intra: the held-out 20 % of beats of the random beat split the model was trained with (seed
  from the model file), comparable to the Kaggle "ECG Heartbeat Categorization" literature; only
  beats our detector found and the reference labels are scored. Intervals resample beats.
- external: another hospital's annotated WFDB database (`--data-dir`; INCART, SVDB, ...), at its
  own sampling rate, end to end and scored exactly as inter. MIT-BIH was recorded in one
  hospital in the 1970s: the figures a ward will see come from databases like these.

Writes metrics.json, report.md and confusion.png into --out (default reports/<split>/, and
reports/external-<directory name>/ for an external database).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from monitor import contract, metrics
from monitor.annotate import annotate_lead, load_classifier
from monitor.errors import InputError, run_cli
from monitor.records import read_annotations, read_lead, resolve_mitdb
from monitor.signal import ec57
from trainer import splits

if TYPE_CHECKING:
    from monitor.classifier import BeatClassifier

SPLITS = ("inter", "intra")
#: The --split value for a database other than MIT-BIH.
EXTERNAL = "external"
#: MIT-BIH's rate and record length: with a training record's name, how a copy of MIT-BIH is
#: told from another database that reuses its record names (LTAFDB has 100-122 and 200-208).
MITDB_FS = 360.0
MITDB_SAMPLES = 650_000
K = len(contract.CLASSES)
#: Extra label of the end-to-end confusion matrix: row = extra detection, column = missed beat.
NO_BEAT = K


@dataclass(frozen=True)
class Evaluation:
    """Confusion matrices and how they were obtained; everything the report shows."""

    split: str
    #: Total confusion matrix; (K+1)-square with the "no beat" label for the inter split.
    cm: np.ndarray
    #: Bootstrap resamples of `cm`.
    boot: np.ndarray
    #: What the bootstrap resampled: "record" or "beat".
    unit: str
    #: Per-record matrices (inter split), in record order.
    per_record: dict[str, np.ndarray]
    provenance: dict


def record_confusion(
    ref_symbols: Sequence[str],
    ref_samples: Sequence[int],
    det_samples: np.ndarray,
    det_labels: Sequence[str],
    fs: float,
) -> np.ndarray:
    """(K+1)-square EC57 confusion matrix of one record: classes plus the "no beat" label."""
    ref = ec57.reference_beats(ref_symbols, ref_samples)
    m = ec57.match(ref.samples, det_samples, fs, ec57.MATCH_WINDOW_S, exclude=ref)
    ref_cls = np.array([contract.CLASSES.index(contract.AAMI_MAP[s]) for s in ref.symbols], int)
    det_cls = np.array([contract.CLASSES.index(label) for label in det_labels], int)
    true = np.concatenate(
        [ref_cls[m.pairs[:, 0]], ref_cls[m.missed], np.full(len(m.extra), NO_BEAT)]
    )
    pred = np.concatenate(
        [det_cls[m.pairs[:, 1]], np.full(len(m.missed), NO_BEAT), det_cls[m.extra]]
    )
    return metrics.confusion_matrix(true, pred, K + 1)


def evaluate_inter(
    classifier: BeatClassifier,
    data_dir: Path,
    records: Sequence[str],
    batch_size: int,
    progress: bool,
    annotator: str = "atr",
    skipped: dict[str, str] | None = None,
) -> dict[str, np.ndarray]:
    """End-to-end confusion matrix of each record: the annotator's output against its reference
    annotations (`annotator`). With `skipped`, a record that cannot be read is left out and
    noted there with the reason, instead of stopping the evaluation."""
    from tqdm import tqdm

    out = {}
    bar = tqdm(list(records), desc=data_dir.name, unit="rec", disable=not progress)
    for record in bar:
        bar.set_postfix_str(record)
        try:
            lead = read_lead(record, data_dir, invalid_ok=True)  # gaps, as the annotator has them
            atr = read_annotations(record, data_dir, annotator)
        except InputError as exc:
            if skipped is None:
                raise
            skipped[record] = str(exc)
            print(f"warning: {exc}; record left out", file=sys.stderr)
            continue
        ann = annotate_lead(lead, classifier, batch_size=batch_size)
        out[record] = record_confusion(atr.symbol, atr.sample, ann.samples, ann.labels, lead.fs)
    return out


def pooled_over_records(
    per_record: dict[str, np.ndarray], n: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """The records' confusion matrices summed, and bootstrap intervals resampling records:
    beats of one patient are not independent, so patients are the unit (EC57 practice)."""
    group_cms = np.stack(list(per_record.values()))
    return group_cms.sum(axis=0), metrics.bootstrap_groups(group_cms, n, seed)


def database_records(data_dir: Path, annotator: str) -> tuple[list[str], dict[str, str]]:
    """(records to score, records left out and why) of a WFDB database directory: the names in
    its RECORDS file (PhysioNet's list), else every header's; a record without reference
    annotations is left out."""
    listing = data_dir / "RECORDS"
    if listing.is_file():
        names = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
    else:
        names = sorted(p.stem for p in data_dir.glob("*.hea"))
    found, skipped = [], {}
    for name in names:
        if (data_dir / f"{name}.{annotator}").is_file():
            found.append(name)
        else:
            skipped[name] = f"no reference annotations {name}.{annotator}"
    return found, skipped


def training_records(model_contract: contract.BeatContract) -> tuple[str, ...]:
    """MIT-BIH records whose beats trained the model (DS1 for inter, every record otherwise)."""
    return splits.DS1 if trained_split(model_contract) == "inter" else splits.ALL_RECORDS


def check_external(
    data_dir: Path, records: Sequence[str], model_contract: contract.BeatContract
) -> None:
    """Refuse MIT-BIH records the model trained on: a copy of MIT-BIH is not another database.

    A record is one when it has a training record's name, MIT-BIH's rate and its length; other
    databases reuse the names (LTAFDB's 100-122) but not the rest.
    """
    import wfdb

    trained = set(training_records(model_contract))
    for record in records:
        if record not in trained:
            continue
        try:
            header = wfdb.rdheader(str(data_dir / record))
        except Exception:  # unreadable: read_lead says why when the record is scored
            continue
        if header.fs == MITDB_FS and header.sig_len == MITDB_SAMPLES:
            raise InputError(
                f"record {record!r} in {data_dir} is MIT-BIH record {record}, whose beats trained "
                "the model; --split external scores other databases (use --split inter for "
                "MIT-BIH's DS2)"
            )


def evaluate_intra(
    classifier: BeatClassifier,
    data_dir: Path,
    records: Sequence[str],
    seed: int,
    batch_size: int,
    progress: bool,
) -> tuple[np.ndarray, int]:
    """Confusion matrix of the held-out 20 % of the intra-patient beat split drawn with `seed`.

    Rebuilding the beat set of the same records and drawing with the same seed gives exactly
    the beats the trainer held out. Returns the matrix and the number of beats split.
    """
    from trainer.dataset import build_beatset

    beats = build_beatset(data_dir, records, progress=progress)
    _, _, test = splits.split_indices(beats, "intra", seed)
    x, context = beats.subset(test).inputs(classifier.contract)
    pred = np.concatenate(
        [
            classifier.predict(x[j : j + batch_size], context[j : j + batch_size]).argmax(axis=1)
            for j in range(0, len(test), batch_size)
        ]
    )
    return metrics.confusion_matrix(beats.labels[test], pred, K), len(beats)


def external_dir(data_dir: str | None) -> Path:
    """The external database's directory: it must be named, since nothing can be downloaded
    for a database we do not know."""
    if not data_dir:
        raise InputError("--split external needs --data-dir: the directory of the WFDB database")
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        raise InputError(f"data directory {path} (from --data-dir) does not exist")
    return path


def training_seed(model_contract: contract.BeatContract) -> int:
    """The split seed the model was trained with, from its embedded contract."""
    seed = model_contract.extra.get("seed")
    try:
        return int(seed)
    except (TypeError, ValueError):
        raise InputError(
            "the model file does not say which seed drew its intra-patient split "
            "(contract.extra['seed']); re-export it with the trainer"
        ) from None


def trained_split(model_contract: contract.BeatContract) -> str:
    """The split kind that trained the model: extra['split'], else the head of data_split.

    The trainer describes its split in words ("inter: train 101 ...", "intra-patient: ...").
    """
    kind = model_contract.extra.get("split") or model_contract.data_split
    return re.split(r"[\s:-]", kind.strip(), maxsplit=1)[0].lower()


def check_split(split: str, model_contract: contract.BeatContract) -> None:
    """Refuse to score a model on patients or beats it was trained on."""
    trained = trained_split(model_contract)
    if trained == split:
        return
    if trained == "unknown":
        if split == "inter":
            print(
                "warning: the model does not say which split trained it; the DS2 figures are "
                "only honest if no DS2 record was used",
                file=sys.stderr,
            )
            return
        raise InputError(
            "the model does not say which split trained it, so its held-out intra-patient beats "
            "are unknown; evaluate a model exported by the trainer"
        )
    raise InputError(
        f"the model was trained on the {trained!r} split, whose training data overlap the "
        f"{split!r} test set; evaluate it with the split it was trained on or train a model "
        f"with --split {split}"
    )


def intra_records(model_contract: contract.BeatContract) -> list[str]:
    """Records the intra-patient split was drawn from: extra['records'], else all 48."""
    listed = model_contract.extra.get("records", "").split()
    return listed or list(splits.records_for("intra"))


def shown_path(path: str | Path) -> str:
    """A path for a report: relative to the working directory when inside it, so a report
    committed with the repository does not carry one machine's directories."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def evaluate(args: argparse.Namespace) -> Evaluation:
    """Score the model of `args` on the split it asks for (default: the one that trained it)."""
    classifier = load_classifier(args.model, args.device)
    model_contract = classifier.contract
    trained = trained_split(model_contract)
    split = args.split or (trained if trained in SPLITS else "inter")
    if split != EXTERNAL:
        check_split(split, model_contract)
    t0 = time.perf_counter()
    provenance = {
        "model": shown_path(classifier.path),
        "model_version": model_contract.model_version,
        "model_split": trained,
        "model_split_description": model_contract.data_split,
        "model_data_hash": model_contract.data_hash,
        "bootstrap": {"n": args.bootstrap, "seed": args.seed, "level": 0.95},
        "match_window_s": ec57.MATCH_WINDOW_S,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if split == "inter":
        records = list(dict.fromkeys(args.records or splits.DS2))
        leaked = sorted(set(records) - set(splits.DS2))
        if leaked:
            raise InputError(
                f"--records {' '.join(leaked)} are not DS2 test patients; the inter-patient "
                "evaluation scores DS2 records only"
            )
        data_dir = resolve_mitdb(args.data_dir, records)
        per_record = evaluate_inter(classifier, data_dir, records, args.batch_size, args.progress)
        cm, boot = pooled_over_records(per_record, args.bootstrap, args.seed)
        unit = "record"
        provenance["records"] = list(records)
    elif split == EXTERNAL:
        data_dir = external_dir(args.data_dir)
        if args.records:
            records, skipped = list(dict.fromkeys(args.records)), {}
        else:
            records, skipped = database_records(data_dir, args.annotator)
            if not records:
                raise InputError(
                    f"no record in {data_dir} has reference annotations (.{args.annotator} "
                    "files); name the annotation file's extension with --annotator"
                )
        check_external(data_dir, records, model_contract)
        per_record = evaluate_inter(
            classifier, data_dir, records, args.batch_size, args.progress, args.annotator,
            skipped=skipped if not args.records else None,
        )  # fmt: skip
        if not per_record:
            raise InputError(f"no record of {data_dir} could be scored: {skipped}")
        cm, boot = pooled_over_records(per_record, args.bootstrap, args.seed)
        unit = "record"
        provenance.update(
            database=shown_path(data_dir), annotator=args.annotator, records=list(per_record),
            skipped=skipped,
        )  # fmt: skip
    else:
        seed = training_seed(model_contract)
        records = intra_records(model_contract)
        data_dir = resolve_mitdb(args.data_dir, records)
        cm, n_all = evaluate_intra(
            classifier, data_dir, records, seed, args.batch_size, args.progress
        )
        boot = metrics.bootstrap_items(cm, args.bootstrap, args.seed)
        unit, per_record = "beat", {}
        provenance.update(records=records, split_seed=seed, beats_in_split=n_all)
    provenance["seconds"] = round(time.perf_counter() - t0, 1)
    return Evaluation(split, cm, boot, unit, per_record, provenance)


# ---------------------------------------------------------------------------------------------
# Output


def _labels(n: int) -> tuple[list[str], list[str]]:
    """Row (reference) and column (prediction) names of an n-square matrix."""
    classes = list(contract.CLASSES)
    if n == K:
        return classes, classes
    return [*classes, "(extra)"], [*classes, "(missed)"]


def to_json(ev: Evaluation) -> dict:
    rows, cols = _labels(ev.cm.shape[0])
    out = {
        "split": ev.split,
        "bootstrap_unit": ev.unit,
        **ev.provenance,
        **metrics.with_intervals(ev.cm, ev.boot, contract.CLASSES),
        "confusion": {"rows_reference": rows, "columns_predicted": cols, "counts": ev.cm.tolist()},
    }
    if ev.per_record:
        out["per_record"] = {r: _record_summary(cm) for r, cm in ev.per_record.items()}
    return out


def _record_summary(cm: np.ndarray) -> dict:
    rates = metrics.class_rates(cm, K)
    det = metrics.detection_rates(cm, K)

    def by_class(values: np.ndarray, cast) -> dict:
        return {c: cast(v) for c, v in zip(contract.CLASSES, values, strict=True)}

    return {
        "reference": by_class(rates["support"], int),
        "detection": {m: int(det[m]) for m in ("tp", "fn", "fp")},
        "se": by_class(rates["se"], metrics.json_float),
        "ppv": by_class(rates["ppv"], metrics.json_float),
    }


def _pct(est: dict) -> str:
    v, (lo, hi) = est["value"], est["ci"]
    if v is None:
        return "n/a"
    ci = f" ({100 * lo:.1f}–{100 * hi:.1f})" if lo is not None else ""
    return f"{100 * v:.1f}{ci}"


def to_markdown(report: dict) -> str:
    split = report["split"]
    title = {
        "inter": "Inter-patient evaluation (DS2, end to end, EC57 beat-by-beat)",
        "intra": "Intra-patient evaluation (held-out 20 % of beats, random split)",
        EXTERNAL: f"Another database ({report.get('database')}, end to end, EC57 beat-by-beat)",
    }[split]
    b = report["bootstrap"]
    unit = "patients (records)" if report["bootstrap_unit"] == "record" else "beats"
    lines = [
        f"# {title}",
        "",
        f"Model `{report['model']}` (version {report['model_version']}, trained on the "
        f"{report['model_split']!r} split, data hash {report['model_data_hash']}); "
        f"evaluated {report['date']} in {report['seconds']} s.",
        "",
        f"Figures in % with bootstrap {100 * b['level']:.0f} % intervals from {b['n']} resamples "
        f"of {unit} (seed {b['seed']}).",
    ]
    if split in ("inter", EXTERNAL):
        scored = (
            f"{len(report['records'])} DS2 records"
            if split == "inter"
            else f"{len(report['records'])} records of {report['database']} (reference "
            f"annotations .{report['annotator']}), none of whose patients trained the model,"
        )
        lines += [
            f"Every reference beat with an AAMI class in the {scored} "
            "is scored (ventricular flutter episodes excluded); our beats are matched within "
            f"{1000 * report['match_window_s']:.0f} ms. A missed reference beat counts against the "
            "sensitivity of its class, an extra detection against the +P of the class it was "
            "given. Resampling patients, not beats, because beats of one patient are correlated.",
        ]
    else:
        lines += [
            f"Test beats: the 20 % held out with seed {report['split_seed']} from "
            f"{report['beats_in_split']} detected, reference-labelled beats of "
            f"{len(report['records'])} records. "
            "Patients appear in both training and test data: not a claim about new patients.",
        ]
    for record, why in report.get("skipped", {}).items():
        lines.append(f"- Left out: {record} ({why})")
    lines += ["", "| Class | Reference beats | Se | +P | F1 |", "|---|---:|---:|---:|---:|"]
    for c, r in report["per_class"].items():
        lines.append(
            f"| {c} | {r['support']} | {_pct(r['se'])} | {_pct(r['ppv'])} | {_pct(r['f1'])} |"
        )
    lines += [
        "",
        f"- Accuracy: {_pct(report['accuracy'])}",
        f"- Macro F1: {_pct(report['macro_f1'])}",
        f"- Weighted F1: {_pct(report['weighted_f1'])}",
    ]
    if "detection" in report:
        d = report["detection"]
        lines.append(
            f"- QRS detection (gross): Se {_pct(d['se'])}, +P {_pct(d['ppv'])} "
            f"(TP {d['tp']}, FN {d['fn']}, FP {d['fp']})"
        )
    if "ec57" in report:
        e = report["ec57"]
        lines.append(
            f"- EC57 ectopic-beat statistics (as PhysioNet's bxb computes them): VEB Se "
            f"{_pct(e['veb']['se'])}, +P {_pct(e['veb']['ppv'])}; SVEB Se {_pct(e['sveb']['se'])}, "
            f"+P {_pct(e['sveb']['ppv'])}. The table above counts every call against its class; "
            "EC57 does not count a fusion or unknown beat called V as a false VEB, nor an "
            "unknown beat called S as a false SVEB."
        )
    conf = report["confusion"]
    lines += [
        "",
        "## Confusion matrix (rows: reference, columns: prediction)",
        "",
        "![confusion matrix](confusion.png)",
        "",
        "| | " + " | ".join(conf["columns_predicted"]) + " |",
        "|---" * (len(conf["columns_predicted"]) + 1) + "|",
    ]
    for name, row in zip(conf["rows_reference"], conf["counts"], strict=True):
        lines.append(f"| **{name}** | " + " | ".join(str(v) for v in row) + " |")
    if "per_record" in report:
        lines += [
            "",
            "## Per record",
            "",
            "| Record | Beats | Det FN | Det FP | N Se | S Se | S +P | V Se | V +P |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for rec, r in report["per_record"].items():
            rates = [r[m][c] for m, c in (("se", "N"), ("se", "S"), ("ppv", "S"), ("se", "V"),
                                          ("ppv", "V"))]  # fmt: skip
            lines.append(
                f"| {rec} | {sum(r['reference'].values())} | {r['detection']['fn']} | "
                f"{r['detection']['fp']} | "
                + " | ".join("–" if v is None else f"{100 * v:.1f}" for v in rates)
                + " |"
            )
    return "\n".join(lines) + "\n"


def plot_confusion(cm: np.ndarray, title: str, path: Path) -> None:
    """Counts in every cell, colour by share of the reference row (classes differ 100-fold)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = _labels(cm.shape[0])
    row_sums = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, row_sums, out=np.zeros(cm.shape), where=row_sums > 0)
    fig, ax = plt.subplots(figsize=(6.4, 5.4), dpi=120)
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (i, j), n in np.ndenumerate(cm):
        if i == j == NO_BEAT:  # "no reference beat, no detection" is not an event
            continue
        ax.text(j, i, str(n), ha="center", va="center", fontsize=8,
                color="white" if share[i, j] > 0.5 else "black")  # fmt: skip
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("prediction")
    ax.set_ylabel("reference")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, label="share of reference row")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _replace_into(out_dir: Path, name: str, write) -> None:
    """Write via a temporary file in `out_dir` and rename: an old report is never half-replaced."""
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=Path(name).suffix, dir=out_dir)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, out_dir / name)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_report(ev: Evaluation, out_dir: Path) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    report = to_json(ev)
    text = json.dumps(report, indent=2, allow_nan=False) + "\n"
    _replace_into(out_dir, "metrics.json", lambda p: p.write_text(text))
    _replace_into(out_dir, "report.md", lambda p: p.write_text(to_markdown(report)))
    kind = f"{ev.split}-patient" if ev.split in SPLITS else report["database"]
    title = f"{kind}, model {report['model_version']}"
    _replace_into(out_dir, "confusion.png", lambda p: plot_confusion(ev.cm, title, p))
    return report


# ---------------------------------------------------------------------------------------------
# Command line


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ecg-evaluate",
        description="Score a model: per-class Se, +P and F1 with bootstrap intervals, accuracy, "
        "macro/weighted F1 and a confusion matrix (JSON, Markdown, PNG).",
    )
    p.add_argument("--model", help="TorchScript model (default: the shipped model, or $ECG_MODEL)")
    p.add_argument(
        "--split",
        choices=(*SPLITS, EXTERNAL),
        help="inter: DS2 end to end; intra: held-out beats; external: the annotated records of "
        "another database (--data-dir) end to end (default: the split that trained the model)",
    )
    p.add_argument(
        "--data-dir",
        help="MIT-BIH directory (default: $ECG_MITDB_DIR, else download); with --split external "
        "the other database's directory (required)",
    )
    p.add_argument(
        "--out",
        help="output directory (default: reports/<split>, reports/external-<database directory>)",
    )
    p.add_argument(
        "--records",
        nargs="+",
        metavar="RECORD",
        help="inter: a subset of DS2; external: these records (default: the directory's RECORDS "
        "list, else every record with reference annotations)",
    )
    p.add_argument(
        "--annotator",
        default="atr",
        help="external: extension of the reference annotation files (default atr)",
    )
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (the split seed comes from "
                   "the model file)")  # fmt: skip
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--batch-size", type=int, default=256, help="beats per model call")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    return p


def run(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.bootstrap < 1:
        raise InputError(f"--bootstrap must be at least 1, got {args.bootstrap}")
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {args.batch_size}")
    ev = evaluate(args)
    default = ev.split
    if ev.split == EXTERNAL:
        default = f"{EXTERNAL}-{Path(args.data_dir).expanduser().resolve().name}"
    out_dir = Path(args.out or Path("reports") / default)
    report = write_report(ev, out_dir)
    pc = report["per_class"]
    summary = ", ".join(f"{c} Se {_pct(pc[c]['se'])} +P {_pct(pc[c]['ppv'])}" for c in pc)
    print(f"{ev.split}: {summary}; macro F1 {_pct(report['macro_f1'])}")
    if "detection" in report:
        d = report["detection"]
        print(f"QRS detection: Se {_pct(d['se'])} +P {_pct(d['ppv'])}")
    if "ec57" in report:
        e = report["ec57"]
        print(f"EC57 VEB +P {_pct(e['veb']['ppv'])}, SVEB +P {_pct(e['sveb']['ppv'])}")
    print(f"wrote {out_dir}/metrics.json, report.md, confusion.png")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(run, argv)


if __name__ == "__main__":
    sys.exit(main())
