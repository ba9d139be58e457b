"""Kafka clients log every failed reconnect, ten times a second while a broker is away (about
1,500 lines in 15 s from one worker). A repeated warning says nothing new: one line per kind
every `EVERY_S`, carrying the count of the ones held back, reports the outage and stays readable.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import threading
import time

#: Seconds between two lines of the same kind.
EVERY_S = 30.0
#: Loggers of the Kafka client libraries (each module logs under its own dotted name).
CLIENT_LOGGERS = ("aiokafka", "kafka")


class RepeatFilter(logging.Filter):
    """Warnings and errors pass once per (logger, message template) every `every_s` seconds;
    the next one to pass says how many were held back. Quieter records always pass."""

    def __init__(self, every_s: float = EVERY_S) -> None:
        if not every_s > 0:
            raise ValueError(f"every_s must be > 0, got {every_s!r}")
        super().__init__()
        self.every_s = every_s
        self._lock = threading.Lock()
        self._last: dict[tuple[str, str], float] = {}
        self._held: dict[tuple[str, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, str(record.msg))
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(key, -self.every_s) < self.every_s:
                self._held[key] = self._held.get(key, 0) + 1
                return False
            self._last[key] = now
            held = self._held.pop(key, 0)
        if held:
            record.msg = f"{record.msg} [{held} more like this in the last {self.every_s:g} s]"
        return True


_FILTER = RepeatFilter()


def throttle_client_logs() -> None:
    """Put the shared `RepeatFilter` on every Kafka client logger; calling it again is harmless.

    The client packages are imported first: they create their module loggers on import."""
    for package in CLIENT_LOGGERS:
        with contextlib.suppress(ImportError):
            importlib.import_module(package)
    for name in list(logging.root.manager.loggerDict):
        if name.split(".")[0] in CLIENT_LOGGERS:
            logger = logging.getLogger(name)
            if _FILTER not in logger.filters:
                logger.addFilter(_FILTER)
