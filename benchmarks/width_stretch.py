"""How far from the dominant template is a QRS that really is wider? The wide-QRS gate's
residual guard, derived from the patients' own templates instead of from labels.

    python benchmarks/width_stretch.py [--data-dir D] [--every 200]

The wide-QRS gate (`monitor.decision.gate_wide_qrs`) reads a beat's QRS width against the
dominant template's, from the first to the last crossing of 30 % of the QRS range: one sample
is 8 ms at 125 Hz, and on a single noisy beat a crossing can move by several. A QRS that is
wider in truth also differs from the template in shape. Here every DS1 record's dominant
template (the `template` channel, every `--every`-th beat with one learned) is widened by a
time-stretch about its R-peak, by the factors the gate's width threshold is read in, and
compared with itself as `TemplateBank` compares a beat (`monitor.context.qrs_residual`). The
table gives, per factor, the width the measure reads on the stretched template and the
residual percentiles: the fifth percentile at the gate's factor (log2 0.5) is the least
residual a truly that much wider QRS shows. DS2 is not read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor import contract
from monitor.context import QRS, qrs_residual, qrs_width
from monitor.errors import run_cli
from monitor.records import DS1, resolve_mitdb
from trainer.dataset import build_beatset

#: Widening factors, as log2 of the ratio (the gate's threshold is 0.5).
STRETCH_LOG2 = (0.25, 0.5, 0.75, 1.0)
PERCENTILES = (5, 25, 50)


def stretched(template: np.ndarray, factor: float) -> np.ndarray:
    """`template` widened `factor` times about the R-peak (linear interpolation)."""
    t = np.arange(len(template), dtype=np.float64)
    return np.interp(contract.MORPH_R + (t - contract.MORPH_R) / factor, t, template)


def templates(data_dir: Path, every: int) -> list[np.ndarray]:
    """Dominant templates of DS1's beats (morphology windows), every `every`-th per record."""
    beats = build_beatset(data_dir, list(DS1), progress=False)
    channel = beats.channels[:, contract.CHANNELS.index("template"), : contract.MORPH_LEN]
    learned = beats.features[:, list(contract.FEATURES).index("template_available")] > 0.5
    out = []
    for record in DS1:
        rows = np.flatnonzero(learned & (beats.records == record))[::every]
        out.extend(channel[rows].astype(np.float64))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", help="MIT-BIH directory (default: $ECG_MITDB_DIR)")
    ap.add_argument("--every", type=int, default=200, help="one template per this many beats")
    args = ap.parse_args(argv)
    if args.every < 1:
        raise ValueError(f"--every must be at least 1, got {args.every}")
    found = templates(resolve_mitdb(args.data_dir, DS1), args.every)
    print(f"{len(found)} dominant templates of the DS1 records, each widened about its R-peak")
    print("| widened (log2) | width measure reads (median) | residual "
          + " / ".join(f"p{p}" for p in PERCENTILES) + " |")  # fmt: skip
    print("| ---: | ---: | --- |")
    for log2 in STRETCH_LOG2:
        residuals, widths = [], []
        for t in found:
            wide = stretched(t, 2.0**log2)
            q = t[QRS]
            residuals.append(qrs_residual(wide[QRS], q, float(q.max() - q.min())))
            widths.append(np.log2(qrs_width(wide) / max(qrs_width(t), 1)))
        pct = np.percentile(residuals, PERCENTILES)
        print(f"| {log2:g} | {np.median(widths):.2f} | "
              + " / ".join(f"{v:.4f}" for v in pct) + " |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
