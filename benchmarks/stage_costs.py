"""CPU cost per chunk of each per-bed stage of the worker, without a broker.

Feeds a stretch of one record in fixed chunks (default 10 min of record 119, 90 samples =
250 ms at 360 Hz) through each stage on its own and prints microseconds of process CPU time
per chunk (the best of `--repeat` runs, so other load on the machine distorts it little):

- `parse_chunk`   : the JSON message as the simulator sends it, validated into a Chunk
- `resampler`     : StreamResampler 360 -> 125 Hz
- `detector`      : QRSDetector on the 125 Hz stream, in the resampler's output chunks
- `beat cutter`   : BeatExtractor.feed (resampler + detector + cutting)
- `alarm samples` : AlarmEngine.on_samples (signal quality, asystole check)
- `alarm beats`   : AlarmEngine.on_beat, per BEAT (the record's detected beats, labelled N:
                    the rate, run, pattern and AF checks run at every beat whatever the label)

    python benchmarks/stage_costs.py --data-dir /path/to/mitdb [--record 119] [--chunk 90]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor import contract
from monitor.alarms import AlarmEngine
from monitor.beats import BeatExtractor
from monitor.errors import run_cli
from monitor.records import read_lead, resolve_mitdb
from monitor.signal.detect import QRSDetector
from monitor.signal.resample import StreamResampler
from monitor.validate import parse_chunk


def best_cpu_us(run: Callable[[], int], repeat: int) -> float:
    """Fewest CPU microseconds per chunk over `repeat` runs of `run` (returns chunks done)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        n = run()
        best = min(best, (time.process_time() - t0) / n * 1e6)
    return best


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--record", default="119")
    ap.add_argument("--chunk", type=int, default=90, help="source samples per chunk")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    lead = read_lead(args.record, resolve_mitdb(args.data_dir, [args.record]))
    x = lead.signal[: round(args.minutes * 60 * lead.fs)]
    chunks = [x[i : i + args.chunk] for i in range(0, len(x), args.chunk)]
    resampler = StreamResampler(lead.fs, contract.FS)
    chunks125 = [resampler.feed(c) for c in chunks]
    messages = [
        json.dumps(
            {
                "bed": "bed-01", "record": args.record, "fs": lead.fs, "units": "mV",
                "start_index": i * args.chunk, "start_time": 1.7e9 + i * args.chunk / lead.fs,
                "samples": [round(float(v), 4) for v in c],
            }
        ).encode()
        for i, c in enumerate(chunks)
    ]

    def parse() -> int:
        for m in messages:
            parse_chunk(m, b"bed-01")
        return len(messages)

    def resample() -> int:
        r = StreamResampler(lead.fs, contract.FS)
        for c in chunks:
            r.feed(c)
        return len(chunks)

    def detect() -> int:
        d = QRSDetector(contract.FS)
        for c in chunks125:
            d.feed(c)
        return len(chunks125)

    def cut() -> int:
        e = BeatExtractor(lead.fs)
        for c in chunks:
            e.feed(c)
        return len(chunks)

    def alarms() -> int:
        engine = AlarmEngine(lead.fs)
        for i, c in enumerate(chunks):
            t = i * args.chunk / lead.fs
            engine.on_samples(c, i * args.chunk, t, wall_time=t)
        return len(chunks)

    extractor = BeatExtractor(lead.fs)
    beats = [b for c in chunks for b in extractor.feed(c)]

    def alarm_beats() -> int:
        engine = AlarmEngine(lead.fs)
        for b in beats:
            engine.on_beat("N", b.index, b.index / lead.fs, b.rr_prev)
        return len(beats)

    print(
        f"record {args.record}, {len(x) / lead.fs / 60:.1f} min, {len(chunks)} chunks of "
        f"{args.chunk} samples ({args.chunk / lead.fs * 1000:.0f} ms), CPU us per chunk, "
        f"best of {args.repeat}\n"
    )
    print("| stage | us per chunk |\n| --- | ---: |")
    for name, run in (
        ("parse_chunk", parse),
        ("resampler", resample),
        ("detector", detect),
        ("beat cutter (all of BeatExtractor.feed)", cut),
        ("alarm samples (AlarmEngine.on_samples)", alarms),
    ):
        print(f"| {name} | {best_cpu_us(run, args.repeat):.1f} |")
    per_beat = best_cpu_us(alarm_beats, args.repeat)
    print(f"| alarm beats (AlarmEngine.on_beat), per BEAT | {per_beat:.1f} |")


if __name__ == "__main__":
    run_cli(main)
