"""Read the product's topics from every partition without a consumer group.

`python -m monitor.tail ecg.alerts` prints each message as one JSON line, like `tail -f`. The
demo's live line, the benchmarks and the tests read topics through `TopicReader` too: a reader
that assigns itself every partition needs no group coordination, so it starts at once and never
takes partitions away from the workers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from monitor.broker import ENV_BOOTSTRAP, TOPICS
from monitor.errors import InputError, run_cli
from monitor.kafka_security import KafkaSecurity


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: str | None
    #: The value parsed as JSON (dict), or the raw bytes when it is not JSON.
    value: dict | bytes
    #: Kafka timestamp, epoch seconds.
    timestamp: float


class TopicReader:
    """Every partition of `topics`, from the beginning or from now on."""

    def __init__(
        self, bootstrap: str, topics: Sequence[str], from_beginning: bool = True
    ) -> None:
        from kafka import KafkaConsumer, TopicPartition
        from kafka.errors import KafkaError

        try:
            self._consumer = KafkaConsumer(
                bootstrap_servers=bootstrap.split(","),
                group_id=None,
                enable_auto_commit=False,
                client_id="ecg-monitor-reader",
                # Tansu answers an idle fetch only after half this wait; keep the reader live.
                fetch_max_wait_ms=50,
                auto_offset_reset="earliest" if from_beginning else "latest",
                **KafkaSecurity.from_env().kafka_python(),
            )
        except KafkaError as exc:
            raise InputError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
        parts = []
        for topic in topics:
            ids = self._partitions(topic)
            parts += [TopicPartition(topic, p) for p in sorted(ids)]
        self._consumer.assign(parts)
        if from_beginning:
            self._consumer.seek_to_beginning(*parts)
        else:
            self._consumer.seek_to_end(*parts)

    def _partitions(self, topic: str, timeout_s: float = 10.0) -> set[int]:
        deadline = time.monotonic() + timeout_s
        while True:
            ids = self._consumer.partitions_for_topic(topic)
            if ids:
                return ids
            if time.monotonic() > deadline:
                raise InputError(
                    f"topic {topic!r} does not exist; create the topics with "
                    "`python -m monitor topics` (known topics: " + ", ".join(TOPICS) + ")"
                )
            time.sleep(0.2)

    def poll(self, timeout_s: float = 0.5) -> list[Record]:
        """Messages that arrived, in order per partition; [] after `timeout_s` without any."""
        batches = self._consumer.poll(timeout_ms=int(timeout_s * 1000))
        out = []
        for tp, messages in batches.items():
            for m in messages:
                try:
                    value = json.loads(m.value)
                except (ValueError, TypeError):
                    value = m.value
                key = m.key.decode(errors="replace") if m.key is not None else None
                out.append(Record(tp.topic, tp.partition, m.offset, key, value, m.timestamp / 1e3))
        return out

    def follow(self, idle_s: float | None = None) -> Iterator[Record]:
        """Messages as they come; ends after `idle_s` without any (None: never)."""
        last = time.monotonic()
        while True:
            records = self.poll(0.5)
            if records:
                last = time.monotonic()
            elif idle_s is not None and time.monotonic() - last > idle_s:
                return
            yield from records

    def close(self) -> None:
        self._consumer.close()

    def __enter__(self) -> TopicReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m monitor.tail",
        description="Print messages of the product's topics as JSON lines (no consumer group).",
    )
    p.add_argument("topics", nargs="+", metavar="TOPIC", help=", ".join(TOPICS))
    p.add_argument(
        "--bootstrap",
        default=os.environ.get(ENV_BOOTSTRAP),
        help=f"Kafka host:port[,...] (default: ${ENV_BOOTSTRAP})",
    )
    p.add_argument("--from-beginning", action="store_true", help="start at the oldest message")
    p.add_argument("--bed", help="only this bed's messages")
    p.add_argument("-n", "--count", type=int, help="stop after this many messages")
    return p


def run(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.bootstrap:
        raise InputError(f"no Kafka: pass --bootstrap host:port or set ${ENV_BOOTSTRAP}")
    shown = 0
    with TopicReader(args.bootstrap, args.topics, args.from_beginning) as reader:
        for rec in reader.follow():
            if args.bed and rec.key != args.bed:
                continue
            value = rec.value if isinstance(rec.value, dict) else rec.value.decode(errors="replace")
            prefix = f"{rec.topic} " if len(args.topics) > 1 else ""
            print(prefix + json.dumps(value, separators=(",", ":")), flush=True)
            shown += 1
            if args.count is not None and shown >= args.count:
                return 0
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(run, argv)


if __name__ == "__main__":
    sys.exit(main())
