"""Stream throughput: how many beds one worker process serves in real time.

For each bed count N the simulator first fills `ecg.samples` with D seconds of every bed
(`--speed 0`, MIT-BIH DS2 records from seeded random positions, 250 ms chunks); then one worker
(`python -m monitor worker`) starts and works through the backlog as fast as it can, so the
figure is the worker's capacity, not the simulator's. Beds served in real time = signal seconds
processed / wall seconds, from the first to the last beat published; the broker (embedded Tansu)
shares the machine. Beds per CPU core divides the same signal by the worker's CPU time, which
other load on the machine does not inflate. Memory per bed is the worker's RSS growth between
bed counts.

    python benchmarks/stream_throughput.py --beds 64 256 512 --duration-s 60
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from stream_harness import (
    Stack,
    add_stack_arguments,
    machine,
    read_until,
    run_sizes,
    worker_arguments,
)

from monitor.topics import BEATS, STATS
from monitor.validate import BEDSIDE_CHUNK_S

FS = 360.0  # MIT-BIH


def run_one(n_beds: int, args: argparse.Namespace, logs: Path) -> dict:
    with Stack(logs, worker_arguments(args), args.data_dir) as stack:
        sim = ["--beds", str(n_beds), "--speed", "0", "--duration-s", str(args.duration_s), "-q"]
        if args.records:
            sim += ["--records", *args.records]
        fill_s = stack.simulate(*sim, wait=True)
        samples = n_beds * round(args.duration_s * FS)
        chunks = n_beds * math.ceil(args.duration_s / BEDSIDE_CHUNK_S)
        worker = stack.start_worker()
        cpu0 = sum(worker.cpu_times()[:2])

        def finished(records) -> bool:
            stats = [r.value for r in records if r.topic == STATS]
            return bool(stats) and stats[-1]["samples"] >= samples

        records = read_until(
            stack.bootstrap, [STATS, BEATS], finished, timeout_s=args.timeout_s
        )
        cpu = sum(worker.cpu_times()[:2]) - cpu0
        rss_mb = worker.memory_info().rss / 2**20
        published = [r.value["published"] for r in records if r.topic == BEATS]
        wall = max(published) - min(published)
        return {
            "beds": n_beds,
            "chunks": chunks,
            "beats": len(published),
            "fill_s": fill_s,
            "wall_s": wall,
            "realtime_beds": n_beds * args.duration_s / wall,
            "beats_per_s": len(published) / wall,
            "cpu_s": cpu,
            "beds_per_core": n_beds * args.duration_s / cpu,
            "rss_mb": rss_mb,
        }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_stack_arguments(p, [64, 256, 512], "signal per bed (60 s)")
    p.add_argument("--timeout-s", type=float, default=900.0)
    args = p.parse_args(argv)
    rows = run_sizes(args, run_one, "stream-throughput-")

    print(f"\nStream throughput, one worker ({args.device}), {args.duration_s:g} s per bed, "
          f"250 ms chunks; {machine()}\n")
    print("| beds | chunks | beats | wall s | beds in real time | beats/s | worker CPU s | "
          "beds per CPU core | worker RSS MB | MB per extra bed |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    prev = None
    for r in rows:
        per_bed = "-" if prev is None else (
            f"{(r['rss_mb'] - prev['rss_mb']) / (r['beds'] - prev['beds']):.2f}"
        )
        print(
            f"| {r['beds']} | {r['chunks']} | {r['beats']} | {r['wall_s']:.1f} | "
            f"{r['realtime_beds']:.0f} | {r['beats_per_s']:.0f} | {r['cpu_s']:.0f} | "
            f"{r['beds_per_core']:.0f} | {r['rss_mb']:.0f} | {per_bed} |"
        )
        prev = r
    print(f"\nlogs: {args.logs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
