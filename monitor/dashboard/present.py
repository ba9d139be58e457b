"""How alarms, times and numbers read on screen: shared by every page, the CSV export included."""

from __future__ import annotations

import time

from monitor.alarms.events import NAMES

#: Bedside-monitor abbreviations where the alarm engine's name (`events.NAMES`) is too long
#: for a tile header; every other kind shows its name in capitals.
ABBREVIATIONS = {
    "vtach": "V-TACH",
    "vflutter": "V-FIB/FLUTTER",
    "xtachy": "EXTREME TACHY",
    "xbrady": "EXTREME BRADY",
    "bigeminy": "BIGEMINY",
    "trigeminy": "TRIGEMINY",
    "svt": "SVT",
    "afib": "A-FIB",
    "pipeline_reset": "ANALYSIS RESTART",
}
#: Bedside-monitor priority markers (IEC 60601-1-8 habit: *** high, ** medium, ! technical).
PRIORITY_MARKERS = {"high": "***", "medium": "**", "technical": "!"}


def kind_label(kind: str) -> str:
    """Short screen name of an alarm kind (kinds the engine does not know still display)."""
    return ABBREVIATIONS.get(kind) or NAMES.get(kind, kind.replace("_", " ")).upper()


def alarm_text(priority: str, kind: str) -> str:
    return f"{PRIORITY_MARKERS.get(priority, '')} {kind_label(kind)}".strip()


def clock(epoch_s: float | None) -> str:
    """Local wall-clock time HH:MM:SS."""
    if epoch_s is None:
        return ""
    return time.strftime("%H:%M:%S", time.localtime(epoch_s))


def stamp(epoch_s: float | None) -> str:
    """Local date and time, for exports."""
    if epoch_s is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch_s))


def duration(seconds: float) -> str:
    """m:ss below an hour, h:mm:ss above."""
    s = max(0, int(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def number(value: float | None, fmt: str = "{:.0f}", missing: str = "---") -> str:
    return missing if value is None else fmt.format(value)


def utc_offset_s(epoch_s: float | None = None) -> float:
    """Offset of local time from UTC at `epoch_s` (now by default), for Plotly date axes."""
    return float(time.localtime(epoch_s).tm_gmtoff)
