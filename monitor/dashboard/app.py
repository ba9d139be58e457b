"""The Dash application: page shell (top bar, broker banner, alarm bar, audio pause) and routing.

`create_app` takes the `CentralStation` store (filled by `KafkaFeed`) and, for the offline page,
a way to load the classifier; nothing else. All callbacks are registered on the app object (not
Dash's global registry), so tests can build several apps in one process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, unquote

from dash import ALL, Dash, Input, Output, State, ctx, dcc, html, no_update

from monitor.alarms.events import PRIORITY_RANK
from monitor.dashboard import analysis, central, detail, history, offline_page
from monitor.dashboard.auth import Credentials, protect
from monitor.dashboard.present import alarm_text, clock, duration
from monitor.dashboard.store import CentralStation

ASSETS = Path(__file__).resolve().parent / "assets"
TITLE = "ECG central station"


def shell() -> html.Div:
    return html.Div(
        className="shell",
        children=[
            dcc.Location(id="url"),
            dcc.Interval(id="status-tick", interval=1000),
            dcc.Store(id="audio-state"),
            dcc.Store(id="audio-sink"),
            dcc.Store(id="alarm-list-key"),
            html.Header(className="topbar", children=[
                html.Span(TITLE.upper(), className="brand"),
                html.Nav(className="nav", children=[
                    dcc.Link("Central", href="/", className="nav-link"),
                    dcc.Link("Alarm history", href="/alarms", className="nav-link"),
                    dcc.Link("Offline analysis", href="/analysis", className="nav-link"),
                ]),
                html.Span(id="feed-state", className="feed-state"),
                html.Span(id="clock", className="clock"),
            ]),
            html.Div(id="banner", className="banner hidden"),
            html.Div(className="alarm-bar", children=[
                html.Div(id="alarm-list", className="alarm-list"),
                html.Div(className="audio-panel", children=[
                    html.Button("AUDIO ON", id="audio-btn", className="audio-btn", n_clicks=0,
                                title="Pause alarm audio for 2:00; a new high-priority alarm "
                                      "breaks through"),
                    html.Div(id="alarm-count", className="alarm-count"),
                    html.Div(id="audio-note", className="audio-note"),
                ]),
            ]),
            html.Main(id="page", className="page"),
        ],
    )


def alarm_list(alarms: list[dict], now: float) -> list:
    """Active alarms as rows with an acknowledge button each (already sorted by the store)."""
    if not alarms:
        return [html.Div("No active alarms", className="alarm-none")]
    rows = []
    for a in alarms:
        acked = a["acked_at"] is not None
        rows.append(html.Div(
            className=f"alarm-row p-{a['priority']}" + (" acked" if acked else ""),
            children=[
                html.Span(alarm_text(a["priority"], a["kind"]), className="alarm-kind"),
                dcc.Link(a["bed"], href=f"/bed/{quote(a['bed'])}", className="alarm-bed"),
                html.Span(a["message"], className="alarm-msg"),
                html.Span(f"since {clock(a['start'])}", className="alarm-since"),
                # The browser counts the age on from here (assets/sweep.js): the list is sent
                # again only when its alarms change, not every second.
                html.Span(duration(now - a["start"]), className="alarm-dur",
                          **{"data-age": round(now - a["start"], 1)}),
                html.Span(f"ACK {clock(a['acked_at'])}", className="alarm-acked") if acked else
                html.Button("ACK", id={"type": "ack", "alarm": a["alarm_id"]}, n_clicks=0,
                            className="ack-btn", title="Acknowledge: silence and stop flashing"),
            ],
        ))
    return rows


def alarm_list_key(alarms: list[dict]) -> str:
    """What the alarm list shows apart from the ages: its rows change when this does."""
    return "|".join(f"{a['alarm_id']}:{a['acked_at'] is not None}:{a['message']}" for a in alarms)


def alarm_count(alarms: list[dict]) -> str:
    """How many alarms are active, by priority: the list may scroll, the count does not."""
    if not alarms:
        return ""
    urgent_first = sorted(PRIORITY_RANK, key=PRIORITY_RANK.__getitem__, reverse=True)
    by = {p: sum(a["priority"] == p for a in alarms) for p in urgent_first}
    parts = [f"{n} {p}" for p, n in by.items() if n]
    return f"{len(alarms)} active: " + ", ".join(parts)


def audio_button(audio: dict) -> tuple[str, str]:
    if audio["paused"]:
        return f"AUDIO PAUSED {duration(audio['remaining_s'])}", "audio-btn paused"
    return "AUDIO ON", "audio-btn"


def banner(status: dict) -> tuple[str, str]:
    if status["connected"]:
        return "", "banner hidden"
    text = (f"NO LIVE DATA - Kafka broker {status['bootstrap']} unreachable since "
            f"{clock(status['since'])} ({status['error']}); reconnecting automatically")
    return text, "banner"


def feed_state(status: dict) -> tuple[str, str]:
    text = "FEED OK" if status["connected"] else "FEED DOWN"
    if status["rejected"]:
        text += f" · {status['rejected']} bad messages ignored"
    if status["evicted"]:
        text += f" · {status['evicted']} silent beds dropped for new ones"
    return text, status["last_rejection"]


def page_for(path: str | None, ward: CentralStation, app: Dash) -> object:
    path = path or "/"
    if path == "/":
        return central.layout(ward, app.get_relative_path(central.SWEEP_ROUTE))
    if path.startswith("/bed/"):
        return detail.layout(unquote(path[len("/bed/"):]))
    if path == "/alarms":
        return history.layout()
    if path == "/analysis":
        return offline_page.layout()
    return html.Div(className="not-found", children=[
        html.H2("No such page"), dcc.Link("Back to the central view", href="/")])


#: Largest HTTP request body: a maximal upload (base64 is 4/3 of the file) plus the callback.
MAX_REQUEST_BYTES = analysis.MAX_UPLOAD_BYTES * 4 // 3 + 1024 * 1024


def create_app(
    ward: CentralStation,
    load_classifier: Callable[[], object] | None = None,
    credentials: Credentials | None = None,
) -> Dash:
    """The dashboard app over `ward`; `load_classifier()` is called once, on first analysis.

    With `credentials`, every page, callback and endpoint needs a login (`auth.protect`).
    """
    app = Dash(__name__, title=TITLE, assets_folder=str(ASSETS), update_title=None,
               suppress_callback_exceptions=True)
    if credentials is not None:
        protect(app.server, credentials)
    # An upload travels base64-encoded inside a JSON callback request; anything much larger than
    # the page's own limit is refused by Flask before it is read into memory.
    app.server.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.layout = shell()

    @app.callback(Output("page", "children"), Input("url", "pathname"))
    def route(path):
        return page_for(path, ward, app)

    @app.callback(
        Output("banner", "children"),
        Output("banner", "className"),
        Output("feed-state", "children"),
        Output("feed-state", "title"),
        Output("clock", "children"),
        Output("alarm-list", "children"),
        Output("alarm-count", "children"),
        Output("audio-btn", "children"),
        Output("audio-btn", "className"),
        Output("audio-note", "children"),
        Output("audio-state", "data"),
        Output("alarm-list-key", "data"),
        Input("status-tick", "n_intervals"),
        State("alarm-list-key", "data"),
    )
    def status(_n, shown_key):
        now = time.time()
        feed = ward.feed_status()
        audio = ward.audio()
        alarms = ward.active_alarms(now)
        # Rebuilding the list (and its acknowledge buttons) costs the browser a pass over the
        # page's callbacks: only when the alarms themselves change.
        key = alarm_list_key(alarms)
        rows = alarm_list(alarms, now) if key != shown_key else no_update
        return (*banner(feed), *feed_state(feed), clock(now), rows, alarm_count(alarms),
                *audio_button(audio), audio["note"], {"tone": audio["tone"]}, key)

    @app.callback(
        Output("alarm-list", "children", allow_duplicate=True),
        Input({"type": "ack", "alarm": ALL}, "n_clicks"),
        prevent_initial_call=True,
    )
    def acknowledge(clicks):
        if not ctx.triggered_id or not any(clicks):
            return no_update
        ward.acknowledge(ctx.triggered_id["alarm"])
        now = time.time()
        return alarm_list(ward.active_alarms(now), now)

    @app.callback(
        Output("audio-btn", "children", allow_duplicate=True),
        Output("audio-btn", "className", allow_duplicate=True),
        Input("audio-btn", "n_clicks"),
        State("audio-btn", "className"),
        prevent_initial_call=True,
    )
    def toggle_audio(_clicks, current):
        if "paused" in (current or ""):
            ward.resume_audio()
        else:
            ward.pause_audio()
        return audio_button(ward.audio())

    app.clientside_callback(
        "function (s) { return window.dash_clientside.ecg.audio(s); }",
        Output("audio-sink", "data"),
        Input("audio-state", "data"),
    )

    central.register(app, ward)
    detail.register(app, ward)
    history.register(app, ward)
    offline_page.register(app, load_classifier)
    return app
