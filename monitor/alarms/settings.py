"""Every alarm threshold in one frozen object, so a bed's alarm limits are data, not code.

Defaults follow common central-station practice and were tuned on the MIT-BIH DS1 records only
(`benchmarks/alarm_quality.py`); DS2 is never used to choose them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class AlarmSettings:
    """Alarm limits for one bed. Times are seconds of stream time, rates beats per minute."""

    # --- heart rate -------------------------------------------------------------------------
    #: Tachycardia / bradycardia limits on the robust heart rate (median of recent RR).
    hr_high_bpm: float = 120.0
    hr_low_bpm: float = 50.0
    #: An HR alarm ends only once the rate is this far back inside the limit.
    hr_hysteresis_bpm: float = 5.0
    #: RR intervals in the median that defines the heart rate.
    hr_beats: int = 12
    #: The rate must stay beyond a limit this long before its alarm starts.
    hr_confirm_s: float = 5.0
    #: Extreme bradycardia / tachycardia (high priority, replacing hr_low / hr_high): the
    #: median rate of the last `xbrady_beats` / `xtachy_beats` intervals beyond these limits
    #: (the common central-station defaults: below 40 bpm for 5 beats, above 140 for 17).
    xbrady_bpm: float = 40.0
    xbrady_beats: int = 5
    xtachy_bpm: float = 140.0
    xtachy_beats: int = 17

    # --- asystole / pause -------------------------------------------------------------------
    #: No QRS for this long is asystole.
    asystole_s: float = 4.0
    #: One RR longer than this (and shorter than asystole) is a pause.
    pause_s: float = 2.0
    #: Delay of the QRS detector behind the signal. The beat cutter reports a beat only once
    #: the next R-peak is detected, so asystole is judged against the last reported R-peak plus
    #: one pending interval (up to a pause) plus this latency: a rhythm without pauses can
    #: never look like asystole.
    beat_latency_s: float = 0.35

    # --- ventricular ------------------------------------------------------------------------
    #: Ventricular tachycardia: a run of at least this many consecutive V beats ... MIT-BIH
    #: annotates VT from 3 beats; on DS1 (reference labels) VT episode sensitivity is 92 % at
    #: 3 beats, 38 % at 4, 23 % at 5 and 21 % at 6, positive predictivity 100 % throughout.
    #: Raise it (GE/Philips offer 3-6) where non-sustained runs should stay medium priority:
    #: runs below it are then reported as pvc_run.
    vt_beats: int = 3
    #: ... whose rate (60 / mean RR of the last `vt_beats` beats of the run, the first beat's
    #: coupling interval included) is at least this.
    vt_rate_bpm: float = 100.0
    #: A V or S beat whose interval exceeds this multiple of the run's previous interval
    #: starts a new run instead of extending it.
    run_pause_ratio: float = 1.6
    #: A run of at least this many V beats that does not meet the VT criteria is a PVC run.
    pvc_run_beats: int = 3
    #: Ventricular flutter / fibrillation also from the beats, as an extreme rate: the median
    #: of the last `vflutter_beats` RR intervals (any label) corresponds to at least this rate.
    vflutter_rate_bpm: float = 250.0
    vflutter_beats: int = 6
    #: Ventricular fibrillation / flutter on the signal itself (`monitor.alarms.vf`, one
    #: reading per second over 8 s windows): raised after this many consecutive shockable
    #: readings, ended `vf_end_hold_s` after the last one ...
    vf_confirm: int = 3
    #: ... a reading being shockable when its logistic score reaches this (log-odds) and its
    #: robust peak-to-peak amplitude this (coarse VF; a flat or tiny signal never is).
    vf_score: float = 1.0
    vf_amplitude_mv: float = 0.2
    #: ... unless the QRS detector found an organised rhythm in the same window: at least 4
    #: beats whose RR intervals vary by less than this coefficient of variation, slower than
    #: this rate (flutter is regular but faster). Wide paced or bundle-branch complexes and
    #: noise on a steady rhythm look like VF to the signal features, never to the beat train.
    vf_organised_cv: float = 0.15
    vf_organised_bpm: float = 200.0
    #: PVC burden alarm: V beats in the last 60 s of stream time at or above this.
    pvc_burden_per_min: float = 10.0
    #: The burden alarm ends once the count is this far below the limit.
    pvc_burden_hysteresis_per_min: float = 2.0

    # --- supraventricular -------------------------------------------------------------------
    #: Supraventricular tachycardia: a run of at least this many S beats at or above the rate.
    svt_beats: int = 3
    svt_rate_bpm: float = 100.0

    # --- patterns ---------------------------------------------------------------------------
    #: Bigeminy (V x V x V) and trigeminy (V x x V x x V): V beats in an unbroken pattern.
    bigeminy_cycles: int = 3
    trigeminy_cycles: int = 3

    # --- atrial fibrillation (RR irregularity, ectopic intervals excluded) -------------------
    #: RR intervals in the irregularity window (about 25 s at 75 bpm: the detection delay).
    af_window_beats: int = 32
    #: Normalised RMSSD (RMSSD / mean RR) at or above which the rhythm is irregular. On DS1
    #: windows (reference labels) AF has a 5th percentile of 0.17, non-AF a 95th of 0.07.
    af_nrmssd: float = 0.15
    #: Normalised Shannon entropy of the RR histogram (bins span the window's range) at or
    #: above which the intervals are diffuse rather than a few clustered values (ectopy,
    #: alternans).
    af_entropy: float = 0.70
    #: Turning-point ratio band of a random (non-patterned) sequence (Dash et al. 2009).
    af_tpr_low: float = 0.50
    af_tpr_high: float = 0.85
    #: An AF episode continues while NRMSSD stays above this fraction of `af_nrmssd`.
    af_end_fraction: float = 0.8

    # --- signal quality ---------------------------------------------------------------------
    #: Samples in each signal-quality window.
    sqi_window_s: float = 4.0
    #: A window whose peak-to-peak amplitude is below this is a flat line (leads off) ...
    flat_ptp_mv: float = 0.05
    #: ... once the flat line has lasted this long.
    flat_s: float = 2.0
    #: A plateau at the window's extreme lasting this long means the amplifier saturated.
    saturation_run_s: float = 0.05
    #: High-frequency noise index (median |signal - 40 ms moving average| / amplitude) at which
    #: the noise component of the SQI is 1 (clean) and 0 (unusable).
    noise_clean: float = 0.015
    noise_unusable: float = 0.05
    #: SQI below this, for `noisy_s`, raises noisy_signal; it ends above `sqi_good`.
    sqi_noisy: float = 0.5
    sqi_good: float = 0.7
    noisy_s: float = 4.0
    #: Noise comes in bursts; a short clean spell inside one does not end the alarm. (With
    #: NSTDB muscle noise at 6 dB SNR this cuts the episodes per 10 min from ~20 to ~5.)
    noisy_end_hold_s: float = 10.0

    # --- technical --------------------------------------------------------------------------
    #: Wall-clock seconds without samples before no_data.
    no_data_s: float = 10.0

    # --- end hysteresis ---------------------------------------------------------------------
    #: A rhythm alarm (runs, HR, burden) ends only after its condition has been absent for this
    #: long, so one conforming beat does not make it chatter.
    end_hold_s: float = 3.0
    #: Intermittent findings (bigeminy, trigeminy, couplets, pauses) come and go beat by beat;
    #: they end only after this long without a recurrence, so one episode covers a stretch.
    pattern_end_hold_s: float = 10.0
    #: AF needs a longer calm period before it ends: its measure spans a whole window.
    af_end_hold_s: float = 15.0
    #: V-fib/flutter (from the signal or the extreme rate) ends once a whole V-fib detector
    #: window (8 s) has passed without a shockable reading: VF coarsens and fines from second
    #: to second, and a lethal alarm that flaps off between readings is off while VF goes on.
    #: A window the signal-quality check finds saturated (a defibrillation shock, the
    #: amplifier clipping) does not count towards it: it cannot say VF ended.
    vf_end_hold_s: float = 8.0
    #: leads_off ends once the signal has been back this long.
    leads_off_end_hold_s: float = 2.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "int":
                if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                    raise ValueError(f"{f.name} must be a positive integer, got {value!r}")
            elif (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value < 0
            ):
                raise ValueError(f"{f.name} must be a finite number >= 0, got {value!r}")
        self._check_order()

    def _check_order(self) -> None:
        """Relations between limits that, if broken, would make an alarm unreachable or stuck."""
        rules = [
            ("hr_low_bpm", self.hr_low_bpm > 0, "must be > 0"),
            ("hr_high_bpm", self.hr_high_bpm > self.hr_low_bpm, "must be above hr_low_bpm"),
            ("xbrady_bpm", 0 < self.xbrady_bpm <= self.hr_low_bpm, "must be in (0, hr_low_bpm]"),
            ("xtachy_bpm", self.xtachy_bpm >= self.hr_high_bpm, "must be >= hr_high_bpm"),
            ("asystole_s", self.asystole_s > self.pause_s, "must be longer than pause_s"),
            ("pause_s", self.pause_s > 0, "must be > 0"),
            ("vt_rate_bpm", self.vt_rate_bpm > 0, "must be > 0"),
            ("run_pause_ratio", self.run_pause_ratio > 1, "must be > 1"),
            ("svt_rate_bpm", self.svt_rate_bpm > 0, "must be > 0"),
            ("vflutter_rate_bpm", self.vflutter_rate_bpm > 0, "must be > 0"),
            ("vf_amplitude_mv", self.vf_amplitude_mv > 0, "must be > 0"),
            ("vf_end_hold_s", self.vf_end_hold_s > 0, "must be > 0"),
            ("vf_organised_bpm", self.vf_organised_bpm > 0, "must be > 0"),
            ("pvc_run_beats", self.pvc_run_beats >= 2, "must be at least 2 (2 is a couplet)"),
            ("vt_beats", self.vt_beats >= 2, "must be at least 2"),
            ("af_window_beats", self.af_window_beats >= 8, "must be at least 8"),
            ("af_entropy", self.af_entropy <= 1, "must be <= 1 (entropy is normalised)"),
            ("af_tpr_high", self.af_tpr_high > self.af_tpr_low, "must be above af_tpr_low"),
            ("af_end_fraction", 0 < self.af_end_fraction <= 1, "must be in (0, 1]"),
            ("sqi_good", self.sqi_noisy <= self.sqi_good <= 1, "must be in [sqi_noisy, 1]"),
            ("noise_unusable", self.noise_unusable > self.noise_clean, "must exceed noise_clean"),
            ("sqi_window_s", self.sqi_window_s >= 1, "must be at least 1 s"),
            ("flat_s", 0 < self.flat_s <= self.sqi_window_s, "must be in (0, sqi_window_s]"),
            ("no_data_s", self.no_data_s > 0, "must be > 0"),
        ]
        for name, ok, why in rules:
            if not ok:
                raise ValueError(f"{name} {why}, got {getattr(self, name)!r}")

    @classmethod
    def from_mapping(cls, values: dict[str, object]) -> AlarmSettings:
        """Settings from a mapping (config file, CLI `key=value`); unknown names are an error.

        Strings are converted to the field's type, so command-line values can be passed as is.
        """
        known = {f.name: f.type for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown alarm setting(s): {', '.join(unknown)}")
        parsed: dict[str, object] = {}
        for name, value in values.items():
            if isinstance(value, str):
                try:
                    value = int(value) if known[name] == "int" else float(value)
                except ValueError:
                    raise ValueError(f"{name} must be a number, got {value!r}") from None
            parsed[name] = value
        return cls(**parsed)
