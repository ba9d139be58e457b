"""Would the other lead's beat-vs-template comparison help the labels? A quick check before
building it into the contract.

    python benchmarks/other_lead_context.py [--data-dir D] [--seeds 0 1 2]

The bed's dominant-template comparison (`monitor.context.TemplateBank`) is run a second time,
on each DS1 record's other ECG lead, at the R-peaks our detector found on the analysed lead; a
beat then has the same comparison (template correlations, amplitude and width ratios, residual,
cluster share) from both leads. A small network on context features alone (no waveform: cheap,
and the question is only what the features add) is trained on three of the DS1 patient folds
the cross-validation uses (`trainer.splits.patient_folds`) and scored on the fourth, for each
fold and seed: this beat's context features of the analysed lead, then with the other lead's
comparison added. The table gives the pooled macro F1 (N S V F) per seed, mean ± sd, and S and
V Se / +P of every fold and seed added up. DS2 is not read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor import contract
from monitor.beats import extended_window, extract_beats
from monitor.context import EXTENDED_LEN, TemplateBank, baseline_removed
from monitor.errors import run_cli
from monitor.metrics import class_rates, summary_scores
from monitor.records import DS1, read_lead, resolve_mitdb
from monitor.signal.resample import resample
from trainer.dataset import build_beatset
from trainer.splits import patient_folds

#: The other lead's comparison: template learned, correlations, ratios, residual, cluster share.
OTHER = ("available", "corr", "corr_wide", "amp_log2", "width_log2", "residual", "share")


def other_lead_features(record: str, data_dir: Path) -> dict[int, np.ndarray]:
    """Detected R-peak (source samples) -> the other lead's comparison with its own template."""
    lead = read_lead(record, data_dir, others=True)
    beats = extract_beats(lead.signal, lead.fs)
    out = {b.index: np.zeros(len(OTHER), np.float32) for b in beats}
    if not lead.others:
        return out
    other = resample(lead.others[0], lead.fs, contract.FS)
    bank = TemplateBank()
    for b in beats:
        c, share, _, _ = bank.observe(baseline_removed(extended_window(other, b.index_125)))
        if c is not None:
            values = (1.0, c.corr, c.corr_wide, c.amp_log2, c.width_log2, c.residual, share)
            out[b.index] = np.clip(np.array(values, np.float32), -8.0, 8.0)
        else:
            out[b.index][-1] = share
    return out


def fit_and_score(x: np.ndarray, y: np.ndarray, train: np.ndarray, seed: int) -> np.ndarray:
    """Predictions for the rows not in `train` of a 64-64 MLP fitted on the rows in it."""
    import torch

    torch.manual_seed(seed)
    mu, sd = x[train].mean(axis=0), x[train].std(axis=0) + 1e-6
    xt = torch.tensor((x[train] - mu) / sd)
    yt = torch.tensor(y[train])
    counts = np.bincount(y[train], minlength=len(contract.CLASSES)).astype(float)
    weight = np.where(counts > 0, 1.0 / np.sqrt(np.maximum(counts, 1.0)), 0.0)
    weight = torch.tensor(weight / weight[counts > 0].mean(), dtype=torch.float32)
    net = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], 64), torch.nn.ReLU(),
        torch.nn.Linear(64, 64), torch.nn.ReLU(),
        torch.nn.Linear(64, len(contract.CLASSES)),
    )  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-4)
    for _ in range(15):
        for batch in torch.randperm(len(yt)).split(512):
            loss = torch.nn.functional.cross_entropy(net(xt[batch]), yt[batch], weight=weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return net(torch.tensor((x[~train] - mu) / sd)).argmax(dim=1).numpy()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", help="MIT-BIH directory (default: $ECG_MITDB_DIR)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args(argv)
    data_dir = resolve_mitdb(args.data_dir, DS1)
    beats = build_beatset(data_dir, DS1, progress=False)
    other = {r: other_lead_features(r, data_dir) for r in DS1}
    lead2 = np.stack([other[r][int(i)] for r, i in zip(beats.records, beats.index, strict=True)])
    folds = patient_folds(beats, 4)
    k = len(contract.CLASSES) - 1  # N S V F: Q has no beats to speak of
    rows = {
        "analysed lead's context": beats.features,
        "... and the other lead's comparison": np.hstack([beats.features, lead2]),
        "... and its correlation and width only": np.hstack([beats.features, lead2[:, [0, 1, 4]]]),
    }
    print(f"{'features':40} {'macro F1':>13} {'S Se / +P':>13} {'V Se / +P':>13}")
    for name, x in rows.items():
        total, f1 = np.zeros((k + 1, k + 1), np.int64), []
        for seed in args.seeds:
            cm = np.zeros_like(total)
            for fold in folds:
                held = np.isin(beats.records, fold)
                pred = fit_and_score(x.astype(np.float32), beats.labels, ~held, seed)
                np.add.at(cm, (beats.labels[held], pred), 1)
            f1.append(100 * summary_scores(cm[:k, :k], k)["macro_f1"])
            total += cm
        r = class_rates(total, k + 1)
        print(
            f"{name:40} {np.mean(f1):6.1f} ± {np.std(f1):4.1f} "
            f"{100 * r['se'][1]:6.1f} / {100 * r['ppv'][1]:4.1f} "
            f"{100 * r['se'][2]:6.1f} / {100 * r['ppv'][2]:4.1f}"
        )
    print(f"({len(args.seeds)} seeds x 4 DS1 patient folds; windows of {EXTENDED_LEN} samples)")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
