"""What a trace on the central station is made of: display slots, rings and monitor-mode leads.

Positions on screen are "display slots": sample numbers at 125 Hz on the epoch clock,
slot = round(time x 125). All beds share that clock, so their sweeps move in step like the
screens of a real central station. A bed's stream is cut into segments (a new one where its
samples stop being contiguous); a segment maps the source's sample indices to slots, so a beat
placed by its R-peak index sits exactly on its R-peak.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal as sps

from monitor import contract
from monitor.signal.resample import StreamResampler

#: Display rate of every trace (the model's rate: beats and strips share one time base).
DISPLAY_FS = contract.FS
#: Seconds of signal kept per lead: the 30 s detail strip plus margin.
RING_S = 40.0
#: Seconds shown by a tile's sweep.
STRIP_S = 6.0
#: "Monitor mode" baseline filter of the display (first-order high-pass).
HIGHPASS_HZ = 0.5
#: Seconds after a segment's last sample within which a late beat is still placed on it.
SEGMENT_SLACK_S = 5.0

_HP_B, _HP_A = sps.butter(1, HIGHPASS_HZ / (DISPLAY_FS / 2), btype="highpass")
_HP_ZI = sps.lfilter_zi(_HP_B, _HP_A)


def slot_of(t: float) -> int:
    """Display slot of an epoch time."""
    return round(t * DISPLAY_FS)


class SignalRing:
    """Fixed-size float32 ring addressed by absolute display slot; gaps read as NaN."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"size must be positive, got {size!r}")
        self.size = size
        self._buf = np.full(size, np.nan, dtype=np.float32)
        #: One past the newest slot written, or None before the first write.
        self.head: int | None = None

    def write(self, start: int, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float32)
        end = start + len(values)
        head = start if self.head is None else self.head
        new_head = max(head, end)
        oldest = new_head - self.size
        if start > head:  # samples never arrived: show a gap, not stale values
            gap = np.arange(max(head, oldest), start)
            self._buf[gap % self.size] = np.nan
        lo = max(start, oldest)
        if lo < end:
            self._buf[np.arange(lo, end) % self.size] = values[lo - start :]
        self.head = new_head

    def read(self, first: int, stop: int) -> np.ndarray:
        """Values of slots first..stop-1 (NaN where nothing is held)."""
        n = max(0, stop - first)
        out = np.full(n, np.nan, dtype=np.float32)
        if self.head is None or n == 0:
            return out
        lo, hi = max(first, self.head - self.size), min(stop, self.head)
        if lo < hi:
            out[lo - first : hi - first] = self._buf[np.arange(lo, hi) % self.size]
        return out


@dataclass
class Segment:
    """A contiguous run of one record's samples: maps source indices to display slots."""

    record: str
    fs: float
    origin_index: int
    origin_slot: int
    end_index: int

    def slot(self, index: int) -> int | None:
        if self.origin_index <= index <= self.end_index + self.fs * SEGMENT_SLACK_S:
            return self.origin_slot + round((index - self.origin_index) * DISPLAY_FS / self.fs)
        return None


class Trace:
    """One lead as the screen shows it: at the display rate, baseline wander removed, kept in a
    ring of the last `RING_S` seconds."""

    def __init__(self) -> None:
        self.ring = SignalRing(round(RING_S * DISPLAY_FS))
        self._resampler: StreamResampler | None = None
        self._zi: np.ndarray | None = None

    def restart(self, fs: float, first: float) -> None:
        """A new segment: the resampler starts over and the filter settles on `first`."""
        self._resampler = StreamResampler(fs, DISPLAY_FS)
        self._zi = _HP_ZI * first

    def feed(self, x: np.ndarray, origin_slot: int) -> int:
        """Add the segment's next samples (source rate); the count of display samples added."""
        if self._resampler is None:
            raise ValueError("restart the trace with its sampling rate before feeding it")
        y = self._resampler.feed(x)
        if len(y):
            y, self._zi = sps.lfilter(_HP_B, _HP_A, y, zi=self._zi)
            self.ring.write(origin_slot + self._resampler.n_out - len(y), y)
        return len(y)


def json_floats(y: np.ndarray) -> list[float | None]:
    """Millivolts to 3 decimals, NaN as null (JSON has no NaN)."""
    return [None if v != v else v for v in np.round(y.astype(np.float64), 3).tolist()]
