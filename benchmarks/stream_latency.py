"""Stream latency at 1x: from an R-peak to its beat on `ecg.beats`, and inside the worker.

For each bed count N one worker starts and has joined its group before the simulator plays N
beds in real time (`--speed 1`) for D seconds. Beat latency = the beat's `published` minus its
R-peak `time` (at 1x the stream clock is the wall clock): it includes the 250 ms chunking, the
beat cutter waiting for the next R-peak and the 1.2 RR window, the broker and the worker.
Processing = chunk sent (its Kafka timestamp) -> its beats published, from the worker's own
histogram (ecg.stats), i.e. broker, waiting for a round, the round's work and the publish.
The beat contract's own wait is what no worker can shorten: from the R-peak to the last sample
of the chunk that completes the beat (its next R-peak found, its 1.2 RR window in), replayed
here for every beat received through the beat cutter on the simulator's own bed plans; the
rest of a beat's latency is the simulator's, the broker's and the worker's. A bed's first
beats wait for the QRS detector's 4 s learning period (up to 3.4 s at p95), so the figures are
also given from each bed's STEADY_AFTER_S on: a monitored patient stays for hours, a replay of
45 s makes a tenth of its beats start-up beats.

    python benchmarks/stream_latency.py --beds 8 64 256 --duration-s 60
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from stream_harness import (
    Stack,
    add_stack_arguments,
    histogram_percentiles,
    machine,
    read_until,
    run_sizes,
    worker_arguments,
)

from monitor.beats import BeatExtractor
from monitor.topics import BEATS, STATS
from simulators import replay

#: Seconds into a bed's stream after which its beats are steady-state ones: the detector's
#: 4 s learning period (`QRSDetector(learn_s=4.0)`) and one more second.
STEADY_AFTER_S = 5.0


def contract_waits(
    n_beds: int, args: argparse.Namespace
) -> dict[tuple[str, int], tuple[float, float]]:
    """(seconds from each beat's R-peak to the end of the chunk that completes it, seconds of
    the bed's stream before the R-peak), keyed by (bed, R-peak index), for the beds the
    simulator plays with these flags."""
    argv = ["--beds", str(n_beds), "--duration-s", str(args.duration_s), "--leads", "one"]
    if args.records:
        argv += ["--records", *args.records]
    if args.data_dir:
        argv += ["--data-dir", args.data_dir]
    waits = {}
    for bed in replay.build_beds(replay._parser().parse_args(argv)):
        extractor, segment = None, -1
        while True:
            start, end = bed.next_bounds()
            if end == start:
                break
            if extractor is None or start != segment + extractor.samples_in:
                extractor, segment = BeatExtractor(bed.fs), start  # the worker restarts too
            for beat in extractor.feed(bed.signal[start:end]):
                index = segment + beat.index
                waits[bed.plan.bed, index] = ((end - index) / bed.fs, beat.index / bed.fs)
            bed.advance(start, end)
    return waits


def run_one(n_beds: int, args: argparse.Namespace, logs: Path) -> dict:
    with Stack(logs, worker_arguments(args), args.data_dir) as stack:
        stack.start_worker()
        # The stats message just before the replay is the baseline of the worker's histogram.
        time.sleep(6)
        sim = ["--beds", str(n_beds), "--speed", "1", "--duration-s", str(args.duration_s), "-q"]
        if args.records:
            sim += ["--records", *args.records]
        started = time.time()
        stack.simulate(*sim, wait=True)

        def finished(records) -> bool:
            return any(r.topic == STATS and r.value["time"] > time_done for r in records)

        time_done = time.time() + 3  # beats still in flight when the replay ends
        records = read_until(
            stack.bootstrap, [STATS, BEATS], finished, timeout_s=60
        )
    stats = [r.value for r in records if r.topic == STATS]
    base = max((s for s in stats if s["time"] < started), key=lambda s: s["time"], default=None)
    beats = [r.value for r in records if r.topic == BEATS]
    lat = np.array([b["published"] - b["time"] for b in beats])
    p50, p95, p99 = np.percentile(lat, [50, 95, 99])
    own = contract_waits(n_beds, args)
    known = [(b, *own[b["bed"], b["index"]]) for b in beats if (b["bed"], b["index"]) in own]
    steady = [(b["published"] - b["time"], wait) for b, wait, t in known if t >= STEADY_AFTER_S]
    s50, s95, s99 = np.percentile([lat for lat, _ in steady], [50, 95, 99])
    w50, w95, w99 = np.percentile([wait for _, wait in steady], [50, 95, 99])
    all95 = np.percentile([wait for _, wait, _ in known], 95)
    proc = histogram_percentiles(stats[-1], base, (0.5, 0.99))
    return {
        "beds": n_beds,
        "beats": len(beats),
        "beat_p50": p50,
        "beat_p95": p95,
        "beat_p99": p99,
        "steady": len(steady),
        "steady_p50": s50,
        "steady_p95": s95,
        "steady_p99": s99,
        "own_p50": w50,
        "own_p95": w95,
        "own_p99": w99,
        "own_all_p95": all95,
        "own_share": len(known) / len(beats),
        "proc_p50": proc[0],
        "proc_p99": proc[1],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_stack_arguments(p, [8, 64, 256], "replay length (60 s)")
    args = p.parse_args(argv)
    rows = run_sizes(args, run_one, "stream-latency-")

    print(f"\nStream latency at 1x, one worker ({args.device}), {args.duration_s:g} s replay, "
          f"250 ms chunks; {machine()}\n")
    print("| beds | beats | R-peak -> beat p50 s | p95 s | p99 s | "
          f"from each bed's {STEADY_AFTER_S:g}th s: beats | p50 s | p95 s | p99 s | "
          "contract's own wait there p50 s | p95 s | p99 s | "
          "chunk sent -> beats published p50 ms | p99 ms |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | "
          "---: | ---: |")
    for r in rows:
        print(
            f"| {r['beds']} | {r['beats']} | {r['beat_p50']:.2f} | {r['beat_p95']:.2f} | "
            f"{r['beat_p99']:.2f} | {r['steady']} | {r['steady_p50']:.2f} | "
            f"{r['steady_p95']:.2f} | {r['steady_p99']:.2f} | {r['own_p50']:.2f} | "
            f"{r['own_p95']:.2f} | {r['own_p99']:.2f} | {r['proc_p50']:.0f} | {r['proc_p99']:.0f} |"
        )
    print("\nprocessing figures are upper edges of 5 ms histogram buckets; the contract's own "
          "wait found for " + ", ".join(f"{100 * r['own_share']:.1f} %" for r in rows)
          + " of the beats received; over every beat received its p95 is "
          + ", ".join(f"{r['own_all_p95']:.2f} s" for r in rows))
    print(f"logs: {args.logs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
