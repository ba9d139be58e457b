"""The stream worker's Faust app: `faust -A monitor.app worker` or `python -m monitor worker`.

The agent is a thin loop: it takes a round of raw `ecg.samples` messages (up to `max_batch`, or
whatever arrived within `max_wait`), lets `monitor.ward.Ward` validate them and cut beats per
bed, classifies the whole round's beats in one micro-batched forward pass in a worker thread,
and publishes beats, alarms and dead letters. A once-a-second timer publishes vitals, raises
no-data alarms and saves the per-bed counters to a changelogged table, so a restarted worker
keeps counting where the last one stopped.

`faust -A monitor.app worker` needs `--without-web` (Faust otherwise serves a web page on port
6066, so two workers on one host collide); `python -m monitor worker` adds it.

Settings come from the environment, so both command lines configure the same worker:
KAFKA_BOOTSTRAP_SERVERS, ECG_DEVICE (auto|cpu|cuda), ECG_MAX_BATCH, ECG_MAX_WAIT_MS, ECG_MODEL,
ECG_TORCH_THREADS and ECG_WORKER_DATADIR.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import faust
import numpy as np
import psutil
from faust.transport.drivers import aiokafka as faust_aiokafka

from monitor import contract
from monitor.broker import ENV_BOOTSTRAP, TOPICS
from monitor.errors import InputError
from monitor.kafka_security import KafkaSecurity
from monitor.logthrottle import throttle_client_logs
from monitor.messages import (
    ALERTS,
    BEATS,
    DEADLETTER,
    SAMPLES,
    STATS,
    VITALS,
    BedCounters,
)
from monitor.records import CACHE_DIR
from monitor.ward import Source, Ward

log = logging.getLogger("monitor.worker")
throttle_client_logs()

APP_ID = "ecg-monitor"
ENV_DEVICE = "ECG_DEVICE"
ENV_MAX_BATCH = "ECG_MAX_BATCH"
ENV_MAX_WAIT_MS = "ECG_MAX_WAIT_MS"
ENV_DATADIR = "ECG_WORKER_DATADIR"
ENV_TORCH_THREADS = "ECG_TORCH_THREADS"
DEVICES = ("auto", "cpu", "cuda")
#: Seconds between vitals (and no-data checks, and table saves).
VITALS_EVERY_S = 1.0
#: Seconds between the worker's stats messages and log lines.
STATS_EVERY_S = 5.0
#: Longest a fetch waits on an idle partition. Tansu answers an empty fetch only when half of
#: the client's max wait has passed, not when data arrives, so Faust's fixed 1.5 s would add up
#: to 0.75 s to every beat; 50 ms costs a real Kafka cluster a few idle fetches per second.
FETCH_MAX_WAIT_MS = 50


@dataclass(frozen=True)
class WorkerSettings:
    """The worker's knobs, read from the environment and checked loudly."""

    bootstrap: str = "localhost:9092"
    device: str = "auto"
    #: Most chunks per round and most beats per forward pass.
    max_batch: int = 256
    #: Longest a round waits to fill up before its beats are classified, seconds.
    max_wait_s: float = 0.025
    datadir: Path = CACHE_DIR / "worker"
    #: PyTorch intra-op threads on CPU. One: a round's batch is small, so splitting it across
    #: cores costs more in synchronisation than it gains (on a busy 2-core machine a 64-beat
    #: batch took 4.5 ms per beat with 2 threads, 0.4 ms with 1); run more worker processes
    #: to use more cores.
    torch_threads: int = 1

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> WorkerSettings:
        env = dict(os.environ if env is None else env)
        device = env.get(ENV_DEVICE, cls.device)
        if device not in DEVICES:
            raise InputError(f"${ENV_DEVICE} must be one of {', '.join(DEVICES)}, got {device!r}")
        max_batch = _number(env, ENV_MAX_BATCH, cls.max_batch, int, 1, 65536)
        max_wait_ms = _number(env, ENV_MAX_WAIT_MS, cls.max_wait_s * 1000, float, 1, 5000)
        threads = _number(env, ENV_TORCH_THREADS, cls.torch_threads, int, 1, 256)
        return cls(
            bootstrap=env.get(ENV_BOOTSTRAP) or cls.bootstrap,
            device=device,
            max_batch=max_batch,
            max_wait_s=max_wait_ms / 1000.0,
            datadir=Path(env.get(ENV_DATADIR) or cls.datadir),
            torch_threads=threads,
        )

    @property
    def broker_urls(self) -> list[str]:
        return [f"kafka://{host.strip()}" for host in self.bootstrap.split(",") if host.strip()]


def _number(env: dict[str, str], name: str, default: float, kind: type, lo: float, hi: float):
    raw = env.get(name)
    if raw is None or raw == "":
        return kind(default)
    try:
        value = kind(raw)
    except ValueError:
        raise InputError(f"${name} must be a {kind.__name__}, got {raw!r}") from None
    if not lo <= value <= hi:
        raise InputError(f"${name} must be between {lo:g} and {hi:g}, got {raw!r}")
    return value


# --- Faust plumbing: a consumer that does not sit on idle fetches -----------------------------


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport):
        consumer = super()._create_worker_consumer(transport)
        # aiokafka hands this to its fetcher at start(); Faust hard-codes 1500 ms.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self):
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class MonitorApp(faust.App):
    """faust.App with a short idle fetch wait (see FETCH_MAX_WAIT_MS)."""

    def _new_transport(self):
        return _Transport(self.conf.broker_consumer, self)


# --- the app ----------------------------------------------------------------------------------

settings = WorkerSettings.from_env()
# Faust creates its data directory without parents: on a fresh machine ~/.cache/ecg-monitor does
# not exist yet and the worker would stop at start.
settings.datadir.mkdir(parents=True, exist_ok=True)

app = MonitorApp(
    APP_ID,
    broker=settings.broker_urls,
    store="memory://",
    datadir=str(settings.datadir),
    web_enabled=False,
    key_serializer="raw",
    # Values are bytes everywhere: `monitor.messages` writes and reads the JSON itself.
    value_serializer="raw",
    topic_partitions=TOPICS[SAMPLES],
    topic_replication_factor=1,
    consumer_auto_offset_reset="earliest",
    # A short session lets a restarted worker take over quickly (Tansu holds a join for half
    # of it); heartbeats run on the consumer thread, so a busy round does not miss them.
    broker_session_timeout=10.0,
    broker_heartbeat_interval=1.0,
    broker_rebalance_timeout=10.0,
    producer_linger=0.005,
    broker_credentials=KafkaSecurity.from_env().faust(),
)

samples_topic = app.topic(
    SAMPLES, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
)


def _out(name: str, key_type: type = str) -> faust.TopicT:
    """An output topic whose values are `monitor.messages` JSON, sent as `message.dumps()`."""
    return app.topic(name, key_type=key_type, value_type=bytes)


beats_topic = _out(BEATS)
alerts_topic = _out(ALERTS)
vitals_topic = _out(VITALS)
deadletter_topic = _out(DEADLETTER, bytes)
stats_topic = _out(STATS)

#: Per-bed running totals. Written from the timer, outside stream iteration, so the changelog
#: partition comes from the key's hash, which is how producers spread beds over `ecg.samples`:
#: each bed's counters live in the changelog partition of its own samples partition.
counters = app.Table(
    "bed-counters",
    key_type=bytes,  # raw UTF-8 bed ids, hashed to partitions exactly like the samples' keys
    value_type=bytes,  # `BedCounters` JSON, read back by `_restore`
    partitions=TOPICS[SAMPLES],
    use_partitioner=True,
)


@dataclass
class Runtime:
    """What the agent and timers share inside one worker process."""

    ward: Ward
    pool: ThreadPoolExecutor
    worker_id: str


_runtime: Runtime | None = None


def runtime() -> Runtime:
    """Load the model and build the ward once per process (the first caller pays)."""
    global _runtime
    if _runtime is None:
        import torch

        from monitor.classifier import BeatClassifier

        torch.set_num_threads(settings.torch_threads)
        classifier = BeatClassifier(device=settings.device)
        warm_up(classifier, settings.max_batch)
        ward = Ward(
            classifier,
            max_batch=settings.max_batch,
            restore=_restore,
        )
        _runtime = Runtime(
            ward,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="classify"),
            f"{socket.gethostname()}:{os.getpid()}",
        )
        log.info(
            "model %s on %s; rounds of up to %d chunks within %.0f ms",
            classifier.version, classifier.device, settings.max_batch,
            settings.max_wait_s * 1000,
        )
    return _runtime


def _restore(bed: str) -> BedCounters | None:
    """The bed's saved counters, or None (a new bed, or a value this version cannot read)."""
    raw = counters.get(bed.encode())
    if raw is None:
        return None
    try:
        return BedCounters.decode(raw)
    except ValueError as exc:
        log.warning("bed %s: saved counters unreadable (%s); counting from zero", bed, exc)
        return None


def warm_up(classifier, max_batch: int) -> None:
    """A few forward passes before the first patient's: TorchScript profiles and optimises its
    graph on the first calls, which would otherwise delay the first beats by a second."""
    for n in (1, 2, max(3, max_batch // 2), max_batch, 1):
        classifier.predict_bare(np.zeros((n, contract.BEAT_LEN), dtype=np.float32))


@app.agent(samples_topic)
async def classify_beats(stream):
    """Rounds of chunks from every bed -> one forward pass -> beats, alarms, dead letters."""
    rt = runtime()
    loop = asyncio.get_running_loop()
    async for events in stream.take_events(settings.max_batch, within=settings.max_wait_s):
        wall = time.time()
        for event in events:
            m = event.message
            source = Source(m.topic, m.partition, m.offset, m.timestamp or wall)
            dead = rt.ward.ingest(m.value, m.key, source, wall)
            if dead is not None:
                await deadletter_topic.send(key=m.key, value=dead.dumps())
        pending = rt.ward.take_pending()
        probs = await loop.run_in_executor(rt.pool, rt.ward.classify, pending)
        beats, alerts = rt.ward.finish(pending, probs)
        for beat in beats:
            await beats_topic.send(key=beat.bed, value=beat.dumps())
        for alert in alerts:
            await alerts_topic.send(key=alert.bed, value=alert.dumps())


@app.timer(interval=VITALS_EVERY_S)
async def publish_vitals() -> None:
    """Vitals and no-data alarms for every bed; counters into the table."""
    if _runtime is None:
        return
    alerts, vitals = _runtime.ward.tick(time.time())
    for alert in alerts:
        await alerts_topic.send(key=alert.bed, value=alert.dumps())
    for v in vitals:
        await vitals_topic.send(key=v.bed, value=v.dumps())
    for bed, value in _runtime.ward.changed_counters().items():
        counters[bed.encode()] = value.dumps()


@app.timer(interval=STATS_EVERY_S)
async def publish_stats() -> None:
    """The worker's own counters: a log line for people, a message for tools."""
    if _runtime is None:
        return
    w = _runtime.ward
    stats = w.stats(_runtime.worker_id, time.time(), psutil.Process().memory_info().rss / 2**20)
    await stats_topic.send(key=_runtime.worker_id, value=stats.dumps())
    dead = ", ".join(f"{k} {n}" for k, n in sorted(w.deadletters.items())) or "none"
    p50, p99 = w.latency_percentile(0.5), w.latency_percentile(0.99)
    log.info(
        "%d beds (%d evicted), %d chunks, %d beats in %d rounds; dead letters: %s; "
        "latency p50 %s p99 %s ms",
        stats.beds, stats.beds_evicted, stats.chunks, stats.beats, stats.rounds, dead,
        "-" if p50 is None else f"{p50:.0f}", "-" if p99 is None else f"{p99:.0f}",
    )
