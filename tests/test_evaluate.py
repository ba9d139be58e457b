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
