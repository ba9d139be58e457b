"""What the alarm engine tells the ward: one start and one end event per alarm episode."""

from __future__ import annotations

from dataclasses import asdict, dataclass

#: Every alarm kind and its priority. High = life-threatening, medium = arrhythmia needing
#: attention, technical = the monitoring itself is impaired (IEC 60601-2-27 distinguishes
#: physiological from technical alarms the same way).
_KINDS: dict[str, tuple[str, str]] = {
    "asystole": ("high", "Asystole"),
    "vtach": ("high", "Ventricular tachycardia"),
    "vflutter": ("high", "Ventricular flutter/fibrillation"),
    "xtachy": ("high", "Extreme tachycardia"),
    "xbrady": ("high", "Extreme bradycardia"),
    "pvc_couplet": ("medium", "PVC couplets"),
    "pvc_run": ("medium", "PVC run"),
    "bigeminy": ("medium", "Ventricular bigeminy"),
    "trigeminy": ("medium", "Ventricular trigeminy"),
    "svt": ("medium", "Supraventricular tachycardia"),
    "afib": ("medium", "Atrial fibrillation"),
    "pause": ("medium", "Pause"),
    "hr_high": ("medium", "Heart rate high"),
    "hr_low": ("medium", "Heart rate low"),
    "pvc_burden": ("medium", "Frequent PVCs"),
    "leads_off": ("technical", "Leads off"),
    "lead_fault": ("technical", "Lead fault"),
    "noisy_signal": ("technical", "Noisy signal"),
    "no_data": ("technical", "No data"),
    "pipeline_reset": ("technical", "ECG analysis restarting"),
}
PRIORITIES: dict[str, str] = {kind: priority for kind, (priority, _) in _KINDS.items()}
#: Rank of each alarm priority: higher is more urgent.
PRIORITY_RANK: dict[str, int] = {"technical": 1, "medium": 2, "high": 3}
#: What a person calls each kind, for messages.
NAMES: dict[str, str] = {kind: name for kind, (_, name) in _KINDS.items()}
KINDS: tuple[str, ...] = tuple(PRIORITIES)
#: What a clinician reads as one finding: while a kind on the left is active, the kinds on its
#: right do not start, and they end when it starts (V-fib makes a rate, a run or a pattern of
#: detected beats meaningless; a V-tach is fast without a second "extreme tachycardia"; an
#: extreme-rate alarm replaces the medium HR alarm; shockable VF is not asystole even when no QRS
#: is detected). Asystole ends every other physiological alarm itself (`AlarmEngine`), so a bed
#: shows one red alarm, the most severe.
SUPERSEDES: dict[str, tuple[str, ...]] = {
    "vflutter": ("asystole", "vtach", "xtachy", "xbrady", "svt", "afib", "pvc_run", "pvc_couplet",
                 "bigeminy", "trigeminy", "pvc_burden", "hr_high", "hr_low", "pause"),
    "vtach": ("xtachy", "hr_high", "pvc_run", "pvc_couplet", "pvc_burden"),
    # The analysed lead is faulty (another lead shows beats it does not): its beats are not
    # the heart's, so nothing built on them stands.
    "lead_fault": ("vflutter", "vtach", "xtachy", "xbrady", "svt", "afib", "pvc_run",
                   "pvc_couplet", "bigeminy", "trigeminy", "pvc_burden", "hr_high", "hr_low",
                   "pause"),
    "xtachy": ("hr_high",),
    "xbrady": ("hr_low",),
}
#: kind -> the kinds whose activity keeps it from starting (the inverse of SUPERSEDES).
SUPERSEDED_BY: dict[str, tuple[str, ...]] = {
    kind: tuple(top for top, below in SUPERSEDES.items() if kind in below) for kind in PRIORITIES
}
STATES = ("start", "end")


@dataclass(frozen=True)
class AlarmEvent:
    """One edge of an alarm episode.

    `time` is the stream's own clock (epoch seconds of the sample the decision rests on), not
    the wall clock of the worker, so a replayed or delayed stream yields the same events.
    `alarm_id` is shared by the start and the end event of one episode.
    """

    alarm_id: str
    kind: str
    priority: str
    state: str
    time: float
    index: int
    message: str

    def __post_init__(self) -> None:
        if self.kind not in PRIORITIES:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.priority != PRIORITIES[self.kind]:
            raise ValueError(
                f"priority of {self.kind} must be {PRIORITIES[self.kind]!r}, got {self.priority!r}"
            )
        if self.state not in STATES:
            raise ValueError(f"state must be 'start' or 'end', got {self.state!r}")

    def to_dict(self) -> dict:
        """The alarm fields of an ecg.alerts message (the worker adds bed and record)."""
        return asdict(self)
