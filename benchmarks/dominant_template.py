"""Is the bed's dominant template the patient's normal beat? Per MIT-BIH record, no model.

The template inputs and the dominant-beat gate (`monitor.decision`) ask how a beat compares
with the dominant template, so they mean what they say only while that template is the
patient's normal beat. This cuts each record as a bed would, labels its beats from the
reference (`trainer.dataset.label_record`: EC57, 150 ms) and prints, for the normal (N) and
ventricular (V) beats once a template is learned, the median `template_corr` and the share at
or above 0.9 (the template bank's own match level). Where a frequent PVC holds the template,
the V beats match it and the N beats do not. DS1 by default: it is development data.

    python benchmarks/dominant_template.py --data-dir /path/to/mitdb [--records 208 106]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor import contract
from monitor.errors import run_cli
from monitor.records import DS1, resolve_mitdb
from trainer.dataset import label_record

MATCH_LEVEL = contract.TEMPLATE_MATCH_CORR
_CORR = list(contract.FEATURES).index("template_corr")
_LEARNED = list(contract.FEATURES).index("template_available")


def template_corr_by_class(record: str, data_dir: Path) -> dict[str, np.ndarray]:
    """`template_corr` of the record's matched N and V beats that had a learned template."""
    beats, _ = label_record(data_dir, record)
    classes = np.asarray(contract.CLASSES)[beats.labels]
    learned = beats.features[:, _LEARNED] > 0.5
    return {k: beats.features[learned & (classes == k), _CORR] for k in ("N", "V")}


def _cells(corr: np.ndarray) -> str:
    if not len(corr):
        return "0 | – | –"
    return f"{len(corr)} | {np.median(corr):.3f} | {100 * np.mean(corr >= MATCH_LEVEL):.1f} %"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", help="MIT-BIH directory (default: $ECG_MITDB_DIR)")
    p.add_argument("--records", nargs="+", default=list(DS1))
    args = p.parse_args(argv)
    data_dir = resolve_mitdb(args.data_dir, args.records)
    print(f"template_corr of N and V beats once a template is learned; share >= {MATCH_LEVEL:g}")
    print()
    print("| record | N beats | N median | N share | V beats | V median | V share |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    pooled: dict[str, list[np.ndarray]] = {"N": [], "V": []}
    for record in args.records:
        corr = template_corr_by_class(record, data_dir)
        for k in pooled:
            pooled[k].append(corr[k])
        print(f"| {record} | {_cells(corr['N'])} | {_cells(corr['V'])} |", flush=True)
    n, v = (np.concatenate(pooled[k]) for k in ("N", "V"))
    print(f"| all | {_cells(n)} | {_cells(v)} |")


if __name__ == "__main__":
    sys.exit(run_cli(main))
