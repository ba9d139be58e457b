"""Arrhythmia and technical alarms for one bed, fed by its classified beats and raw samples."""

from monitor.alarms.engine import AlarmEngine
from monitor.alarms.events import KINDS, PRIORITIES, AlarmEvent
from monitor.alarms.settings import AlarmSettings

__all__ = ["KINDS", "PRIORITIES", "AlarmEngine", "AlarmEvent", "AlarmSettings"]
