"""Alarm engine: every kind starts once and ends once, normal rhythm raises nothing.

Synthetic beat sequences and signals, fed as the live pipeline feeds them (a beat reported once
its successor's R-peak is detected), plus one slow check on a real MIT-BIH VT record.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from monitor.alarms import AlarmEngine, AlarmEvent, AlarmSettings
from monitor.contract import aami_class
from monitor.records import read_annotations
from monitor.signal.rhythm import (
    ENTROPY_BINS,
    entropy,
    histogram_counts,
    irregularity,
    pattern_cycles,
    trimmed,
    turning_point_ratio,
)
from tests.synthetic import synthetic_ecg

FS = 250.0
CHUNK = 125  # 0.5 s (synthetic_ecg's default rate is FS)
DETECTOR_LATENCY_S = 0.3


def feed_beats(engine: AlarmEngine, beats: list[tuple[str, float]], t0: float = 0.0):
    """Beats only (label, rr): returns (events, time of each beat)."""
    events: list[AlarmEvent] = []
    times = []
    t = t0
    for label, rr in beats:
        t += rr
        times.append(t)
        events += engine.on_beat(label, round(t * engine.fs), t, rr)
    return events, times


def rhythm(*parts: tuple[str, float, int]) -> list[tuple[str, float]]:
    """(labels pattern, rr, repeats) parts -> beat list, e.g. ("NV", 0.8, 10)."""
    return [(label, rr) for pattern, rr, n in parts for _ in range(n) for label in pattern]


def assert_one_episode(events: list[AlarmEvent], kind: str) -> tuple[AlarmEvent, AlarmEvent]:
    mine = [e for e in events if e.kind == kind]
    assert [e.state for e in mine] == ["start", "end"], mine
    start, end = mine
    assert start.alarm_id == end.alarm_id
    assert end.time >= start.time
    return start, end


def stream(
    engine: AlarmEngine,
    signal: np.ndarray,
    r_times: np.ndarray,
    labels: str | None = None,
    chunk: int = CHUNK,
) -> list[AlarmEvent]:
    """Live order: each chunk, then the beats the cutter would have completed by its end."""
    labels = labels or "N" * len(r_times)
    events: list[AlarmEvent] = []
    k = 1  # the first R-peak only anchors the rhythm
    for start in range(0, len(signal), chunk):
        end = min(start + chunk, len(signal))
        events += engine.on_samples(signal[start:end], start, start / FS, wall_time=end / FS)
        while k < len(r_times) - 1 and (r_times[k + 1] + DETECTOR_LATENCY_S) * FS <= end:
            t = float(r_times[k])
            events += engine.on_beat(labels[k], round(t * FS), t, t - float(r_times[k - 1]))
            k += 1
    return events


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


# --- normal rhythm --------------------------------------------------------------------------


@pytest.mark.parametrize("bpm", [60, 75, 100])
def test_normal_sinus_rhythm_raises_nothing(bpm: float, rng: np.random.Generator) -> None:
    rr = 60.0 / bpm * (1 + 0.03 * rng.standard_normal(200))  # mild sinus arrhythmia
    r_times = 0.3 + np.cumsum(rr)
    r_times = r_times[r_times < 120]
    engine = AlarmEngine(FS, bed="b1")
    events = stream(engine, synthetic_ecg(r_times, 120, rng), r_times)
    assert events == []
    assert engine.hr == pytest.approx(bpm, rel=0.06)
    assert engine.sqi > 0.9
    reported = np.sum(r_times[2:] + DETECTOR_LATENCY_S <= 120)  # each needs its successor
    assert engine.counts["N"] == reported
    assert engine.active == {}


def test_beats_alone_in_sinus_rhythm_raise_nothing() -> None:
    events, _ = feed_beats(AlarmEngine(360.0), rhythm(("N", 0.75, 300)))
    assert events == []


# --- ventricular ----------------------------------------------------------------------------


def test_vt_run_is_one_high_priority_episode() -> None:
    engine = AlarmEngine(360.0, bed="bed-07")
    events, times = feed_beats(engine, rhythm(("N", 0.8, 20), ("V", 0.4, 8), ("N", 0.8, 20)))
    start, end = assert_one_episode(events, "vtach")
    assert start.priority == "high"
    assert start.time == pytest.approx(times[22])  # the third V beat
    assert start.alarm_id == f"bed-07:vtach:{start.index}"
    assert start.message == "Ventricular tachycardia: 3 beats at 150 bpm"
    assert "8 beats" in end.message
    assert not any(e.kind == "pvc_run" for e in events)


def test_slow_ventricular_run_is_a_pvc_run_not_vt() -> None:
    events, _ = feed_beats(
        AlarmEngine(360.0), rhythm(("N", 0.8, 20), ("V", 0.75, 5), ("N", 0.8, 20))
    )
    assert_one_episode(events, "pvc_run")
    assert not any(e.kind == "vtach" for e in events)


def test_ventricular_run_that_speeds_up_becomes_vt_at_its_third_fast_beat() -> None:
    """An idioventricular run at 67-80 bpm speeding up to 150: VT as soon as the run's last
    three beats reach the rate (116 bpm at its second fast beat), not two beats later when the
    whole run's mean rate would."""
    beats = rhythm(("N", 0.8, 20), ("V", 0.9, 2), ("V", 0.75, 1), ("V", 0.4, 6), ("N", 0.8, 20))
    events, times = feed_beats(AlarmEngine(360.0), beats)
    start, _ = assert_one_episode(events, "vtach")
    assert start.time == pytest.approx(times[24])
    pvc_run = [e for e in events if e.kind == "pvc_run"]
    assert [e.state for e in pvc_run] == ["start", "end"]  # the slow part, then escalated
    assert pvc_run[1].message.startswith("PVC run escalated to V-tach")


def test_v_beat_after_a_pause_does_not_extend_the_run() -> None:
    """A couplet followed late by a third V is a couplet, not a 3-beat VT."""
    beats = rhythm(("N", 0.8, 20), ("V", 0.4, 2), ("V", 0.7, 1), ("N", 0.8, 20))
    events, _ = feed_beats(AlarmEngine(360.0), beats)
    assert not any(e.kind == "vtach" for e in events)
    assert_one_episode(events, "pvc_couplet")


def test_couplets_close_together_are_one_episode() -> None:
    beats = rhythm(("N", 0.8, 20), ("VV", 0.5, 1), ("N", 0.8, 5), ("VV", 0.5, 1), ("N", 0.8, 30))
    events, _ = feed_beats(AlarmEngine(360.0), beats)
    assert_one_episode(events, "pvc_couplet")
    assert not any(e.kind in ("vtach", "pvc_run") for e in events)


def test_bigeminy_and_trigeminy_are_told_apart() -> None:
    big, _ = feed_beats(AlarmEngine(360.0), rhythm(("N", 0.8, 10), ("NV", 0.7, 12), ("N", 0.8, 30)))
    assert_one_episode(big, "bigeminy")
    assert not any(e.kind == "trigeminy" for e in big)
    tri, _ = feed_beats(
        AlarmEngine(360.0), rhythm(("N", 0.8, 10), ("NNV", 0.7, 12), ("N", 0.8, 30))
    )
    assert_one_episode(tri, "trigeminy")
    assert not any(e.kind == "bigeminy" for e in tri)


def test_pvc_burden_counts_the_last_minute() -> None:
    engine = AlarmEngine(360.0)
    events, _ = feed_beats(engine, rhythm(("NNNV", 0.8, 30), ("N", 0.8, 120)))
    assert_one_episode(events, "pvc_burden")
    assert engine.pvc_per_min == 0
    assert engine.counts["V"] == 30


# --- supraventricular, AF, pauses, rate ------------------------------------------------------


def test_svt_run() -> None:
    events, _ = feed_beats(
        AlarmEngine(360.0), rhythm(("N", 0.8, 20), ("S", 0.4, 6), ("N", 0.8, 20))
    )
    start, _ = assert_one_episode(events, "svt")
    assert start.priority == "medium"


def test_af_from_irregular_rr(rng: np.random.Generator) -> None:
    irregular = [("N", float(rr)) for rr in rng.uniform(0.4, 1.1, 150)]
    events, _ = feed_beats(
        AlarmEngine(360.0), rhythm(("N", 0.8, 40)) + irregular + rhythm(("N", 0.8, 80))
    )
    assert_one_episode(events, "afib")


def test_frequent_pacs_are_not_af(rng: np.random.Generator) -> None:
    """Premature S beats (and the pause after them) stay out of the irregularity window."""
    beats = rhythm(("N", 0.8, 20))
    for _ in range(120):
        sinus = 0.8 * (1 + 0.02 * rng.standard_normal())
        if rng.random() < 0.3:
            beats += [("S", 0.6 * sinus), ("N", 1.35 * sinus)]
        else:
            beats += [("N", sinus)]
    events, _ = feed_beats(AlarmEngine(360.0), beats)
    assert not any(e.kind == "afib" for e in events)


def test_pause_is_medium_and_not_asystole() -> None:
    events, _ = feed_beats(
        AlarmEngine(360.0), rhythm(("N", 0.8, 20), ("N", 2.6, 1), ("N", 0.8, 30))
    )
    start, _ = assert_one_episode(events, "pause")
    assert "2.6 s" in start.message
    assert not any(e.kind == "asystole" for e in events)


def test_hr_high_with_hysteresis() -> None:
    # 133 bpm, then 115 bpm (inside the 5 bpm band: still alarming), then 100 bpm
    beats = rhythm(("N", 0.8, 20), ("N", 0.45, 60), ("N", 0.52, 40), ("N", 0.6, 40))
    events, times = feed_beats(AlarmEngine(360.0), beats)
    _, end = assert_one_episode(events, "hr_high")
    assert end.time > times[120]  # not ended during the 115 bpm stretch


def test_hr_low_with_hysteresis() -> None:
    # 43 bpm, then 52 bpm (inside the band), then 67 bpm
    beats = rhythm(("N", 0.8, 20), ("N", 1.4, 30), ("N", 1.15, 20), ("N", 0.9, 30))
    events, times = feed_beats(AlarmEngine(360.0), beats)
    _, end = assert_one_episode(events, "hr_low")
    assert end.time > times[70]


def test_brief_rate_excursion_does_not_alarm() -> None:
    """The rate must stay beyond the limit for hr_confirm_s."""
    events, _ = feed_beats(
        AlarmEngine(360.0), rhythm(("N", 0.8, 20), ("N", 0.45, 8), ("N", 0.8, 30))
    )
    assert not any(e.kind == "hr_high" for e in events)


def test_extreme_tachycardia_after_17_beats_replaces_hr_high() -> None:
    # 130 bpm (hr_high), then 160 bpm (extreme), then 100 bpm
    beats = rhythm(("N", 0.8, 20), ("N", 0.46, 20), ("N", 0.375, 40), ("N", 0.6, 40))
    events, times = feed_beats(AlarmEngine(360.0), beats)
    start, _ = assert_one_episode(events, "xtachy")
    assert start.priority == "high"
    assert start.time == times[40 + 16]  # the 17th interval beyond 140 bpm
    hr = [e for e in events if e.kind == "hr_high"]
    assert [e.state for e in hr] == ["start", "end"] and hr[1].time == start.time
    assert "superseded by Extreme tachycardia" in hr[1].message
    assert not any(e.kind == "hr_high" and e.time > start.time for e in events)


def test_extreme_bradycardia_after_5_beats_replaces_hr_low() -> None:
    beats = rhythm(("N", 0.8, 20), ("N", 1.75, 12), ("N", 0.8, 30))  # 34 bpm, then 75
    events, times = feed_beats(AlarmEngine(360.0), beats)
    start, _ = assert_one_episode(events, "xbrady")
    assert start.time == times[20 + 4]  # the 5th interval below 40 bpm
    assert not any(e.kind == "hr_low" for e in events)  # 5 beats come before its 5 s confirm


def test_v_tach_is_one_red_alarm_not_also_an_extreme_tachycardia() -> None:
    beats = rhythm(("N", 0.8, 20), ("V", 0.35, 30), ("N", 0.8, 30))  # 171 bpm VT
    events, _ = feed_beats(AlarmEngine(360.0), beats)
    start, end = assert_one_episode(events, "vtach")
    during = [e.kind for e in events if start.time < e.time < end.time]
    assert not any(e.kind in ("xtachy", "hr_high", "pvc_run") for e in events)
    assert during == []  # nor frequent PVCs or couplets while the V-tach lasts


def test_v_fib_ends_a_whole_detector_window_after_its_last_sign() -> None:
    """VF coarsens and fines: the red alarm holds for vf_end_hold_s (8 s), not the 3 s of the
    other alarms. Here from the flutter rate of beats (300 bpm), whose median stays fast for a
    few beats after the run; the beats come every 0.8 s after it."""
    beats = rhythm(("N", 0.8, 20), ("V", 0.2, 30), ("N", 0.8, 30))
    ends = {}
    for hold in (3.0, 8.0):
        settings = AlarmSettings(vf_end_hold_s=hold)
        events, _ = feed_beats(AlarmEngine(360.0, settings=settings), beats)
        ends[hold] = assert_one_episode(events, "vflutter")[1].time
    assert AlarmSettings().vf_end_hold_s == 8.0
    assert 5.0 - 0.8 <= ends[8.0] - ends[3.0] <= 5.0 + 0.8


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"xbrady_bpm": 55}, "xbrady_bpm"), ({"xtachy_bpm": 100}, "xtachy_bpm"),
     ({"xtachy_beats": 0}, "xtachy_beats")],
)
def test_extreme_rate_limits_are_checked(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        AlarmSettings(**kwargs)


# --- asystole ---------------------------------------------------------------------------------


def test_asystole_starts_once_and_ends_when_beats_return(rng: np.random.Generator) -> None:
    before = 0.5 + 0.8 * np.arange(25)  # up to 19.7 s
    after = 28.0 + 0.8 * np.arange(20)  # 8.3 s without a QRS
    r_times = np.concatenate([before, after])
    signal = synthetic_ecg(r_times, 45, rng)
    signal += 0.05 * np.sin(2 * np.pi * 0.3 * np.arange(len(signal)) / FS)  # not a flat line
    engine = AlarmEngine(FS, bed="b")
    events = stream(engine, signal, r_times)
    start, end = assert_one_episode(events, "asystole")
    assert start.priority == "high"
    assert before[-1] + 4.0 <= start.time <= before[-1] + 4.0 + 2.5
    assert after[0] <= end.time <= after[1] + 1.0
    assert not any(e.kind in ("pause", "leads_off") for e in events)
    assert engine.hr is not None and engine.hr > 0


def test_asystole_ends_other_rhythm_alarms(rng: np.random.Generator) -> None:
    rr = np.full(60, 0.46)  # 130 bpm, hr_high after 5 s
    r_times = 0.5 + np.cumsum(rr)
    signal = synthetic_ecg(r_times, r_times[-1] + 9, rng)
    signal += 0.05 * np.sin(2 * np.pi * 0.3 * np.arange(len(signal)) / FS)
    engine = AlarmEngine(FS)
    events = stream(engine, signal, r_times)
    _, hr_end = assert_one_episode(events, "hr_high")
    asystole = [e for e in events if e.kind == "asystole"]
    assert [e.state for e in asystole] == ["start"]
    assert hr_end.time == asystole[0].time
    assert engine.hr == 0.0
    assert list(engine.active) == ["asystole"]


def test_beats_without_samples_still_report_asystole() -> None:
    events, _ = feed_beats(AlarmEngine(360.0), rhythm(("N", 0.8, 20), ("N", 6.0, 1), ("N", 0.8, 5)))
    start, end = assert_one_episode(events, "asystole")
    assert end.time - start.time == pytest.approx(2.0)


# --- technical --------------------------------------------------------------------------------


def test_flat_line_is_leads_off(rng: np.random.Generator) -> None:
    r_times = 0.5 + 0.8 * np.arange(40)
    signal = synthetic_ecg(r_times, 33, rng)
    signal[round(12 * FS) : round(14.5 * FS)] = 0.0
    keep = (r_times < 12) | (r_times > 14.5)  # 3.2 s without a QRS: a pause, not asystole
    events = stream(AlarmEngine(FS), signal, r_times[keep])
    start, end = assert_one_episode(events, "leads_off")
    assert start.priority == "technical"
    assert 14 <= start.time <= 14.5
    assert 15 <= end.time <= 17.5
    assert_one_episode(events, "pause")
    assert not any(e.kind == "asystole" for e in events)


def test_long_flat_line_raises_asystole_too(rng: np.random.Generator) -> None:
    """Without electrode impedance a flat lead cannot be told from cardiac standstill."""
    r_times = 0.5 + 0.8 * np.arange(40)
    signal = synthetic_ecg(r_times, 33, rng)
    signal[round(12 * FS) : round(22 * FS)] = 0.0
    keep = (r_times < 12) | (r_times > 22)
    events = stream(AlarmEngine(FS), signal, r_times[keep])
    assert_one_episode(events, "leads_off")
    assert_one_episode(events, "asystole")


def test_noise_burst_is_noisy_signal(rng: np.random.Generator) -> None:
    r_times = 0.5 + 0.8 * np.arange(75)
    signal = synthetic_ecg(r_times, 60, rng)
    burst = slice(round(20 * FS), round(35 * FS))
    signal[burst] += rng.normal(0, 0.25, burst.stop - burst.start)
    engine = AlarmEngine(FS)
    events = stream(engine, signal, r_times)
    start, end = assert_one_episode(events, "noisy_signal")
    assert 20 < start.time < 30 and 35 < end.time < 50
    assert engine.sqi > 0.9


def test_clipped_signal_is_reported_as_saturated(rng: np.random.Generator) -> None:
    r_times = 0.5 + 0.8 * np.arange(40)
    signal = synthetic_ecg(r_times, 32, rng)
    signal += 2.0 * np.sin(2 * np.pi * 0.2 * np.arange(len(signal)) / FS)  # baseline swing
    signal = np.clip(signal, -1.5, 1.5)  # ... beyond the amplifier's range
    events = stream(AlarmEngine(FS), signal, r_times)
    mine = [e for e in events if e.kind == "noisy_signal"]
    assert [e.state for e in mine] == ["start"]
    assert "saturated" in mine[0].message


def test_quality_events_do_not_depend_on_chunking(rng: np.random.Generator) -> None:
    r_times = 0.5 + 0.8 * np.arange(60)
    signal = synthetic_ecg(r_times, 48, rng)
    signal[round(10 * FS) : round(14 * FS)] = 0.0
    signal[round(25 * FS) : round(40 * FS)] += rng.normal(0, 0.25, round(15 * FS))

    def technical(chunk: int) -> list[AlarmEvent]:
        engine = AlarmEngine(FS)
        out = []
        for s in range(0, len(signal), chunk):
            out += engine.on_samples(signal[s : s + chunk], s, s / FS, wall_time=0.0)
        return [e for e in out if e.kind != "asystole"]  # judged per chunk, by design

    def key(events: list[AlarmEvent]) -> list[tuple]:
        return [(e.kind, e.state, e.index, round(e.time, 9), e.message) for e in events]

    whole = technical(len(signal))
    assert {e.kind for e in whole} == {"leads_off", "noisy_signal"}
    assert key(technical(37)) == key(whole)
    assert key(technical(CHUNK)) == key(whole)


def test_no_data_follows_the_wall_clock() -> None:
    engine = AlarmEngine(FS, bed="b")
    x = np.zeros(CHUNK) + np.sin(np.arange(CHUNK))
    assert engine.on_samples(x, 0, 1000.0, wall_time=500.0) == []
    assert engine.tick(509.9) == []
    (start,) = engine.tick(510.0)
    assert (start.kind, start.state, start.priority) == ("no_data", "start", "technical")
    assert start.time == pytest.approx(1000.5)  # the stream clock, not the wall clock
    assert engine.tick(530.0) == []
    resumed = engine.on_samples(x, CHUNK, 1000.5, wall_time=531.0)
    assert [(e.kind, e.state) for e in resumed] == [("no_data", "end")]


def test_reset_ends_every_episode_and_reports_itself() -> None:
    engine = AlarmEngine(360.0, bed="b")
    _, times = feed_beats(engine, rhythm(("N", 0.8, 20), ("V", 0.4, 10)))
    assert "vtach" in engine.active
    was_open = set(engine.active)
    out = engine.reset("gap in the stream", 20000, times[-1] + 5)
    assert {e.kind for e in out if e.state == "end"} == was_open
    assert all(e.time == times[-1] + 5 and e.index == 20000 for e in out)
    assert [e.kind for e in out if e.state == "start"] == ["pipeline_reset"]
    assert set(engine.active) == {"pipeline_reset"}
    assert engine.hr is None
    after = engine.on_beat("N", 20300, times[-1] + 6, 0.8)
    assert [(e.kind, e.state) for e in after] == [("pipeline_reset", "end")]
    assert engine.counts["V"] == 10  # counts survive a reset


def test_sample_index_jump_resets_the_pipeline() -> None:
    engine = AlarmEngine(FS)
    x = np.sin(np.arange(CHUNK))
    engine.on_samples(x, 0, 0.0, wall_time=0.0)
    out = engine.on_samples(x, 10 * CHUNK, 5.0, wall_time=0.0)
    assert [(e.kind, e.state) for e in out] == [("pipeline_reset", "start")]
    assert "jump" in out[0].message


def test_event_rejects_unknown_kind_and_wrong_priority() -> None:
    with pytest.raises(ValueError, match="kind"):
        AlarmEvent("b:x:1", "vfib", "high", "start", 0.0, 1, "?")
    with pytest.raises(ValueError, match="priority"):
        AlarmEvent("b:vtach:1", "vtach", "medium", "start", 0.0, 1, "?")


def test_event_to_dict_has_the_alert_fields() -> None:
    events, _ = feed_beats(AlarmEngine(360.0, bed="b"), rhythm(("N", 0.8, 20), ("V", 0.4, 4)))
    d = events[0].to_dict()
    assert set(d) == {"alarm_id", "kind", "priority", "state", "time", "index", "message"}


# --- input checks -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"hr_high_bpm": -1}, "hr_high_bpm"),
        ({"hr_low_bpm": 130}, "hr_high_bpm"),
        ({"vt_beats": 0}, "vt_beats"),
        ({"vt_beats": 2.5}, "vt_beats"),
        ({"asystole_s": float("nan")}, "asystole_s"),
        ({"pause_s": 5.0}, "asystole_s"),
        ({"af_entropy": 1.5}, "af_entropy"),
        ({"sqi_good": 0.2}, "sqi_good"),
        ({"end_hold_s": True}, "end_hold_s"),
        ({"vf_end_hold_s": 0.0}, "vf_end_hold_s"),
    ],
)
def test_settings_reject_bad_values(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        AlarmSettings(**kwargs)


def test_settings_from_mapping() -> None:
    s = AlarmSettings.from_mapping({"vt_beats": "5", "hr_high_bpm": "130"})
    assert (s.vt_beats, s.hr_high_bpm) == (5, 130.0)
    with pytest.raises(ValueError, match="vt_bats"):
        AlarmSettings.from_mapping({"vt_bats": 4})
    with pytest.raises(ValueError, match="hr_low_bpm"):
        AlarmSettings.from_mapping({"hr_low_bpm": "slow"})


def test_settings_change_the_alarm() -> None:
    beats = rhythm(("N", 0.8, 20), ("V", 0.4, 4), ("N", 0.8, 20))
    events, _ = feed_beats(AlarmEngine(360.0, settings=AlarmSettings(vt_beats=5)), beats)
    assert not any(e.kind == "vtach" for e in events)
    assert_one_episode(events, "pvc_run")


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (("X", 100, 1.0, 0.8), "label"),
        (("N", -1, 1.0, 0.8), "index"),
        (("N", 100, float("inf"), 0.8), "time"),
        (("N", 100, 1.0, 0.0), "rr"),
    ],
)
def test_on_beat_rejects_bad_input(args: tuple, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        AlarmEngine(360.0).on_beat(*args)


def test_engine_rejects_bad_arguments() -> None:
    engine = AlarmEngine(360.0)
    engine.on_beat("N", 720, 2.0, 0.8)
    with pytest.raises(ValueError, match="stream order"):
        engine.on_beat("N", 360, 1.0, 0.8)
    with pytest.raises(ValueError, match="samples_mv"):
        engine.on_samples(np.array([0.0, np.nan]), 0, 0.0)
    with pytest.raises(ValueError, match="fs"):
        AlarmEngine(0.0)


# --- rhythm measures --------------------------------------------------------------------------


def test_pattern_cycles() -> None:
    assert pattern_cycles(list("NVNVNV"), 2) == 3
    assert pattern_cycles(list("NVNVNVN"), 2) == 3  # inside a cycle
    assert pattern_cycles(list("NVNVNVNN"), 2) == 0  # broken
    assert pattern_cycles(list("VNNVNNVNN"), 3) == 3
    assert pattern_cycles(list("VFNVFNV"), 3) == 1  # fusion beats break the pattern
    assert pattern_cycles(list("VVNVNV"), 2) == 3


def _numpy_af_measures(rr: np.ndarray) -> tuple[list[float], float, float]:
    """The AF measures written with NumPy arrays, as the shipped model's training computed them."""
    x = np.asarray(rr, dtype=np.float64)
    trim = len(x) // 16
    if trim:
        order = np.argsort(x, kind="stable")
        keep = np.ones(len(x), dtype=bool)
        keep[order[:trim]] = False
        keep[order[-trim:]] = False
        x = x[keep]
    lo = float(x.min())
    counts, _ = np.histogram(x, bins=ENTROPY_BINS, range=(lo, lo + max(float(x.max()) - lo, 1e-3)))
    p = counts[counts > 0] / len(x)
    mid = x[1:-1]
    turning = ((mid > x[:-2]) & (mid > x[2:])) | ((mid < x[:-2]) & (mid < x[2:]))
    entropy_ = float(-(p * np.log(p)).sum() / np.log(ENTROPY_BINS))
    return x.tolist(), entropy_, float(turning.mean())


def test_af_measures_equal_numpys_bit_for_bit(rng: np.random.Generator) -> None:
    """The plain-Python AF measures give exactly the values of the NumPy formulation, ties and
    the 125 Hz grid included: the shipped model was trained on those values."""
    for trial in range(3000):
        n = int(rng.integers(8, 40))
        x = rng.integers(40, 250, n) / 125.0 if trial % 2 else rng.uniform(0.3, 1.5, n)
        if trial % 7 == 0:
            x[:] = x[0]  # a perfectly regular window
        kept, want_entropy, want_tpr = _numpy_af_measures(x)
        got = trimmed(x)
        assert got == kept
        assert entropy(got) == want_entropy
        assert turning_point_ratio(got) == want_tpr


def test_histogram_counts_equal_numpys(rng: np.random.Generator) -> None:
    """The AF entropy's fast histogram counts exactly what np.histogram counts, edges included."""
    for trial in range(2000):
        n = int(rng.integers(8, 40))
        x = rng.integers(0, 250, n) / 125.0 if trial % 2 else rng.uniform(0.3, 1.5, n)
        lo = float(x.min())
        hi = lo + max(float(x.max()) - lo, 1e-3) * (0.7 if trial % 5 == 0 else 1.0)
        want, _ = np.histogram(x, bins=ENTROPY_BINS, range=(lo, hi))
        np.testing.assert_array_equal(histogram_counts(sorted(x.tolist()), lo, hi), want)


def test_irregularity_separates_af_from_sinus(rng: np.random.Generator) -> None:
    af = irregularity(rng.uniform(0.4, 1.1, 128))
    sinus = irregularity(0.8 + 0.02 * np.sin(np.arange(128) / 3))
    assert af.nrmssd > 0.15 > sinus.nrmssd
    assert 0.5 < af.tpr < 0.85
    assert sinus.tpr < 0.5


# --- real record ------------------------------------------------------------------------------


@pytest.mark.slow
def test_vt_on_mitbih_213_reference_labels(mitdb_dir) -> None:
    """Record 213's reference beats: its 4-beat VT (about 116 bpm) raises one vtach episode."""
    ann = read_annotations("213", mitdb_dir)
    fs = 360.0
    beats = [
        (int(s), aami_class(y))
        for s, y in zip(ann.sample, ann.symbol, strict=True)
        if aami_class(y)
    ]
    vt = [
        s / fs
        for s, sym, aux in zip(ann.sample, ann.symbol, ann.aux_note, strict=True)
        if sym == "+" and aux.strip("\x00").strip() == "(VT"
    ]
    engine = AlarmEngine(fs, bed="213")
    events = []
    for (prev, _), (index, label) in itertools.pairwise(beats):
        events += engine.on_beat(label, index, index / fs, (index - prev) / fs)
    episodes = [e for e in events if e.kind == "vtach"]
    assert episodes, "no vtach episode on record 213"
    assert [e.state for e in episodes] == ["start", "end"] * (len(episodes) // 2)
    starts = [e.time for e in episodes if e.state == "start"]
    assert any(abs(t - v) < 3.0 for t in starts for v in vt)
    assert all(any(abs(t - v) < 3.0 for v in vt) for t in starts)  # no false VT


def test_close_all_ends_every_open_episode_and_opens_nothing():
    engine = AlarmEngine(FS, bed="bed-1")
    events = engine.tick(1_000.0)  # no data ever: no_data opens after 10 s of wall time
    events += engine.tick(1_011.0)
    assert [(e.kind, e.state) for e in events] == [("no_data", "start")]
    closed = engine.close_all(0, 1_011.0, "bed forgotten")
    assert [(e.kind, e.state) for e in closed] == [("no_data", "end")]
    assert "bed forgotten" in closed[0].message and engine.active == {}
