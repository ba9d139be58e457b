"""Offline analysis page: upload a file, see every beat classified by the ward's model.

The browser refuses an upload over the size limit before sending it (clientside check); the
server checks again, parses with `analysis`, classifies, and keeps the last few results in a
small bounded cache so the beat table, the per-beat chart and the CSV download read the same
result without shipping it back and forth.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable

from dash import Dash, Input, Output, State, dash_table, dcc, html, no_update

from monitor import contract
from monitor.dashboard import analysis, figures
from monitor.errors import InputError

log = logging.getLogger(__name__)

_GRAPH_CONFIG = {"displayModeBar": False}
#: Analyses kept for table clicks and downloads (one per recent upload).
CACHE_KEEP = 8
_TABLE_STYLE = {
    "style_header": {"backgroundColor": "#16202b", "color": "#d7dde4", "fontWeight": "bold"},
    "style_cell": {"backgroundColor": "#0b0f14", "color": "#d7dde4", "textAlign": "right",
                   "fontFamily": "DejaVu Sans Mono, monospace", "fontSize": 13,
                   "border": "1px solid #1d2630", "padding": "2px 6px"},
}
_LIMIT_JS = f"""
function (contents, names) {{
    if (!contents) {{ return window.dash_clientside.no_update; }}
    var bytes = contents.reduce(function (n, c) {{ return n + c.length * 3 / 4; }}, 0);
    if (bytes > {analysis.MAX_UPLOAD_BYTES}) {{
        return {{error: "the upload is " + (bytes / 1048576).toFixed(1) + " MB; the limit is "
                 + "{analysis.MAX_UPLOAD_MB} MB"}};
    }}
    return {{contents: contents, names: names}};
}}
"""


def layout() -> html.Div:
    return html.Div(className="offline", children=[
        dcc.Store(id="upload-staged"),
        dcc.Store(id="analysis-token"),
        dcc.Download(id="analysis-download"),
        html.H2("Offline analysis"),
        html.P(className="muted", children=[
            "Upload a Kaggle-format CSV (one beat per row: 187 values in [0, 1] at 125 Hz, "
            "optional label column 0-4 or N/S/V/F/Q), a one-column signal CSV in mV with its "
            "sampling rate, or a WFDB record (.hea + .dat, optional .atr for reference labels). "
            f"Limit: {analysis.MAX_UPLOAD_MB} MB per upload and {analysis.MAX_BEATS} beats. "
            "The ward's classifier and beat detector run on it."
        ]),
        html.Div(className="upload-row", children=[
            dcc.Upload(id="upload", multiple=True, className="upload-box",
                       children=html.Div(["Drop files here or ", html.A("choose files")])),
            html.Label(className="fs-label", children=[
                "Signal CSV sampling rate (Hz) ",
                dcc.Input(id="upload-fs", type="number", min=contract.MIN_SOURCE_FS,
                          placeholder="e.g. 360", debounce=True, className="fs-input"),
            ]),
        ]),
        html.Div(id="analysis-error", className="analysis-error hidden"),
        dcc.Loading(html.Div(id="analysis-results"), type="dot", color="#39ff6a"),
    ])


def results_layout(result: analysis.Analysis) -> list:
    b = result.beats
    columns = [{"name": k, "id": k} for k in analysis.table(result)[0] if k != "id"]
    parts: list = [
        html.Div(className="analysis-summary", children=[
            html.H3(b.source),
            html.P(f"{len(result.predicted)} beats classified by model {result.model_version}."),
            *[html.P(n, className="muted") for n in b.notes],
            html.Button("Download results CSV", id="analysis-export", className="btn",
                        n_clicks=0),
        ]),
        html.Div(className="analysis-charts", children=[
            dcc.Graph(figure=figures.class_counts_figure(result.counts(), "Predicted classes"),
                      className="analysis-graph", id="analysis-classes", config=_GRAPH_CONFIG),
            dcc.Graph(id="analysis-beat-probs", className="analysis-graph", config=_GRAPH_CONFIG,
                      figure=figures.probability_figure(
                          _probs(result, 0), f"beat 1: {result.predicted[0]} (click a row)")),
            dcc.Graph(figure=figures.probability_map_figure(result.probs),
                      className="analysis-graph wide", id="analysis-map", config=_GRAPH_CONFIG),
        ]),
    ]
    if result.metrics is not None:
        parts.append(html.Div(className="analysis-charts", children=[
            dcc.Graph(figure=figures.confusion_figure(result.metrics["confusion"]),
                      className="analysis-graph", id="analysis-confusion", config=_GRAPH_CONFIG),
            html.Div(className="metrics", children=[
                html.H4(f"Against the reference: accuracy {_pct(result.metrics['accuracy'])}, "
                        f"macro F1 {_pct(result.metrics['macro_f1'])} "
                        f"over {result.metrics['n']} labelled beats"),
                dash_table.DataTable(id="analysis-metrics", data=metric_rows(result.metrics),
                                     columns=[{"name": c, "id": c} for c in
                                              ("class", "support", "predicted", "Se", "+P",
                                               "F1")],
                                     **_TABLE_STYLE),
            ]),
        ]))
    parts.append(dash_table.DataTable(
        id="analysis-table", data=analysis.table(result), columns=columns, page_size=15,
        sort_action="native", **_TABLE_STYLE,
        style_data_conditional=[
            {"if": {"filter_query": '{agrees} = "no"'}, "backgroundColor": "#3a1016"},
            *[{"if": {"filter_query": f'{{predicted}} = "{c}"', "column_id": "predicted"},
               "color": figures.CLASS_COLOURS[c], "fontWeight": "bold"}
              for c in contract.CLASSES],
        ],
    ))
    return parts


def metric_rows(metrics: dict) -> list[dict]:
    return [
        {"class": c, "support": m["support"], "predicted": m["predicted"],
         "Se": _pct(m["se"]), "+P": _pct(m["ppv"]), "F1": _pct(m["f1"])}
        for c, m in metrics["per_class"].items()
    ]


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def _probs(result: analysis.Analysis, i: int) -> dict[str, float]:
    return {c: float(p) for c, p in zip(contract.CLASSES, result.probs[i], strict=True)}


def register(app: Dash, load_classifier: Callable[[], object] | None) -> None:
    cache: OrderedDict[str, analysis.Analysis] = OrderedDict()
    lock = threading.Lock()
    loaded: dict[str, object] = {}

    def classifier():
        with lock:
            if "model" not in loaded:
                if load_classifier is None:
                    raise InputError("this dashboard was started without a classifier")
                loaded["model"] = load_classifier()
            return loaded["model"]

    app.clientside_callback(
        _LIMIT_JS,
        Output("upload-staged", "data"),
        Input("upload", "contents"),
        State("upload", "filename"),
        prevent_initial_call=True,
    )

    @app.callback(
        Output("analysis-results", "children"),
        Output("analysis-error", "children"),
        Output("analysis-error", "className"),
        Output("analysis-token", "data"),
        Input("upload-staged", "data"),
        Input("upload-fs", "value"),
        prevent_initial_call=True,
    )
    def run(staged, fs):
        if not staged:
            return no_update, no_update, no_update, no_update
        try:
            if "error" in staged:
                raise InputError(staged["error"])
            files = [analysis.decode_upload(c, n) for c, n in
                     zip(staged["contents"], staged["names"], strict=True)]
            beats = analysis.load(files, float(fs) if fs is not None else None)
            result = analysis.analyse(beats, classifier())
        except ValueError as exc:  # InputError and the model's own input checks
            return [], f"Cannot analyse this upload: {exc}", "analysis-error", None
        except Exception as exc:  # a bug must not take the page down: say so, keep serving
            log.exception("offline analysis failed")
            return [], f"Analysis failed unexpectedly ({type(exc).__name__}: {exc}); the " \
                       "server log has the details", "analysis-error", None
        token = uuid.uuid4().hex
        with lock:
            cache[token] = result
            while len(cache) > CACHE_KEEP:
                cache.popitem(last=False)
        return results_layout(result), "", "analysis-error hidden", token

    @app.callback(
        Output("analysis-beat-probs", "figure"),
        Input("analysis-table", "active_cell"),
        State("analysis-token", "data"),
        prevent_initial_call=True,
    )
    def beat_probs(cell, token):
        result = cache.get(token or "")
        if not cell or result is None or cell.get("row_id") is None:
            return no_update
        i = int(cell["row_id"])
        title = f"beat {i + 1}: {result.predicted[i]}"
        if result.beats.labels is not None and result.beats.labels[i]:
            title += f", reference {result.beats.labels[i]}"
        return figures.probability_figure(_probs(result, i), title)

    @app.callback(
        Output("analysis-download", "data"),
        Input("analysis-export", "n_clicks"),
        State("analysis-token", "data"),
        prevent_initial_call=True,
    )
    def download(clicks, token):
        result = cache.get(token or "")
        if not clicks or result is None:
            return no_update
        return {"content": analysis.to_csv(result), "filename": "ecg-analysis.csv",
                "type": "text/csv"}
