"""The offline annotator, run as users run it: a subprocess over WFDB records on disk."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from monitor import contract
from monitor.records import read_lead
from monitor.signal import ec57
from monitor.signal.resample import resample

REPO = Path(__file__).resolve().parents[1]
SECONDS = 120


def _annotate(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "monitor.annotate", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _write(directory: Path, name: str, fs: float, signal: np.ndarray, lead: str = "MLII") -> None:
    import wfdb

    wfdb.wrsamp(
        name,
        fs=fs,
        units=["mV"],
        sig_name=[lead],
        p_signal=np.asarray(signal, dtype=np.float64)[:, None],
        fmt=["16"],
        write_dir=str(directory),
    )


def _short_copy(src: Path, record: str, out: Path, name: str, fs_out: float | None) -> np.ndarray:
    """First two minutes of `record` as a new record (optionally resampled); its reference beats."""
    import wfdb

    lead = read_lead(record, src)
    n = int(SECONDS * lead.fs)
    fs = fs_out or lead.fs
    x = lead.signal[:n] if fs_out is None else resample(lead.signal[:n], lead.fs, fs_out)
    _write(out, name, fs, x, lead.name)
    atr = wfdb.rdann(str(src / record), "atr", sampto=n)
    ref = ec57.reference_beats(atr.symbol, atr.sample)
    return np.round(ref.samples * fs / lead.fs).astype(np.int64), ref.symbols


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """An untrained model under this code's contract: enough to reach the input checks."""
    from trainer.export import export_torchscript
    from trainer.model import CNNBiLSTM

    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    return export_torchscript(CNNBiLSTM(), contract.CURRENT, path)


@pytest.fixture(scope="module")
def shipped_model() -> Path:
    from monitor.classifier import DEFAULT_MODEL

    if not DEFAULT_MODEL.is_file():
        pytest.skip(f"no shipped model at {DEFAULT_MODEL}: train one with python -m trainer.train")
    return DEFAULT_MODEL


def test_annotates_records_at_their_own_rate(mitdb_dir, shipped_model, tmp_path) -> None:
    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    refs = {
        "r100": (_short_copy(mitdb_dir, "100", data, "r100", None), 360.0),
        "r119": (_short_copy(mitdb_dir, "119", data, "r119", 250.0), 250.0),
    }
    done = _annotate("r100", "r119", "--data-dir", data, "--out", out, "--model", shipped_model)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.strip().splitlines()) == 2
    # Atomic writes leave nothing behind but the annotation files and the alarm lists.
    assert sorted(p.name for p in out.iterdir()) == [
        f"{r}.{ext}" for r in ("r100", "r119") for ext in ("alarms.csv", "alarms.json", "ecgm")]

    import wfdb

    for name, ((ref_idx, ref_sym), fs) in refs.items():
        ann = wfdb.rdann(str(out / name), "ecgm")
        assert ann.fs == fs
        assert set(ann.symbol) <= set(contract.CLASSES) | {"+"}
        beat = np.array([s != "+" for s in ann.symbol])
        ann.sample, ann.symbol = ann.sample[beat], list(np.array(ann.symbol)[beat])
        m = ec57.match(ref_idx, ann.sample, fs)
        # Most beats, not all: detector quality is measured by benchmarks/detector_ec57.py, and
        # the first and last beat of a stream are never cut (no RR before, none after).
        assert len(m.pairs) >= 0.93 * len(ref_idx), f"{name}: {len(m.missed)} beats missed"
        assert len(m.pairs) >= 0.97 * len(ann.sample), f"{name}: {len(m.extra)} extra beats"
        # Positions are in the record's own rate: a 360 vs 250 Hz mix-up would be off by seconds.
        assert np.median(np.abs(m.offsets_s)) < 0.03
        ref_cls = [contract.AAMI_MAP[s] for s in ref_sym[m.pairs[:, 0]]]
        got = np.array(ann.symbol)[m.pairs[:, 1]]
        assert np.mean(got == np.array(ref_cls)) > 0.9, f"{name}: labels disagree with .atr"


def test_alarms_are_written_as_rhythm_changes_and_as_lists(mitdb_dir, shipped_model, tmp_path):
    """Record 119's ventricular bigeminy and trigeminy: the same episodes in all three files."""
    import csv
    import json

    import wfdb

    from monitor.annotate import NO_RHYTHM_ALARM, RHYTHM_NOTES

    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    _short_copy(mitdb_dir, "119", data, "r119", None)
    done = _annotate("r119", "--data-dir", data, "--out", out, "--model", shipped_model)
    assert done.returncode == 0, done.stderr
    assert "alarm episodes: " in done.stdout and "bigeminy" in done.stdout
    listed = json.loads((out / "r119.alarms.json").read_text())
    assert listed["record"] == "r119" and listed["seconds"] == pytest.approx(SECONDS)
    with open(out / "r119.alarms.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["kind"] for r in rows] == [a["kind"] for a in listed["alarms"]]
    assert {"bigeminy", "trigeminy"} <= {r["kind"] for r in rows}
    for a in listed["alarms"]:
        assert 0 <= a["start_s"] <= (a["end_s"] if a["end_s"] is not None else SECONDS)
    ann = wfdb.rdann(str(out / "r119"), "ecgm")
    changes = [(s, n) for s, sym, n in zip(ann.sample, ann.symbol, ann.aux_note, strict=True)
               if sym == "+"]  # fmt: skip
    notes = [n for _, n in changes]
    assert set(notes) <= {*RHYTHM_NOTES.values(), NO_RHYTHM_ALARM}
    assert "(B" in notes and all(a != b for a, b in itertools.pairwise(notes))
    first = min(a["start_s"] for a in listed["alarms"] if a["kind"] in RHYTHM_NOTES)
    assert changes[0][0] / 360.0 == pytest.approx(first, abs=1e-2)


def _bad_record(kind: str, data: Path) -> str:
    """Write a record that is wrong in one way (or, for "good", not at all); return its name."""
    t = np.arange(20 * 360) / 360
    ecg_like = np.sin(2 * np.pi * 1.2 * t) ** 31  # sharp peaks at 72 bpm
    if kind == "good":
        _write(data, "good", 360.0, ecg_like)
    elif kind == "nan":  # every sample of the lead invalid (WFDB's "no value", -32768)
        np.full(len(t), -32768, dtype="<i2").tofile(data / "nan.dat")
        (data / "nan.hea").write_text(f"nan 1 360 {len(t)}\nnan.dat 16 200/mV 16 0 0 0 0 MLII\n")
    elif kind == "pressure":
        import wfdb

        wfdb.wrsamp("pressure", fs=250.0, units=["mmHg", "NU"], sig_name=["ABP", "PLETH"],
                    p_signal=np.c_[80 + 40 * ecg_like, ecg_like][:5000], fmt=["16", "16"],
                    write_dir=str(data))  # fmt: skip
    elif kind == "slow":
        _write(data, "slow", 90.0, ecg_like[::4])
    elif kind == "flat":
        _write(data, "flat", 360.0, np.zeros_like(t))
    elif kind == "nolead":
        (data / "nolead.hea").write_text("nolead 0 360 0\n")
    return kind


BAD_RECORDS = {
    "missing": "not found",
    "nan": "NaN",
    "slow": "90 Hz",
    "flat": "flat",
    "nolead": "no signals",
    "pressure": "no ECG lead among the signals ABP, PLETH",
}


def test_each_bad_record_is_one_line_and_the_good_one_is_still_written(tiny_model, tmp_path):
    records = [_bad_record(kind, tmp_path) for kind in [*BAD_RECORDS, "good"]]
    out = tmp_path / "out"
    done = _annotate(*records, "--data-dir", tmp_path, "--out", out, "--model", tiny_model)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == len(BAD_RECORDS), done.stderr
    for line, (kind, expected) in zip(lines, BAD_RECORDS.items(), strict=True):
        assert line.startswith(f"error: record {kind!r}") and expected in line, line
    written = sorted(p.name for p in out.iterdir())
    assert written == ["good.alarms.csv", "good.alarms.json", "good.ecgm"]


def test_invalid_samples_are_a_gap_the_pipeline_restarts_after(mitdb_dir, shipped_model, tmp_path):
    """WFDB's invalid samples (NaN) are a stretch without signal, as a stream's missing
    samples are: no beat is made up inside it, and the beats after it are found again."""
    import wfdb

    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    lead = read_lead("100", mitdb_dir)
    x = lead.signal[: int(SECONDS * lead.fs)].copy()
    gap = slice(int(50 * lead.fs), int(60 * lead.fs))
    x[gap] = np.nan
    _write(data, "gappy", lead.fs, x)
    done = _annotate("gappy", "--data-dir", data, "--out", out, "--model", shipped_model)
    assert done.returncode == 0, done.stderr
    assert "1 stretch of invalid samples (10.0 s) skipped" in done.stdout
    ann = wfdb.rdann(str(out / "gappy"), "ecgm")
    beats = ann.sample[np.array([s != "+" for s in ann.symbol])]
    assert not np.any((beats >= gap.start) & (beats < gap.stop))
    atr = wfdb.rdann(str(mitdb_dir / "100"), "atr", sampfrom=gap.stop + int(5 * lead.fs),
                     sampto=len(x))  # fmt: skip
    after = ec57.reference_beats(atr.symbol, atr.sample).samples
    m = ec57.match(after, beats, lead.fs)
    assert len(m.pairs) >= 0.97 * len(after), f"{len(m.missed)} of {len(after)} beats missed"


def test_missing_data_dir_and_model_are_one_line_errors(tiny_model, tmp_path) -> None:
    for args, expected in (
        (["100", "--data-dir", tmp_path / "nowhere", "--model", tiny_model], "does not exist"),
        (["100", "--data-dir", tmp_path, "--model", tmp_path / "none.pt"], "not found"),
    ):
        done = _annotate(*args, "--out", tmp_path / "out")
        assert done.returncode != 0
        assert done.stderr.strip().count("\n") == 0 and expected in done.stderr, done.stderr
        assert "Traceback" not in done.stderr


def test_model_with_another_contract_is_refused_and_nothing_is_overwritten(tmp_path) -> None:
    from trainer.export import export_torchscript
    from trainer.model import CNNBiLSTM

    other = contract.BeatContract(fs=250.0)
    model = export_torchscript(CNNBiLSTM(), other, tmp_path / "other.pt")
    _bad_record("nan", tmp_path)  # never read: the model is refused first
    out = tmp_path / "out"
    out.mkdir()
    earlier = out / "nan.ecgm"
    earlier.write_bytes(b"an earlier result")
    done = _annotate("nan", "--data-dir", tmp_path, "--out", out, "--model", model)
    assert done.returncode != 0
    assert done.stderr.strip().count("\n") == 0 and "contract" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert earlier.read_bytes() == b"an earlier result"


def test_the_same_ecg_at_other_rates_gets_the_same_beats_and_labels(mitdb_dir, shipped_model):
    """Other hospitals send other rates: the beat core brings each to 125 Hz itself, so beats
    and labels must not depend on the source rate (a step counting source samples would)."""
    from monitor.annotate import annotate_lead, load_classifier
    from monitor.records import Lead

    classifier = load_classifier(shipped_model, device="cpu")
    for record in ("119", "209"):  # bigeminy (V), and S beats
        lead = read_lead(record, mitdb_dir)
        lead = Lead(record, lead.name, lead.fs, lead.signal[: round(180 * lead.fs)])
        base = annotate_lead(lead, classifier)
        for rate in (100.0, 128.0, 250.0, 500.0, 1000.0):
            x = resample(lead.signal, lead.fs, rate)
            other = annotate_lead(Lead(record, lead.name, rate, x), classifier)
            m = ec57.match(base.samples / lead.fs, other.samples / rate, 1.0, 0.05)
            assert len(m.pairs) == len(base.samples) == len(other.samples), (record, rate)
            same = np.array(base.labels)[m.pairs[:, 0]] == np.array(other.labels)[m.pairs[:, 1]]
            assert np.mean(same) >= 0.98, f"{record} at {rate:g} Hz: {np.sum(~same)} labels differ"
