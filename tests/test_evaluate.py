"""Evaluation plumbing: EC57 scoring of one record by hand, refusals, and the written report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from monitor import contract, metrics
from monitor.errors import InputError
from trainer import evaluate

REPO = Path(__file__).resolve().parents[1]
FS = 360.0  # 150 ms = 54 samples


def _cell(cm: np.ndarray, ref: str, pred: str) -> int:
    names = [*contract.CLASSES, "-"]
    return int(cm[names.index(ref), names.index(pred)])


def test_record_confusion_counts_missed_and_extra_beats() -> None:
    ref_symbols = ["N", "A", "V", "+", "N", "~"]
    ref_samples = [100, 500, 900, 950, 1300, 1600]
    det = np.array([102, 505, 1290, 2000])
    labels = ["N", "N", "V", "S"]
    cm = evaluate.record_confusion(ref_symbols, ref_samples, det, labels, FS)
    assert cm.sum() == 5  # 4 reference beats ('+' and '~' are not beats) + 1 extra detection
    assert _cell(cm, "N", "N") == 1
    assert _cell(cm, "S", "N") == 1  # A is supraventricular, called normal
    assert _cell(cm, "V", "-") == 1  # nothing within 150 ms of 900: missed
    assert _cell(cm, "N", "V") == 1
    assert _cell(cm, "-", "S") == 1  # 2000 has no reference beat: extra, labelled S
    d = metrics.detection_rates(cm, len(contract.CLASSES))
    assert (d["tp"], d["fn"], d["fp"]) == (3, 1, 1)


def test_detections_inside_ventricular_flutter_are_not_scored() -> None:
    ref_symbols = ["N", "[", "!", "!", "]", "N"]
    ref_samples = [100, 1000, 1100, 1300, 2000, 2500]
    det = np.array([101, 1100, 1300, 1500, 2501])
    cm = evaluate.record_confusion(ref_symbols, ref_samples, det, ["N"] * 5, FS)
    assert _cell(cm, "N", "N") == 2 and cm.sum() == 2


def test_a_model_is_not_scored_on_data_it_was_trained_on() -> None:
    def made(description: str, **extra: str) -> contract.BeatContract:
        return contract.BeatContract(data_split=description, extra=extra)

    evaluate.check_split("inter", made("inter: train 101 106; validation patients 203; test 100"))
    evaluate.check_split("intra", made("intra-patient: stratified beats of 100 101"))
    evaluate.check_split("inter", made("whatever the words", split="inter"))
    evaluate.check_split("inter", made("unknown"))  # a warning, not a refusal
    for split, trained in [
        ("inter", "intra-patient: stratified beats of 100 101"),
        ("inter", "all: train 100 101 102"),
        ("inter", "kaggle"),
        ("intra", "inter: train 101 106; test 100"),
        ("intra", "unknown"),
    ]:
        with pytest.raises(InputError):
            evaluate.check_split(split, made(trained))
    with pytest.raises(InputError, match="seed"):
        evaluate.training_seed(made("intra"))
    assert evaluate.training_seed(made("intra", seed="7")) == 7


def test_report_files(tmp_path) -> None:
    k = len(contract.CLASSES)
    rng = np.random.default_rng(0)
    per_record = {r: rng.integers(0, 30, (k + 1, k + 1)) for r in ("100", "103", "105")}
    for cm in per_record.values():
        cm[k, k] = 0  # "no reference beat, no detection" cannot happen
    stack = np.stack(list(per_record.values()))
    ev = evaluate.Evaluation(
        split="inter",
        cm=stack.sum(axis=0),
        boot=metrics.bootstrap_groups(stack, 50, seed=0),
        unit="record",
        per_record=per_record,
        provenance={
            "model": "m.pt",
            "model_version": "test",
            "model_split": "inter",
            "model_data_hash": "abc",
            "bootstrap": {"n": 50, "seed": 0, "level": 0.95},
            "match_window_s": 0.15,
            "date": "2024-01-01T00:00:00+00:00",
            "records": list(per_record),
            "seconds": 1.0,
        },
    )
    report = evaluate.write_report(ev, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "confusion.png",
        "metrics.json",
        "report.md",
    ]
    assert json.loads((tmp_path / "metrics.json").read_text()) == report
    assert report["confusion"]["counts"] == ev.cm.tolist()
    assert set(report["per_record"]) == {"100", "103", "105"}
    md = (tmp_path / "report.md").read_text()
    assert "| V |" in md and "QRS detection (gross)" in md and "patients (records)" in md
    assert "EC57 ectopic-beat statistics" in md and set(report["ec57"]) == {"veb", "sveb"}
    assert (tmp_path / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _evaluate_cli(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "trainer.evaluate", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_cli_scores_a_ds2_record_end_to_end(mitdb_dir, tmp_path) -> None:
    from monitor.classifier import DEFAULT_MODEL

    if not DEFAULT_MODEL.is_file():
        pytest.skip(f"no shipped model at {DEFAULT_MODEL}: train one with python -m trainer.train")
    done = _evaluate_cli(
        "--model", DEFAULT_MODEL, "--split", "inter", "--records", "100", "--data-dir", mitdb_dir,
        "--bootstrap", "20", "--out", tmp_path, "--no-progress",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["records"] == ["100"] and report["bootstrap_unit"] == "record"
    # Record 100 has 2273 beats; our detector finds nearly all of them.
    assert report["per_class"]["N"]["support"] + report["per_class"]["S"]["support"] > 2200
    assert report["detection"]["se"]["value"] > 0.99
    assert report["detection"]["ppv"]["value"] > 0.99


def test_cli_refuses_training_records_in_one_line(mitdb_dir, tmp_path) -> None:
    from monitor.classifier import DEFAULT_MODEL

    if not DEFAULT_MODEL.is_file():
        pytest.skip(f"no shipped model at {DEFAULT_MODEL}: train one with python -m trainer.train")
    done = _evaluate_cli(
        "--model", DEFAULT_MODEL, "--split", "inter", "--records", "101", "--data-dir", mitdb_dir,
        "--out", tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error:") and "DS2" in done.stderr
    assert done.stderr.strip().count("\n") == 0 and "Traceback" not in done.stderr


def _other_database(mitdb_dir: Path, out: Path, name: str, fs: float, minutes: float) -> None:
    """`minutes` of DS2 record 100, both leads, at `fs` as another hospital's record `name`:
    other channel names, other rate, its reference beats moved to that rate."""
    import wfdb

    from monitor.records import read_annotations, read_lead
    from monitor.signal.resample import resample

    lead = read_lead("100", mitdb_dir, others=True)
    n = round(minutes * 60 * lead.fs)
    signals = np.stack([resample(x[:n], lead.fs, fs) for x in (lead.signal, *lead.others)], 1)
    wfdb.wrsamp(name, fs=fs, units=["mV", "mV"], sig_name=["ECG1", "ECG2"], p_signal=signals,
                fmt=["16", "16"], write_dir=str(out))  # fmt: skip
    atr = read_annotations("100", mitdb_dir)
    keep = atr.sample < n
    sample = np.round(atr.sample[keep] * fs / lead.fs).astype(np.int64)
    wfdb.wrann(name, "atr", sample, np.asarray(atr.symbol)[keep].tolist(), write_dir=str(out))


@pytest.mark.slow
def test_cli_scores_another_database_at_its_own_rate(mitdb_dir, tmp_path) -> None:
    from monitor.classifier import DEFAULT_MODEL

    if not DEFAULT_MODEL.is_file():
        pytest.skip(f"no shipped model at {DEFAULT_MODEL}: train one with python -m trainer.train")
    db = tmp_path / "otherdb"
    db.mkdir()
    _other_database(mitdb_dir, db, "h001", 250.0, 3.0)
    # A training record's name at another rate is another database's record, not MIT-BIH's.
    _other_database(mitdb_dir, db, "101", 128.0, 2.0)
    (db / "h002.hea").write_text((db / "h001.hea").read_text().replace("h001", "h002"))
    done = _evaluate_cli(
        "--model", DEFAULT_MODEL, "--split", "external", "--data-dir", db, "--bootstrap", "20",
        "--out", tmp_path / "out", "--no-progress",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert report["records"] == ["101", "h001"]
    assert report["skipped"] == {"h002": "no reference annotations h002.atr"}
    assert report["annotator"] == "atr" and report["bootstrap_unit"] == "record"
    # Five minutes of record 100: about 370 beats, all but each record's first two (the first
    # R-peak only starts the rhythm) found and called N, at 250 and 128 Hz alike.
    assert 350 < sum(r["support"] for r in report["per_class"].values()) < 400
    assert report["detection"]["se"]["value"] > 0.98
    assert report["per_class"]["N"]["se"]["value"] > 0.97
    md = (tmp_path / "out" / "report.md").read_text()
    assert "otherdb" in md and "Left out: h002" in md


def test_cli_refuses_mitdb_training_patients_as_another_database(mitdb_dir, tmp_path) -> None:
    from monitor.classifier import DEFAULT_MODEL

    if not DEFAULT_MODEL.is_file():
        pytest.skip(f"no shipped model at {DEFAULT_MODEL}: train one with python -m trainer.train")
    for ext in ("hea", "dat", "atr"):
        (tmp_path / f"101.{ext}").symlink_to(mitdb_dir / f"101.{ext}")
    done = _evaluate_cli("--model", DEFAULT_MODEL, "--split", "external", "--data-dir", tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error:") and "MIT-BIH record 101" in done.stderr
    assert done.stderr.strip().count("\n") == 0
    done = _evaluate_cli("--model", DEFAULT_MODEL, "--split", "external")
    assert done.returncode == 2 and "--data-dir" in done.stderr
    assert done.stderr.strip().count("\n") == 0
