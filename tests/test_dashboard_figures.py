"""Pure figure builders and page helpers of the dashboard: data in, figure/markup out."""

from __future__ import annotations

import numpy as np
import pytest

from monitor import contract
from monitor.dashboard import app as shell
from monitor.dashboard import central, detail, figures, history

FS = contract.FS


def a_detail(beats=(), refs=(), first=10_000, seconds=30.0) -> dict:
    n = round(seconds * FS)
    return {
        "bed": "bed-01", "fs": FS, "first_slot": first,
        "signal": np.sin(np.arange(n) / 10.0).round(3).tolist(),
        "beats": list(beats), "refs": list(refs),
    }


def a_beat(slot: int, label: str, reference: str | None = None) -> dict:
    probs = dict.fromkeys(contract.CLASSES, 0.01)
    probs[label] = 0.96
    return {"slot": slot, "time": slot / FS, "label": label, "probs": probs, "hr": 72.0,
            "reference": reference}


def test_sweep_spec_has_a_one_millivolt_calibration_pulse_left_of_the_sweep() -> None:
    spec = figures.sweep_spec(6.0, FS, 0.25)
    assert spec["n"] == 750 and spec["gap"] == 31
    assert max(spec["cal"]["y"]) - min(spec["cal"]["y"]) == 1.0  # 1 mV
    assert spec["x_range"][0] < min(spec["cal"]["x"]) < max(spec["cal"]["x"]) < 0.0
    lo, hi = spec["y_range"]
    assert lo < 0.0 and hi > 1.0  # the whole pulse is on screen at the fixed gain
    assert spec["grid"]["minor"] == [0.2, 0.5]  # 5 mm boxes at 25 mm/s and 10 mm/mV
    with pytest.raises(ValueError, match="positive"):
        figures.sweep_spec(0.0)


def test_detail_strip_marks_every_beat_with_its_class_and_the_reference_below() -> None:
    beats = [a_beat(10_100, "N", "N"), a_beat(10_200, "V", "N"), a_beat(10_300, "S")]
    refs = [{"slot": 10_101, "symbol": "N", "label": "N", "matched": True},
            {"slot": 10_199, "symbol": "N", "label": "N", "matched": True},
            {"slot": 10_250, "symbol": "+", "label": "", "matched": False}]
    fig = figures.detail_strip_figure(a_detail(beats, refs), 0.0, selected_slot=10_200)
    ecg, predicted, reference = fig.data
    assert len(ecg.y) == 3750
    assert list(predicted.text) == ["N", "V", "S"]
    assert list(predicted.marker.color) == [figures.CLASS_COLOURS[c] for c in "NVS"]
    assert list(predicted.marker.line.width) == [0, 3, 0]  # the selected beat is outlined
    assert [c[0] for c in predicted.customdata] == [10_100, 10_200, 10_300]
    assert list(reference.text) == ["N", "N"]  # rhythm annotations are not labels
    assert predicted.x[1] == np.datetime64(round(10_200 / FS * 1000), "ms")
    assert any(s.type == "line" for s in fig.layout.shapes)  # selection cursor


def test_detail_strip_draws_the_other_leads_under_the_first() -> None:
    detail = a_detail([a_beat(10_100, "N")])
    detail["others"] = [[0.5, None, -0.5]]
    fig = figures.detail_strip_figure(detail, 0.0)
    lead2 = fig.data[-1]
    assert lead2.name == "lead 2"
    assert list(lead2.y) == [0.5 - figures.OTHER_LEAD_STEP_MV, None,
                             -0.5 - figures.OTHER_LEAD_STEP_MV]  # fmt: skip
    bottom, top = fig.layout.yaxis.range
    assert bottom == figures.DETAIL_RANGE_MV[0] - figures.OTHER_LEAD_STEP_MV
    assert top == figures.DETAIL_RANGE_MV[1]


def test_detail_strip_without_reference_has_no_reference_row() -> None:
    fig = figures.detail_strip_figure(a_detail([a_beat(10_100, "N")]), 3600.0)
    assert [t.name for t in fig.data] == ["ECG", "predicted"]
    assert fig.data[0].x[0] == np.datetime64(round((10_000 / FS + 3600) * 1000), "ms")


def test_probability_figure_shows_each_class_in_order() -> None:
    fig = figures.probability_figure({"N": 0.1, "V": 0.85, "S": 0.05}, "beat")
    bar = fig.data[0]
    assert list(bar.x) == list(contract.CLASSES)
    assert list(bar.y) == [0.1, 0.05, 0.85, 0.0, 0.0]
    assert fig.layout.title.text == "beat"
    empty = figures.probability_figure(None)
    assert not empty.data and empty.layout.annotations[0].text == "no beat yet"


def test_hr_trend_spans_thirty_minutes_and_says_when_empty() -> None:
    fig = figures.hr_trend_figure([(1000.0, 60.0), (1001.0, 62.0)], 0.0, now=2000.0)
    assert list(fig.data[0].y) == [60.0, 62.0]
    assert tuple(fig.layout.yaxis.range) == figures.HR_RANGE_BPM
    wide = figures.hr_trend_figure([(1000.0, 180.0), (1001.0, 30.0)], 0.0, now=2000.0)
    assert tuple(wide.layout.yaxis.range) == (20.0, 190.0)
    x0, x1 = fig.layout.xaxis.range
    assert np.datetime64(x1) - np.datetime64(x0) == np.timedelta64(1800, "s")
    assert figures.hr_trend_figure([], 0.0, 2000.0).layout.annotations[0].text.startswith("no")


def test_average_beats_are_centred_on_the_r_peak_and_counted() -> None:
    fig = figures.average_beats_figure({"N": [0.0] * 88, "V": [1.0] * 88}, {"N": 10, "V": 2},
                                       -0.25)
    assert [t.name for t in fig.data] == ["N (n=10)", "V (n=2)"]
    assert fig.data[0].x[0] == pytest.approx(-250.0)
    assert fig.data[0].x[31] == pytest.approx(-2.0)  # 31 samples at 125 Hz after -250 ms


def test_confusion_figure_counts_rows_as_reference() -> None:
    cm = np.zeros((5, 5), dtype=int)
    cm[0, 0], cm[0, 2], cm[2, 2] = 8, 2, 5
    fig = figures.confusion_figure(cm)
    z = np.asarray(fig.data[0].z)
    assert z[0, 0] == pytest.approx(0.8) and z[0, 2] == pytest.approx(0.2) and z[2, 2] == 1.0
    assert fig.data[0].text[0][2] == "2"
    with pytest.raises(ValueError, match="5x5"):
        figures.confusion_figure(np.eye(3))


def test_probability_map_has_a_column_per_beat() -> None:
    fig = figures.probability_map_figure(np.full((7, 5), 0.2))
    assert np.asarray(fig.data[0].z).shape == (5, 7)
    with pytest.raises(ValueError, match="shape"):
        figures.probability_map_figure(np.ones((3, 4)))


# -- page helpers ----------------------------------------------------------------------------
def a_tile(alarm=None, n_alarms=0, no_signal=False) -> dict:
    return {"bed": "bed-01", "record": "205", "hr": 143.4, "last_label": "V",
            "pvc_per_min": 12.0, "sqi": 1.0, "no_signal": no_signal, "alarm": alarm,
            "n_alarms": n_alarms}


def an_alarm(priority="high", kind="vtach", acked_at=None) -> dict:
    return {"bed": "bed-01", "record": "205", "alarm_id": "a1", "kind": kind,
            "priority": priority, "start": 100.0, "end": None, "duration_s": 5.0,
            "message": "VT 8 beats at 160 bpm", "acked_at": acked_at, "active": True}


def test_tile_alarm_state_is_colour_class_and_text() -> None:
    high = a_tile(an_alarm(), n_alarms=2)
    assert central.tile_class(high) == "tile alarm-high flash"
    assert central.tile_alarm(high) == "*** V-TACH +1"
    acked = a_tile(an_alarm(acked_at=101.0), n_alarms=1)
    assert central.tile_class(acked) == "tile alarm-high"  # steady once acknowledged
    assert central.tile_alarm(acked).endswith("ACK")
    assert central.tile_class(a_tile(an_alarm("medium", "bigeminy"))) == "tile alarm-medium"
    assert central.tile_alarm(a_tile(an_alarm("technical", "leads_off"), 1)) == "! LEADS OFF"
    assert central.tile_class(a_tile(no_signal=True)) == "tile no-signal"
    assert central.tile_alarm(a_tile()) == ""


def test_alarm_bar_rows_offer_acknowledge_until_acknowledged() -> None:
    rows = shell.alarm_list([an_alarm(), an_alarm("medium", "pvc_run", acked_at=150.0)], 160.0)
    first, second = (r.children for r in rows)
    assert rows[0].className == "alarm-row p-high"
    assert first[-1].id == {"type": "ack", "alarm": "a1"}
    assert first[4].children == "1:00"  # duration since start
    assert getattr(first[4], "data-age") == 60.0  # the browser counts on from it
    assert rows[1].className == "alarm-row p-medium acked"
    assert second[-1].children.startswith("ACK ")
    assert shell.alarm_list([], 0.0)[0].children == "No active alarms"


def test_the_alarm_list_is_rebuilt_only_when_its_alarms_change() -> None:
    """Its key ignores the ages (the browser counts them) but not an acknowledgement."""
    a, b = an_alarm(), an_alarm("medium", "pvc_run")
    assert shell.alarm_list_key([a, b]) == shell.alarm_list_key([{**a, "start": 0.0}, b])
    assert shell.alarm_list_key([a, b]) != shell.alarm_list_key([{**a, "acked_at": 1.0}, b])
    assert shell.alarm_list_key([a]) != shell.alarm_list_key([a, b])


def test_alarm_count_by_priority() -> None:
    alarms = [an_alarm(), an_alarm("medium"), an_alarm("medium")]
    assert shell.alarm_count(alarms) == "3 active: 1 high, 2 medium"
    assert shell.alarm_count([]) == ""


def test_banner_and_audio_button_texts() -> None:
    down = {"connected": False, "since": 0.0, "error": "refused", "bootstrap": "h:1",
            "rejected": 0, "last_rejection": "", "evicted": 0}
    text, cls = shell.banner(down)
    assert cls == "banner" and "h:1" in text and "reconnecting" in text
    assert shell.banner({**down, "connected": True}) == ("", "banner hidden")
    assert shell.audio_button({"paused": True, "remaining_s": 119.4}) == (
        "AUDIO PAUSED 1:59", "audio-btn paused")


def test_bed_detail_agreement_and_selected_beat() -> None:
    d = {**a_detail([a_beat(10_100, "N", "N"), a_beat(10_200, "V", "V")]),
         "has_reference": True,
         "agreement": {"matched": 4, "agreed": 3, "recent": [True, True, False, True]}}
    assert detail.agreement_text(d).startswith("agreement with reference 75.0 % over 4 beats")
    beat, title = detail.selected_beat(d, 10_100)
    assert beat["label"] == "N" and title.startswith("selected beat")
    beat, title = detail.selected_beat(d, 999)  # scrolled away: fall back to the last beat
    assert beat["label"] == "V" and title.startswith("last beat") and "reference V" in title
    assert detail.agreement_text({**d, "has_reference": False}).startswith("no reference")


def test_every_alarm_kind_has_a_short_screen_label() -> None:
    from monitor.alarms.events import KINDS
    from monitor.dashboard.present import kind_label

    labels = {k: kind_label(k) for k in KINDS}
    assert all(0 < len(v) <= 16 and v == v.upper() for v in labels.values()), labels
    assert len(set(labels.values())) == len(KINDS)
    assert kind_label("new_kind") == "NEW KIND"


def test_history_rows_and_csv() -> None:
    rows = history.rows([{**an_alarm(), "end": 130.0, "duration_s": 30.0}])
    assert rows[0]["kind"] == "V-TACH" and rows[0]["duration"] == "0:30"
    csv_text = history.to_csv(rows)
    assert csv_text.splitlines()[0] == ",".join(history.COLUMNS)
    assert "V-TACH" in csv_text.splitlines()[1]
