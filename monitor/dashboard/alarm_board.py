"""The ward's alarm board: active alarms, 24 h of episodes, acknowledgement and audio pause.

The worker says when an episode starts and ends; the board adds what only a central station
decides: which alarms are still shown when their source went quiet, who acknowledged what, and
when the ward's audio may be paused. Not thread-safe on its own: `CentralStation` holds the lock.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from monitor.alarms.events import PRIORITY_RANK
from monitor.messages import AlertEvent

#: Alarm history span and hard cap.
HISTORY_S = 24 * 3600.0
HISTORY_MAX = 20_000
#: The worker's technical alarm that opens when it (re)starts a bed's analysis: older alarms of
#: the bed are over.
RESET_KIND = "pipeline_reset"
#: Seconds without a bed's signal after which its physiological alarms are shown as ended.
SILENT_ALARM_S = 60.0
#: Audio pause length (IEC 60601-1-8 allows up to 2 min for a central station).
AUDIO_PAUSE_S = 120.0
#: A newly started alarm only breaks an audio pause if it is this fresh (not a history replay).
BREAK_THROUGH_AGE_S = 30.0


@dataclass
class Alarm:
    bed: str
    record: str
    alarm_id: str
    kind: str
    priority: str
    start: float
    message: str
    end: float | None = None
    acked_at: float | None = None

    @property
    def rank(self) -> int:
        return PRIORITY_RANK[self.priority]

    def as_dict(self, now: float) -> dict:
        stop = self.end if self.end is not None else now
        return {
            "bed": self.bed,
            "record": self.record,
            "alarm_id": self.alarm_id,
            "kind": self.kind,
            "priority": self.priority,
            "start": self.start,
            "end": self.end,
            "duration_s": max(0.0, stop - self.start),
            "message": self.message,
            "acked_at": self.acked_at,
            "active": self.end is None,
        }


class AlarmBoard:
    """Alarm episodes as the worker reports them, with the station's own acknowledgement and
    audio state."""

    def __init__(self) -> None:
        self.active: dict[str, Alarm] = {}
        self._episodes: OrderedDict[str, Alarm] = OrderedDict()
        self._audio_paused_until: float | None = None
        self._audio_paused_rank = 0
        self._audio_note = ""

    def on_alert(self, m: AlertEvent) -> None:
        known = self._episodes.get(m.alarm_id)
        if m.state == "start":
            if known is not None:
                known.message = m.message or known.message  # a repeated start (re-read) only
                return
            alarm = Alarm(m.bed, m.record, m.alarm_id, m.kind, m.priority, m.time, m.message)
            if m.kind == RESET_KIND:
                self._end_bed_alarms(m.bed, m.time, "analysis restarted")
            self._episodes[m.alarm_id] = self.active[m.alarm_id] = alarm
            self._break_through(alarm)
        else:
            if known is None:  # its start is older than what we read: keep the end on record
                known = Alarm(m.bed, m.record, m.alarm_id, m.kind, m.priority, m.time, m.message)
                self._episodes[m.alarm_id] = known
            if known.end is None:
                known.end = max(m.time, known.start)
            self.active.pop(m.alarm_id, None)
        self._prune_history(m.time)

    def _end_bed_alarms(self, bed: str, before: float, why: str) -> None:
        """End the bed's active alarms that started before `before`: their source is gone (a
        restarted worker does not know them, a silent bed sends nothing to end them)."""
        for alarm_id, alarm in list(self.active.items()):
            if alarm.bed == bed and alarm.start <= before:
                alarm.end = max(before, alarm.start)
                alarm.message = f"{alarm.message} (ended: {why})"
                del self.active[alarm_id]

    def expire_silent(self, now_mono: float, last_data: Callable[[str], float | None]) -> None:
        """A bed whose signal stopped SILENT_ALARM_S ago keeps no physiological alarm active:
        nothing will end it. The tile says NO SIGNAL and the worker's no_data alarm stays.
        `last_data(bed)` is the monotonic time of the bed's last samples (None: never, or not
        a bed any more)."""
        for alarm_id, alarm in list(self.active.items()):
            last = last_data(alarm.bed)
            if alarm.priority == "technical" or last is None:
                continue
            if now_mono - last > SILENT_ALARM_S:
                alarm.end = max(time.time() - (now_mono - last), alarm.start)
                alarm.message = f"{alarm.message} (ended: no signal from the bed)"
                del self.active[alarm_id]

    def _prune_history(self, now: float) -> None:
        while self._episodes:
            alarm_id, oldest = next(iter(self._episodes.items()))
            too_many = len(self._episodes) > HISTORY_MAX
            expired = oldest.end is not None and oldest.end < now - HISTORY_S
            if not (too_many or expired):
                break
            del self._episodes[alarm_id]
            self.active.pop(alarm_id, None)

    def _break_through(self, alarm: Alarm) -> None:
        if self._audio_paused_until is None or time.time() - alarm.start > BREAK_THROUGH_AGE_S:
            return
        if alarm.priority == "high" or alarm.rank > self._audio_paused_rank:
            self._audio_paused_until = None
            self._audio_note = f"audio resumed: new {alarm.priority} alarm on {alarm.bed}"

    # -- reads -----------------------------------------------------------------------------
    def worst_per_bed(self) -> dict[str, list[Alarm]]:
        """Each bed's active alarms, the one asking most for attention first."""
        per_bed: dict[str, list[Alarm]] = {}
        for alarm in self.active.values():
            per_bed.setdefault(alarm.bed, []).append(alarm)
        for alarms in per_bed.values():
            # Unacknowledged first within a priority: the one still asking for attention.
            alarms.sort(key=lambda a: (-a.rank, a.acked_at is not None, -a.start))
        return per_bed

    def active_alarms(self, now: float) -> list[dict]:
        """Active alarms, highest priority first, then newest first."""
        alarms = sorted(self.active.values(), key=lambda a: (-a.rank, -a.start))
        return [a.as_dict(now) for a in alarms]

    def history(self, beds: list[str] | None, kinds: list[str] | None, now: float) -> list[dict]:
        """Alarm episodes of the last 24 h, newest first, optionally only some beds/kinds."""
        self._prune_history(now)
        return [
            a.as_dict(now)
            for a in reversed(self._episodes.values())
            if (not beds or a.bed in beds) and (not kinds or a.kind in kinds)
        ]

    # -- what the people at the station do -------------------------------------------------
    def acknowledge(self, alarm_id: str, now: float) -> bool:
        """Acknowledge an active alarm: its audio stops and its tile stops flashing."""
        alarm = self.active.get(alarm_id)
        if alarm is None or alarm.acked_at is not None:
            return False
        alarm.acked_at = now
        return True

    def pause_audio(self, now_mono: float) -> None:
        """Silence for AUDIO_PAUSE_S, timed on the monotonic clock: a wall-clock step (NTP, a
        changed time zone setting) neither lengthens nor ends the pause."""
        self._audio_paused_until = now_mono + AUDIO_PAUSE_S
        self._audio_paused_rank = max((a.rank for a in self.active.values()), default=0)
        self._audio_note = ""

    def resume_audio(self) -> None:
        self._audio_paused_until = None
        self._audio_note = ""

    def audio(self, now_mono: float) -> dict:
        """Audio state: what should sound, and the pause countdown if paused."""
        if self._audio_paused_until is not None and now_mono >= self._audio_paused_until:
            self._audio_paused_until = None
        sounding = [a for a in self.active.values() if a.acked_at is None]
        loudest = max(sounding, key=lambda a: a.rank).priority if sounding else None
        paused = self._audio_paused_until is not None
        return {
            "paused": paused,
            "remaining_s": max(0.0, self._audio_paused_until - now_mono) if paused else 0.0,
            "tone": None if paused else loudest,
            "note": self._audio_note,
        }
