"""The dashboard's bounded buffers, alarm book and message checks (no broker, no browser)."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.dashboard import alarm_board, beds, display
from monitor.dashboard import app as shell
from monitor.dashboard import store as st
from monitor.dashboard.display import SignalRing
from monitor.dashboard.store import CentralStation
from monitor.messages import AlertEvent, BeatEvent, ReferenceBeat, Vitals
from monitor.validate import Chunk

FS = 360.0
T0 = 1_700_000_000.0


def samples(bed: str, start: int, n: int, record: str = "100", fs: float = FS) -> Chunk:
    t = (start + np.arange(n)) / fs
    x = np.where((t % 0.8) < 0.04, 1.5, 0.0)  # a 75 bpm spike train
    return Chunk(bed, record, fs, start, T0 + start / fs, x)


def beat(bed: str, index: int, label: str = "N", record: str = "100") -> BeatEvent:
    probs = dict.fromkeys("NSVFQ", 0.0)
    probs[label] = 1.0
    return BeatEvent(bed=bed, record=record, index=index, fs=FS, time=T0 + index / FS,
                     label=label, probs=probs, rr=0.8, hr=75.0, model_version="m1")


def alert(alarm_id: str, kind: str, priority: str, state: str, t: float, bed: str = "bed-1"
          ) -> AlertEvent:
    return AlertEvent(bed=bed, record="100", alarm_id=alarm_id, kind=kind, priority=priority,
                      state=state, time=t, message=kind)


def reference(index: int, t: float, symbol: str, label: str) -> ReferenceBeat:
    return ReferenceBeat(bed="bed-1", record="100", index=index, time=t, symbol=symbol,
                         label=label)


def vitals(t: float, hr: float, counts: dict, pvc_per_min: float, sqi: float, total: int
           ) -> Vitals:
    return Vitals(bed="bed-1", record="100", time=t, hr=hr, counts=counts,
                  pvc_per_min=pvc_per_min, sqi=sqi, beats_total=total)


def stream(ward: CentralStation, bed: str, seconds: float, chunk: int = 72, record: str = "100",
           arrived: float = 0.0, from_s: float = 0.0) -> None:
    first, stop = round(from_s * FS), round((from_s + seconds) * FS)
    for start in range(first, stop, chunk):
        ward.ingest("ecg.samples", samples(bed, start, min(chunk, stop - start), record), arrived)


# -- ring ------------------------------------------------------------------------------------
def test_ring_reads_back_what_was_written_and_nan_outside() -> None:
    ring = SignalRing(10)
    ring.write(100, np.arange(4))
    np.testing.assert_array_equal(ring.read(98, 106), [np.nan, np.nan, 0, 1, 2, 3, np.nan, np.nan])
    assert ring.head == 104


def test_ring_keeps_only_its_size_and_blanks_gaps() -> None:
    ring = SignalRing(10)
    ring.write(0, np.arange(8))
    ring.write(12, np.arange(3) + 100)  # slots 8..11 never arrived
    out = ring.read(5, 15)
    np.testing.assert_array_equal(out[:3], [5, 6, 7])
    assert np.isnan(out[3:7]).all()
    np.testing.assert_array_equal(out[7:], [100, 101, 102])
    assert np.isnan(ring.read(0, 5)).all()  # overwritten by the wrap-around: gone, not stale


def test_ring_ignores_samples_older_than_it_holds() -> None:
    ring = SignalRing(5)
    ring.write(100, np.ones(5))
    ring.write(10, np.full(3, 7.0))
    assert ring.head == 105
    np.testing.assert_array_equal(ring.read(100, 105), np.ones(5))


# -- samples, sweep, no signal ---------------------------------------------------------------
def test_sweep_sends_each_display_sample_once_per_cursor() -> None:
    ward = CentralStation()
    stream(ward, "bed-1", 4.0)
    first = ward.sweep({}, now_mono=1.0)["bed-1"]
    n = round(display.STRIP_S * display.DISPLAY_FS)
    assert len(first["y"]) == n  # a new browser gets the whole 6 s window
    assert sum(v is not None for v in first["y"]) > 3.5 * display.DISPLAY_FS
    cursor = first["s"] + len(first["y"]) - 1
    again = ward.sweep({"bed-1": cursor}, now_mono=1.0)["bed-1"]
    assert again["y"] == []
    ward.ingest("ecg.samples", samples("bed-1", round(4 * FS), 72), 1.0)
    more = ward.sweep({"bed-1": cursor}, now_mono=1.0)["bed-1"]
    assert more["s"] == cursor + 1
    assert 20 <= len(more["y"]) <= 30  # 0.2 s at 125 Hz


def test_sweep_slots_follow_the_epoch_clock() -> None:
    ward = CentralStation()
    stream(ward, "bed-1", 2.0)
    frame = ward.sweep({}, now_mono=0.0)["bed-1"]
    head = frame["s"] + len(frame["y"])
    assert abs(head / display.DISPLAY_FS - (T0 + 2.0)) < 0.2  # minus the resampler's look-ahead


def test_bed_without_samples_for_ten_seconds_has_no_signal() -> None:
    ward = CentralStation()
    stream(ward, "bed-1", 1.0, arrived=100.0)
    assert not ward.tiles(now_mono=100.0 + beds.NO_SIGNAL_S - 0.5)[0]["no_signal"]
    assert ward.tiles(now_mono=100.0 + beds.NO_SIGNAL_S + 0.5)[0]["no_signal"]
    assert ward.sweep({}, now_mono=100.0 + beds.NO_SIGNAL_S + 0.5)["bed-1"] == {"stale": True}


def test_a_new_record_on_a_bed_starts_a_new_patient_and_late_messages_are_refused() -> None:
    ward = CentralStation()
    stream(ward, "bed-1", 3.0)
    ward.ingest("ecg.beats", beat("bed-1", 400))
    stream(ward, "bed-1", 1.0, record="200")
    detail = ward.detail("bed-1")
    assert detail["record"] == "200" and detail["beats"] == []
    ward.ingest("ecg.beats", beat("bed-1", 700, record="100"))
    assert ward.detail("bed-1")["beats"] == []
    assert ward.feed_status()["rejected"] == 1
    assert "record '100'" in ward.feed_status()["last_rejection"]


def test_beds_sort_naturally_and_are_capped(monkeypatch) -> None:
    monkeypatch.setattr(st, "MAX_BEDS", 3)
    ward = CentralStation()
    for bed in ("bed-10", "bed-2", "bed-1", "bed-3"):
        ward.ingest("ecg.samples", samples(bed, 0, 10), 0.0)
    assert ward.beds() == ["bed-1", "bed-2", "bed-10"]
    assert ward.feed_status()["rejected"] == 1


def test_a_full_ward_makes_room_only_by_dropping_a_silent_bed(monkeypatch) -> None:
    """Made-up bed ids cannot lock real beds out for good, nor push out beds still sending."""
    monkeypatch.setattr(st, "MAX_BEDS", 3)
    ward = CentralStation()
    for bed in ("fake-1", "fake-2", "fake-3"):
        ward.ingest("ecg.beats", beat(bed, 400), 0.0)  # never a sample: silent from the start
    ward.ingest("ecg.samples", samples("bed-1", 0, 10), 1.0)
    assert "bed-1" in ward.beds() and ward.feed_status()["evicted"] == 1
    for bed in ("bed-2", "bed-3"):
        ward.ingest("ecg.samples", samples(bed, 0, 10), 2.0)
    assert ward.beds() == ["bed-1", "bed-2", "bed-3"]
    ward.ingest("ecg.samples", samples("bed-4", 0, 10), 2.0 + st.EVICT_IDLE_S / 2)
    assert "bed-4" not in ward.beds() and ward.feed_status()["rejected"] == 1
    ward.ingest("ecg.samples", samples("bed-4", 0, 10), 1.0 + st.EVICT_IDLE_S + 0.1)
    assert ward.beds() == ["bed-2", "bed-3", "bed-4"]  # bed-1 was silent the longest
    assert shell.feed_state(ward.feed_status())[0].endswith("4 silent beds dropped for new ones")


# -- beats, reference, shapes ----------------------------------------------------------------
def test_beat_sits_on_its_r_peak_slot_and_pairs_with_the_reference() -> None:
    ward = CentralStation()
    stream(ward, "bed-1", 5.0)
    ward.ingest("ecg.reference", reference(288, T0 + 0.8, "V", "V"))
    ward.ingest("ecg.reference", reference(576, T0 + 1.6, "N", "N"))
    ward.ingest("ecg.reference", reference(600, T0 + 1.7, "+", ""))
    ward.ingest("ecg.beats", beat("bed-1", 290, "V"))  # 5.6 ms off: same beat
    ward.ingest("ecg.beats", beat("bed-1", 576, "V"))  # disagrees with reference N
    ward.ingest("ecg.beats", beat("bed-1", 1100, "N"))  # no reference within 150 ms
    d = ward.detail("bed-1")
    first_slot = d["first_slot"]
    assert [b["reference"] for b in d["beats"]] == ["V", "N", None]
    fs = display.DISPLAY_FS
    assert d["beats"][0]["slot"] == round(T0 * fs) + round(290 * fs / FS)
    assert d["beats"][0]["slot"] >= first_slot
    assert d["agreement"] == {"matched": 2, "agreed": 1, "recent": [True, False]}
    assert [r["label"] for r in d["refs"]] == ["V", "N", ""]


def test_average_shape_waits_for_the_signal_after_the_r_peak() -> None:
    ward = CentralStation()
    stream(ward, "bed-1", 1.0)
    ward.ingest("ecg.beats", beat("bed-1", round(0.8 * FS), "N"))
    assert ward.detail("bed-1")["shapes"] == {}  # 0.45 s after the peak has not arrived yet
    stream(ward, "bed-1", 1.0, from_s=1.0)
    shapes = ward.detail("bed-1")["shapes"]
    assert list(shapes) == ["N"]
    peak = int(np.argmax(shapes["N"]))
    assert abs(peak - round(beds.SHAPE_PRE_S * display.DISPLAY_FS)) <= 3  # R-peak at time 0


def test_per_bed_memory_is_bounded_over_hours() -> None:
    ward = CentralStation()
    stream(ward, "bed-1", 1.0)
    for i in range(3 * beds.BEATS_KEEP):
        ward.ingest("ecg.beats", beat("bed-1", 360 + i * 288))
        ward.ingest("ecg.reference", reference(360 + i * 288, T0, "N", "N"))
    for k in range(beds.TREND_KEEP + 500):
        ward.ingest("ecg.vitals", vitals(T0 + k, 70.0, {}, 0.0, 1.0, k))
    bed = ward._beds["bed-1"]
    assert len(bed.beats) == beds.BEATS_KEEP and len(bed.refs) == beds.BEATS_KEEP
    assert len(bed.trend) <= beds.TREND_KEEP
    assert bed.trend[-1][0] - bed.trend[0][0] <= beds.TREND_S
    assert len(bed.pending_shapes) <= bed.pending_shapes.maxlen
    assert bed.trace.ring.size == round(display.RING_S * display.DISPLAY_FS)


def test_hr_counts_and_pvc_rate_are_the_workers_never_recomputed() -> None:
    """Before the first vitals the tile shows the worker's HR of the last beat, and no PVC rate
    or counts of its own; then the vitals' values."""
    ward = CentralStation()
    stream(ward, "bed-1", 1.0)
    ward.ingest("ecg.beats", beat("bed-1", 300, "V"))
    tile = ward.tiles(now_mono=0.0)[0]
    assert tile["hr"] == 75.0 and tile["last_label"] == "V" and tile["pvc_per_min"] is None
    assert set(ward.detail("bed-1")["counts"].values()) == {0}
    counts = {"N": 10, "S": 0, "V": 3, "F": 0, "Q": 0}
    ward.ingest("ecg.vitals", vitals(T0 + 1, 88.0, counts, 4.5, 0.9, 13))
    tile = ward.tiles(now_mono=0.0)[0]
    assert (tile["hr"], tile["pvc_per_min"], tile["sqi"]) == (88.0, 4.5, 0.9)
    assert ward.detail("bed-1")["counts"] == counts


# -- alarms ----------------------------------------------------------------------------------
def test_active_alarms_sort_by_priority_then_newest() -> None:
    ward = CentralStation()
    ward.ingest("ecg.alerts", alert("a", "leads_off", "technical", "start", T0 + 5))
    ward.ingest("ecg.alerts", alert("b", "vtach", "high", "start", T0 + 1))
    ward.ingest("ecg.alerts", alert("c", "bigeminy", "medium", "start", T0 + 2))
    ward.ingest("ecg.alerts", alert("d", "asystole", "high", "start", T0 + 3, bed="bed-2"))
    assert [a["alarm_id"] for a in ward.active_alarms(T0 + 10)] == ["d", "b", "c", "a"]
    ward.ingest("ecg.alerts", alert("b", "vtach", "high", "end", T0 + 4))
    assert [a["alarm_id"] for a in ward.active_alarms(T0 + 10)] == ["d", "c", "a"]
    ended = next(a for a in ward.history(now=T0 + 10) if a["alarm_id"] == "b")
    assert ended["duration_s"] == pytest.approx(3.0)


def test_tile_shows_the_worst_alarm_and_flashes_until_acknowledged() -> None:
    ward = CentralStation()
    stream(ward, "bed-1", 0.5)
    ward.ingest("ecg.alerts", alert("m", "pvc_run", "medium", "start", T0 + 1))
    ward.ingest("ecg.alerts", alert("h", "vtach", "high", "start", T0 + 2))
    tile = ward.tiles(now_mono=0.0)[0]
    assert tile["alarm"]["alarm_id"] == "h" and tile["n_alarms"] == 2
    assert ward.acknowledge("h", now=T0 + 3)
    assert not ward.acknowledge("h")  # once
    assert not ward.acknowledge("no-such-alarm")
    assert ward.tiles(now_mono=0.0)[0]["alarm"]["acked_at"] == T0 + 3
    assert ward.audio(T0 + 3)["tone"] == "medium"  # the acknowledged high one is silent


def test_history_filters_and_forgets_after_24_hours() -> None:
    ward = CentralStation()
    ward.ingest("ecg.alerts", alert("old", "pause", "medium", "start", T0))
    ward.ingest("ecg.alerts", alert("old", "pause", "medium", "end", T0 + 5))
    ward.ingest("ecg.alerts", alert("x", "vtach", "high", "start", T0 + 10, bed="bed-2"))
    assert {a["alarm_id"] for a in ward.history(now=T0 + 20)} == {"old", "x"}
    assert [a["alarm_id"] for a in ward.history(beds=["bed-2"], now=T0 + 20)] == ["x"]
    assert [a["alarm_id"] for a in ward.history(kinds=["pause"], now=T0 + 20)] == ["old"]
    later = T0 + alarm_board.HISTORY_S + 6
    assert [a["alarm_id"] for a in ward.history(now=later)] == ["x"]  # still active: kept


def test_history_is_capped(monkeypatch) -> None:
    monkeypatch.setattr(alarm_board, "HISTORY_MAX", 50)
    ward = CentralStation()
    for i in range(200):
        ward.ingest("ecg.alerts", alert(f"a{i}", "pause", "medium", "start", T0 + i))
        ward.ingest("ecg.alerts", alert(f"a{i}", "pause", "medium", "end", T0 + i + 0.5))
    rows = ward.history(now=T0 + 300)
    assert len(rows) == 50 and rows[0]["alarm_id"] == "a199"


def test_a_replayed_start_does_not_reopen_an_ended_alarm() -> None:
    ward = CentralStation()
    ward.ingest("ecg.alerts", alert("a", "pause", "medium", "start", T0))
    ward.ingest("ecg.alerts", alert("a", "pause", "medium", "end", T0 + 5))
    ward.ingest("ecg.alerts", alert("a", "pause", "medium", "start", T0))
    assert ward.active_alarms() == []


def test_audio_pause_counts_down_and_only_a_higher_priority_breaks_through() -> None:
    import time

    now = time.time()
    ward = CentralStation()
    ward.ingest("ecg.alerts", alert("m1", "pvc_run", "medium", "start", now))
    ward.pause_audio(now)
    a = ward.audio(now + 30)
    assert a["paused"] and a["tone"] is None and a["remaining_s"] == pytest.approx(90)
    ward.ingest("ecg.alerts", alert("m2", "bigeminy", "medium", "start", now))
    assert ward.audio(now)["paused"]  # same priority as when paused: stays silent
    ward.ingest("ecg.alerts", alert("h1", "vtach", "high", "start", now))
    a = ward.audio(now)
    assert not a["paused"] and a["tone"] == "high" and "bed-1" in a["note"]
    ward.pause_audio(now)
    assert not ward.audio(now + alarm_board.AUDIO_PAUSE_S + 1)["paused"]  # the pause runs out


def test_a_new_high_alarm_breaks_a_pause_taken_during_a_high_alarm() -> None:
    import time

    now = time.time()
    ward = CentralStation()
    ward.ingest("ecg.alerts", alert("h1", "vtach", "high", "start", now))
    ward.pause_audio(now)
    ward.ingest("ecg.alerts", alert("h2", "asystole", "high", "start", now, bed="bed-2"))
    assert not ward.audio(now)["paused"]


def test_an_old_alarm_read_back_at_startup_does_not_break_the_pause() -> None:
    import time

    ward = CentralStation()
    ward.pause_audio()
    ward.ingest("ecg.alerts", alert("h", "vtach", "high", "start", time.time() - 600))
    assert ward.audio()["paused"]


def test_audio_pause_runs_on_the_monotonic_clock(monkeypatch) -> None:
    """A wall-clock step back of an hour must not leave 52 more minutes of silence."""
    ward = CentralStation()
    wall = [1_700_000_000.0]
    mono = [100.0]
    monkeypatch.setattr(st.time, "time", lambda: wall[0])
    monkeypatch.setattr(st.time, "monotonic", lambda: mono[0])
    ward.pause_audio()
    wall[0] -= 3600.0
    mono[0] += 60.0
    assert ward.audio()["remaining_s"] == pytest.approx(alarm_board.AUDIO_PAUSE_S - 60.0)
    mono[0] += alarm_board.AUDIO_PAUSE_S
    assert not ward.audio()["paused"]


def test_a_beat_delivered_twice_is_shown_and_counted_once() -> None:
    """At-least-once delivery: a restarted worker re-publishes beats with the same R-peak."""
    ward = CentralStation()
    stream(ward, "bed-1", 3.0)
    # 689 and 975: re-published by a restarted worker whose resampling started elsewhere.
    for index in (400, 688, 400, 976, 689, 975):
        ward.ingest("ecg.beats", beat("bed-1", index))
    assert len(ward.detail("bed-1")["beats"]) == 3
    assert ward.duplicates == 3


def test_the_other_leads_are_kept_beside_the_first_for_the_detail_page() -> None:
    ward = CentralStation()
    for start in range(0, 3600, 360):
        c = samples("bed-1", start, 360)
        ward.ingest("ecg.samples", Chunk(c.bed, c.record, c.fs, c.start_index, c.start_time,
                                         c.samples, (-c.samples,)), 0.0)  # fmt: skip
    d = ward.detail("bed-1", seconds=5.0)
    assert len(d["others"]) == 1 and len(d["others"][0]) == len(d["signal"])
    first = np.array([np.nan if v is None else v for v in d["signal"]])
    other = np.array([np.nan if v is None else v for v in d["others"][0]])
    np.testing.assert_allclose(other, -first, atol=1e-5, equal_nan=True)  # same slots
    one = CentralStation()
    one.ingest("ecg.samples", samples("bed-1", 0, 360), 0.0)
    assert one.detail("bed-1")["others"] == []


def test_bed_names_with_unusual_digits_still_sort() -> None:
    """Found by the fuzz test: "²" passes str.isdigit but not int()."""
    ward = CentralStation()
    for bed in ("bed-²", "bed-٣", "bed-2"):
        ward.ingest("ecg.samples", samples(bed, 0, 10), 0.0)
    beds = ward.beds()
    assert set(beds) == {"bed-²", "bed-٣", "bed-2"} and beds[0] == "bed-2"


def test_a_restarted_worker_s_reset_ends_what_the_old_worker_left_open() -> None:
    """An alarm open when its worker was killed never gets an end; the reset says it is over."""
    ward = CentralStation()
    ward.ingest("ecg.alerts", alert("a1", "vtach", "high", "start", T0 + 10))
    ward.ingest("ecg.alerts", alert("b1", "vtach", "high", "start", T0 + 10, bed="bed-2"))
    ward.ingest("ecg.alerts", alert("r1", "pipeline_reset", "technical", "start", T0 + 60))
    active = {a["alarm_id"] for a in ward.active_alarms(T0 + 61)}
    assert active == {"b1", "r1"}  # the other bed's alarm is not touched
    ended = next(h for h in ward.history(now=T0 + 61) if h["alarm_id"] == "a1")
    assert ended["end"] == T0 + 60 and "analysis restarted" in ended["message"]


def test_a_silent_bed_keeps_no_physiological_alarm_active(monkeypatch) -> None:
    ward = CentralStation()
    mono = [1000.0]
    monkeypatch.setattr(st.time, "monotonic", lambda: mono[0])
    stream(ward, "bed-1", 2.0, arrived=mono[0])
    ward.ingest("ecg.alerts", alert("a1", "vtach", "high", "start", T0 + 1))
    ward.ingest("ecg.alerts", alert("t1", "no_data", "technical", "start", T0 + 1))
    mono[0] += alarm_board.SILENT_ALARM_S - 1
    assert {a["alarm_id"] for a in ward.active_alarms()} == {"a1", "t1"}
    mono[0] += 2
    assert {a["alarm_id"] for a in ward.active_alarms()} == {"t1"}
    ended = next(h for h in ward.history() if h["alarm_id"] == "a1")
    assert "no signal from the bed" in ended["message"]
