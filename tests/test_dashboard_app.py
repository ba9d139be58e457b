"""The dashboard app without a browser: the sweep endpoint, routing and the command line."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.dashboard.__main__ import main
from monitor.dashboard.app import MAX_REQUEST_BYTES, create_app
from monitor.dashboard.central import SWEEP_ROUTE
from monitor.dashboard.store import CentralStation
from monitor.errors import InputError
from monitor.validate import Chunk


@pytest.fixture
def ward() -> CentralStation:
    ward = CentralStation("127.0.0.1:9")
    x = np.sin(np.arange(720) / 20.0)
    ward.ingest("ecg.samples", Chunk("bed-01", "100", 360.0, 0, 1_700_000_000.0, x))
    return ward


def test_an_oversized_request_is_refused_before_it_is_read(ward) -> None:
    """The 20 MB upload limit is checked in the browser; the server must not decode 100 MiB."""
    client = create_app(ward).server.test_client()
    big = b"x" * (MAX_REQUEST_BYTES + 1)
    reply = client.post("/_dash-update-component", data=big, content_type="application/json")
    assert reply.status_code == 413


def test_sweep_endpoint_sends_samples_after_the_cursor(ward) -> None:
    client = create_app(ward).server.test_client()
    first = client.post(SWEEP_ROUTE, json={"cursors": {}}).get_json()
    bed = first["beds"]["bed-01"]
    assert len(bed["y"]) == 750 and first["now"] > 0
    cursor = bed["s"] + len(bed["y"]) - 1
    again = client.post(SWEEP_ROUTE, json={"cursors": {"bed-01": cursor}}).get_json()
    assert again["beds"]["bed-01"]["y"] == [] and "tiles" not in again


def test_sweep_endpoint_sends_the_tiles_values_when_asked(ward) -> None:
    client = create_app(ward).server.test_client()
    reply = client.post(SWEEP_ROUTE, json={"cursors": {}, "tiles": True}).get_json()
    tile = reply["tiles"]["bed-01"]
    assert tile["record"] == "100" and tile["hr"] == "---" and tile["beat"] == "-"
    assert tile["class"].startswith("tile") and tile["alarm"] == ""


@pytest.mark.parametrize("body", [{"cursors": {"bed-01": "x"}}, {"cursors": [1]},
                                  {"cursors": {"bed-01": True}}])
def test_sweep_endpoint_refuses_bad_cursors(ward, body) -> None:
    response = create_app(ward).server.test_client().post(SWEEP_ROUTE, json=body)
    assert response.status_code == 400
    assert "cursors" in response.get_json()["error"]


def test_pages_are_served_by_path(ward) -> None:
    client = create_app(ward).server.test_client()
    for path in ("/", "/bed/bed-01", "/alarms", "/analysis"):
        assert client.get(path).status_code == 200  # Dash serves the shell; routing is below
    from monitor.dashboard.app import page_for

    app = create_app(ward)
    with app.server.test_request_context("/"):
        assert page_for("/", ward, app).className == "central"
        assert page_for("/bed/bed%2D01", ward, app).children[0].data == "bed-01"
        assert page_for("/alarms", ward, app).className == "history"
        assert page_for("/analysis", ward, app).className == "offline"
        assert page_for("/nowhere", ward, app).className == "not-found"


@pytest.mark.parametrize(("argv", "match"), [
    (["--bootstrap", "localhost"], "HOST:PORT"),
    (["--port", "0"], "--port"),
])
def test_command_line_refuses_bad_options(argv, match) -> None:
    with pytest.raises(InputError, match=match):
        main(argv)
