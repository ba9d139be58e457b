"""Serve a trained network under this code base's decision rules without training it again.

    python -m trainer.reexport models/ecg_cnn_bilstm.pt [--out PATH]

The decision rules act after the network (`monitor.decision`), so a new or changed rule needs
no new weights; and training again is no way to keep them: `python -m trainer.train` gives the
same weights bit for bit on the kind of CPU that trained them, not on another (its kernels add
up in another order). This keeps the file's TorchScript program and weights as they are and
writes a new contract: the model's own inputs, the trainer's default decision rules for them
(`trainer.train.model_contract`), a new version (its hash covers the rules), and the training
provenance (command, date, seed, data hash, weights hash) as it was, with the re-export's date
and command beside it. A file whose beats were cut by other rules than this code base's is
refused: its network would read inputs it never learnt from.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

from monitor import contract
from monitor.classifier import read_contract
from monitor.errors import ContractError, run_cli
from trainer.export import fingerprints, save_scripted
from trainer.train import model_contract


def rules_changed(old: contract.BeatContract, new: contract.BeatContract) -> list[str]:
    """Each decision rule that differs, as 'name: old -> new'."""
    return [
        f"{name}: {getattr(old, name) or 'none'} -> {getattr(new, name) or 'none'}"
        for name in (*contract.BeatContract.GATES, "report_as_n")
        if getattr(old, name) != getattr(new, name)
    ]


def reexported(
    path: Path, argv: list[str]
) -> tuple[torch.jit.ScriptModule, contract.BeatContract, contract.BeatContract]:
    """The file's scripted network, its contract, and that contract under today's default
    decision rules."""
    module, old = read_contract(path)
    diffs = contract.CURRENT.mismatches(old)
    if diffs:
        raise ContractError(
            f"{path} was cut by other beat rules ({'; '.join(diffs)}); it cannot be served "
            "by new decision rules alone: train it again (python -m trainer.train)"
        )
    rules = model_contract(
        ",".join(old.channels), ",".join(old.features), old.sequence,
        report_as_n=old.report_as_n,
    )  # fmt: skip
    new = dataclasses.replace(old, **{name: getattr(rules, name) for name in old.GATES})
    weights, version = fingerprints(module.model.state_dict(), new)
    if weights != old.extra.get("weights_hash", weights):
        raise ContractError(f"{path}: its weights do not hash to its recorded weights_hash")
    now = datetime.now(timezone.utc)
    prefix = old.model_version.rsplit("-", 2)[0]  # cnn-bilstm-<split>
    return module, old, dataclasses.replace(
        new,
        model_version=f"{prefix}-{now:%Y%m%d}-{version}",
        extra={
            **old.extra,
            "reexported_utc": now.isoformat(timespec="seconds"),
            "reexport_command": "python -m trainer.reexport " + shlex.join(argv),
            "reexported_from": old.model_version,
        },
    )


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m trainer.reexport", description=__doc__)
    p.add_argument("model", help="the model file (TorchScript with an embedded contract)")
    p.add_argument("--out", help="where to write it (default: in place, pin included)")
    args = p.parse_args(argv)
    path = Path(args.model)
    module, old, new = reexported(path, argv)  # read_contract says so if it is missing
    out = save_scripted(module, new, args.out or path)
    changed = rules_changed(old, new) or ["none (only the version's date moved)"]
    print(f"{old.model_version} -> {new.model_version} in {out}; weights "
          f"{new.extra.get('weights_hash', '?')} unchanged; rules changed: " + "; ".join(changed))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
