"""Bed detail: 30 s strip with every beat's predicted class (and the reference label when one
streams), the probabilities of a clicked beat, HR trend, class counts and average beat shapes.

One thin callback per second reads `CentralStation.detail` and hands it to the figure builders;
clicking a beat only stores its slot, which the next refresh (triggered at once) draws.
"""

from __future__ import annotations

import time

from dash import Dash, Input, Output, State, dcc, html, no_update

from monitor import contract
from monitor.dashboard import figures
from monitor.dashboard.present import alarm_text, clock, number, utc_offset_s

_STRIP_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}
_SMALL_CONFIG = {"displayModeBar": False}


def layout(bed: str) -> html.Div:
    def graph(graph_id: str) -> dcc.Graph:
        return dcc.Graph(id=graph_id, className="detail-graph", config=_SMALL_CONFIG,
                         figure=figures.placeholder_figure())

    return html.Div(className="detail", children=[
        dcc.Store(id="detail-bed", data=bed),
        dcc.Store(id="selected-slot"),
        dcc.Interval(id="detail-tick", interval=1000),
        html.Div(className="detail-head", children=[
            dcc.Link("< Central", href="/", className="back-link"),
            html.Span(bed, className="detail-bed"),
            html.Span(id="detail-record", className="detail-record"),
            html.Span(id="detail-alarm", className="detail-alarm"),
            html.Div(className="detail-vitals", children=[
                html.Span("HR", className="vital-name"),
                html.Span(id="detail-hr", className="hr-value"),
                html.Span("PVC/min", className="vital-name"),
                html.Span(id="detail-pvc", className="pvc-value"),
            ]),
            html.Span(id="detail-agreement", className="detail-agreement"),
            dcc.Checklist(id="detail-freeze", options=[{"label": " freeze strip", "value": "on"}],
                          value=[], className="freeze"),
        ]),
        dcc.Graph(id="detail-strip", className="detail-strip", config=_STRIP_CONFIG,
                  figure=figures.placeholder_figure()),
        html.Div(className="detail-grid", children=[
            graph("detail-probs"), graph("detail-trend"), graph("detail-counts"),
            graph("detail-shapes"),
        ]),
    ])


def agreement_text(detail: dict) -> str:
    """Live agreement of predicted and reference labels, overall and over the recent beats."""
    if not detail["has_reference"]:
        return "no reference labels stream for this bed"
    a = detail["agreement"]
    if not a["matched"]:
        return "reference streaming: no beat matched yet"
    recent = a["recent"]
    return (f"agreement with reference {100 * a['agreed'] / a['matched']:.1f} % "
            f"over {a['matched']} beats (last {len(recent)}: "
            f"{100 * sum(recent) / len(recent):.0f} %)")


def selected_beat(detail: dict, slot: int | None) -> tuple[dict | None, str]:
    """The clicked beat if still on the strip, else the last one, with a chart title."""
    beats = detail["beats"]
    chosen = next((b for b in beats if b["slot"] == slot), None) if slot is not None else None
    which = "selected beat"
    if chosen is None and beats:
        chosen, which = beats[-1], "last beat"
    if chosen is None:
        return None, "Class probabilities"
    title = f"{which} {clock(chosen['time'])}: {chosen['label']} " \
            f"({contract.CLASS_NAMES[chosen['label']].split(' ')[0]})"
    if chosen["reference"]:
        title += f" · reference {chosen['reference']}"
    return chosen, title


def register(app: Dash, ward) -> None:
    @app.callback(
        Output("selected-slot", "data"),
        Input("detail-strip", "clickData"),
        prevent_initial_call=True,
    )
    def select(click):
        for point in (click or {}).get("points", []):
            if point.get("customdata"):
                return int(point["customdata"][0])
        return no_update

    @app.callback(
        Output("detail-strip", "figure"),
        Output("detail-probs", "figure"),
        Output("detail-trend", "figure"),
        Output("detail-counts", "figure"),
        Output("detail-shapes", "figure"),
        Output("detail-record", "children"),
        Output("detail-alarm", "children"),
        Output("detail-alarm", "className"),
        Output("detail-hr", "children"),
        Output("detail-pvc", "children"),
        Output("detail-agreement", "children"),
        Input("detail-tick", "n_intervals"),
        Input("selected-slot", "data"),
        State("detail-bed", "data"),
        State("detail-freeze", "value"),
    )
    def refresh(_n, slot, bed, freeze):
        d = ward.detail(bed)
        if d is None:
            empty = figures.probability_figure(None, f"unknown bed {bed}")
            return (empty, empty, empty, empty, empty, "no such bed", "", "detail-alarm",
                    "---", "---", "")
        now, offset = time.time(), utc_offset_s()
        beat, title = selected_beat(d, slot)
        strip = no_update if freeze else figures.detail_strip_figure(
            d, offset, beat["slot"] if beat and slot is not None else None)
        alarm = d["alarms"][0] if d["alarms"] else None
        alarm_cls = f"detail-alarm p-{alarm['priority']}" if alarm else "detail-alarm"
        if d["no_signal"]:
            alarm_txt = "NO SIGNAL"
        else:
            alarm_txt = alarm_text(alarm["priority"], alarm["kind"]) if alarm else "no alarm"
        return (
            strip,
            figures.probability_figure(beat["probs"] if beat else None, title),
            figures.hr_trend_figure(d["trend"], offset, now),
            figures.class_counts_figure(d["counts"]),
            figures.average_beats_figure(d["shapes"], d["shape_n"], d["shape_offset_s"],
                                         d["fs"]),
            f"record {d['record']}" + (f" · model {d['model_version']}" if d["model_version"]
                                       else ""),
            alarm_txt,
            alarm_cls,
            number(d["hr"]),
            number(d["pvc_per_min"]),
            agreement_text(d),
        )
