"""Offline-analysis uploads: what is accepted, what is refused and how, and how it is scored."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest

from monitor import contract
from monitor.dashboard import analysis
from monitor.dashboard.analysis import Upload
from monitor.errors import InputError
from monitor.inputs import absent_context

RNG = np.random.default_rng(7)


def kaggle_csv(n: int, labels: list | None = None, header: bool = False) -> bytes:
    rows = RNG.uniform(0, 1, size=(n, contract.BEAT_LEN)).round(4)
    lines = [",".join(f"c{i}" for i in range(contract.BEAT_LEN + (labels is not None)))] \
        if header else []
    for i, row in enumerate(rows):
        cells = [str(v) for v in row] + ([str(labels[i])] if labels is not None else [])
        lines.append(",".join(cells))
    return ("\n".join(lines) + "\n").encode()


class LabelEcho:
    """A stand-in model that predicts class k for a beat whose first sample is k / 10."""

    classes = contract.CLASSES
    version = "echo"
    contract = contract.CURRENT

    def predict(self, x: np.ndarray, context: np.ndarray) -> np.ndarray:
        n_channels, n_context = self.contract.n_inputs()
        assert x.shape[1:] == (n_channels, contract.BEAT_LEN)
        assert context.shape == (len(x), n_context)
        k = np.clip(np.round(x[:, 0, 0] * 10).astype(int), 0, 4)
        probs = np.full((len(k), 5), 0.01)
        probs[np.arange(len(k)), k] = 0.96
        return probs


def test_kaggle_rows_with_numeric_labels_go_to_the_model_without_rhythm() -> None:
    beats = analysis.load([Upload("beats.csv", kaggle_csv(5, [0, 1, 2, 3, 4.0]))])
    assert beats.waveforms.shape == (5, contract.BEAT_LEN)
    assert beats.labels == list(contract.CLASSES)
    assert not beats.context_available.any()
    assert beats.times is None


def test_kaggle_rows_with_header_and_letter_labels() -> None:
    beats = analysis.load([Upload("b.csv", kaggle_csv(3, ["n", "V", "Q"], header=True))])
    assert beats.labels == ["N", "V", "Q"]


def test_kaggle_rows_outside_unit_range_are_rescaled_and_said_so() -> None:
    row = ",".join(str(v) for v in np.linspace(-2, 3, contract.BEAT_LEN))
    beats = analysis.load([Upload("b.csv", (row + "\n").encode())])
    assert beats.waveforms.min() == 0.0 and beats.waveforms.max() == 1.0
    assert any("min-max scaled" in n for n in beats.notes)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "is empty"),
        (b"1,2,3\n4,5,6\n", "has 3 columns"),
        (kaggle_csv(2)[:-40] + b"\n" + kaggle_csv(1), "line 2 has"),
        (kaggle_csv(2, [0, 7]), "label '7'"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not a text CSV"),
        (b"time,mV\n", "header line but no data"),
    ],
)
def test_bad_csv_files_are_refused_with_a_reason(data: bytes, match: str) -> None:
    with pytest.raises(InputError, match=match):
        analysis.load([Upload("bad.csv", data)])


def test_non_numeric_cell_is_located() -> None:
    cells = ["0.5"] * contract.BEAT_LEN
    cells[10] = "oops"
    data = kaggle_csv(1) + (",".join(cells) + "\n").encode()
    with pytest.raises(InputError, match=r"line 2, column 11: 'oops'"):
        analysis.load([Upload("b.csv", data)])


def test_limits_on_size_rows_and_file_types(monkeypatch) -> None:
    monkeypatch.setattr(analysis, "MAX_UPLOAD_BYTES", 100)
    with pytest.raises(InputError, match="limit is"):
        analysis.load([Upload("b.csv", b"1\n" * 60)])
    monkeypatch.setattr(analysis, "MAX_UPLOAD_BYTES", 10**9)
    monkeypatch.setattr(analysis, "MAX_BEATS", 3)
    with pytest.raises(InputError, match="limit is 3"):
        analysis.load([Upload("b.csv", kaggle_csv(4))])
    with pytest.raises(InputError, match=r"upload a \.csv"):
        analysis.load([Upload("x.png", b"123")])
    with pytest.raises(InputError, match="one CSV file at a time"):
        analysis.load([Upload("a.csv", b"1"), Upload("b.csv", b"1")])
    with pytest.raises(InputError, match="no file"):
        analysis.load([])


def test_signal_csv_needs_its_sampling_rate() -> None:
    with pytest.raises(InputError, match="enter its sampling rate"):
        analysis.load([Upload("sig.csv", b"mV\n0.1\n0.2\n")])
    with pytest.raises(InputError, match="too low"):
        analysis.load([Upload("sig.csv", b"0.1\n0.2\n")], fs=50.0)
    with pytest.raises(InputError, match="flat line"):
        analysis.load([Upload("sig.csv", b"0.1\n" * 2000)], fs=360.0)
    with pytest.raises(InputError, match="no beats found"):
        analysis.load([Upload("sig.csv", b"0.1\n0.2\n" * 10)], fs=360.0)


def test_decode_upload_reads_data_urls_and_refuses_corrupt_ones() -> None:
    url = "data:text/csv;base64," + base64.b64encode(b"1,2\n").decode()
    assert analysis.decode_upload(url, "a.csv") == Upload("a.csv", b"1,2\n")
    with pytest.raises(InputError, match="corrupt"):
        analysis.decode_upload("data:text/csv;base64,@@@", "a.csv")
    with pytest.raises(InputError, match="no file contents"):
        analysis.decode_upload(None, "a.csv")


def test_scores_only_the_labelled_beats() -> None:
    x = np.zeros((4, contract.BEAT_LEN), dtype=np.float32)
    x[:, 0] = [0.0, 0.2, 0.2, 0.1]  # predictions N V V S
    labels = ["N", "V", "N", None]
    beats = analysis.UploadedBeats("t", absent_context(x), np.arange(4) * 0.8, labels)
    result = analysis.analyse(beats, LabelEcho())
    assert result.predicted == ["N", "V", "V", "S"]
    assert result.metrics["n"] == 3 and result.metrics["accuracy"] == pytest.approx(2 / 3)
    assert result.metrics["per_class"]["V"]["ppv"] == pytest.approx(0.5)
    assert result.counts() == {"N": 1, "S": 1, "V": 2, "F": 0, "Q": 0}
    rows = analysis.table(result)
    assert rows[2]["agrees"] == "no" and rows[3]["reference"] == "" and rows[1]["time_s"] == 0.8
    csv_lines = analysis.to_csv(result).splitlines()
    assert csv_lines[0].startswith("beat,time_s,predicted,confidence,p_N")
    assert len(csv_lines) == 5


def test_without_labels_there_are_no_metrics() -> None:
    beats = analysis.load([Upload("b.csv", kaggle_csv(3))])
    result = analysis.analyse(beats, LabelEcho())
    assert result.metrics is None and "reference" not in analysis.table(result)[0]


def test_signal_csv_is_cut_by_the_live_beat_core(mitdb_dir: Path) -> None:
    from monitor.records import read_lead

    lead = read_lead("100", mitdb_dir)
    text = "mV\n" + "\n".join(f"{v:.3f}" for v in lead.signal[: 60 * 360])
    beats = analysis.load([Upload("100.csv", text.encode())], fs=360.0)
    assert 65 <= len(beats.waveforms) <= 80  # record 100 runs at about 75 bpm
    assert beats.context_available.all()  # rhythm available, unlike Kaggle rows
    assert np.all(np.diff(beats.times) > 0.3)


def test_wfdb_upload_is_scored_against_its_annotations(mitdb_dir: Path, tmp_path) -> None:
    import wfdb

    rec = wfdb.rdrecord(str(mitdb_dir / "100"), sampto=90 * 360)
    ann = wfdb.rdann(str(mitdb_dir / "100"), "atr", sampto=90 * 360)
    wfdb.wrsamp("r100", fs=rec.fs, units=rec.units, sig_name=rec.sig_name,
                p_signal=rec.p_signal, fmt=["16", "16"], write_dir=str(tmp_path))
    wfdb.wrann("r100", "atr", ann.sample, ann.symbol, write_dir=str(tmp_path))
    files = [Upload(p.name, p.read_bytes()) for p in sorted(tmp_path.iterdir())]
    beats = analysis.load(files)
    assert "lead MLII" in beats.source
    labelled = [lb for lb in beats.labels if lb is not None]
    assert len(labelled) >= 0.95 * len(beats.labels) and set(labelled) <= {"N", "S"}
    assert any("matched to" in n for n in beats.notes)
    with pytest.raises(InputError, match=r"\.dat signal file is missing"):
        analysis.load([f for f in files if not f.name.endswith(".dat")])

    # Ten seconds of invalid samples (a lead off, a monitor's gap) from 40 s: the cutter starts
    # over after them, as the annotator does, instead of refusing the record.
    signal = rec.p_signal.copy()
    signal[40 * 360 : 50 * 360, 0] = np.nan
    gap = tmp_path / "gap"
    gap.mkdir()
    wfdb.wrsamp("g100", fs=rec.fs, units=rec.units, sig_name=rec.sig_name, p_signal=signal,
                fmt=["16", "16"], write_dir=str(gap))  # fmt: skip
    wfdb.wrann("g100", "atr", ann.sample, ann.symbol, write_dir=str(gap))
    holed = analysis.load([Upload(p.name, p.read_bytes()) for p in sorted(gap.iterdir())])
    assert not np.any((holed.times > 40) & (holed.times < 50))
    assert np.any(holed.times > 55) and len(holed.times) >= 0.8 * len(beats.times)
    assert any("1 stretch of invalid samples (10.0 s) skipped" in n for n in holed.notes)
    assert sum(lb is not None for lb in holed.labels) >= 0.95 * len(holed.labels)
    with pytest.raises(InputError, match=r"exactly one \.hea"):
        analysis.load([f for f in files if not f.name.endswith(".hea")])
