"""Classifier speed: batched throughput and single-beat latency, as served and as it could be.

    python benchmarks/inference.py [--model PATH] [--threads 2] [--seconds 2]

Rows:
- "predict": `BeatClassifier.predict`, what the stream agent and the annotator call (input
  checks, numpy <-> torch, the shipped TorchScript module under inference_mode);
- "module": the TorchScript forward alone, to show the wrapper's share;
- "frozen": the module after `torch.jit.freeze` + `torch.jit.optimize_for_inference`
  (conv + batch-norm folding, MKLDNN layouts), a candidate for the loader.

"beats/CPU-s" divides by the CPU time of all this process's threads: the model's cost, much
less sensitive to a busy machine than wall-clock beats/s (which, on an idle machine, approaches
at most threads x beats/CPU-s). Single-beat latency is `classify([beat])`, the per-beat path
including the Prediction objects. CUDA rows are added when a GPU is present.
Targets (CPU, 2 threads): >= 5000 beats/s batched, single-beat <= 2 ms.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor import contract
from monitor.beats import Beat
from monitor.classifier import BeatClassifier

BATCHES = (1, 32, 256, 1024)
TARGET_BEATS_S = 5000.0
TARGET_LATENCY_MS = 2.0


def _inputs(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    waveforms = rng.random((n, contract.BEAT_LEN), dtype=np.float32)
    rr = np.column_stack(
        [rng.uniform(0.6, 1.4, (n, 2)), rng.uniform(0.5, 1.2, n), np.ones(n)]
    ).astype(np.float32)
    return waveforms, rr


def throughput(call: Callable[[], object], batch: int, seconds: float) -> tuple[float, float]:
    """Beats per wall-clock second and per CPU second of `call` (one batch), after a warm-up.

    CPU seconds count every thread of this process; on a shared machine they say what the
    model costs when wall-clock time says mostly how busy the neighbours are.
    """
    for _ in range(3):
        call()
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while (elapsed := time.perf_counter() - t0) < seconds or n < 3:
        call()
        n += 1
    cpu = time.process_time() - c0
    return n * batch / elapsed, n * batch / cpu


def latencies_ms(call: Callable[[], object], n: int) -> np.ndarray:
    for _ in range(20):
        call()
    out = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        call()
        out[i] = (time.perf_counter() - t0) * 1e3
    return out


def _module_call(module, x: torch.Tensor, rr: torch.Tensor, device: torch.device) -> Callable:
    def call() -> None:
        with torch.inference_mode():
            module(x, rr)
        if device.type == "cuda":
            torch.cuda.synchronize()

    return call


def bench_device(
    path: Path | None,
    device: str,
    batches: list[int],
    seconds: float,
    n_latency: int,
    rng: np.random.Generator,
) -> list[tuple[str, ...]]:
    clf = BeatClassifier(path, device=device)
    dev = clf.device
    module = clf._module  # the loaded TorchScript module, timed without the wrapper
    with torch.inference_mode():
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(module.eval()))
    rows = []
    for batch in batches:
        w, r = _inputs(batch, rng)
        x = torch.from_numpy(w).unsqueeze(1).to(dev)
        rt = torch.from_numpy(r).to(dev)
        for name, call in (
            ("predict", lambda w=w, r=r: clf.predict(w, r)),
            ("module", _module_call(module, x, rt, dev)),
            ("frozen", _module_call(frozen, x, rt, dev)),
        ):
            beats_s, beats_cpu_s = throughput(call, batch, seconds)
            rows.append((dev.type, name, str(batch), f"{beats_s:,.0f}", f"{beats_cpu_s:,.0f}", ""))
    w, r = _inputs(1, rng)
    beat = Beat(0, 0, w[0], 0.8, 0.8, 0.8)
    x1, r1 = torch.from_numpy(w).unsqueeze(1).to(dev), torch.from_numpy(r).to(dev)
    for name, call in (
        ("classify([beat])", lambda: clf.classify([beat])),
        ("predict 1 beat", lambda: clf.predict(w, r)),
        ("frozen 1 beat", _module_call(frozen, x1, r1, dev)),
    ):
        lat = latencies_ms(call, n_latency)
        p50, p95, p99 = np.percentile(lat, [50, 95, 99])
        rows.append((dev.type, name, "1", "", "", f"{p50:.2f} / {p95:.2f} / {p99:.2f}"))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, help="TorchScript model (default: the shipped one)")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    p.add_argument("--seconds", type=float, default=2.0, help="timing per throughput row")
    p.add_argument("--latency-n", type=int, default=500, help="calls per latency row")
    p.add_argument(
        "--batches", type=int, nargs="+", default=list(BATCHES), help="batch sizes to time"
    )
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    rng = np.random.default_rng(0)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for device in devices:
        rows += bench_device(args.model, device, args.batches, args.seconds, args.latency_n, rng)
    clf = BeatClassifier(args.model, device="cpu")
    print(
        f"model {clf.path.name} (version {clf.version}); torch {torch.__version__}; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
        f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}"
        + (f"; GPU {torch.cuda.get_device_name()}" if "cuda" in devices else "")
    )
    header = ("device", "path", "batch", "beats/s", "beats/CPU-s", "latency ms p50 / p95 / p99")
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    best = max(float(r[3].replace(",", "")) for r in rows if r[0] == "cpu" and r[1] == "predict")
    lat = next(r[5] for r in rows if r[0] == "cpu" and r[1] == "classify([beat])")
    p50 = float(lat.split(" / ")[0])
    print(
        f"targets on CPU: batched >= {TARGET_BEATS_S:,.0f} beats/s -> best predict "
        f"{best:,.0f} ({'met' if best >= TARGET_BEATS_S else 'MISSED'}); single beat <= "
        f"{TARGET_LATENCY_MS:g} ms -> classify p50 {p50:.2f} ms "
        f"({'met' if p50 <= TARGET_LATENCY_MS else 'MISSED'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
