"""The central view: a grid of bed tiles with sweeping ECG strips.

Refresh is split by rate. The strips: when the page mounts, a clientside callback starts a
browser-side loop (assets/sweep.js) that every `SWEEP_MS` fetches each bed's new display
samples since its cursors from `SWEEP_ROUTE` (a few dozen numbers per bed) and draws them into
the tiles' canvases, repainting only what changed; it stops when the page is left. About once
a second the same request brings each tile's numbers, class and alarm text (`tile_values`),
which the loop writes into the tile's elements. None of this goes through Dash: every Dash
update costs the browser a pass over all ~300 components of the grid, and with 32 beds the
per-second tile callbacks and the alarm list held the sweep under 2 Hz. Dash keeps what changes
the layout: the grid, rebuilt when the set of beds changes, and the shell's alarm list, rebuilt
when its alarms change.
"""

from __future__ import annotations

import time
from urllib.parse import quote

from dash import ALL, Dash, Input, Output, State, dcc, html, no_update
from flask import jsonify, request

from monitor.dashboard.display import DISPLAY_FS, STRIP_S
from monitor.dashboard.figures import CLASS_COLOURS, sweep_spec
from monitor.dashboard.present import alarm_text, number
from monitor.dashboard.store import CentralStation

#: Sweep refresh period: 5 Hz requested so that >= 4 Hz is reached under load.
SWEEP_MS = 200
#: The erase bar ahead of the newest sample, as on a bedside monitor.
SWEEP_GAP_S = 0.25
#: Where the browser fetches sweep samples (see `register`).
SWEEP_ROUTE = "/_ward/sweep"


def layout(ward: CentralStation, sweep_url: str) -> html.Div:
    tiles = ward.tiles()
    return html.Div(
        className="central",
        children=[
            dcc.Store(id="sweep-spec", data={**sweep_spec(STRIP_S, DISPLAY_FS, SWEEP_GAP_S),
                                             "url": sweep_url, "period_ms": SWEEP_MS}),
            dcc.Store(id="sweep-sink"),
            html.Div([build_tile(t) for t in tiles] or empty_ward(), id="ward-grid",
                     className="ward-grid"),
        ],
    )


def tile_class(tile: dict) -> str:
    classes = ["tile"]
    alarm = tile["alarm"]
    if alarm is not None:
        classes.append(f"alarm-{alarm['priority']}")
        if alarm["priority"] == "high" and alarm["acked_at"] is None:
            classes.append("flash")
    if tile["no_signal"]:
        classes.append("no-signal")
    return " ".join(classes)


def tile_alarm(tile: dict) -> str:
    alarm = tile["alarm"]
    if alarm is None:
        return ""
    text = alarm_text(alarm["priority"], alarm["kind"])
    if tile["n_alarms"] > 1:
        text += f" +{tile['n_alarms'] - 1}"
    if alarm["acked_at"] is not None:
        text += " ✓ACK"
    return text


def tile_class_style(tile: dict) -> dict:
    return {"color": CLASS_COLOURS.get(tile["last_label"] or "", "#8a96a3")}


def tile_values(tile: dict) -> dict:
    """What the browser's loop writes into a tile (assets/sweep.js): text, class names and a
    colour, never components, and outside Dash, which would re-walk the page's layout for
    them every second."""
    return {
        "class": tile_class(tile),
        "alarm": tile_alarm(tile),
        "record": tile["record"],
        "hr": number(tile["hr"]),
        "beat": tile["last_label"] or "-",
        "beat_colour": tile_class_style(tile)["color"],
        "pvc": number(tile["pvc_per_min"]),
    }


def build_tile(tile: dict) -> dcc.Link:
    bed = tile["bed"]
    return dcc.Link(
        href=f"/bed/{quote(bed)}",
        className="tile-link",
        children=html.Div(
            id={"type": "tile", "bed": bed},
            className=tile_class(tile),
            children=[
                html.Div(className="tile-head", children=[
                    html.Span(bed, className="tile-bed"),
                    html.Span(tile["record"], id={"type": "tile-record", "bed": bed},
                              className="tile-record", **{"data-field": "record"}),
                    html.Span(tile_alarm(tile), id={"type": "tile-alarm", "bed": bed},
                              className="tile-alarm", **{"data-field": "alarm"}),
                ]),
                html.Div(className="tile-body", children=[
                    html.Div(className="tile-strip", children=[
                        html.Canvas(className="strip", **{"data-bed": bed}),
                        html.Div("NO SIGNAL", className="no-signal-text"),
                    ]),
                    html.Div(className="tile-side", children=[
                        html.Span("HR bpm", className="vital-name"),
                        html.Span(number(tile["hr"]), id={"type": "tile-hr", "bed": bed},
                                  className="hr-value", **{"data-field": "hr"}),
                        html.Div(className="vital-row", children=[
                            html.Div(className="vital", children=[
                                html.Span("BEAT", className="vital-name"),
                                html.Span(tile["last_label"] or "-", className="beat-class",
                                          id={"type": "tile-beat", "bed": bed},
                                          style=tile_class_style(tile),
                                          **{"data-field": "beat"}),
                            ]),
                            html.Div(className="vital", children=[
                                html.Span("PVC/min", className="vital-name"),
                                html.Span(number(tile["pvc_per_min"]), className="pvc-value",
                                          id={"type": "tile-pvc", "bed": bed},
                                          **{"data-field": "pvc"}),
                            ]),
                        ]),
                    ]),
                ]),
            ],
        ),
    )


def empty_ward() -> html.Div:
    return html.Div(className="ward-empty", children=[
        html.H2("Waiting for beds"),
        html.P("No bed has sent ECG samples yet. Start the bedside simulator "
               "(make demo) or check that the broker named in the banner is the right one."),
    ])


def register(app: Dash, ward: CentralStation) -> None:
    """The grid is rebuilt on the shell's 1 s `status-tick` when the beds change; strips and tile
    values come through the sweep route, read by the browser's loop."""

    @app.callback(
        Output("ward-grid", "children"),
        Input("status-tick", "n_intervals"),
        State({"type": "tile", "bed": ALL}, "id"),
        prevent_initial_call=True,
    )
    def grid(_n, shown_ids):
        tiles = ward.tiles()
        if [t["bed"] for t in tiles] == [i["bed"] for i in shown_ids]:
            return no_update
        return [build_tile(t) for t in tiles]

    @app.server.route(SWEEP_ROUTE, methods=["POST"])
    def sweep():
        """New display samples per bed since the browser's cursors (JSON {bed: last slot}),
        and each tile's values when the browser asks for them (`tiles`: about once a second)."""
        body = request.get_json(silent=True) or {}
        cursors = body.get("cursors") or {}
        if not isinstance(cursors, dict) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in cursors.values()):
            return jsonify(error="cursors must map bed ids to integer slots"), 400
        out = {"now": time.time(), "beds": ward.sweep(cursors)}
        if body.get("tiles") is True:
            out["tiles"] = {t["bed"]: tile_values(t) for t in ward.tiles()}
        return jsonify(out)

    app.clientside_callback(
        "function (spec) { return window.dash_clientside.ecg.startSweep(spec); }",
        Output("sweep-sink", "data"),
        Input("sweep-spec", "data"),
    )
