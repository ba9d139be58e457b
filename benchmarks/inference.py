"""Classifier speed: batched throughput and single-beat latency, as served and as it could be.

    python benchmarks/inference.py [--model PATH] [--baseline OLD.pt [--rounds 5]] [--threads 2]
                                   [--seconds 2]

With `--baseline` (a model file of an earlier contract, e.g. the version-1 model:
`git show fdc6435:models/ecg_cnn_bilstm.pt > /tmp/v1.pt`) a side-by-side table compares the
serving path per beat on real beats (MIT-BIH record 208 when $ECG_MITDB_DIR or --data-dir
finds it): the patient context the per-bed core computes (replayed on the same beats), the
model inputs assembled from the beats, and the batched forward pass, each in CPU time, old model
file against new in one run, timed in turn over several rounds (medians, and the rounds' range
of the ratio: single timings on a shared machine swing by half). The old file is timed twice:
as version 1's loader served it (the module as loaded) and frozen as today's loader serves
every file, so the table shows both what the ward gained and what the context costs.

Rows:
- "predict": `BeatClassifier.predict`, what the stream agent and the annotator call (input
  checks, numpy <-> torch, the loaded module, frozen, under inference_mode);
- "module": that frozen TorchScript forward alone, to show the wrapper's share;
- "optimized": the module after `torch.jit.optimize_for_inference` as well (MKLDNN layouts),
  a candidate for the loader.

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
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor import contract
from monitor.beats import af_evidence, extract_beats
from monitor.classifier import BeatClassifier, frozen, torchscript_deprecation_silenced
from monitor.context import EXTENDED_LEN, PatientContext
from monitor.errors import InputError
from monitor.inputs import beat_inputs
from monitor.records import read_lead, resolve_mitdb
from monitor.signal.resample import StreamResampler

BATCHES = (1, 32, 256, 1024)
TARGET_BEATS_S = 5000.0
TARGET_LATENCY_MS = 2.0


def _inputs(
    bc: contract.BeatContract, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Random inputs of the model's shape (context values around the ratios' usual 1)."""
    n_channels, n_context = bc.n_inputs()
    x = rng.random((n, n_channels, contract.BEAT_LEN), dtype=np.float32)
    return x, rng.uniform(0.5, 1.4, (n, n_context)).astype(np.float32)


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
    beats: list,
) -> list[tuple[str, ...]]:
    clf = BeatClassifier(path, device=device)
    dev = clf.device
    module = clf._module  # the served (frozen) TorchScript module, timed without the wrapper
    with torchscript_deprecation_silenced():
        optimized = torch.jit.optimize_for_inference(module)
    rows = []
    for batch in batches:
        w, r = _inputs(clf.contract, batch, rng)
        x, rt = torch.from_numpy(w).to(dev), torch.from_numpy(r).to(dev)
        for name, call in (
            ("predict", lambda w=w, r=r: clf.predict(w, r)),
            ("module", _module_call(module, x, rt, dev)),
            ("optimized", _module_call(optimized, x, rt, dev)),
        ):
            beats_s, beats_cpu_s = throughput(call, batch, seconds)
            rows.append((dev.type, name, str(batch), f"{beats_s:,.0f}", f"{beats_cpu_s:,.0f}", ""))
    w, r = _inputs(clf.contract, 1, rng)
    beat = beats[0]
    x1, r1 = torch.from_numpy(w).to(dev), torch.from_numpy(r).to(dev)
    for name, call in (
        ("classify([beat])", lambda: clf.classify([beat])),
        ("predict 1 beat", lambda: clf.predict(w, r)),
        ("optimized 1 beat", _module_call(optimized, x1, r1, dev)),
    ):
        lat = latencies_ms(call, n_latency)
        p50, p95, p99 = np.percentile(lat, [50, 95, 99])
        rows.append((dev.type, name, "1", "", "", f"{p50:.2f} / {p95:.2f} / {p99:.2f}"))
    return rows


def real_beats(data_dir: str | None, seconds: float = 600.0) -> tuple[list, list[np.ndarray]]:
    """Beats of the first `seconds` of MIT-BIH 208 (N, S, V and F beats) and, for each, the
    125 Hz window its patient context was computed from; a synthetic rhythm without data."""
    try:
        lead = read_lead("208", resolve_mitdb(data_dir, ["208"]))
        x, fs = lead.signal[: round(seconds * lead.fs)], lead.fs
    except InputError as exc:
        print(f"({exc}; timing synthetic beats instead)")
        fs = 360.0
        t = np.arange(round(seconds * fs)) / fs
        x = np.exp(-0.5 * ((t % 0.8 - 0.4) / 0.012) ** 2)
    beats = extract_beats(x, fs)
    res = StreamResampler(fs, contract.FS)
    x125 = np.concatenate([res.feed(x), res.flush()])
    pre = contract.MORPH_R + contract.ALIGN_SAMPLES
    windows = [
        x125[np.clip(np.arange(b.index_125 - pre, b.index_125 - pre + EXTENDED_LEN), 0,
                     len(x125) - 1)]
        for b in beats
    ]  # fmt: skip
    return beats, windows


#: Where a beat's own RR irregularity sits in its context features (computed by the extractor).
_IRR = list(contract.FEATURES).index("rr_irregularity")


def context_us_per_beat(beats: list, windows: list[np.ndarray]) -> float:
    """CPU microseconds per beat of the patient context, replayed over the same beats: the
    atrial-fibrillation evidence over the recent RR and everything `PatientContext` does.

    This thread's CPU time only: after a forward pass torch's idle worker threads spin for a
    while, and process time would charge their spinning to this single-threaded code.
    """
    ctx = PatientContext()
    recent: deque[float] = deque(maxlen=contract.AF_RR_BEATS)
    c0 = time.thread_time()
    for b, w in zip(beats, windows, strict=True):
        recent.append(b.rr_prev)
        ctx.describe(w, b.rr_prev, b.rr_next, b.rr_local, b.rr_long,
                     b.context.features[_IRR], af_evidence(recent))  # fmt: skip
    return (time.thread_time() - c0) / len(beats) * 1e6


def _v1_inputs(beats: list) -> tuple[np.ndarray, np.ndarray]:
    """Version-1 inputs: the beat alone and four RR features (ratios to the local median)."""
    w = np.stack([b.waveform for b in beats])[:, None]
    rr = np.array(
        [[b.rr_prev / b.rr_local, b.rr_next / b.rr_local, b.rr_local, 1.0] for b in beats],
        dtype=np.float32,
    ).clip(0.0, 5.0)
    return w, rr


def side_by_side(
    new: BeatClassifier, baseline: Path, beats: list, windows: list[np.ndarray], seconds: float,
    rounds: int,
) -> list[tuple[str, ...]]:
    """Serving cost per beat on CPU at batch 256, old model file against new (whose beats also
    cost the patient context of the per-bed core); the old file as loaded and frozen.

    Both run with the stream worker's torch thread count (one: with two, the forward pass's
    CPU time on this 2-core machine swung between 260 and 410 us per beat from spinning
    threads). The two are timed in turn, `rounds` times, and each figure is the median over
    the rounds; "vs old" is the median of the rounds' own ratios to the first row (the old
    file as version 1 served it), with their range, and the last row's also to the frozen old
    file's.
    """
    from monitor.app import WorkerSettings  # here: importing it builds the worker's Faust app

    batch = (beats * (1 + 256 // max(len(beats), 1)))[:256]
    with torchscript_deprecation_silenced():
        old = torch.jit.load(str(baseline), map_location="cpu").eval()
    old_frozen = frozen(old)

    def forward(module: torch.jit.ScriptModule) -> Callable[[np.ndarray, np.ndarray], None]:
        def call(x: np.ndarray, r: np.ndarray) -> None:
            with torch.inference_mode():
                module(torch.from_numpy(x), torch.from_numpy(r))

        return call

    paths = (
        (f"{baseline.name} (v1: beat + local RR), as loaded", _v1_inputs, forward(old), False),
        (f"{baseline.name}, frozen", _v1_inputs, forward(old_frozen), False),
        (
            f"{new.path.name} ({', '.join(new.contract.channels)}; "
            f"{len(new.contract.features)} features)",
            lambda bs: beat_inputs(new.contract, bs),
            new.predict,
            True,
        ),
    )
    # times[path] -> rounds x (context, inputs, forward) in us per beat
    times = np.zeros((len(paths), rounds, 3))
    threads = torch.get_num_threads()
    torch.set_num_threads(WorkerSettings().torch_threads)
    for k in range(rounds):
        for i, (_, assemble, forward, with_context) in enumerate(paths):
            ctx_us = context_us_per_beat(beats, windows) if with_context else 0.0
            c0 = time.process_time()
            for _ in range(5):
                x, r = assemble(batch)
            inputs_us = (time.process_time() - c0) / 5 / len(batch) * 1e6
            _, fwd_cpu = throughput(lambda x=x, r=r, f=forward: f(x, r), len(batch), seconds)
            times[i, k] = (ctx_us, inputs_us, 1e6 / fwd_cpu)
    torch.set_num_threads(threads)
    totals = times.sum(axis=2)
    rows = []
    for i, (name, *_) in enumerate(paths):
        ctx_us, inputs_us, fwd_us = np.median(times[i], axis=0)
        per_beat = float(np.median(totals[i]))
        ratios = totals[0] / totals[i]
        rows.append((name, f"{ctx_us:.0f}", f"{inputs_us:.1f}", f"{fwd_us:.0f}",
                     f"{per_beat:.0f}", f"{1e6 / per_beat:,.0f}",
                     f"{100 * np.median(ratios):.0f} % ({100 * ratios.min():.0f}-"
                     f"{100 * ratios.max():.0f} over {rounds} rounds)"))  # fmt: skip
    ratios = totals[1] / totals[-1]
    rows[-1] = (*rows[-1][:-1], f"{rows[-1][-1]}; {100 * np.median(ratios):.0f} % of the frozen "
                                f"old file ({100 * ratios.min():.0f}-{100 * ratios.max():.0f})")
    return rows


def _print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, help="TorchScript model (default: the shipped one)")
    p.add_argument("--baseline", type=Path, help="an older model file to compare side by side")
    p.add_argument("--data-dir", help="MIT-BIH directory (else $ECG_MITDB_DIR)")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    p.add_argument("--seconds", type=float, default=2.0, help="timing per throughput row")
    p.add_argument("--latency-n", type=int, default=500, help="calls per latency row")
    p.add_argument(
        "--rounds", type=int, default=5,
        help="with --baseline: old and new timed in turn this many times (default 5)",
    )
    p.add_argument(
        "--batches", type=int, nargs="+", default=list(BATCHES), help="batch sizes to time"
    )
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    rng = np.random.default_rng(0)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    if args.rounds < 1:
        p.error(f"--rounds must be at least 1, got {args.rounds}")
    beats, windows = real_beats(args.data_dir)
    rows = []
    for device in devices:
        rows += bench_device(
            args.model, device, args.batches, args.seconds, args.latency_n, rng, beats
        )
    clf = BeatClassifier(args.model, device="cpu")
    print(
        f"model {clf.path.name} (version {clf.version}); torch {torch.__version__}; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
        f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}"
        + (f"; GPU {torch.cuda.get_device_name()}" if "cuda" in devices else "")
    )
    header = ("device", "path", "batch", "beats/s", "beats/CPU-s", "latency ms p50 / p95 / p99")
    _print_table(header, rows)
    best = max(float(r[3].replace(",", "")) for r in rows if r[0] == "cpu" and r[1] == "predict")
    lat = next(r[5] for r in rows if r[0] == "cpu" and r[1] == "classify([beat])")
    p50 = float(lat.split(" / ")[0])
    print(
        f"targets on CPU: batched >= {TARGET_BEATS_S:,.0f} beats/s -> best predict "
        f"{best:,.0f} ({'met' if best >= TARGET_BEATS_S else 'MISSED'}); single beat <= "
        f"{TARGET_LATENCY_MS:g} ms -> classify p50 {p50:.2f} ms "
        f"({'met' if p50 <= TARGET_LATENCY_MS else 'MISSED'})"
    )
    if args.baseline:
        print(
            f"\nserving path per beat, CPU time, batch 256, {len(beats)} beats of "
            f"{'MIT-BIH 208' if len(beats) > 100 else 'a synthetic rhythm'}:"
        )
        header = ("model file", "context us", "inputs us", "forward us", "total us",
                  "beats/CPU-s", "vs old")  # fmt: skip
        _print_table(header, side_by_side(clf, args.baseline, beats, windows, args.seconds,
                                          args.rounds))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
