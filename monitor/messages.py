"""The JSON messages on the product's Kafka topics, as typed Faust records.

One class per topic is the single definition of its schema: the simulator builds `SampleChunk`s,
the worker sends the others, and the dashboard and tools read them back with `loads`. Records
carry no Faust metadata, so the payload is exactly the documented JSON object and any Kafka
client can read it.
"""

from __future__ import annotations

import faust

from monitor.contract import CLASSES
from monitor.topics import ALERTS, BEATS, DEADLETTER, REFERENCE, SAMPLES, STATS, VITALS

#: Topic names (`monitor.topics`), re-exported beside the schemas of their messages.
__all__ = ["ALERTS", "BEATS", "DEADLETTER", "REFERENCE", "SAMPLES", "STATS", "VITALS"]


class _Message(faust.Record, serializer="json", include_metadata=False, abstract=True):
    """A message whose JSON is exactly its fields (no Faust metadata)."""


class SampleChunk(_Message):
    """A bedside monitor's chunk of one bed's ECG; key = bed id.

    `samples` is the lead the beats are cut from; `leads`, when the monitor has more, holds the
    bed's other leads over the same samples (each as long as `samples`): the worker uses them to
    tell a lead fault from asystole or fibrillation.
    """

    bed: str
    record: str
    fs: float
    units: str
    #: Index of the first sample in the record (source rate).
    start_index: int
    #: Epoch seconds of the first sample; sample k was taken at start_time + k / fs.
    start_time: float
    samples: list[float]
    leads: list[list[float]] | None = None


class BeatEvent(_Message):
    """One classified beat; key = bed id."""

    bed: str
    record: str
    #: R-peak position in samples of the record (source rate).
    index: int
    fs: float
    #: Epoch seconds of the R-peak.
    time: float
    label: str
    probs: dict[str, float]
    #: Seconds from the previous R-peak.
    rr: float
    hr: float
    model_version: str
    #: Epoch seconds when the worker published it (latency = published - time).
    published: float


class AlertEvent(_Message):
    """Start or end of one alarm episode; key = bed id."""

    bed: str
    record: str
    #: Stable for the episode: its start and end events share it.
    alarm_id: str
    kind: str
    priority: str
    state: str
    time: float
    index: int
    message: str


class Vitals(_Message):
    """A bed's summary, about once a second; key = bed id."""

    bed: str
    record: str
    #: Epoch seconds of the newest sample the worker has from this bed.
    time: float
    hr: float | None
    counts: dict[str, int]
    pvc_per_min: float
    sqi: float
    beats_total: int


class ReferenceBeat(_Message):
    """A reference (cardiologist) beat label of the replayed record; key = bed id."""

    bed: str
    record: str
    index: int
    time: float
    symbol: str
    label: str


class DeadLetter(_Message):
    """A message the worker could not use as it stands, with why and where it came from."""

    #: "<category>: <details>"; the category (e.g. "gap", "malformed_json") is stable for counting.
    reason: str
    #: The original value, decoded as UTF-8 with errors="replace"; its first
    #: `monitor.ward.DEAD_PAYLOAD_BYTES` bytes only (then ending in a note of how much was cut),
    #: so that a dead letter always fits the topic whatever arrived.
    payload: str
    source_topic: str
    partition: int
    offset: int
    time: float


class BedCounters(_Message):
    """A bed's running totals, kept in the worker's changelogged table across restarts."""

    chunks: int = 0
    samples: int = 0
    beats: int = 0
    #: Beats per AAMI class; every class is present.
    counts: dict[str, int] | None = None
    deadletters: int = 0
    resets: int = 0

    def __post_init__(self) -> None:
        self.counts = {c: int((self.counts or {}).get(c, 0)) for c in CLASSES}


class WorkerStats(_Message):
    """What one worker has done since it started, published every few seconds.

    Operators read it (`python -m monitor.tail ecg.stats`) for throughput, dead letters and
    latency; the benchmarks read the latency histogram from the last one.
    """

    worker: str
    time: float
    uptime_s: float
    beds: int
    chunks: int
    samples: int
    beats: int
    rounds: int
    forwards: int
    #: Dead letters by category since the worker started.
    deadletters: dict[str, int]
    #: Histogram of chunk sent (its Kafka timestamp) -> its beats published, in ms: counts per
    #: bucket whose upper edges are `latency_edges_ms` (the last bucket is open-ended).
    latency_edges_ms: list[float]
    latency_counts: list[int]
    rss_mb: float
    #: Beds dropped after `monitor.ward.EVICT_IDLE_S` of silence to make room for new ones.
    beds_evicted: int = 0
