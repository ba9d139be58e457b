"""The central view: a grid of bed tiles with sweeping ECG strips.

Refresh is split by rate. The strips: when the page mounts, a clientside callback starts a
browser-side loop (assets/sweep.js) that every `SWEEP_MS` fetches each bed's new display
samples since its cursors from `SWEEP_ROUTE` (a few dozen numbers per bed) and draws them into
the tiles' canvases; it stops when the page is left. Nothing in Dash's layout changes at 5 Hz:
every Dash update (even a dcc.Interval tick) costs the browser a pass over all ~300 components
of the grid, which measured as the largest share of its CPU, so the 5 Hz path stays outside
it. Numbers and alarm state: thin callbacks on the shell's 1 s tick, rebuilding the grid only
when the set of beds changes.
"""

from __future__ import annotations

import time
from urllib.parse import quote

from dash import ALL, Dash, Input, Output, State, ctx, dcc, html, no_update
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


#: What the once-a-second refresh writes into each tile: (element type, property, renderer).
#: Only strings, class names and styles change, never child components, so the browser does
#: not re-walk the layout every second.
TILE_FIELDS = (
    ("tile", "className", tile_class),
    ("tile-alarm", "children", tile_alarm),
    ("tile-record", "children", lambda t: t["record"]),
    ("tile-hr", "children", lambda t: number(t["hr"])),
    ("tile-beat", "children", lambda t: t["last_label"] or "-"),
    ("tile-beat", "style", tile_class_style),
    ("tile-pvc", "children", lambda t: number(t["pvc_per_min"])),
)


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
                              className="tile-record"),
                    html.Span(tile_alarm(tile), id={"type": "tile-alarm", "bed": bed},
                              className="tile-alarm"),
                ]),
                html.Div(className="tile-body", children=[
                    html.Div(className="tile-strip", children=[
                        html.Canvas(className="strip", **{"data-bed": bed}),
                        html.Div("NO SIGNAL", className="no-signal-text"),
                    ]),
                    html.Div(className="tile-side", children=[
                        html.Span("HR bpm", className="vital-name"),
                        html.Span(number(tile["hr"]), id={"type": "tile-hr", "bed": bed},
                                  className="hr-value"),
                        html.Div(className="vital-row", children=[
                            html.Div(className="vital", children=[
                                html.Span("BEAT", className="vital-name"),
                                html.Span(tile["last_label"] or "-", className="beat-class",
                                          id={"type": "tile-beat", "bed": bed},
                                          style=tile_class_style(tile)),
                            ]),
                            html.Div(className="vital", children=[
                                html.Span("PVC/min", className="vital-name"),
                                html.Span(number(tile["pvc_per_min"]), className="pvc-value",
                                          id={"type": "tile-pvc", "bed": bed}),
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
    """Tile callbacks ride on the shell's 1 s `status-tick`; the sweep on the browser's loop."""

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

    @app.callback(
        *[Output({"type": kind, "bed": ALL}, prop) for kind, prop, _ in TILE_FIELDS],
        Input("status-tick", "n_intervals"),
        prevent_initial_call=True,
    )
    def tiles(_n):
        by_bed = {t["bed"]: t for t in ward.tiles()}
        return [
            [render(by_bed[s["id"]["bed"]]) if s["id"]["bed"] in by_bed else no_update
             for s in specs]
            for (_, _, render), specs in zip(TILE_FIELDS, ctx.outputs_list, strict=True)
        ]

    @app.server.route(SWEEP_ROUTE, methods=["POST"])
    def sweep():
        """New display samples per bed since the browser's cursors (JSON {bed: last slot})."""
        cursors = (request.get_json(silent=True) or {}).get("cursors") or {}
        if not isinstance(cursors, dict) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in cursors.values()):
            return jsonify(error="cursors must map bed ids to integer slots"), 400
        return jsonify(now=time.time(), beds=ward.sweep(cursors))

    app.clientside_callback(
        "function (spec) { return window.dash_clientside.ecg.startSweep(spec); }",
        Output("sweep-sink", "data"),
        Input("sweep-spec", "data"),
    )
