"""The alarm engine of one bed: labelled beats and raw samples in, alarm episodes out.

Design:
- Every alarm is an episode: one "start" event when its condition first holds and one "end"
  event once the condition has been absent for a hold time (`AlarmSettings.end_hold_s` and
  friends). Conditions with a level (HR, PVC burden, AF, SQI) also have a hysteresis band.
- Rhythm alarms are decided on beats and use the beats' own R-peak times; asystole, signal
  quality and discontinuities are decided on samples; no_data alone on the wall clock, because
  only the wall clock moves when the stream stops.
- Beats arrive late: the beat cutter reports a beat once the next R-peak is detected, about one
  RR plus the detector latency after its R-peak. Asystole therefore waits for that hold-back
  on top of `asystole_s`, and is judged at the START of each samples chunk (all beats cut
  from earlier chunks are in by then, whichever order the caller feeds beats and samples).
- Ventricular fibrillation/flutter is decided on the samples too (`monitor.alarms.vf`), so it
  is found whatever the QRS detector does meanwhile; while it lasts, asystole and the alarms
  built on detected beats do not start (`events.SUPERSEDES`). The same kind also opens on an
  extreme rate of detected beats (flutter that the detector still follows).
- When asystole starts, every other physiological episode ends: no rhythm continues without
  beats. A flat line raises leads_off but does NOT suppress asystole: without electrode
  impedance a flat lead and a silent heart look alike, and missing asystole is the worse error.
- reset() ends every open episode and opens a pipeline_reset episode ("ECG analysis
  restarting") that ends at the first beat analysed after the reset.
"""

from __future__ import annotations

import math
import statistics
import time as _time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from monitor.alarms.events import NAMES, PRIORITIES, SUPERSEDED_BY, SUPERSEDES, AlarmEvent
from monitor.alarms.leads import OtherLead
from monitor.alarms.quality import QualityReading, SignalQuality
from monitor.alarms.settings import AlarmSettings
from monitor.alarms.vf import MAX_FS, MIN_FS, VFDetector, VFReading, VFSettings
from monitor.contract import CLASSES
from monitor.signal.rhythm import (
    entropy,
    nrmssd,
    pattern_cycles,
    steadiness,
    trimmed,
    turning_point_ratio,
)

# Medians of the few recent RR intervals use `statistics.median`: the same value as np.median,
# at a tenth of its cost on a dozen floats, and the engine takes several per beat.

#: Beats whose RR intervals are not the conducted rhythm: ectopics (premature ventricular or
#: supraventricular, fusion) and paced/unclassifiable beats. Their coupling interval and the
#: pause after them are left out of AF, else frequent PACs or PVCs look irregular (on DS1,
#: excluding S beats removed the false AF of records 209 and 220 and cost no AF window; the
#: reference labels AF beats N).
AF_EXCLUDED = frozenset("SVFQ")
#: Seconds of V beats counted by the PVC burden.
BURDEN_WINDOW_S = 60.0
PHYSIOLOGICAL = tuple(k for k, p in PRIORITIES.items() if p != "technical")


@dataclass
class _Episode:
    start: AlarmEvent
    #: Stream time the condition last held.
    last_seen: float
    #: Beats and peak rate of the qualifying runs (VT, SVT), and the run counted last.
    beats: int = 0
    peak: float = 0.0
    run: object = None


@dataclass
class _Run:
    """Consecutive beats of one label (V runs, S runs): their RR intervals."""

    label: str = ""
    rr: list[float] = field(default_factory=list)

    def rate(self, last: int = 0) -> float:
        """Rate of the run, coupling interval of its first beat included; of its `last` beats
        only when given (0: every beat)."""
        rr = self.rr[-last:] if last else self.rr
        return 60.0 / float(np.mean(rr)) if rr else 0.0

    def __len__(self) -> int:
        return len(self.rr)


class AlarmEngine:
    """Alarm state of one bed. Not thread-safe: one engine per bed, fed in stream order."""

    def __init__(self, fs: float, bed: str = "", settings: AlarmSettings | None = None) -> None:
        if (
            isinstance(fs, bool)
            or not isinstance(fs, (int, float))
            or not fs > 0
            or not (math.isfinite(fs))
        ):
            raise ValueError(f"fs must be a positive finite sampling rate in Hz, got {fs!r}")
        if not isinstance(bed, str):
            raise ValueError(f"bed must be a string, got {bed!r}")
        if settings is not None and not isinstance(settings, AlarmSettings):
            raise ValueError(f"settings must be an AlarmSettings, got {type(settings).__name__}")
        self.settings = settings or AlarmSettings()
        self.bed = bed
        self.fs = float(fs)
        self._open: dict[str, _Episode] = {}
        self._counts = dict.fromkeys(CLASSES, 0)
        self._wall_last: float | None = None
        self._quality = SignalQuality(self.fs, self.settings)
        self._vf = self._vf_detector()
        #: The bed's other leads, when its chunks carry them.
        self._others: list[OtherLead] = []
        self._fault_now = False
        self._flat = False
        self._sqi = 0.0
        self._forget_stream()

    # --- read-only state --------------------------------------------------------------------

    @property
    def hr(self) -> float | None:
        """Heart rate (bpm): median of the recent RR; 0 during asystole, None before the first
        beat (and after a reset)."""
        if "asystole" in self._open:
            return 0.0
        if not self._rr:
            return None
        return 60.0 / statistics.median(self._rr)

    @property
    def counts(self) -> dict[str, int]:
        """Beats seen per AAMI class since the engine started (resets do not clear it)."""
        return dict(self._counts)

    @property
    def pvc_per_min(self) -> float:
        """V beats in the last 60 s of stream time."""
        now = max(self._last_beat_time or -math.inf, self._clock_time or -math.inf)
        return float(sum(1 for t in self._v_times if t > now - BURDEN_WINDOW_S))

    @property
    def sqi(self) -> float:
        """Signal quality of the latest window, 0 (unusable or no signal yet) .. 1 (clean)."""
        return self._sqi

    @property
    def active(self) -> dict[str, AlarmEvent]:
        """Open episodes: kind -> its start event."""
        return {kind: ep.start for kind, ep in self._open.items()}

    # --- inputs -----------------------------------------------------------------------------

    def on_beat(self, label: str, index: int, time: float, rr: float) -> list[AlarmEvent]:
        """One classified beat, in stream order. `rr` is the interval from the previous beat."""
        if label not in self._counts:
            raise ValueError(f"label must be one of {', '.join(CLASSES)}, got {label!r}")
        index = _check_index(index, "index")
        time = _check_finite(time, "time")
        rr = _check_finite(rr, "rr")
        if rr <= 0:
            raise ValueError(f"rr must be > 0 s, got {rr!r}")
        if self._last_beat_time is not None and time < self._last_beat_time:
            raise ValueError(
                f"time {time!r} is before the previous beat ({self._last_beat_time!r}); "
                "beats must arrive in stream order"
            )
        s = self.settings
        out: list[AlarmEvent] = []
        self._counts[label] += 1
        if "pipeline_reset" in self._open:
            out += self._close("pipeline_reset", index, time, "ECG analysis resumed")
        anchor = time
        if "asystole" in self._open:
            # This beat proves a later R-peak was detected by now: the heart beats again.
            if self._clock_time is not None and self._clock_time > time:
                anchor, end_index = self._clock_time, self._clock_index
            else:
                end_index = index
            out += self._close("asystole", end_index, anchor, "QRS detected again")
            self._silence_until = anchor
        # An interval that began before the last asystole ended is that asystole, reported
        # (late) by the cutter: it is neither a pause nor a second asystole.
        covered = self._silence_until is not None and time - rr < self._silence_until
        if rr >= s.asystole_s and not covered:
            # Seen only now: no samples told us in time (beats fed without a stream), or the
            # gap was shorter than the sample check's hold-back for the cutter's latency.
            late = round((rr - s.asystole_s) * self.fs)
            out += self._open_episode(
                "asystole",
                max(0, index - late),
                time - rr + s.asystole_s,
                f"Asystole: no QRS for {rr:.1f} s (reported late, by the beat that ended it)",
            )
            out += self._close("asystole", index, time, "QRS detected again")
            self._silence_until = time
            covered = True

        self._rr.append(rr)
        self._fast_rr.append(rr)
        self._extreme_rr.append(rr)
        self._beat_times.append(time)
        self._labels.append(label)
        if label == "V":
            self._v_times.append(time)
        while self._v_times and self._v_times[0] <= time - BURDEN_WINDOW_S:
            self._v_times.popleft()
        couplet = self._extend_run(label, rr)
        conducted = label not in AF_EXCLUDED and self._prev_label not in AF_EXCLUDED
        if conducted and not covered:
            self._af_rr.append(rr)
        self._prev_label = label
        self._last_beat_time = time
        self._anchor_time = max(anchor, self._anchor_time or anchor)
        self._last_rr = rr

        pause = s.pause_s <= rr < s.asystole_s and not covered
        out += self._track(
            "pause",
            pause,
            index,
            time,
            lambda: f"Pause: {rr:.1f} s without a beat",
            hold=s.pattern_end_hold_s,
        )
        out += self._track_ventricular(couplet, index, time)
        svt = self._run_meets("S", s.svt_beats, s.svt_rate_bpm)
        out += self._track_run("svt", svt, index, time)
        out += self._track_patterns(index, time)
        out += self._track_af(index, time)
        out += self._track_rate(index, time)
        return out

    def on_samples(
        self,
        samples_mv: np.ndarray,
        start_index: int,
        time: float,
        *,
        wall_time: float | None = None,
        others: Sequence[np.ndarray] = (),
    ) -> list[AlarmEvent]:
        """A chunk of the raw lead (mV) starting at source sample `start_index`, stream `time`.

        `wall_time` is when the chunk arrived (default: now); only no_data uses it. `others`:
        the bed's other leads over the same samples, which can show that a silent or
        fibrillating analysed lead is a lead fault.
        """
        x = np.asarray(samples_mv, dtype=np.float64)
        if x.ndim != 1:
            raise ValueError(f"samples_mv must be one-dimensional, got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("samples_mv contains NaN or infinite values")
        start_index = _check_index(start_index, "start_index")
        time = _check_finite(time, "time")
        wall = _time.time() if wall_time is None else _check_finite(wall_time, "wall_time")
        out: list[AlarmEvent] = []
        if "no_data" in self._open:
            out += self._close("no_data", start_index, time, "ECG data flowing again")
        self._wall_last = wall
        if self._clock_index is not None and start_index != self._clock_index:
            out += self.reset(
                f"samples jump from index {self._clock_index} to {start_index}", start_index, time
            )
        if len(others) != len(self._others) or self._clock_index is None:
            self._others = [OtherLead(self.fs, self.settings) for _ in others]
        self._fault_now = False
        if self._clock_index is None:
            self._quality.restart(start_index)
            if self._vf is not None:
                self._vf.restart(start_index)
            self._anchor_time = time
        else:
            out += self._check_asystole(start_index, time)
        self._clock_index = start_index + len(x)
        self._clock_time = time + len(x) / self.fs
        for reading in self._quality.feed(x):
            out += self._on_quality(reading, time + (reading.index - start_index) / self.fs)
        for k, (lead, other) in enumerate(zip(others, self._others, strict=True)):
            lead = np.asarray(lead, dtype=np.float64)
            if lead.shape != x.shape or not np.all(np.isfinite(lead)):
                raise ValueError(f"others[{k}] must be finite samples as many as samples_mv")
            other.feed(lead, time)
        for vf in self._vf.feed(x) if self._vf is not None else ():
            out += self._on_vf(vf, time + (vf.index - start_index) / self.fs)
        out += self._track(
            "lead_fault", self._fault_now and not self._flat, start_index, time,
            lambda: "Lead fault: the analysed lead shows no beats or a fibrillation-like signal "
            "while another lead shows beats; check its electrodes",
            hold=self.settings.noisy_end_hold_s,
        )  # fmt: skip
        return out

    def tick(self, now_wall: float) -> list[AlarmEvent]:
        """Wall-clock heartbeat: raises no_data when samples stop arriving."""
        now_wall = _check_finite(now_wall, "now_wall")
        if self._wall_last is None:
            self._wall_last = now_wall  # silence is counted from the first tick
            return []
        silent = now_wall - self._wall_last
        if silent < self.settings.no_data_s or "no_data" in self._open:
            return []
        when = self._clock_time if self._clock_time is not None else self._wall_last
        return self._open_episode(
            "no_data", self._clock_index or 0, when, f"No ECG data for {silent:.0f} s"
        )

    def reset(
        self, reason: str, index: int, time: float, *, fs: float | None = None
    ) -> list[AlarmEvent]:
        """The beat pipeline restarted (gap, rate change): nothing before `index` carries over.

        Ends every open episode and opens pipeline_reset, which ends at the first beat analysed
        afterwards. `fs` changes the sampling rate. Beat counts survive; rhythm state does not.
        """
        index = _check_index(index, "index")
        time = _check_finite(time, "time")
        if fs is not None:
            fs = _check_finite(fs, "fs")
            if fs <= 0:
                raise ValueError(f"fs must be > 0 Hz, got {fs!r}")
        out: list[AlarmEvent] = []
        for kind in list(self._open):
            out += self._close(kind, index, time, f"ended by pipeline reset ({reason})")
        if fs is not None and fs != self.fs:
            self.fs = float(fs)
            self._quality = SignalQuality(self.fs, self.settings)
            self._vf = self._vf_detector()
            self._others = []
        self._forget_stream()
        out += self._open_episode(
            "pipeline_reset", index, time, f"ECG analysis restarting: {reason}"
        )
        return out

    def close_all(self, index: int, time: float, reason: str) -> list[AlarmEvent]:
        """The bed leaves this engine (silent for long, forgotten): end every open episode, so
        none stays open on the central station with nothing left to end it."""
        index = _check_index(index, "index")
        time = _check_finite(time, "time")
        out: list[AlarmEvent] = []
        for kind in list(self._open):
            out += self._close(kind, index, time, f"ended: {reason}")
        return out

    # --- beat-driven alarms -----------------------------------------------------------------

    def _extend_run(self, label: str, rr: float) -> bool:
        """Grow or restart the current run; True when this beat ended a run of exactly 2 V.

        A beat after a pause (`run_pause_ratio` times the run's last interval) does not
        continue the run even with the same label: tachycardias are regular, and a beat
        coming that late is the next event, not the same run.
        """
        run = self._run
        paused = len(run) >= 2 and rr > self.settings.run_pause_ratio * run.rr[-1]
        if label == run.label and not paused:
            run.rr.append(rr)
            return False
        couplet = run.label == "V" and len(run) == 2
        self._run = _Run(label, [rr])
        return couplet

    def _run_meets(self, label: str, beats: int, rate_bpm: float) -> bool:
        """The run holds `beats` consecutive beats of `label` at `rate_bpm` or faster: its last
        `beats`, so a run that starts slow (an idioventricular rhythm speeding up, a slow beat
        taken for its first) qualifies once its beats are fast enough."""
        run = self._run
        return run.label == label and len(run) >= beats and run.rate(beats) >= rate_bpm

    def _track_ventricular(self, couplet: bool, index: int, time: float) -> list[AlarmEvent]:
        s = self.settings
        run = self._run
        vt = self._run_meets("V", s.vt_beats, s.vt_rate_bpm)
        out = []
        if vt and "pvc_run" in self._open:
            out += self._close("pvc_run", index, time, "PVC run escalated to V-tach")
        out += self._track_run("vtach", vt, index, time)
        slow_run = run.label == "V" and len(run) >= s.pvc_run_beats and not vt
        out += self._track(
            "pvc_run",
            slow_run,
            index,
            time,
            lambda: f"PVC run: {len(run)} ventricular beats at {run.rate():.0f} bpm",
        )
        out += self._track(
            "pvc_couplet",
            couplet,
            index,
            time,
            lambda: "PVC couplet: 2 consecutive ventricular beats",
            hold=s.pattern_end_hold_s,
        )
        fast_rate = 60.0 / statistics.median(self._fast_rr)
        fast = len(self._fast_rr) == self._fast_rr.maxlen and fast_rate >= s.vflutter_rate_bpm
        out += self._track(
            "vflutter",
            fast,
            index,
            time,
            lambda: f"Ventricular flutter/fibrillation: rate {fast_rate:.0f} bpm",
            hold=s.vf_end_hold_s,
        )
        per_min = self.pvc_per_min
        burden_limit = s.pvc_burden_per_min - (
            s.pvc_burden_hysteresis_per_min if "pvc_burden" in self._open else 0.0
        )
        out += self._track(
            "pvc_burden",
            per_min >= burden_limit and per_min > 0,
            index,
            time,
            lambda: f"Frequent PVCs: {per_min:.0f} per minute",
        )
        return out

    def _track_run(self, kind: str, met: bool, index: int, time: float) -> list[AlarmEvent]:
        """A run alarm (VT, SVT); the episode accumulates the beats of every qualifying run."""
        run = self._run
        out = self._track(
            kind,
            met,
            index,
            time,
            lambda: f"{NAMES[kind]}: {len(run)} beats at {run.rate():.0f} bpm",
        )
        if met and kind in self._open:  # not when a more severe alarm supersedes it
            ep = self._open[kind]
            ep.beats += 1 if ep.run is run else len(run)
            ep.run = run
            ep.peak = max(ep.peak, run.rate())
        return out

    def _track_patterns(self, index: int, time: float) -> list[AlarmEvent]:
        s = self.settings
        labels = list(self._labels)
        out = []
        for kind, period, cycles, name in (
            ("bigeminy", 2, s.bigeminy_cycles, "Ventricular bigeminy"),
            ("trigeminy", 3, s.trigeminy_cycles, "Ventricular trigeminy"),
        ):
            n = pattern_cycles(labels, period)
            out += self._track(
                kind,
                n >= cycles,
                index,
                time,
                lambda n=n, name=name: f"{name}: {n} cycles",
                hold=s.pattern_end_hold_s,
            )
        return out

    def _track_af(self, index: int, time: float) -> list[AlarmEvent]:
        s = self.settings
        met = False
        if len(self._af_rr) == self._af_rr.maxlen:
            # The measures of `irregularity`, each only when the ones before it pass: this runs
            # at every beat, and a regular rhythm fails the first.
            rr = trimmed(self._af_rr)
            variation = nrmssd(rr)
            if "afib" in self._open:
                met = variation >= s.af_nrmssd * s.af_end_fraction
            else:
                met = (
                    variation >= s.af_nrmssd
                    and entropy(rr) >= s.af_entropy
                    and s.af_tpr_low <= turning_point_ratio(rr) <= s.af_tpr_high
                )
        hr = self.hr or 0.0
        return self._track(
            "afib",
            met,
            index,
            time,
            lambda: f"Atrial fibrillation suspected: irregular RR, HR {hr:.0f} bpm",
            hold=s.af_end_hold_s,
        )

    def _track_rate(self, index: int, time: float) -> list[AlarmEvent]:
        s = self.settings
        out = self._track_extreme("xtachy", s.xtachy_beats, index, time)
        out += self._track_extreme("xbrady", s.xbrady_beats, index, time)
        full = len(self._rr) == self._rr.maxlen
        hr = self.hr or 0.0
        high_limit = s.hr_high_bpm - (s.hr_hysteresis_bpm if "hr_high" in self._open else 0.0)
        low_limit = s.hr_low_bpm + (s.hr_hysteresis_bpm if "hr_low" in self._open else 0.0)
        return out + self._track(
            "hr_high",
            full and hr >= high_limit,
            index,
            time,
            lambda: f"Heart rate high: {hr:.0f} bpm (limit {s.hr_high_bpm:.0f})",
            confirm=s.hr_confirm_s,
        ) + self._track(
            "hr_low",
            full and hr <= low_limit,
            index,
            time,
            lambda: f"Heart rate low: {hr:.0f} bpm (limit {s.hr_low_bpm:.0f})",
            confirm=s.hr_confirm_s,
        )

    def _track_extreme(self, kind: str, beats: int, index: int, time: float) -> list[AlarmEvent]:
        """Extreme rate: `beats` of the last `beats` + 1 intervals beyond the limit (one stray
        interval, an ectopic coupling or a missed beat, does not reset the count); it ends
        once that no longer holds with the limit moved inside by the HR hysteresis."""
        s = self.settings
        recent = list(self._extreme_rr)[-(beats + 1) :]
        band = s.hr_hysteresis_bpm if kind in self._open else 0.0
        if kind == "xtachy":
            limit, name = s.xtachy_bpm, "tachycardia"
            beyond = [rr for rr in recent if 60.0 / rr >= limit - band]
        else:
            limit, name = s.xbrady_bpm, "bradycardia"
            beyond = [rr for rr in recent if 60.0 / rr <= limit + band]
        met = len(beyond) >= beats
        rate = 60.0 / statistics.median(beyond) if met else 0.0
        return self._track(
            kind, met, index, time,
            lambda: f"Extreme {name}: {rate:.0f} bpm for {beats} beats (limit {limit:.0f})",
        )  # fmt: skip

    # --- sample-driven alarms ---------------------------------------------------------------

    def _check_asystole(self, index: int, time: float) -> list[AlarmEvent]:
        """No beat reported for asystole_s plus what the cutter may still be holding back.

        The newest R-peak is invisible until its successor is detected, and it may lie up to a
        pause after the last reported one (a longer interval would itself be a pause), so the
        hold-back is max(pause_s, last RR) plus the detector latency. A pause followed by a
        slow escape beat can thus not pass for asystole. The price is up to ~2 s of extra
        delay, well inside the 10 s IEC 60601-2-27 allows for cardiac standstill.
        """
        s = self.settings
        if "asystole" in self._open or "vflutter" in self._open or self._anchor_time is None:
            return []
        pending = min(max(self._last_rr or 0.0, s.pause_s), s.asystole_s)
        holdback = pending + s.beat_latency_s
        silent = time - self._anchor_time - holdback
        if silent < s.asystole_s:
            return []
        if self._another_lead_beats(time, asystole=True):  # the heart beats: this lead lost it
            self._fault_now = True
            self._silence_until = time  # a beat after this gap reports no late asystole
            return []
        out: list[AlarmEvent] = []
        for kind in PHYSIOLOGICAL:
            if kind in self._open:
                out += self._close(kind, index, time, "ended: no QRS detected (asystole)")
            self._pending.pop(kind, None)
        self._run = _Run()  # a run does not continue across a standstill
        out += self._open_episode("asystole", index, time, f"Asystole: no QRS for {silent:.1f} s")
        return out

    def _vf_detector(self) -> VFDetector | None:
        """The signal-level VF detector, for the rates it supports (the stream's whole range)."""
        if not MIN_FS <= self.fs <= MAX_FS:
            return None
        s = self.settings
        return VFDetector(self.fs, VFSettings(score_threshold=s.vf_score,
                                              amplitude_floor_mv=s.vf_amplitude_mv))  # fmt: skip

    def _organised(self, time: float, window_s: float) -> bool:
        """Whether the beats detected in the `window_s` before `time` are a steady rhythm."""
        s = self.settings
        times = [t for t in self._beat_times if time - window_s < t <= time]
        if len(times) < 4:
            return False
        cv, rate = steadiness(times)
        return cv < s.vf_organised_cv and rate < s.vf_organised_bpm

    def _another_lead_beats(self, time: float, asystole: bool = False) -> bool:
        """Whether another lead of the bed shows the heart beating (`monitor.alarms.leads`):
        a steady train, or, against an asystole when the analysed lead has been lost (it went
        flat, electrodes off, or its last beats were not the other lead's: it was counting
        noise), any rhythm of R-peaks as large as before, without an asystole-long gap."""
        since = self._anchor_time or -math.inf
        flat = self._flat_time > since
        lost = asystole and (flat or any(
            other.disagrees(time, self._beat_times, since) for other in self._others))  # fmt: skip
        return any(  # the looser question first: it notes the lead's R-peak size before
            (lost and other.shows_any_rhythm(time, since)) or other.shows_beats(time)
            for other in self._others
        )

    def _saturated(self, time: float, window_s: float) -> bool:
        """Whether a quality reading within the `window_s` before `time` found the analysed
        lead saturated (older ones are forgotten: readings come in time order)."""
        times = self._saturated_times
        while times and times[0] <= time - window_s:
            times.popleft()
        return any(t <= time for t in times)

    def _on_vf(self, r: VFReading, time: float) -> list[AlarmEvent]:
        window_s = self._vf.settings.window_s
        refuted = r.shockable and self._another_lead_beats(time)
        self._fault_now |= refuted
        shockable = r.shockable and not refuted and not self._organised(time, window_s)
        if (
            not shockable
            and "vflutter" in self._open
            and self._saturated(time, window_s)
            and not self._another_lead_beats(time)
        ):
            # A clipped window (a defibrillation shock, the amplifier saturating on coarse VF)
            # cannot say that VF has ended: the alarm is held until a readable window, or
            # another lead's beats, can. A flat line is not held: VF that fades to asystole
            # must let asystole show.
            return self._track("vflutter", True, r.index, time, str)
        self._vf_run = self._vf_run + 1 if shockable else 0
        met = shockable and (self._vf_run >= self.settings.vf_confirm or "vflutter" in self._open)
        return self._track(
            "vflutter", met, r.index, time,
            lambda: f"Ventricular fibrillation/flutter: {self._vf_run} s of a shockable signal, "
            f"{r.freq:.1f} Hz, {r.amplitude_mv:.1f} mV",
            hold=self.settings.vf_end_hold_s,
        )  # fmt: skip

    def _on_quality(self, q: QualityReading, time: float) -> list[AlarmEvent]:
        s = self.settings
        self._sqi = q.sqi
        self._flat = q.flat
        if q.flat:
            self._flat_time = time
        if q.saturated and self._vf is not None:
            self._saturated_times.append(time)
        out = self._track(
            "leads_off",
            q.flat,
            q.index,
            time,
            lambda: f"Leads off? Flat line for {s.flat_s:.0f} s",
            hold=s.leads_off_end_hold_s,
        )
        limit = s.sqi_good if "noisy_signal" in self._open else s.sqi_noisy
        noisy = not q.flat and q.sqi < limit
        cause = "saturated (clipped)" if q.saturated else "noisy"
        out += self._track(
            "noisy_signal",
            noisy,
            q.index,
            time,
            lambda: f"ECG signal {cause}: quality {q.sqi:.2f}",
            hold=s.noisy_end_hold_s,
            confirm=s.noisy_s,
        )
        return out

    # --- episode bookkeeping ----------------------------------------------------------------

    def _track(
        self,
        kind: str,
        met: bool,
        index: int,
        time: float,
        message: Callable[[], str],
        hold: float | None = None,
        confirm: float = 0.0,
    ) -> list[AlarmEvent]:
        """Open the episode once `met` has held for `confirm` seconds; end it once absent for
        `hold` seconds (default `end_hold_s`)."""
        ep = self._open.get(kind)
        met = met and not any(top in self._open for top in SUPERSEDED_BY[kind])
        if met:
            if ep is not None:
                ep.last_seen = time
                return []
            since = self._pending.setdefault(kind, time)
            if time - since < confirm:
                return []
            del self._pending[kind]
            return self._open_episode(kind, index, time, message())
        self._pending.pop(kind, None)
        hold = self.settings.end_hold_s if hold is None else hold
        if ep is not None and time - ep.last_seen >= hold:
            return self._close(kind, index, time, f"{NAMES[kind]} ended")
        return []

    def _open_episode(self, kind: str, index: int, time: float, message: str) -> list[AlarmEvent]:
        out = []
        for below in SUPERSEDES.get(kind, ()):
            self._pending.pop(below, None)
            if below in self._open:
                out += self._close(below, index, time, f"superseded by {NAMES[kind]}")
        event = self._event(kind, "start", index, time, message, f"{self.bed}:{kind}:{index}")
        self._open[kind] = _Episode(event, time)
        return [*out, event]

    def _close(self, kind: str, index: int, time: float, message: str) -> list[AlarmEvent]:
        ep = self._open.pop(kind)
        duration = max(0.0, time - ep.start.time)
        detail = f" ({ep.beats} beats, peak {ep.peak:.0f} bpm)" if ep.beats else ""
        text = f"{message}; lasted {duration:.1f} s{detail}"
        return [self._event(kind, "end", index, time, text, ep.start.alarm_id)]

    def _event(
        self, kind: str, state: str, index: int, time: float, message: str, alarm_id: str
    ) -> AlarmEvent:
        return AlarmEvent(alarm_id, kind, PRIORITIES[kind], state, float(time), int(index), message)

    def _forget_stream(self) -> None:
        """Drop everything learnt about the current stream (at start and on reset)."""
        s = self.settings
        self._rr: deque[float] = deque(maxlen=s.hr_beats)
        self._fast_rr: deque[float] = deque(maxlen=s.vflutter_beats)
        self._extreme_rr: deque[float] = deque(maxlen=max(s.xtachy_beats, s.xbrady_beats) + 1)
        self._af_rr: deque[float] = deque(maxlen=s.af_window_beats)
        longest = max(2 * s.bigeminy_cycles, 3 * s.trigeminy_cycles) + 1
        self._labels: deque[str] = deque(maxlen=longest)
        self._v_times: deque[float] = deque()
        self._run = _Run()
        self._prev_label: str | None = None
        self._last_beat_time: float | None = None
        self._last_rr: float | None = None
        self._anchor_time: float | None = None
        #: Stream time the last asystole ended (intervals starting before it belong to it).
        self._silence_until: float | None = None
        self._clock_index: int | None = None
        self._clock_time: float | None = None
        #: kind -> stream time its condition started holding, for alarms that need it to persist.
        self._pending: dict[str, float] = {}
        #: Consecutive shockable VF readings, and the recent beats that can veto them.
        self._vf_run = 0
        self._beat_times: deque[float] = deque(maxlen=64)
        #: Stream time of the last quality reading that found the analysed lead flat.
        self._flat_time = -math.inf
        #: Stream times of the recent quality readings that found it saturated.
        self._saturated_times: deque[float] = deque()


def _check_finite(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def _check_index(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer sample index, got {value!r}")
    return int(value)
