"""Training data and the training command: labels, Kaggle CSV input, and a tiny real run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from monitor import contract, decision
from monitor.classifier import BeatClassifier
from monitor.context import ABSENT, MAX_SEQUENCE
from monitor.errors import InputError
from monitor.inputs import absent_context, select
from monitor.records import read_lead
from simulators.noise import NoiseSpec, load_noise
from trainer import train
from trainer.augment import augment, window_lengths
from trainer.dataset import build_beatset, empty_beatset, load_kaggle_csv
from trainer.dataset import noisy as noisy_signal
from trainer.model import CNNBiLSTM


@pytest.mark.parametrize(
    ("symbols", "expected"),
    [
        ("NLRej", "N"),
        ("AaJS", "S"),
        ("VE", "V"),
        ("F", "F"),
        ("/fQ", "Q"),
        ('+~|x!"[]', None),
    ],
)
def test_mitbih_symbols_map_to_aami_classes(symbols, expected):
    assert {contract.aami_class(s) for s in symbols} == {expected}


def test_record_beats_are_labelled_from_their_matched_reference_beat(mitdb_dir, tmp_path):
    beats = build_beatset(mitdb_dir, ["208"], cache_dir=tmp_path, progress=False)  # N S V F Q
    assert len(beats) > 2500
    assert set(beats.symbols) <= set(contract.AAMI_MAP)
    expected = [contract.CLASSES.index(contract.AAMI_MAP[s]) for s in beats.symbols]
    np.testing.assert_array_equal(beats.labels, expected)
    assert np.all(np.abs(beats.index - beats.ref_index) <= round(0.15 * 360))
    assert np.all(np.diff(beats.index) > 0)
    counts = beats.class_counts()
    assert counts["V"] > 900 and counts["F"] > 300
    assert beats.waveforms.dtype == np.float32 and beats.waveforms.min() >= 0

    assert len(list(tmp_path.glob("208-*.npz"))) == 1
    again = build_beatset(mitdb_dir, ["208"], cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(again.waveforms, beats.waveforms)
    np.testing.assert_array_equal(again.labels, beats.labels)


def test_other_lead_beats_are_the_same_heartbeats_seen_on_v1(mitdb_dir, tmp_path):
    mlii = build_beatset(mitdb_dir, ["119"], cache_dir=tmp_path, progress=False)
    v1 = build_beatset(mitdb_dir, ["119"], cache_dir=tmp_path, progress=False, other_lead=True)
    assert sorted(p.name.split("-")[0] for p in tmp_path.glob("*.npz")) == ["119", "119.other"]
    # 119's bigeminy on V1: nearly every reference beat found again, with the same labels.
    assert len(v1) > 0.95 * len(mlii)
    assert abs(v1.class_counts()["V"] - mlii.class_counts()["V"]) < 0.05 * mlii.class_counts()["V"]
    same = np.intersect1d(v1.ref_index, mlii.ref_index)
    assert len(same) > 0.95 * len(mlii)
    assert not np.array_equal(v1.waveforms[:10], mlii.waveforms[:10])  # another lead's shape


def test_noisy_copies_are_the_same_heartbeats_with_recorded_noise(mitdb_dir, nstdb_dir, tmp_path):
    clean = build_beatset(mitdb_dir, ["119"], cache_dir=tmp_path, progress=False)
    em = NoiseSpec("em", 12.0)
    noisy = build_beatset(mitdb_dir, ["119"], cache_dir=tmp_path, progress=False, noise=em,
                          nstdb_dir=nstdb_dir)  # fmt: skip
    stems = sorted(p.name.split("-")[0] for p in tmp_path.glob("*.npz"))
    assert stems == ["119", "119.em12dB"]  # the clean record's cache is its own
    # At 12 dB the detector still finds 119's beats, and each keeps its reference label.
    same, i, j = np.intersect1d(clean.ref_index, noisy.ref_index, return_indices=True)
    assert len(same) > 0.98 * len(clean)
    np.testing.assert_array_equal(clean.labels[i], noisy.labels[j])
    moved = np.abs(clean.waveforms[i] - noisy.waveforms[j]).mean(axis=1)
    assert np.median(moved) > 0.005  # every beat carries noise, not a copy of the clean one

    signal = read_lead("119", mitdb_dir).signal
    added = noisy_signal(signal, 360.0, "119", em, nstdb_dir) - signal
    np.testing.assert_allclose(added, noisy_signal(signal, 360.0, "119", em, nstdb_dir) - signal)
    assert not np.allclose(added, noisy_signal(signal, 360.0, "208", em, nstdb_dir) - signal)
    benchmark = load_noise("em", 360.0, nstdb_dir)[: len(signal)]
    assert abs(np.corrcoef(added, benchmark)[0, 1]) < 0.5  # not the noise it is scored with


def test_a_noisy_copy_can_keep_its_false_detections_as_q(mitdb_dir, nstdb_dir, tmp_path):
    em = NoiseSpec("em", 6.0)
    beats = build_beatset(mitdb_dir, ["119"], cache_dir=tmp_path, progress=False, noise=em,
                          nstdb_dir=nstdb_dir)  # fmt: skip
    with_q = build_beatset(mitdb_dir, ["119"], cache_dir=tmp_path, progress=False, noise=em,
                           nstdb_dir=nstdb_dir, artefacts_as_q=True)  # fmt: skip
    stems = sorted(p.name.split("-")[0] for p in tmp_path.glob("*.npz"))
    assert stems == ["119.em6dB", "119.em6dB.q"]
    artefact = with_q.ref_index < 0
    assert artefact.sum() > 0 and len(with_q) == len(beats) + artefact.sum()
    assert set(with_q.labels[artefact]) == {contract.CLASSES.index("Q")}
    assert set(with_q.symbols[artefact]) == {"|"}  # MIT-BIH's QRS-like artefact
    assert not np.isin(with_q.index[artefact], beats.index).any()  # the detections left out
    assert np.all(np.diff(with_q.index) > 0)  # in time order, as the stream cut them
    for name in ("labels", "index", "features", "channels"):
        np.testing.assert_array_equal(getattr(with_q, name)[~artefact], getattr(beats, name))
    stats = [json.loads(str(np.load(p)["stats"])) for p in sorted(tmp_path.glob("*.npz"))]
    assert stats[0] == stats[1]  # the artefacts counted as before: false detections
    with pytest.raises(ValueError, match="give noise"):
        build_beatset(mitdb_dir, ["119"], cache_dir=tmp_path, artefacts_as_q=True)


def test_noise_records_have_two_channels_and_no_third(nstdb_dir):
    first, second = (load_noise("ma", 360.0, nstdb_dir, channel=c) for c in (0, 1))
    assert len(first) == len(second) == 650_000 and not np.allclose(first, second)
    with pytest.raises(ValueError, match="channel must be 0 or 1"):
        load_noise("ma", 360.0, nstdb_dir, channel=2)


def _write_csv(path, rows: np.ndarray) -> None:
    np.savetxt(path, rows, delimiter=",", fmt="%.6e")


def test_kaggle_csv_loads_as_beats_without_rhythm_context(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.array([0, 1, 2, 3, 4, 0])
    rows = np.column_stack([rng.random((6, contract.BEAT_LEN)), labels])
    _write_csv(tmp_path / "mitbih_train.csv", rows)
    beats = load_kaggle_csv(tmp_path / "mitbih_train.csv")
    assert len(beats) == 6
    assert [contract.CLASSES[i] for i in beats.labels] == ["N", "S", "V", "F", "Q", "N"]
    np.testing.assert_allclose(beats.waveforms, rows[:, :-1], atol=1e-6)
    np.testing.assert_array_equal(beats.features, np.tile(ABSENT, (6, 1)))
    np.testing.assert_array_equal(beats.previous, np.tile(ABSENT, (6, MAX_SEQUENCE, 1)))
    assert not beats.channels[:, 1:].any()  # no morphology window, no template


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("1,2,3\n", "3 columns, expected 188"),
        (",".join(["0.5"] * 187 + ["x"]) + "\n", "not a numeric 188-column CSV"),
        (",".join(["0.5"] * 187 + ["5"]) + "\n", "label 5; labels are 0..4"),
        (",".join(["0.5"] * 187 + ["1.5"]) + "\n", "label 1.5"),
        (",".join(["0.5"] * 186 + ["nan", "0"]) + "\n", "NaN or infinite"),
        ("", "no rows"),
    ],
)
def test_kaggle_csv_bad_input_is_one_line(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(InputError, match=message) as err:
        load_kaggle_csv(path)
    assert "\n" not in str(err.value)


def test_kaggle_csv_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_kaggle_csv(tmp_path / "mitbih_test.csv")


def _kaggle_files(folder, seed: int = 1) -> None:
    """A train and a test CSV of synthetic beats whose peak moves with the class."""
    rng = np.random.default_rng(seed)
    folder.mkdir(exist_ok=True)
    for name, n in (("mitbih_train.csv", 300), ("mitbih_test.csv", 100)):
        labels = rng.integers(0, 5, n)
        t = np.linspace(0, 1, contract.BEAT_LEN)
        beats = np.exp(-(((t[None, :] - 0.05 * (1 + labels[:, None])) / 0.02) ** 2))
        _write_csv(folder / name, np.column_stack([beats, labels]))


def _kaggle_run(folder, out, *flags: str) -> list[str]:
    return [
        "--kaggle-csv", str(folder), "--epochs", "1", "--epoch-beats", "256",
        "--threads", "1", "--out", str(out), "--no-progress", *flags,
    ]  # fmt: skip


def test_training_on_kaggle_csv_files(tmp_path):
    _kaggle_files(tmp_path)
    out = tmp_path / "run"
    assert train.main(_kaggle_run(tmp_path, out)) == 0
    results = json.loads((out / "metrics.json").read_text())
    assert results["test"]["n"] == 100
    clf = BeatClassifier(out / "model.pt", device="cpu")
    assert clf.contract.data_split.startswith("Kaggle CSV")
    assert clf.contract.extra["morph_dropout"] == "0.0"


def test_distillation_loss_is_zero_only_where_the_model_answers_as_its_teachers():
    logits = torch.tensor([[2.0, 0.0, -1.0, 0.0, 0.0], [0.0, 3.0, 0.0, 0.0, -2.0]])
    for temperature in (1.0, 2.0, 4.0):
        agree = torch.softmax(logits / temperature, dim=1)
        assert float(train.distillation_loss(logits, agree, temperature)) == pytest.approx(
            0.0, abs=1e-6)  # fmt: skip
    other = torch.softmax(logits.flip(1) / 2.0, dim=1)
    loss = train.distillation_loss(logits, other, 2.0)
    kl = (other * (other.log() - torch.log_softmax(logits / 2.0, dim=1))).sum(1).mean()
    assert float(loss) == pytest.approx(4.0 * float(kl))  # T² keeps the gradients' size


def test_a_model_learns_from_teachers_of_the_same_beats_and_inputs_only(tmp_path, caplog):
    _kaggle_files(tmp_path / "data")
    _kaggle_files(tmp_path / "other", seed=2)
    assert train.main(_kaggle_run(tmp_path / "data", tmp_path / "teacher")) == 0
    teacher = str(tmp_path / "teacher" / "best.pt")
    with caplog.at_level("INFO"):
        argv = _kaggle_run(tmp_path / "data", tmp_path / "student", "--teachers", teacher, teacher)
        assert train.main(argv) == 0
    assert "distilling 2 teachers (weight 0.5, temperature 2)" in caplog.text
    refused = (
        (_kaggle_run(tmp_path / "other", tmp_path / "s2", "--teachers", teacher),
         "learnt from other beats"),
        (_kaggle_run(tmp_path / "data", tmp_path / "s3", "--teachers", teacher, "--sequence", "0"),
         "reads other inputs"),
        (_kaggle_run(tmp_path / "data", tmp_path / "s4", "--teachers", str(tmp_path / "none.pt")),
         "cannot read teacher checkpoint"),
    )  # fmt: skip
    for argv, message in refused:
        with pytest.raises(InputError, match=message):
            train._main(argv)


def test_teachers_train_with_the_flags_that_shape_the_model_and_their_own_seeds(tmp_path):
    args = train.parse_args(["--epochs=3", "--feat", "rr_local", "--no-augment", "--seed", "4",
                             "--out", "x", "--no-test", "--threads", "1", "--teacher-seeds", "2",
                             "--records", "101", "106"])  # fmt: skip
    assert args.teacher_flags == ["--epochs", "3", "--no-augment", "--features", "rr_local",
                                  "--records", "101", "106"]  # fmt: skip
    _kaggle_files(tmp_path / "data")
    argv = _kaggle_run(tmp_path / "data", tmp_path / "run", "--teacher-seeds", "2", "--seed", "3")
    assert train.main(argv) == 0
    teachers = sorted(p.name for p in (tmp_path / "run" / "teachers").glob("teacher-s*/best.pt")
                      for p in [p.parent])  # fmt: skip
    assert teachers == ["teacher-s4", "teacher-s5"]
    clf = BeatClassifier(tmp_path / "run" / "model.pt", device="cpu")
    assert clf.contract.extra["distilled_from"] == "2 teachers, weight 0.5, temperature 2"


def test_members_are_the_runs_of_their_seeds_and_ship_averaged(tmp_path):
    """`--members 2 --seed 3`: member 4 is the run `--seed 4 --split-seed 3` would make (the
    members share the command's split), bit for bit, and the model file answers with the mean
    of the two members' probabilities."""
    _kaggle_files(tmp_path / "data")
    assert train.main(_kaggle_run(tmp_path / "data", tmp_path / "run", "--members", "2",
                                  "--seed", "3")) == 0  # fmt: skip
    assert train.main(_kaggle_run(tmp_path / "data", tmp_path / "alone", "--seed", "4",
                                  "--split-seed", "3")) == 0  # fmt: skip
    alone = torch.load(tmp_path / "alone" / "best.pt", weights_only=False)
    members = [torch.load(tmp_path / "run" / f"member-s{s}" / "best.pt", weights_only=False)
               for s in (3, 4)]  # fmt: skip
    for k, v in alone["state_dict"].items():
        assert torch.equal(v, members[1]["state_dict"][k]), k
    clf = BeatClassifier(tmp_path / "run" / "model.pt", device="cpu")
    assert clf.contract.extra["members"] == "2 (seeds 3 to 4), probabilities averaged"
    w = np.random.default_rng(0).uniform(0, 1, (8, contract.BEAT_LEN)).astype(np.float32)
    x, ctx = select(clf.contract, *absent_context(w))
    with torch.inference_mode():
        mean = torch.stack([torch.softmax(CNNBiLSTM.from_checkpoint(m).eval()(
            torch.from_numpy(x), torch.from_numpy(ctx)), dim=1) for m in members]).mean(0)
    served = decision.decide(mean.numpy(), ctx, clf.contract)  # the contract's rules on top
    np.testing.assert_allclose(clf.predict(x, ctx), served, atol=1e-5)


def test_augmented_beats_still_follow_the_contract():
    gen = torch.Generator().manual_seed(0)
    x = torch.zeros(50, contract.BEAT_LEN)
    lengths = torch.randint(60, contract.BEAT_LEN + 1, (50,))
    for i, n in enumerate(lengths):
        t = torch.linspace(0, 1, int(n))
        x[i, : int(n)] = torch.exp(-(((t - 0.1) / 0.03) ** 2)) * 0.8 + 0.1 * t
        x[i, : int(n)] = (x[i, : int(n)] - x[i, : int(n)].min()) / (
            x[i, : int(n)].max() - x[i, : int(n)].min()
        )
    rr = torch.tensor([[0.8, 1.1, 0.9, 1.0]] * 50)
    y, rr2 = augment(x, rr, gen, ratio_cols=[0, 1])
    assert torch.equal(window_lengths(y), window_lengths(x))
    assert y.min() == 0 and y.max() == 1
    assert torch.all(y[torch.arange(contract.BEAT_LEN) >= lengths[:, None]] == 0)
    assert not torch.allclose(y, x)
    assert torch.equal(rr2[:, 2:], rr[:, 2:])  # only the ratio columns move ...
    jitter = rr2[:, :2] / rr[:, :2] - 1
    assert torch.all(jitter.abs() <= 0.03 + 1e-6) and jitter.abs().max() > 0
    assert torch.allclose(jitter[:, 0], jitter[:, 1], atol=1e-6)  # ... together


def test_stretch_widens_and_narrows_the_waves_and_keeps_the_window():
    x = torch.zeros(200, contract.BEAT_LEN)
    t = torch.arange(150, dtype=torch.float32)
    # One wave 20 samples after the R-peak, on a slight slope that keeps the window non-zero.
    x[:, :150] = 0.9 * torch.exp(-(((t - 20) / 4) ** 2)) + 0.1 * t / 149
    plain = dict(baseline=0.0, noise=0.0, shift=0)
    rr = torch.ones(200, 1)
    y, _ = augment(x, rr, torch.Generator().manual_seed(0), [], stretch=0.15, **plain)
    width = (y > 0.5).sum(dim=1).float() / (x > 0.5).sum(dim=1).float()
    assert width.min() < 0.9 and width.max() > 1.1 and width.max() < 1.35
    peak = y.argmax(dim=1).float() / 20  # the wave moves with its width, about the R-peak
    assert peak.min() >= 0.84 and peak.max() <= 1.16
    assert torch.equal(window_lengths(y), window_lengths(x))  # the window (the RR) is kept
    assert y.min() == 0 and y.max() == 1
    # Off by default, and then no random number is drawn: earlier runs are reproduced.
    a, _ = augment(x, rr, torch.Generator().manual_seed(3), [])
    b, _ = augment(x, rr, torch.Generator().manual_seed(3), [], stretch=0.0)
    assert torch.equal(a, b)


def test_context_dropout_shows_beats_as_a_kaggle_row_would_be_shown():
    bc = train.model_contract("beat,morph,template", "rr_local,rr_long,template", 1)
    n_channels, n_context = bc.n_inputs()
    x, ctx = torch.rand(400, n_channels, contract.BEAT_LEN), torch.rand(400, n_context)
    gen = torch.Generator().manual_seed(0)
    x2, ctx2 = train.hide_context(x, ctx, 0.25, bc, gen)
    hidden = (ctx2 != ctx).any(dim=1)
    assert 60 < int(hidden.sum()) < 140
    absent_x, absent_ctx = (torch.from_numpy(a[0]) for a in select(bc, *absent_context(x[:1, 0])))
    assert torch.equal(x2[hidden, 0], x[hidden, 0])  # the beat itself is always shown
    assert all(torch.equal(row, absent_x[1:]) for row in x2[hidden, 1:])
    assert all(torch.equal(row, absent_ctx) for row in ctx2[hidden])
    assert torch.equal(x2[~hidden], x[~hidden]) and torch.equal(ctx2[~hidden], ctx[~hidden])


@pytest.mark.parametrize(
    ("channels", "features", "sequence", "message"),
    [
        ("morph", "rr_local", 0, "channels must start with 'beat'"),
        ("beat,ecg", "rr_local", 0, "unknown channels or features: ecg"),
        ("beat", "rr_local,qt", 0, "unknown channels or features: qt"),
        ("beat", "rr_local", 9, "--sequence must be between 0 and"),
        ("beat", "none", 1, "give --features too"),
    ],
)
def test_model_inputs_are_checked_by_name(channels, features, sequence, message):
    with pytest.raises(InputError, match=message):
        train.model_contract(channels, features, sequence)


def test_feature_groups_expand_in_order_without_repeats():
    bc = train.model_contract("beat", "rr_local,rr_prev_ratio,template", 0)
    assert bc.features == (
        *contract.FEATURE_GROUPS["rr_local"], *contract.FEATURE_GROUPS["template"]
    )


def test_balancing_moves_class_mass_to_its_square_root():
    labels = np.array([0] * 900 + [1] * 100 + [2] * 9)
    w = train.balance_weights(labels)
    mass = np.bincount(labels, weights=w[labels])
    np.testing.assert_allclose(mass / mass[0], np.sqrt([900, 100, 9]) / 30)
    assert w[labels].mean() == pytest.approx(1.0)


def test_weight_average_follows_the_weights_and_copies_the_batch_counter():
    model = train.CNNBiLSTM(n_context=len(contract.FEATURE_GROUPS["rr_local"]), channels=(4,))
    average = train.WeightAverage(model, decay=0.75)
    before = [p.clone() for p in average.model.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model.train()(torch.rand(8, 1, contract.BEAT_LEN), torch.zeros(8, model.n_context))
    average.update(model)
    for old, new in zip(before, average.model.parameters(), strict=True):
        torch.testing.assert_close(new, old + 0.25)  # a quarter of the way to the new weights
    bn_avg, bn_now = average.model.features[1], model.features[1]
    assert int(bn_avg.num_batches_tracked) == int(bn_now.num_batches_tracked) == 1
    assert not torch.equal(bn_avg.running_mean, bn_now.running_mean)  # averaged, not copied
    assert not any(p.requires_grad for p in average.model.parameters())
    with pytest.raises(ValueError, match="decay"):
        train.WeightAverage(model, decay=1.0)


def test_equal_weight_average_is_the_mean_of_its_snapshots():
    model = train.CNNBiLSTM(n_context=len(contract.FEATURE_GROUPS["rr_local"]), channels=(4,))
    average = train.WeightAverage(model)  # no decay: every update weighs the same
    snapshots = []
    for step in (1.0, 2.0, 6.0):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(step)
        snapshots.append([p.clone() for p in model.parameters()])
        average.update(model)
    for i, p in enumerate(average.model.parameters()):
        torch.testing.assert_close(p, sum(s[i] for s in snapshots) / 3)
    assert average.updates == 3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--epochs", "0"], "--epochs must be at least 1"),
        (["--ema", "1"], "--ema must be in [0, 1)"),
        (["--lr", "-1"], "--lr must be positive"),
        (["--kaggle-csv", "x", "--split", "intra"], "do not apply to --kaggle-csv"),
        (["--data-dir", "/nonexistent/mitdb"], "does not exist"),
        (["--records", "102", "--data-dir", "."], "neither DS1 nor DS2"),
        (["--fold", "5/4"], "--fold must be I/N"),
        (["--fold", "two"], "--fold must be I/N"),
        (["--fold", "1/4", "--split", "intra"], "not for the intra split"),
        (["--refit"], "add --select last and --schedule cosine or constant"),
        (["--average-epochs", "5"], "needs --select last"),
        (["--average-epochs", "30", "--select", "last"], "between 0 and --epochs"),
        (["--refit", "--select", "last", "--schedule", "cosine", "--fold", "1/4"],
         "not with --fold"),
        (["--distill", "1.5"], "--distill must be in [0, 1]"),
        (["--temperature", "0"], "--temperature must be positive"),
        (["--teacher-seeds", "-1"], "--teacher-seeds must be at least 0"),
        (["--teacher-seeds", "2", "--teachers", "a.pt"], "give one of the two"),
        (["--members", "0"], "--members must be at least 1"),
        (["--members", "2", "--teacher-seeds", "2"], "give one of them"),
        (["--lstm-hidden", "0"], "--lstm-hidden must be a positive integer"),
        (["--other-leads", "--split", "intra"], "the inter or all split only"),
        (["--noisy-copies", "em:12", "--split", "intra"], "the inter or all split only"),
        (["--noisy-copies", "wind:12"], "--noisy-copies must be KIND:SNR_DB"),
        (["--artefacts-as-q", "--noisy-copies", "none"], "add --noisy-copies"),
    ],
)
def test_bad_arguments_are_one_line_errors(argv, message, capsys, tmp_path):
    assert train.main([*argv, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]


@pytest.mark.slow
def test_tiny_training_run_ships_a_loadable_model(mitdb_dir, tmp_path):
    out, model_path = tmp_path / "run", tmp_path / "model.pt"
    argv = [
        "--data-dir", str(mitdb_dir), "--records", "100", "119", "--split", "intra",
        "--epochs", "1", "--epoch-beats", "6000", "--lr", "3e-3", "--morph-dropout", "0",
        "--threads", "1", "--out", str(out), "--export", str(model_path),
        "--cache-dir", str(tmp_path / "cache"), "--no-progress",
    ]  # fmt: skip
    assert train.main(argv) == 0
    for name in ("config.json", "log.csv", "log.json", "curves.png", "best.pt", "model.pt"):
        assert (out / name).is_file(), name
    results = json.loads((out / "metrics.json").read_text())
    assert results["test"]["n"] > 800 and results["best"]["epoch"] == 1

    clf = BeatClassifier(model_path, device="cpu")
    assert clf.contract.data_split.startswith("intra")
    assert clf.contract.extra["seed"] == "0"
    beats = build_beatset(mitdb_dir, ["119"], cache_dir=tmp_path / "cache", progress=False)
    probs = clf.predict(*beats.inputs(clf.contract))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    # One short epoch already finds most of 119's many PVCs (bigeminy) among its normal beats.
    is_v = beats.labels == contract.CLASSES.index("V")
    found = probs.argmax(axis=1) == contract.CLASSES.index("V")
    print(f"V Se {np.mean(found[is_v]):.3f}, +P {np.mean(is_v[found]):.3f}")
    assert np.mean(found[is_v]) > 0.7 and np.mean(is_v[found]) > 0.7


@pytest.mark.slow
def test_refit_trains_on_the_validation_patients_for_every_epoch(mitdb_dir, tmp_path):
    out = tmp_path / "run"
    argv = [
        "--data-dir", str(mitdb_dir), "--records", "101", "106", "119", "100",
        "--refit", "--select", "last", "--schedule", "cosine", "--epochs", "3",
        "--epoch-beats", "512", "--threads", "1", "--out", str(out),
        "--cache-dir", str(tmp_path / "cache"), "--no-progress", "--noisy-copies", "none",
    ]  # fmt: skip
    assert train.main(argv) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["split"].startswith("inter: train 101 106 119; validation patients none")
    assert config["counts"]["val"]["N"] == 0 and config["counts"]["test"]["N"] > 2000
    trained_on_one_lead = sum(config["counts"]["train"].values())
    log = json.loads((out / "log.json").read_text())
    assert [r["epoch"] for r in log] == [1, 2, 3]  # no early stopping: nothing to stop on
    assert all(r["val_macro_f1"] is None for r in log)
    lr = [r["lr"] for r in log]
    assert lr[0] == pytest.approx(1e-3) and lr[0] > lr[1] > lr[2] > 0  # cosine, blind
    results = json.loads((out / "metrics.json").read_text())
    assert results["best"]["epoch"] == 3 and "val_served" not in results
    assert results["test"]["n"] > 2000
    clf = BeatClassifier(out / "model.pt", device="cpu")
    assert clf.contract.extra["best_epoch"] == "3"
    assert clf.contract.extra["val_macro_f1"] == "none"

    # The training patients' other lead doubles the training beats, and only those.
    both = tmp_path / "both"
    argv[argv.index(str(out))] = str(both)
    assert train.main([*argv, "--other-leads", "--epochs", "1"]) == 0
    config = json.loads((both / "config.json").read_text())
    assert config["split"].startswith("inter: train 101 106 119 (both leads); validation")
    assert 1.9 * trained_on_one_lead < sum(config["counts"]["train"].values())
    assert sum(config["counts"]["train"].values()) < 2 * trained_on_one_lead
    assert config["counts"]["test"]["N"] > 2000 and config["counts"]["val"]["N"] == 0


def test_noisy_copies_with_artefacts_as_q_are_the_default_where_there_are_patients_to_copy():
    def views(*flags: str) -> tuple[list[str], bool]:
        args = train.parse_args(["--out", "x", *flags])
        return args.noisy_copies, args.artefacts_as_q

    assert views() == views("--split", "all") == (["em:6", "ma:12"], True)
    assert views("--split", "intra") == views("--kaggle-csv", "k") == ([], False)  # no copies
    assert views("--noisy-copies", "none") == ([], False)
    assert views("--noisy-copies", "ma:6") == (["ma:6"], True)
    assert views("--no-artefacts-as-q") == (["em:6", "ma:12"], False)
    # A teacher trains as its student: with the defaults, or with what was given instead.
    assert train.parse_args(["--out", "x"]).teacher_flags == []
    given = ["--noisy-copies", "none", "--no-artefacts-as-q"]
    assert train.parse_args(["--out", "x", *given]).teacher_flags == given
    assert train.parse_args(["--out", "x", "--artefacts-as-q"]).teacher_flags == [
        "--artefacts-as-q"]  # fmt: skip


@pytest.mark.slow
def test_noisy_copies_add_training_beats_only(mitdb_dir, nstdb_dir, tmp_path):
    out = tmp_path / "run"
    argv = [
        "--data-dir", str(mitdb_dir), "--records", "101", "119", "100",
        "--select", "last", "--epochs", "1", "--epoch-beats", "512", "--threads", "1",
        "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--no-progress",
        "--noisy-copies", "em:12", "ma:12", "--no-artefacts-as-q", "--nstdb-dir", str(nstdb_dir),
    ]  # fmt: skip
    assert train.main(argv) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["split"] == (
        "inter: train 119 (and with em noise at 12 dB) (and with ma noise at 12 dB); "
        "validation patients 101; test 100"
    )
    cache = tmp_path / "cache"
    clean = {r: build_beatset(mitdb_dir, [r], cache_dir=cache, progress=False)
             for r in ("119", "101")}  # fmt: skip
    trained = sum(config["counts"]["train"].values())
    assert 2.9 * len(clean["119"]) < trained <= 3 * len(clean["119"])  # three views of 119
    assert sum(config["counts"]["val"].values()) == len(clean["101"])  # clean


def test_cross_validation_pools_the_folds_confusion_matrices():
    from trainer import crossval

    k = len(contract.CLASSES)
    a, b = np.zeros((k, k), int), np.zeros((k, k), int)
    a[0, 0], a[1, 1], a[1, 0] = 90, 5, 5  # fold 1: S Se 50 %
    b[0, 0], b[1, 1], b[0, 1] = 80, 10, 10  # fold 2: S Se 100 %, S +P 50 %
    runs = [{"val_confusion": a.tolist(), "val_macro_f1": 0.5},
            {"val_confusion": b.tolist(), "val_macro_f1": 0.6}]  # fmt: skip
    m = crossval.pooled(runs)
    assert m["per_class"]["S"]["se"] == pytest.approx(15 / 20)
    assert m["per_class"]["S"]["ppv"] == pytest.approx(15 / 25)
    # Seed 0 pools to N F1 340/355 and S F1 30/45, seed 1 (fold 1 twice) to 360/370 and 20/30;
    # macro F1 over N S V F (V and F absent: 0) is 40.6 and 41.0.
    row = crossval.table({"rhythm": {0: runs, 1: [runs[0], runs[0]]}}).splitlines()[-1]
    assert "| 2 × 2 | 40.8 ± 0.3 |" in row
    assert "| 62.5 | 71.4 |" in row  # S Se 25 / 40, +P 25 / 35 over all four runs
    # As served: only settings whose every run has figures through the decision rule.
    assert crossval.served({"rhythm": {0: runs}}) == {}
    gated = [{**r, "served_confusion": np.diag(np.diag(a)).tolist()} for r in runs]
    again = crossval.served({"rhythm": {0: gated}, "other": {0: runs}})
    assert list(again) == ["rhythm"]
    assert crossval.pooled(again["rhythm"][0])["per_class"]["S"]["ppv"] == 1.0


def test_a_taught_setting_trains_after_its_teachers_and_learns_from_their_runs(tmp_path):
    from trainer import ablation, crossval

    assert ablation.rounds(["distilled", "rhythm"]) == [["rhythm", "af_evidence"], ["distilled"]]
    assert ablation.rounds(["af_evidence", "distilled"]) == [["af_evidence"], ["distilled"]]
    assert ablation.rounds(["rhythm"]) == [["rhythm"]]
    assert ablation.teachers_of("distilled", [0, 1], crossval.fold_runs(tmp_path, 2)) == [
        "--teachers",
        str(tmp_path / "af_evidence-f2-s0" / "best.pt"),
        str(tmp_path / "af_evidence-f2-s1" / "best.pt"),
    ]
    assert ablation.teachers_of("af_evidence", [0, 1], crossval.fold_runs(tmp_path, 2)) == []


def test_the_version_names_the_weights_and_the_rules_they_are_served_by():
    model = CNNBiLSTM(channels=(4, 4, 4), lstm_hidden=4, dense=4)
    empty = empty_beatset()
    split = train.Split(empty, empty, empty, "inter", "test split")
    best = {"epoch": 1, "val_macro_f1": 0.5}
    versions, weights = [], []
    for flags in ([], ["--report-as-n", "none"], ["--no-af-gate"]):
        args = train.parse_args(flags)
        args.argv = flags
        bc = train.export_contract(model, split, args, best)
        versions.append(bc.model_version.rsplit("-", 1)[1])
        weights.append(bc.extra["weights_hash"])
    assert len(set(versions)) == 3  # other rules, other version
    assert len(set(weights)) == 1  # the same weights, as their own hash says
