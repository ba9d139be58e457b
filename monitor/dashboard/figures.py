"""Pure figure builders: plain data in, Plotly figure out.

Nothing here reads Kafka, the ward store or the clock (times are passed in), so every chart of
the central station and the offline page can be unit-tested without a browser or a broker.
The look follows bedside monitors: black background, ECG-paper grid (0.2 s x 0.5 mV), green
trace, a 1 mV calibration pulse, fixed gain, class colours shared by every chart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from monitor import contract

CLASS_COLOURS = {"N": "#3fdc6a", "S": "#ffb020", "V": "#ff4d5e", "F": "#c77dff", "Q": "#6fb7ff"}
PRIORITY_COLOURS = {"high": "#ff2a2a", "medium": "#ffd400", "technical": "#00e5ff"}
TRACE_GREEN = "#39ff6a"
GRID_MINOR, GRID_MAJOR = "#0a1d10", "#12351a"
BACKGROUND, PANEL, TEXT = "#000000", "#0b0f14", "#d7dde4"
#: Fixed display gain of tiles and detail strip (mV): the calibration pulse keeps its size.
TILE_RANGE_MV = (-1.6, 2.4)
DETAIL_RANGE_MV = (-2.0, 2.8)
#: The bed's other leads are drawn under the first, each this many mV lower.
OTHER_LEAD_STEP_MV = 3.0
#: Heart-rate trend axis: at least the adult range, widened to show every value.
HR_RANGE_BPM = (40.0, 120.0)
#: The calibration pulse sits left of the sweep: 1 mV high, 0.2 s wide.
CAL_X = (-0.45, -0.38, -0.38, -0.18, -0.18, -0.11)
CAL_Y = (0.0, 0.0, 1.0, 1.0, 0.0, 0.0)


def _dark(fig: go.Figure, **layout: object) -> go.Figure:
    """The dashboard's dark theme; keyword arguments override its defaults."""
    fig.update_layout(**{
        "paper_bgcolor": PANEL,
        "plot_bgcolor": BACKGROUND,
        "font": {"color": TEXT, "size": 12},
        "margin": {"l": 48, "r": 12, "t": 36, "b": 36},
        "showlegend": False,
        **layout,
    })
    fig.update_xaxes(gridcolor="#1d2630", zerolinecolor="#1d2630")
    fig.update_yaxes(gridcolor="#1d2630", zerolinecolor="#1d2630")
    return fig


def _message(fig: go.Figure, text: str) -> go.Figure:
    fig.add_annotation(text=text, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5,
                       font={"size": 14, "color": "#8a96a3"})
    return fig


def placeholder_figure(text: str = "loading ...") -> go.Figure:
    """An empty dark chart with a note: what a graph shows before its first data."""
    fig = _message(go.Figure(), text)
    _dark(fig)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def local_datetimes(epoch_s: np.ndarray | Sequence[float], utc_offset_s: float) -> np.ndarray:
    """Epoch seconds as naive local datetimes (Plotly date axes have no time zones)."""
    t = (np.asarray(epoch_s, dtype=np.float64) + utc_offset_s) * 1000.0
    return np.round(t).astype("datetime64[ms]")


def sweep_spec(seconds: float = 6.0, fs: float = contract.FS, gap_s: float = 0.25) -> dict:
    """Geometry and colours of a tile's sweep, drawn on a canvas by assets/sweep.js.

    Tiles do not use Plotly: sixteen Plotly redraws at 5 Hz cost the browser more than a core,
    a canvas line of 750 points costs well under a millisecond. Everything the browser needs to
    draw a bedside strip is here, as data: a sweep of `seconds` written at slot % n, paper grid
    (0.2 s x 0.5 mV boxes, 1 s x 1 mV bold), a 1 mV calibration pulse left of the sweep, a
    fixed gain so that the pulse keeps its size, and the erase gap ahead of the newest sample.
    """
    if not seconds > 0 or not fs > 0:
        raise ValueError(f"seconds and fs must be positive, got {seconds!r} and {fs!r}")
    return {
        "n": round(seconds * fs),
        "fs": fs,
        "gap": round(gap_s * fs),
        "x_range": [CAL_X[0] - 0.05, seconds],
        "y_range": list(TILE_RANGE_MV),
        "grid": {"minor": [0.2, 0.5], "major": [1.0, 1.0]},
        "cal": {"x": list(CAL_X), "y": list(CAL_Y)},
        "colours": {"background": BACKGROUND, "minor": GRID_MINOR, "major": GRID_MAJOR,
                    "trace": TRACE_GREEN},
    }


def detail_strip_figure(
    detail: Mapping,
    utc_offset_s: float,
    selected_slot: int | None = None,
) -> go.Figure:
    """The 30 s strip of the bed-detail page: trace, predicted class of every beat above it
    (click one to inspect it), the reference label below it where a reference streams, and the
    bed's other leads under it."""
    fs, first = float(detail["fs"]), int(detail["first_slot"])
    signal = detail["signal"]
    t = local_datetimes((first + np.arange(len(signal))) / fs, utc_offset_s)
    lo, hi = DETAIL_RANGE_MV
    fig = go.Figure(
        go.Scatter(x=t, y=signal, mode="lines", line={"color": TRACE_GREEN, "width": 1.2},
                   name="ECG", hovertemplate="%{x|%H:%M:%S.%L}<br>%{y:.2f} mV<extra></extra>")
    )
    beats = detail["beats"]
    if beats:
        bt = local_datetimes([b["slot"] / fs for b in beats], utc_offset_s)
        labels = [b["label"] for b in beats]
        fig.add_trace(go.Scatter(
            x=bt, y=[hi - 0.35] * len(beats), mode="markers+text", name="predicted",
            text=labels, textposition="middle center",
            textfont={"color": "#000000", "size": 12, "family": "monospace"},
            marker={"symbol": "square", "size": 17,
                    "color": [CLASS_COLOURS[c] for c in labels],
                    "line": {"width": [3 if b["slot"] == selected_slot else 0 for b in beats],
                             "color": "#ffffff"}},
            customdata=[[b["slot"]] for b in beats],
            hovertemplate=[
                f"{b['label']} p={b['probs'].get(b['label'], 0):.2f}"
                + (f" · ref {b['reference']}" if b["reference"] else "")
                + f" · HR {b['hr']:.0f}<extra>click for probabilities</extra>"
                for b in beats
            ],
        ))
    refs = [r for r in detail["refs"] if r["label"]]
    if refs:
        rt = local_datetimes([r["slot"] / fs for r in refs], utc_offset_s)
        fig.add_trace(go.Scatter(
            x=rt, y=[lo + 0.3] * len(refs), mode="text", name="reference",
            text=[r["label"] for r in refs],
            textfont={"color": [CLASS_COLOURS[r["label"]] for r in refs], "size": 13,
                      "family": "monospace"},
            hovertemplate=[f"reference {r['symbol']} ({r['label']})<extra></extra>" for r in refs],
        ))
    others = detail.get("others", [])
    for k, lead in enumerate(others, start=1):
        shift = -OTHER_LEAD_STEP_MV * k
        y = [v + shift if v is not None else None for v in lead]
        fig.add_trace(go.Scatter(
            x=t[: len(y)], y=y, mode="lines", name=f"lead {k + 1}",
            line={"color": TRACE_GREEN, "width": 1.0}, opacity=0.7,
            hovertemplate=f"lead {k + 1} %{{x|%H:%M:%S.%L}}<extra></extra>",
        ))
        fig.add_annotation(text=f"lead {k + 1}", x=0, xref="paper", y=shift + 0.6, yref="y",
                           xanchor="left", showarrow=False, font={"size": 10, "color": "#8a96a3"})
    bottom = lo - OTHER_LEAD_STEP_MV * len(others)
    if selected_slot is not None:
        st = local_datetimes([selected_slot / fs], utc_offset_s)[0]
        fig.add_vline(x=st, line={"color": "#ffffff", "width": 1, "dash": "dot"})
    if len(t):
        fig.update_xaxes(range=[t[0], t[-1]])
    _dark(fig, margin={"l": 44, "r": 10, "t": 10, "b": 30}, plot_bgcolor=BACKGROUND,
          uirevision=detail["bed"], clickmode="event")
    fig.update_xaxes(gridcolor=GRID_MAJOR, tickformat="%H:%M:%S")
    fig.update_yaxes(range=[bottom, hi], gridcolor=GRID_MAJOR, dtick=0.5, title_text="mV",
                     fixedrange=True, zeroline=False)
    fig.add_annotation(text="predicted", x=0, xref="paper", y=hi - 0.35, yref="y",
                       xanchor="left", showarrow=False, font={"size": 10, "color": "#8a96a3"},
                       yshift=14)
    if refs:
        fig.add_annotation(text="reference", x=0, xref="paper", y=lo + 0.3, yref="y",
                           xanchor="left", showarrow=False, font={"size": 10, "color": "#8a96a3"},
                           yshift=-14)
    return fig


def probability_figure(probs: Mapping[str, float] | None, title: str = "") -> go.Figure:
    """Class probabilities of one beat."""
    fig = go.Figure()
    if probs:
        values = [float(probs.get(c, 0.0)) for c in contract.CLASSES]
        fig.add_trace(go.Bar(
            x=list(contract.CLASSES), y=values, marker_color=[CLASS_COLOURS[c] for c in
                                                               contract.CLASSES],
            text=[f"{v:.2f}" for v in values], textposition="outside",
            hovertext=[contract.CLASS_NAMES[c] for c in contract.CLASSES],
            hovertemplate="%{x}: %{y:.3f}<br>%{hovertext}<extra></extra>",
        ))
    else:
        _message(fig, "no beat yet")
    _dark(fig, title={"text": title, "font": {"size": 13}}, bargap=0.25)
    fig.update_yaxes(range=[0, 1.12], title_text="probability", dtick=0.25)
    return fig


def hr_trend_figure(
    trend: Sequence[tuple[float, float]], utc_offset_s: float, now: float, span_s: float = 1800
) -> go.Figure:
    """Heart rate over the last `span_s` seconds."""
    fig = go.Figure()
    lo, hi = HR_RANGE_BPM
    if trend:
        t = np.array([p[0] for p in trend])
        hr = np.array([p[1] for p in trend])
        fig.add_trace(go.Scatter(
            x=local_datetimes(t, utc_offset_s), y=hr, mode="lines",
            line={"color": TRACE_GREEN, "width": 1.5},
            hovertemplate="%{x|%H:%M:%S}  %{y:.0f} bpm<extra></extra>",
        ))
        lo, hi = min(lo, float(hr.min()) - 10), max(hi, float(hr.max()) + 10)
    else:
        _message(fig, "no heart-rate data yet")
    x0, x1 = local_datetimes([now - span_s, now], utc_offset_s)
    _dark(fig, title={"text": f"Heart rate, last {span_s / 60:.0f} min", "font": {"size": 13}})
    fig.update_xaxes(range=[x0, x1], tickformat="%H:%M")
    fig.update_yaxes(title_text="bpm", range=[max(0.0, lo), hi])
    return fig


def class_counts_figure(counts: Mapping[str, int], title: str = "Beats per class") -> go.Figure:
    """Beat counts per AAMI class."""
    values = [int(counts.get(c, 0)) for c in contract.CLASSES]
    fig = go.Figure(go.Bar(
        x=list(contract.CLASSES), y=values, marker_color=[CLASS_COLOURS[c] for c in
                                                           contract.CLASSES],
        text=[str(v) for v in values], textposition="outside",
        hovertemplate="%{x}: %{y}<extra></extra>",
    ))
    _dark(fig, title={"text": title, "font": {"size": 13}}, bargap=0.25)
    fig.update_yaxes(range=[0, max([*values, 1]) * 1.2], title_text="beats")
    return fig


def average_beats_figure(
    shapes: Mapping[str, Sequence[float]],
    counts: Mapping[str, int],
    offset_s: float,
    fs: float = contract.FS,
) -> go.Figure:
    """Mean beat per class around the R-peak (time 0)."""
    fig = go.Figure()
    for c in contract.CLASSES:
        if c not in shapes:
            continue
        y = np.asarray(shapes[c], dtype=float)
        x = (offset_s + np.arange(len(y)) / fs) * 1000.0
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=f"{c} (n={counts.get(c, 0)})",
                                 line={"color": CLASS_COLOURS[c], "width": 2}))
    if not shapes:
        _message(fig, "no complete beat yet")
    _dark(fig, title={"text": "Average beat per class", "font": {"size": 13}}, showlegend=True,
          legend={"orientation": "h", "y": -0.25})
    fig.update_xaxes(title_text="ms from R-peak")
    fig.update_yaxes(title_text="mV")
    return fig


def confusion_figure(cm: Sequence[Sequence[int]], classes: Sequence[str] = contract.CLASSES
                     ) -> go.Figure:
    """Reference (rows) against prediction (columns): counts, coloured by row share."""
    cm = np.asarray(cm, dtype=np.int64)
    if cm.shape != (len(classes), len(classes)):
        raise ValueError(f"cm must be {len(classes)}x{len(classes)}, got {cm.shape}")
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    fig = go.Figure(go.Heatmap(
        z=share, x=list(classes), y=list(classes), zmin=0, zmax=1,
        colorscale=[[0.0, BACKGROUND], [1.0, "#2f7fd1"]], textfont={"color": "#ffffff"},
        text=cm.astype(str), texttemplate="%{text}", showscale=False, xgap=1, ygap=1,
        hovertemplate="reference %{y}, predicted %{x}: %{text}<extra></extra>",
    ))
    _dark(fig, title={"text": "Confusion matrix (rows: reference)", "font": {"size": 13}})
    fig.update_xaxes(title_text="predicted", side="bottom")
    fig.update_yaxes(title_text="reference", autorange="reversed")
    return fig


def probability_map_figure(probs: np.ndarray, classes: Sequence[str] = contract.CLASSES
                           ) -> go.Figure:
    """Probability of every class for every beat of an analysed file (beat number across)."""
    probs = np.asarray(probs, dtype=float)
    if probs.ndim != 2 or probs.shape[1] != len(classes):
        raise ValueError(f"probs must have shape (n, {len(classes)}), got {probs.shape}")
    fig = go.Figure(go.Heatmap(
        z=probs.T, x=np.arange(1, len(probs) + 1), y=list(classes), colorscale="Viridis",
        zmin=0, zmax=1, colorbar={"title": {"text": "p"}, "thickness": 10},
        hovertemplate="beat %{x}, class %{y}: %{z:.3f}<extra></extra>",
    ))
    _dark(fig, title={"text": "Class probability per beat", "font": {"size": 13}})
    fig.update_xaxes(title_text="beat")
    fig.update_yaxes(autorange="reversed")
    return fig
