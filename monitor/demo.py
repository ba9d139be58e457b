"""`make demo`: the whole ward on one machine, no Docker.

Starts an embedded Kafka-protocol broker (Tansu, on 127.0.0.1) unless KAFKA_BOOTSTRAP_SERVERS
names a cluster, creates the topics, then runs the stream worker, the bedside simulator and the
dashboard as child processes, prints where to look and a live line every few seconds, and on
Ctrl-C (or SIGTERM) stops the simulator, the worker, the dashboard and the broker, in that
order, leaving no process behind.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import sys
import time
from collections import Counter
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

from monitor import processes
from monitor.alarms.events import PRIORITY_RANK
from monitor.broker import ENV_BOOTSTRAP, EmbeddedBroker, create_topics
from monitor.contract import CLASSES
from monitor.errors import InputError, run_cli
from monitor.messages import ALERTS, BEATS, DEADLETTER, STATS
from monitor.tail import TopicReader
from monitor.ward import percentile_from_histogram

REPO = Path(__file__).resolve().parents[1]
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class LiveLine:
    """Beats, alarms and dead letters since the last line, from the output topics."""

    def __init__(self) -> None:
        self.beats = 0
        self.labels: Counter[str] = Counter()
        self.active: dict[str, dict] = {}  # alarm_id -> start event
        self.new_alarms = 0
        self.dead = 0
        self.latency_p99: float | None = None
        self._latency_seen: list[int] | None = None  # histogram at the previous stats message

    def add(self, topic: str, value: dict) -> None:
        if topic == BEATS:
            self.beats += 1
            self.labels[value.get("label", "?")] += 1
        elif topic == ALERTS:
            if value.get("state") == "start":
                self.active[value.get("alarm_id", "")] = value
                self.new_alarms += 1
            else:
                self.active.pop(value.get("alarm_id", ""), None)
        elif topic == DEADLETTER:
            self.dead += 1
        elif topic == STATS:
            # p99 of the beats published since the previous stats message, not since start.
            counts = value["latency_counts"]
            seen = self._latency_seen or [0] * len(counts)
            recent = [now - before for now, before in zip(counts, seen, strict=True)]
            self._latency_seen = counts
            self.latency_p99 = percentile_from_histogram(value["latency_edges_ms"], recent, 0.99)

    def line(self, seconds: float) -> str:
        classes = " ".join(f"{c} {self.labels.get(c, 0)}" for c in CLASSES)
        active = sorted(
            self.active.values(), key=lambda a: (-PRIORITY_RANK.get(a["priority"], 0), a["bed"])
        )
        names = [
            f"{a['bed']} {a['kind'].upper() if a['priority'] == 'high' else a['kind']}"
            for a in active
        ]
        shown = ", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else "")
        latency = "-" if self.latency_p99 is None else f"{self.latency_p99:.0f} ms"
        text = (
            f"{datetime.now():%H:%M:%S}  beats {self.beats / seconds:5.1f}/s ({classes})  "
            f"alarms {len(active)} active{': ' + shown if shown else ''} "
            f"({self.new_alarms} new)  dead letters {self.dead}  worker p99 {latency}"
        )
        self.beats, self.new_alarms, self.dead = 0, 0, 0
        self.labels.clear()
        return text


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m monitor.demo", description=__doc__.splitlines()[0])
    p.add_argument("--beds", type=int, default=8, help="simulated beds (default 8)")
    p.add_argument("--speed", type=float, default=1.0, help="replay speed (default 1)")
    p.add_argument("--records", nargs="+", help="records to replay (default: DS2 test records)")
    p.add_argument("--data-dir", help="MIT-BIH directory (default: $ECG_MITDB_DIR, else download)")
    p.add_argument("--noise", help="NSTDB noise for every bed, e.g. em:6")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--host", default="127.0.0.1", help="dashboard interface (127.0.0.1)")
    p.add_argument("--port", type=int, default=8050, help="dashboard port (8050)")
    p.add_argument("--no-dashboard", action="store_true", help="do not start the dashboard")
    p.add_argument("--every-s", type=float, default=5.0, help="seconds between live lines (5)")
    p.add_argument("--logs", help="directory for the children's logs (default: runs/demo-TIME)")
    return p


def run(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.every_s <= 0:
        raise InputError(f"--every-s must be positive, got {args.every_s}")
    logs = Path(args.logs or REPO / "runs" / f"demo-{datetime.now():%Y%m%d-%H%M%S}")
    logs.mkdir(parents=True, exist_ok=True)

    # Ctrl-C, SIGTERM and a closed terminal all stop the demo; once stopping, further signals
    # are ignored so that a second Ctrl-C cannot cut the shutdown short and orphan a child.
    def interrupt(*_):
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt

    for sig in STOP_SIGNALS:
        signal.signal(sig, interrupt)

    with ExitStack() as stack:
        bootstrap = os.environ.get(ENV_BOOTSTRAP)
        if bootstrap:
            print(f"using Kafka at {bootstrap} (${ENV_BOOTSTRAP})")
        else:
            broker = stack.enter_context(EmbeddedBroker(log_path=logs / "broker.log"))
            bootstrap = broker.bootstrap
            print(f"embedded Kafka-protocol broker (Tansu) on {bootstrap}")
        create_topics(bootstrap)
        env = {**os.environ, ENV_BOOTSTRAP: bootstrap, "PYTHONUNBUFFERED": "1"}

        children: dict[str, object] = {}

        def start(name: str, argv: list[str]) -> None:
            proc = processes.spawn(argv, logs / f"{name}.log", env=env, cwd=REPO)
            children[name] = proc
            # Stopped in reverse order of starting: simulator, worker, dashboard, then broker.
            stack.callback(processes.stop, proc)

        if not args.no_dashboard:
            if importlib.util.find_spec("monitor.dashboard") is None:
                print("dashboard not installed: monitor.dashboard is missing; running without it")
            else:
                start(
                    "dashboard",
                    processes.python_module(
                        "monitor.dashboard", "--host", args.host, "--port", str(args.port),
                        "--bootstrap", bootstrap,
                    ),
                )
        start("worker", processes.python_module("monitor", "worker", "--device", args.device))
        sim = ["--beds", str(args.beds), "--speed", str(args.speed), "--reference"]
        for flag, value in (("--data-dir", args.data_dir), ("--noise", args.noise)):
            if value:
                sim += [flag, value]
        if args.records:
            sim += ["--records", *args.records]
        start("simulator", processes.python_module("simulators.replay", *sim))

        print(f"logs:       {logs}/")
        if "dashboard" in children:
            print(f"dashboard:  http://{args.host}:{args.port}/")
        print(f"alarms:     {ENV_BOOTSTRAP}={bootstrap} python -m monitor.tail ecg.alerts")
        print("Ctrl-C stops everything.\n", flush=True)
        return _watch(bootstrap, children, logs, args.every_s)


def _watch(bootstrap: str, children: dict, logs: Path, every_s: float) -> int:
    """Print the live line until Ctrl-C or until a child dies (then say why)."""
    live = LiveLine()
    try:
        with TopicReader(bootstrap, [BEATS, ALERTS, DEADLETTER, STATS], from_beginning=False) as r:
            last = time.monotonic()
            while True:
                for rec in r.poll(0.5):
                    if isinstance(rec.value, dict):
                        live.add(rec.topic, rec.value)
                for name, proc in children.items():
                    if proc.poll() is not None:
                        print(f"\n{name} exited with code {proc.returncode}; its log ends:")
                        print(processes.log_tail(logs / f"{name}.log"))
                        return 1
                if time.monotonic() - last >= every_s:
                    print(live.line(time.monotonic() - last), flush=True)
                    last = time.monotonic()
    except KeyboardInterrupt:
        print("\nstopping: simulator, worker, dashboard, broker ...", flush=True)
        return 0


def main(argv: list[str] | None = None) -> int:
    code = run_cli(run, argv)
    print("demo stopped; nothing left running.", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
