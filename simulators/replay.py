"""Bedside monitors replayed from WFDB records into Kafka: `python -m simulators.replay`.

Each bed plays one record (beds cycle through `--records`; by default the DS2 test patients,
which the shipped model never saw) from a seeded random position, looping at the end, and
sends `ecg.samples` chunks keyed by bed id, so one bed's chunks stay in order on one partition.
A chunk leaves when its last sample has been "acquired": at `--speed 1` a beat's samples reach
Kafka when a real monitor would send them; `--speed 0` sends as fast as the broker takes them.
Beds are staggered across the chunk period, as unsynchronised monitors are.

`start_time` is the stream clock: the simulator's start plus the signal time played so far. At
1x it is the wall clock; at other speeds it keeps physiological durations right.
"""

from __future__ import annotations

import argparse
import heapq
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from monitor.broker import ENV_BOOTSTRAP
from monitor.contract import aami_class
from monitor.errors import InputError, run_cli
from monitor.kafka_security import KafkaSecurity
from monitor.logthrottle import throttle_client_logs
from monitor.messages import REFERENCE, SAMPLES, ReferenceBeat, SampleChunk
from monitor.records import DS2, ENV_MITDB, read_annotations, read_lead, resolve_mitdb
from monitor.validate import BEDSIDE_CHUNK_S
from simulators.noise import NoiseSpec, load_noise, noise_gain

log = logging.getLogger("simulators.replay")

#: Decimal places sent per sample: 0.1 µV, far below any ECG front end's resolution, and
#: exact for MIT-BIH (5 µV steps), so a replay carries the record's samples unchanged.
DECIMALS = 4
#: Seconds between progress lines.
REPORT_EVERY_S = 10.0


def default_records() -> list[str]:
    return list(DS2)


# --- pure planning ----------------------------------------------------------------------------


def bed_names(n: int) -> list[str]:
    """bed-01 .. bed-NN, zero-padded so they sort (at least two digits)."""
    if n < 1:
        raise InputError(f"--beds must be at least 1, got {n}")
    width = max(2, len(str(n)))
    return [f"bed-{i:0{width}d}" for i in range(1, n + 1)]


@dataclass(frozen=True)
class BedPlan:
    """What one simulated monitor plays."""

    bed: str
    record: str
    #: First sample played, in the record.
    offset: int
    #: Start of the noise record's cycle, in samples.
    noise_offset: int
    #: Seconds this monitor's chunk clock lags the first one (spreads the send times).
    phase_s: float


def plan_beds(
    n_beds: int,
    records: Sequence[str],
    lengths: dict[str, int],
    chunk_s: float,
    seed: int,
    fs: dict[str, float],
    start_s: float | None = None,
    noise_len: int = 0,
) -> list[BedPlan]:
    """Beds cycle through `records`; offsets are random (seeded) unless `start_s` fixes them.

    `lengths` and `fs` give each record's samples and rate; `noise_len` > 0 draws a random
    start in the noise record for each bed too.
    """
    if not records:
        raise InputError("--records is empty: give at least one record name")
    rng = np.random.default_rng(seed)
    plans = []
    for i, bed in enumerate(bed_names(n_beds)):
        record = records[i % len(records)]
        length = lengths[record]
        if start_s is None:
            offset = int(rng.integers(0, length))
        else:
            offset = round(start_s * fs[record])
            if not 0 <= offset < length:
                raise InputError(
                    f"--start-s {start_s:g} is outside record {record} ({length} samples)"
                )
        noise_offset = int(rng.integers(0, noise_len)) if noise_len else 0
        plans.append(BedPlan(bed, record, offset, noise_offset, chunk_s * i / n_beds))
    return plans


def next_chunk(position: int, chunk_len: int, length: int) -> tuple[int, int]:
    """(start, end) of the chunk at `position`; it stops at the record's end, the next loops."""
    start = position % length
    return start, min(start + chunk_len, length)


def send_time(t0: float, phase_s: float, played_s: float, speed: float) -> float:
    """Wall time at which a chunk ending `played_s` seconds into the bed's stream is sent."""
    if speed == 0:
        return 0.0
    return t0 + (phase_s + played_s) / speed


# --- the replay -------------------------------------------------------------------------------


@dataclass
class BedStream:
    """One monitor's stream: which samples come next, and the messages that carry them."""

    plan: BedPlan
    fs: float
    signal: np.ndarray
    #: Reference beats of the record (sample positions, increasing, and symbols).
    ann_index: np.ndarray
    ann_symbol: np.ndarray
    #: Noise record (shared by the beds) and this bed's gain on it.
    noise: np.ndarray | None
    noise_gain: float
    chunk_s: float
    #: Seconds of signal to play, or None to loop until stopped.
    duration_s: float | None = None
    #: The record's other leads, sent in the same messages (`SampleChunk.leads`).
    others: tuple[np.ndarray, ...] = ()
    position: int = -1  # next sample of the record; -1 = the plan's offset
    played: int = 0  # samples sent so far, across loops

    def __post_init__(self) -> None:
        if self.position < 0:
            self.position = self.plan.offset

    def next_bounds(self) -> tuple[int, int]:
        """(start, end) of the next chunk in the record; empty once `duration_s` is played."""
        n = max(1, round(self.chunk_s * self.fs))
        if self.duration_s is not None:
            n = min(n, round(self.duration_s * self.fs) - self.played)
            if n <= 0:
                return self.position, self.position
        return next_chunk(self.position, n, len(self.signal))

    def due(self, t0: float, speed: float) -> float:
        """Wall time to send the next chunk: when its last sample has been acquired."""
        start, end = self.next_bounds()
        return send_time(t0, self.plan.phase_s, (self.played + end - start) / self.fs, speed)

    def take(self, t0: float, reference: bool) -> list[tuple[str, bytes, bytes]]:
        """The next chunk's messages as (topic, key, value), and advance; [] when finished."""
        start, end = self.next_bounds()
        if end == start:
            return []
        leads = [lead[start:end] for lead in (self.signal, *self.others)]
        if self.noise is not None:  # electrode motion moves every lead
            at = (self.plan.noise_offset + self.played + np.arange(end - start)) % len(self.noise)
            leads = [x + self.noise_gain * self.noise[at] for x in leads]
        x = leads[0]
        start_time = t0 + self.plan.phase_s + self.played / self.fs
        key = self.plan.bed.encode()
        chunk = SampleChunk(
            bed=self.plan.bed,
            record=self.plan.record,
            fs=self.fs,
            units="mV",
            start_index=start,
            start_time=start_time,
            samples=np.round(x, DECIMALS).tolist(),
            leads=[np.round(o, DECIMALS).tolist() for o in leads[1:]] or None,
        )
        out = [(SAMPLES, key, chunk.dumps())]
        if reference:
            lo, hi = np.searchsorted(self.ann_index, [start, end])
            for index, symbol in zip(self.ann_index[lo:hi], self.ann_symbol[lo:hi], strict=True):
                ref = ReferenceBeat(
                    bed=self.plan.bed,
                    record=self.plan.record,
                    index=int(index),
                    time=start_time + (int(index) - start) / self.fs,
                    symbol=str(symbol),
                    label=aami_class(str(symbol)),
                )
                out.append((REFERENCE, key, ref.dumps()))
        self.advance(start, end)
        return out

    def advance(self, start: int, end: int) -> None:
        """Move past the chunk `next_bounds` gave; a replay of the plan without sending (the
        latency benchmark's) advances the same way."""
        self.position = end % len(self.signal)
        self.played += end - start


class Replay:
    """The simulated ward: produces every bed's chunks at their send times until stopped."""

    def __init__(
        self,
        producer,
        beds: list[BedStream],
        speed: float,
        reference: bool,
        t0: float | None = None,
    ) -> None:
        self.producer = producer
        self.beds = beds
        self.speed = speed
        self.reference = reference
        self.t0 = time.time() if t0 is None else t0
        self.stop = threading.Event()
        self.chunks_sent = 0
        self.references_sent = 0
        #: Messages the broker acknowledged, and those it never took (after the producer's own
        #: retries): a missing broker shows here and in the log, never as silence.
        self.sent = 0
        self.delivered = 0
        self.failed = 0
        self.last_error = ""
        self._lock = threading.Lock()

    def _on_delivered(self, _metadata) -> None:
        with self._lock:
            self.delivered += 1

    def _on_failed(self, exc: BaseException) -> None:
        with self._lock:
            first = self.failed == 0
            self.failed += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
        if first:
            log.error("a message was not delivered (%s); counting further failures",
                      self.last_error)

    def _send(self, topic: str, key: bytes, value: bytes) -> None:
        self.sent += 1
        try:
            future = self.producer.send(topic, key=key, value=value)
        except Exception as exc:  # no metadata within max_block_ms, buffer full, closed
            self._on_failed(exc)
            return
        future.add_callback(self._on_delivered)
        future.add_errback(self._on_failed)

    def run(self) -> None:
        heap = [(bed.due(self.t0, self.speed), i) for i, bed in enumerate(self.beds)]
        heapq.heapify(heap)
        last_report = time.monotonic()
        delivered_then = 0
        while heap and not self.stop.is_set():
            due, i = heapq.heappop(heap)
            wait = due - time.time()
            if wait > 0 and self.stop.wait(wait):
                break
            bed = self.beds[i]
            messages = bed.take(self.t0, self.reference)
            if not messages:
                continue  # this bed has played its duration
            for topic, key, value in messages:
                self._send(topic, key, value)
            self.chunks_sent += 1
            self.references_sent += len(messages) - 1
            heapq.heappush(heap, (bed.due(self.t0, self.speed), i))
            if time.monotonic() - last_report >= REPORT_EVERY_S:
                last_report = time.monotonic()
                lag = max(0.0, time.time() - due) if self.speed else 0.0
                log.info(
                    "%d chunks, %d reference beats sent (%d delivered, %d failed%s); "
                    "%d beds playing; lag %.2f s",
                    self.chunks_sent, self.references_sent, self.delivered, self.failed,
                    f": {self.last_error}" if self.failed else "", len(heap), lag,
                )
                waiting = self.sent - self.delivered - self.failed
                if waiting and self.delivered == delivered_then:
                    log.warning("the broker acknowledged nothing for %.0f s: %d messages "
                                "waiting", REPORT_EVERY_S, waiting)
                delivered_then = self.delivered


#: Seconds a message may wait for the broker (retries included) before it counts as failed.
DELIVERY_TIMEOUT_S = 30.0


def reference_labels(record: str, data_dir) -> tuple[np.ndarray, np.ndarray]:
    """Sample positions and symbols of the record's reference beats (non-beat marks left out)."""
    ann = read_annotations(record, data_dir)
    keep = np.array([aami_class(s) is not None for s in ann.symbol], dtype=bool)
    return np.asarray(ann.sample)[keep], np.asarray(ann.symbol, dtype=object)[keep]


def build_beds(args: argparse.Namespace) -> list[BedStream]:
    """Read the records (once each), the noise, the reference labels, and plan the beds."""
    records = args.records or default_records()
    data_dir = resolve_mitdb(args.data_dir, records)
    leads = {}
    for record in dict.fromkeys(records[: args.beds]):
        leads[record] = read_lead(record, data_dir, others=args.leads == "all")
    used = list(leads)
    spec = NoiseSpec.parse(args.noise) if args.noise else None
    noise = None
    if spec is not None:
        rates = {lead.fs for lead in leads.values()}
        noise = {fs: load_noise(spec.kind, fs, args.nstdb_dir) for fs in rates}
    chunk_s = args.chunk_ms / 1000.0
    plans = plan_beds(
        args.beds,
        used,
        {r: len(lead.signal) for r, lead in leads.items()},
        chunk_s,
        args.seed,
        {r: lead.fs for r, lead in leads.items()},
        start_s=args.start_s,
        noise_len=min(len(n) for n in noise.values()) if noise else 0,
    )
    gains = {
        r: noise_gain(lead.signal, noise[lead.fs], lead.fs, spec.snr_db) if noise else 0.0
        for r, lead in leads.items()
    }
    refs = {r: reference_labels(r, data_dir) for r in used} if args.reference else {}
    empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object))
    beds = []
    for plan in plans:
        lead = leads[plan.record]
        ann_index, ann_symbol = refs.get(plan.record, empty)
        bed_noise = noise[lead.fs] if noise else None
        beds.append(
            BedStream(
                plan, lead.fs, lead.signal, ann_index, ann_symbol, bed_noise, gains[plan.record],
                chunk_s, args.duration_s, lead.others,
            )
        )
    return beds


def make_producer(bootstrap: str, delivery_timeout_s: float = DELIVERY_TIMEOUT_S):
    """A kafka-python producer tuned for many small, ordered messages.

    A message the broker has not taken within `delivery_timeout_s` (retries included) fails and
    is counted by `Replay`; a monitor that lost its network shows it within that time.
    """
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    throttle_client_logs()  # a broker outage is one warning per kind, not ten a second
    try:
        return KafkaProducer(
            bootstrap_servers=bootstrap.split(","),
            client_id="ecg-simulator",
            acks=1,
            linger_ms=5,
            batch_size=256 * 1024,
            # One request in flight per broker keeps a bed's chunks in order across retries.
            max_in_flight_requests_per_connection=1,
            request_timeout_ms=round(1000 * delivery_timeout_s / 2),
            delivery_timeout_ms=round(1000 * delivery_timeout_s),
            max_block_ms=round(1000 * delivery_timeout_s),
            **KafkaSecurity.from_env().kafka_python(),
        )
    except KafkaError as exc:
        raise InputError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m simulators.replay",
        description="Replay MIT-BIH records as bedside monitors into the ecg.samples topic.",
    )
    p.add_argument(
        "--bootstrap",
        default=os.environ.get(ENV_BOOTSTRAP),
        help=f"Kafka bootstrap servers host:port[,...] (default: ${ENV_BOOTSTRAP})",
    )
    p.add_argument("--beds", type=int, default=8, help="simulated monitors (default 8)")
    p.add_argument(
        "--records",
        nargs="+",
        help="records the beds cycle through (default: the DS2 test records)",
    )
    p.add_argument("--data-dir", help=f"MIT-BIH directory (default: ${ENV_MITDB}, else download)")
    p.add_argument(
        "--speed", type=float, default=1.0, help="replay speed; 0 = as fast as possible (default 1)"
    )
    p.add_argument("--chunk-ms", type=float, default=BEDSIDE_CHUNK_S * 1000.0,
                   help=f"chunk length (default {BEDSIDE_CHUNK_S * 1000:g} ms)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random start positions")
    p.add_argument(
        "--start-s",
        type=float,
        help="start every bed this many seconds into its record (default: random, seeded)",
    )
    p.add_argument(
        "--duration-s",
        type=float,
        help="stop each bed after this many seconds of signal (default: loop until stopped)",
    )
    p.add_argument(
        "--leads", choices=("all", "one"), default="all",
        help="send every lead of the record (default; the first is the analysed one) or one",
    )  # fmt: skip
    p.add_argument("--noise", help="add NSTDB noise, KIND:SNR_DB with KIND bw, em or ma (em:6)")
    p.add_argument("--nstdb-dir", help="NSTDB directory (default: $ECG_NSTDB_DIR, else download)")
    p.add_argument(
        "--reference",
        action="store_true",
        help="also publish the reference beat labels to ecg.reference",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    return p


def _check(args: argparse.Namespace) -> None:
    if not args.bootstrap:
        raise InputError(f"no Kafka: pass --bootstrap host:port or set ${ENV_BOOTSTRAP}")
    if not np.isfinite(args.speed) or args.speed < 0:
        raise InputError(f"--speed must be 0 (as fast as possible) or positive, got {args.speed}")
    if not np.isfinite(args.chunk_ms) or not 1 <= args.chunk_ms <= 10_000:
        raise InputError(f"--chunk-ms must be between 1 and 10000, got {args.chunk_ms}")
    if args.duration_s is not None and not args.duration_s > 0:
        raise InputError(f"--duration-s must be positive, got {args.duration_s}")
    if args.start_s is not None and not args.start_s >= 0:
        raise InputError(f"--start-s must be >= 0, got {args.start_s}")
    if args.noise:
        NoiseSpec.parse(args.noise)  # refuse a bad --noise before reading any record


def run(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _check(args)
    logging.basicConfig(format="%(asctime)s simulator: %(message)s", stream=sys.stderr)
    log.setLevel(logging.WARNING if args.quiet else logging.INFO)
    beds = build_beds(args)
    producer = make_producer(args.bootstrap)
    replay = Replay(producer, beds, args.speed, args.reference)
    previous = {
        sig: signal.signal(sig, lambda *_: replay.stop.set())
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    records = sorted({b.plan.record for b in beds})
    log.info(
        "%d beds playing %s at %s to %s",
        len(beds), " ".join(records), f"{args.speed:g}x" if args.speed else "full speed",
        args.bootstrap,
    )
    from kafka.errors import KafkaError

    try:
        replay.run()
    finally:
        try:  # what is still queued gets the same delivery timeout as every message
            producer.flush(timeout=DELIVERY_TIMEOUT_S)
        except KafkaError as exc:
            log.error("the broker did not take the last messages within %.0f s: %s",
                      DELIVERY_TIMEOUT_S, exc)  # fmt: skip
        producer.close(timeout=1)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    lost = replay.sent - replay.delivered
    log.info("stopped: %d chunks, %d reference beats sent; %d messages delivered, %d not",
             replay.chunks_sent, replay.references_sent, replay.delivered, lost)  # fmt: skip
    if lost:
        log.error("%d messages were not delivered to %s (last error: %s)", lost,
                  args.bootstrap, replay.last_error or "none reported")  # fmt: skip
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(run, argv)


if __name__ == "__main__":
    sys.exit(main())
