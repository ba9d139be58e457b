"""The central station in headless Chromium, reading a real (Tansu) broker fed in real time.

Beds come from the real bedside simulator (`python -m simulators.replay`, MIT-BIH at 1x) and,
where beats matter, the real stream worker (`python -m monitor worker`). Tests of alarm
handling (acknowledge, audio pause, break-through, history) publish their alarm episodes
themselves, as `ecg.alerts` messages built with `monitor.messages.AlertEvent`, so that each
step happens exactly when the test needs it; the live test shows the worker's own VT alarm.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains

from monitor import processes
from monitor.broker import ENV_BOOTSTRAP
from monitor.classifier import DEFAULT_MODEL
from monitor.dashboard.app import create_app
from monitor.dashboard.feed import KafkaFeed
from monitor.dashboard.store import CentralStation

pytestmark = [pytest.mark.browser, pytest.mark.kafka]


def pm(kind: str, value: str, key: str = "bed") -> str:
    """CSS selector of a pattern-matching Dash id (its DOM id is JSON with sorted keys)."""
    return f"[id='{json.dumps({key: value, 'type': kind}, sort_keys=True, separators=(',', ':'))}']"


def until(check, timeout: float, what: str, every: float = 0.25):
    """Poll `check()` until it returns something truthy; fail naming `what`. The page redraws
    several times a second, so an element found a moment ago may be gone when read: read again."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except StaleElementReferenceException:
            value = None
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


@pytest.fixture
def ward(kafka_broker):
    ward = CentralStation(kafka_broker.bootstrap)
    with KafkaFeed(kafka_broker.bootstrap, ward):
        yield ward


class Pipeline:
    """Product processes against the test's broker; all stopped at teardown."""

    def __init__(self, bootstrap: str, mitdb_dir: Path, logs: Path) -> None:
        self.logs = logs
        self.env = {**os.environ, ENV_BOOTSTRAP: bootstrap, "ECG_MITDB_DIR": str(mitdb_dir),
                    "ECG_WORKER_DATADIR": str(logs / "worker"), "ECG_DEVICE": "cpu",
                    "PYTHONUNBUFFERED": "1"}
        self.procs: dict = {}

    def start(self, name: str, module: str, *argv: str) -> None:
        self.procs[name] = processes.spawn(processes.python_module(module, *argv),
                                           self.logs / f"{name}.log", env=self.env)

    def simulate(self, beds: dict[str, str], *argv: str) -> None:
        """Beds bed-01.. playing `beds`' records in order (names checked against the plan)."""
        assert list(beds) == [f"bed-{i:02d}" for i in range(1, len(beds) + 1)]
        self.start("simulator", "simulators.replay", "--beds", str(len(beds)), "--records",
                   *beds.values(), "--reference", "--quiet", *argv)

    def stop(self, name: str) -> None:
        processes.stop(self.procs.pop(name))

    def close(self) -> None:
        for name in reversed(list(self.procs)):
            self.stop(name)


@pytest.fixture
def pipeline(kafka_broker, mitdb_dir, tmp_path):
    p = Pipeline(kafka_broker.bootstrap, mitdb_dir, tmp_path)
    yield p
    p.close()


@pytest.fixture
def alerts(kafka_broker):
    """Publish alarm episodes as the worker does."""
    from kafka import KafkaProducer

    from monitor.messages import ALERTS, AlertEvent

    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap)

    def send(bed: str, kind: str, priority: str, state: str, alarm_id: str, message: str = ""
             ) -> None:
        event = AlertEvent(bed=bed, record="", alarm_id=alarm_id, kind=kind, priority=priority,
                           state=state, time=time.time(), index=0, message=message or kind)
        producer.send(ALERTS, key=bed.encode(), value=event.dumps())
        producer.flush()

    yield send
    producer.close()


def sweep_last(dash_duo, bed: str) -> int | None:
    return dash_duo.driver.execute_script(
        "var s = window.ecgSweep && window.ecgSweep.beds[arguments[0]];"
        "return s ? s.last : null;", bed)


def green_pixels(dash_duo, bed: str) -> int:
    """Trace pixels on a tile's canvas: the strip is really drawn, not just buffered."""
    return dash_duo.driver.execute_script(
        "var c = document.querySelector('canvas.strip[data-bed=\"' + arguments[0] + '\"]');"
        "var d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, n = 0;"
        "for (var i = 0; i < d.length; i += 4) { if (d[i+1] > 200 && d[i] < 120) n++; }"
        "return n;", bed)


def classes_of(dash_duo, selector: str) -> str:
    return dash_duo.find_element(selector).get_attribute("class")


def test_grid_shows_moving_tiles_then_no_signal(dash_duo, ward, pipeline) -> None:
    pipeline.simulate({"bed-01": "100", "bed-02": "119", "bed-03": "208"})
    dash_duo.start_server(create_app(ward))
    for bed in ("bed-01", "bed-02", "bed-03"):
        dash_duo.wait_for_element(pm("tile", bed), timeout=30)
    first = until(lambda: sweep_last(dash_duo, "bed-01"), 15, "the first sweep samples")
    time.sleep(1.5)
    assert sweep_last(dash_duo, "bed-01") - first >= 100  # ~1.5 s at 125 Hz swept on
    assert green_pixels(dash_duo, "bed-01") > 300
    assert dash_duo.find_element(pm("tile-record", "bed-02")).text == "119"
    assert "no-signal" not in classes_of(dash_duo, pm("tile", "bed-03"))

    pipeline.stop("simulator")  # every monitor goes quiet
    until(lambda: "no-signal" in classes_of(dash_duo, pm("tile", "bed-03")), 20,
          "NO SIGNAL on the silent bed")
    assert "NO SIGNAL" in dash_duo.find_element(pm("tile", "bed-03")).text


def test_high_alarm_flashes_red_can_be_acknowledged_and_audio_paused(
        dash_duo, ward, pipeline, alerts) -> None:
    pipeline.simulate({"bed-01": "205", "bed-02": "100"})
    dash_duo.start_server(create_app(ward))
    dash_duo.wait_for_element(pm("tile", "bed-02"), timeout=30)
    alerts("bed-01", "vtach", "high", "start", "bed-01/vtach/1", "VT 6 beats at 150 bpm")
    tile = pm("tile", "bed-01")
    until(lambda: "alarm-high flash" in classes_of(dash_duo, tile), 10, "a flashing red tile")
    dash_duo.wait_for_contains_text(pm("tile-alarm", "bed-01"), "*** V-TACH", timeout=5)
    dash_duo.wait_for_contains_text("#alarm-list", "VT 6 beats at 150 bpm", timeout=5)
    # The two phases of the flash: --red (#ff2a2a) and #400 (= #440000).
    assert dash_duo.find_element(tile).value_of_css_property("border-top-color") in (
        "rgba(255, 42, 42, 1)", "rgb(255, 42, 42)", "rgba(68, 0, 0, 1)", "rgb(68, 0, 0)")

    dash_duo.find_element(pm("ack", "bed-01/vtach/1", key="alarm")).click()
    until(lambda: "flash" not in classes_of(dash_duo, tile), 5, "the tile to stop flashing")
    assert "alarm-high" in classes_of(dash_duo, tile)  # still red: the condition persists
    dash_duo.wait_for_contains_text(pm("tile-alarm", "bed-01"), "ACK", timeout=5)
    dash_duo.wait_for_contains_text(".alarm-row.acked", "ACK", timeout=5)

    # Audio pause counts down; only a new alarm of higher priority breaks through.
    alerts("bed-02", "pvc_couplet", "medium", "start", "bed-02/couplet/1")
    dash_duo.wait_for_contains_text("#alarm-list", "PVC COUPLET", timeout=5)
    dash_duo.find_element("#audio-btn").click()
    dash_duo.wait_for_contains_text("#audio-btn", "AUDIO PAUSED 1:5", timeout=5)
    alerts("bed-02", "bigeminy", "medium", "start", "bed-02/bigeminy/1")
    dash_duo.wait_for_contains_text("#alarm-list", "BIGEMINY", timeout=5)
    assert "AUDIO PAUSED" in dash_duo.find_element("#audio-btn").text
    alerts("bed-02", "asystole", "high", "start", "bed-02/asystole/1")
    dash_duo.wait_for_text_to_equal("#audio-btn", "AUDIO ON", timeout=5)
    assert "new high alarm on bed-02" in dash_duo.find_element("#audio-note").text
    rows = dash_duo.find_elements(".alarm-row")
    assert [r.get_attribute("class").split()[1] for r in rows] == [
        "p-high", "p-high", "p-medium", "p-medium"]
    assert "ASYSTOLE" in rows[0].text  # newest first within a priority

    alerts("bed-01", "vtach", "high", "end", "bed-01/vtach/1")
    until(lambda: "alarm-" not in classes_of(dash_duo, tile), 5, "the alarm to leave the tile")

    dash_duo.find_element("a[href='/alarms']").click()
    dash_duo.wait_for_contains_text("#history-count", "4 of 4", timeout=10)
    dash_duo.select_dcc_dropdown("#history-beds", value="bed-02")
    dash_duo.wait_for_contains_text("#history-count", "3 of 4", timeout=10)
    dash_duo.find_element("#history-export").click()
    csv_file = until(lambda: next(Path(dash_duo.download_path).glob("alarm-history-*.csv"),
                                  None), 10, "the exported CSV")
    lines = csv_file.read_text().splitlines()
    assert lines[0].startswith("start,end,bed") and len(lines) == 1 + 3
    assert all(",bed-02," in line for line in lines[1:])


@pytest.mark.slow
def test_live_pipeline_vt_record_alarms_and_bed_detail(dash_duo, ward, pipeline) -> None:
    """Simulator -> worker -> dashboard: record 205 has runs of VT 14 s and 18 s in."""
    if not DEFAULT_MODEL.is_file():
        pytest.skip(f"no trained model at {DEFAULT_MODEL}: train it first (make train)")
    pipeline.start("worker", "monitor", "worker")
    pipeline.simulate({"bed-01": "205", "bed-02": "100"}, "--start-s", "285")
    dash_duo.start_server(create_app(ward))
    dash_duo.wait_for_element(pm("tile", "bed-02"), timeout=30)
    tile = pm("tile", "bed-01")
    until(lambda: "alarm-high" in classes_of(dash_duo, tile), 120, "the VT alarm from the worker")
    assert "V-TACH" in dash_duo.find_element(pm("tile-alarm", "bed-01")).text
    assert "alarm-high" not in classes_of(dash_duo, pm("tile", "bed-02"))
    hr = dash_duo.find_element(pm("tile-hr", "bed-02")).text
    assert hr.isdigit() and 50 <= int(hr) <= 110  # record 100 runs at about 75 bpm
    alarm_id = next(a["alarm_id"] for a in ward.active_alarms() if a["kind"] == "vtach")
    dash_duo.find_element(pm("ack", alarm_id, key="alarm")).click()
    dash_duo.wait_for_contains_text(pm("tile-alarm", "bed-01"), "ACK", timeout=5)

    dash_duo.find_element(tile).click()
    until(lambda: dash_duo.driver.current_url.endswith("/bed/bed-01"), 5, "the detail URL")
    dash_duo.wait_for_contains_text("#detail-agreement", "agreement with reference", timeout=20)
    beats = "#detail-strip .scatterlayer .trace:nth-of-type(2)"
    labels = until(lambda: [t.text for t in dash_duo.find_elements(f"{beats} .textpoint text")],
                   10, "the worker's beat labels on the strip")
    assert "V" in labels and set(labels) <= set("NSVFQ")
    assert dash_duo.find_elements("#detail-strip .scatterlayer .trace:nth-of-type(3) text")
    dash_duo.wait_for_contains_text("#detail-probs .gtitle", "last beat", timeout=5)

    dash_duo.find_element("#detail-freeze input").click()  # hold the strip still to click it
    time.sleep(1.2)
    points = dash_duo.find_elements(f"{beats} .point")
    ActionChains(dash_duo.driver).move_to_element(points[len(points) // 2]).pause(0.3).click() \
        .perform()
    dash_duo.wait_for_contains_text("#detail-probs .gtitle", "selected beat", timeout=5)
    assert len(dash_duo.find_elements("#detail-probs .bars .point")) == 5
    dash_duo.wait_for_contains_text("#detail-shapes .legend", "(n=", timeout=10)
    dash_duo.wait_for_contains_text("#detail-counts .gtitle", "Beats per class", timeout=5)
    dash_duo.wait_for_contains_text("#detail-trend .gtitle", "Heart rate", timeout=5)


def kaggle_rows(mitdb_dir: Path, record: str, n: int) -> str:
    """Beats of a record as Kaggle rows: 187 values and the AAMI class index."""
    from monitor.beats import extract_beats
    from monitor.contract import CLASSES, aami_class
    from monitor.records import read_annotations, read_lead
    from monitor.signal.ec57 import match, reference_beats

    lead = read_lead(record, mitdb_dir)
    x = lead.signal[: 300 * round(lead.fs)]
    beats = extract_beats(x, lead.fs)
    ann = read_annotations(record, mitdb_dir)
    keep = ann.sample < len(x)
    ref = reference_beats(list(np.asarray(ann.symbol)[keep]), list(ann.sample[keep]))
    pairs = match(ref.samples, [b.index for b in beats], lead.fs).pairs[:n]
    lines = []
    for i, j in pairs:
        label = CLASSES.index(aami_class(str(ref.symbols[i])))
        lines.append(",".join(f"{v:.6f}" for v in beats[j].waveform) + f",{label}.0")
    return "\n".join(lines) + "\n"


def upload(dash_duo, path: Path) -> None:
    """Choose `path` in the upload's file dialog (a fresh choice, as a person makes it)."""
    field = dash_duo.find_element("#upload input[type=file]")
    dash_duo.driver.execute_script("arguments[0].value = '';", field)
    field.send_keys(str(path))


def test_kaggle_csv_upload_shows_results(dash_duo, ward, mitdb_dir, tmp_path) -> None:
    if not DEFAULT_MODEL.is_file():
        pytest.skip(f"no trained model at {DEFAULT_MODEL}: train it first (make train)")
    from monitor.annotate import load_classifier

    path = tmp_path / "beats.csv"
    path.write_text(kaggle_rows(mitdb_dir, "119", 60))
    dash_duo.start_server(create_app(ward, lambda: load_classifier(None, device="cpu")))
    dash_duo.find_element("a[href='/analysis']").click()
    upload(dash_duo, path)
    dash_duo.wait_for_element("#analysis-table", timeout=60)
    dash_duo.wait_for_contains_text(".analysis-summary", "60 beats classified", timeout=5)
    assert dash_duo.find_element("#analysis-confusion .main-svg")
    assert "macro F1" in dash_duo.find_element(".metrics h4").text
    assert len(dash_duo.find_elements("#analysis-metrics tbody tr")) == 1 + 5  # header + classes
    dash_duo.find_elements("#analysis-table td[data-dash-column='p_V']")[2].click()
    dash_duo.wait_for_contains_text("#analysis-beat-probs .gtitle", "beat 3:", timeout=5)
    dash_duo.find_element("#analysis-export").click()
    out = until(lambda: next(Path(dash_duo.download_path).glob("ecg-analysis*.csv"), None), 10,
                "the results CSV")
    lines = out.read_text().splitlines()
    assert len(lines) == 61 and lines[0].startswith("beat,predicted,confidence")


def test_bad_upload_shows_an_error_and_the_page_keeps_working(dash_duo, ward, pipeline,
                                                               tmp_path) -> None:
    pipeline.simulate({"bed-01": "100"})
    dash_duo.start_server(create_app(ward))
    dash_duo.find_element("a[href='/analysis']").click()
    picture = tmp_path / "scan.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    upload(dash_duo, picture)
    dash_duo.wait_for_contains_text("#analysis-error", "Cannot analyse this upload", timeout=10)
    assert "upload a .csv" in dash_duo.find_element("#analysis-error").text

    table = tmp_path / "table.csv"
    table.write_text("a,b,c\n1,2,3\n")
    upload(dash_duo, table)
    dash_duo.wait_for_contains_text("#analysis-error", "has 3 columns", timeout=10)

    big = tmp_path / "huge.csv"
    big.write_bytes(b"0.1\n" * (6 * 1024 * 1024))  # 24 MB, over the 20 MB limit
    upload(dash_duo, big)
    dash_duo.wait_for_contains_text("#analysis-error", "the limit is 20 MB", timeout=20)

    signal = tmp_path / "signal.csv"
    signal.write_text("mV\n" + "\n".join("0.0" for _ in range(100)))
    upload(dash_duo, signal)
    dash_duo.wait_for_contains_text("#analysis-error", "enter its sampling rate", timeout=10)

    dash_duo.find_element("a[href='/']").click()  # the rest of the station still works
    dash_duo.wait_for_element(pm("tile", "bed-01"), timeout=30)
    until(lambda: sweep_last(dash_duo, "bed-01"), 15, "the sweep after the failed uploads")


def test_banner_appears_when_the_broker_stops_and_goes_when_it_returns(dash_duo, kafka_broker,
                                                                       ward) -> None:
    from monitor.broker import create_topics

    dash_duo.start_server(create_app(ward))
    until(lambda: "FEED OK" in dash_duo.find_element("#feed-state").text, 15, "a connected feed")
    assert "hidden" in classes_of(dash_duo, "#banner")
    kafka_broker.stop()
    dash_duo.wait_for_contains_text("#banner", "NO LIVE DATA", timeout=20)
    assert dash_duo.find_element("#banner").is_displayed()
    assert kafka_broker.bootstrap in dash_duo.find_element("#banner").text
    kafka_broker.start()  # same port
    create_topics(kafka_broker.bootstrap)
    until(lambda: "hidden" in classes_of(dash_duo, "#banner"), 30,
          "the banner to clear on reconnection")
    assert "FEED OK" in dash_duo.find_element("#feed-state").text
