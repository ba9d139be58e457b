"""Alarm history of the last 24 h: filter by bed and kind, export what is shown as CSV."""

from __future__ import annotations

import csv
import io
import time

from dash import Dash, Input, Output, State, dash_table, dcc, html

from monitor.dashboard.present import duration, kind_label, stamp

COLUMNS = ("start", "end", "bed", "record", "priority", "kind", "message", "duration",
           "acknowledged")


def rows(episodes: list[dict]) -> list[dict]:
    """Alarm episodes as table/CSV rows (strings as a person reads them)."""
    return [
        {
            "start": stamp(e["start"]),
            "end": stamp(e["end"]) if e["end"] is not None else "active",
            "bed": e["bed"],
            "record": e["record"],
            "priority": e["priority"],
            "kind": kind_label(e["kind"]),
            "message": e["message"],
            "duration": duration(e["duration_s"]),
            "acknowledged": stamp(e["acked_at"]),
        }
        for e in episodes
    ]


def to_csv(table: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(table)
    return buf.getvalue()


def layout() -> html.Div:
    return html.Div(className="history", children=[
        dcc.Interval(id="history-tick", interval=2000),
        dcc.Download(id="history-download"),
        html.Div(className="history-controls", children=[
            html.H2("Alarm history, last 24 h"),
            dcc.Dropdown(id="history-beds", multi=True, placeholder="all beds",
                         className="filter"),
            dcc.Dropdown(id="history-kinds", multi=True, placeholder="all kinds",
                         className="filter"),
            html.Button("Export CSV", id="history-export", className="btn", n_clicks=0),
            html.Span(id="history-count", className="muted"),
        ]),
        dash_table.DataTable(
            id="history-table",
            columns=[{"name": c, "id": c} for c in COLUMNS],
            page_size=25,
            sort_action="native",
            style_as_list_view=True,
            style_header={"backgroundColor": "#16202b", "color": "#d7dde4",
                          "fontWeight": "bold"},
            style_cell={"backgroundColor": "#0b0f14", "color": "#d7dde4", "textAlign": "left",
                        "fontFamily": "DejaVu Sans Mono, monospace", "fontSize": 13,
                        "border": "1px solid #1d2630"},
            style_data_conditional=[
                {"if": {"filter_query": '{priority} = "high"'}, "color": "#ff6b6b"},
                {"if": {"filter_query": '{priority} = "medium"'}, "color": "#ffd400"},
                {"if": {"filter_query": '{priority} = "technical"'}, "color": "#00e5ff"},
            ],
        ),
    ])


def register(app: Dash, ward) -> None:
    @app.callback(
        Output("history-table", "data"),
        Output("history-beds", "options"),
        Output("history-kinds", "options"),
        Output("history-count", "children"),
        Input("history-tick", "n_intervals"),
        Input("history-beds", "value"),
        Input("history-kinds", "value"),
    )
    def refresh(_n, beds, kinds):
        everything = ward.history()
        shown = ward.history(beds or None, kinds or None)
        bed_opts = sorted({e["bed"] for e in everything})
        kind_opts = [{"label": kind_label(k), "value": k}
                     for k in sorted({e["kind"] for e in everything})]
        return rows(shown), bed_opts, kind_opts, f"{len(shown)} of {len(everything)} episodes"

    @app.callback(
        Output("history-download", "data"),
        Input("history-export", "n_clicks"),
        State("history-beds", "value"),
        State("history-kinds", "value"),
        prevent_initial_call=True,
    )
    def export(_clicks, beds, kinds):
        table = rows(ward.history(beds or None, kinds or None))
        name = time.strftime("alarm-history-%Y%m%d-%H%M%S.csv")
        return {"content": to_csv(table), "filename": name, "type": "text/csv"}
