"""Helpers of the tests that run the live system on a real broker (`stream` in conftest)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from monitor.tail import Record, TopicReader

REPO = Path(__file__).resolve().parents[1]
#: The worker needs ~10 s to start (imports, model, group join); then work takes seconds.
STARTUP_S = 60.0


def collect(
    bootstrap: str,
    topics: list[str],
    done: Callable[[list[Record]], bool],
    timeout_s: float = STARTUP_S,
    settle_s: float = 3.0,
) -> list[Record]:
    """Read `topics` from the start until `done(records)` holds and nothing new came for
    `settle_s` (or until `timeout_s`); the records in arrival order."""
    records: list[Record] = []
    deadline = time.monotonic() + timeout_s
    quiet_since = time.monotonic()
    with TopicReader(bootstrap, topics) as reader:
        while time.monotonic() < deadline:
            batch = reader.poll(0.5)
            records += batch
            if batch:
                quiet_since = time.monotonic()
            elif done(records) and time.monotonic() - quiet_since >= settle_s:
                break
    return records


def values(records: list[Record], topic: str) -> list[dict]:
    return [r.value for r in records if r.topic == topic]


def first_minutes(mitdb_dir: Path, record: str, seconds: float, out: Path) -> Path:
    """The first `seconds` of `record` as a record of its own, same samples, same gains."""
    import wfdb

    fs = wfdb.rdheader(str(mitdb_dir / record)).fs
    rec = wfdb.rdrecord(str(mitdb_dir / record), sampto=int(seconds * fs), physical=False)
    out.mkdir()
    rec.wrsamp(write_dir=str(out))
    return out


