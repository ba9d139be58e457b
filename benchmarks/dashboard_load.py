"""Central-station load: refresh rate, display lag and CPU with N beds live at 1x.

Runs the product as `make demo` does (embedded Tansu broker, `simulators.replay`, the stream
worker, `python -m monitor.dashboard`), opens the central view in headless Chromium at
1920x1080, warms up, then measures for `--seconds`:

- the sweep refresh the browser achieved (frames applied per second, window.ecgSweep.stats),
- display lag: wall clock minus the newest sample on screen, p50/p95,
- round trip of the sweep request (browser resource timings), p50/p95,
- CPU (% of one core) and RSS of the dashboard server, and CPU of the browser (all Chromium
  processes), worker and simulator for context.

    python benchmarks/dashboard_load.py --beds 16 --seconds 60
    python benchmarks/dashboard_load.py --beds 16 --screenshots docs/   # also the README images

Numbers depend on the machine and on what else runs on it; the table says which CPU it ran on.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from monitor import processes  # noqa: E402
from monitor.broker import ENV_BOOTSTRAP, EmbeddedBroker, create_topics, free_port  # noqa: E402
from monitor.dashboard.central import SWEEP_ROUTE  # noqa: E402
from monitor.errors import InputError, run_cli  # noqa: E402

#: DS2 records with frequent ectopy first, so the screenshots show more than sinus rhythm.
RECORDS = ("233", "200", "214", "221", "100", "103", "105", "111", "113", "117", "121", "202",
           "210", "213", "219", "228", "231", "232", "234", "212", "222", "123")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--beds", type=int, default=16)
    p.add_argument("--seconds", type=float, default=60.0, help="measurement window (60)")
    p.add_argument("--warmup", type=float, default=40.0, help="seconds before measuring (40)")
    p.add_argument("--data-dir", default=os.environ.get("ECG_MITDB_DIR"),
                   help="MIT-BIH directory (default $ECG_MITDB_DIR)")
    p.add_argument("--no-worker", action="store_true",
                   help="samples only (no beats, vitals or alarms): the sweep path alone")
    p.add_argument("--screenshots", type=Path,
                   help="also save central-station.png and bed-detail.png here")
    p.add_argument("--detail-bed", default="bed-01", help="bed for the detail screenshot")
    return p


def _browser():
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1920,1080", "--hide-scrollbars"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 1920, "height": 1080, "deviceScaleFactor": 1,
                            "mobile": False})
    return driver


def _cpu_sampler(roots: dict[str, int]):
    """Start CPU accounting for named processes and their descendants; the returned function
    reads it (CPU seconds per wall second, in % of one core)."""
    import psutil

    procs = {}
    for name, pid in roots.items():
        root = psutil.Process(pid)
        procs[name] = [root, *root.children(recursive=True)]
    start = {name: sum(_cpu_s(p) for p in group) for name, group in procs.items()}
    t0 = time.monotonic()

    def read() -> dict[str, float]:
        dt = time.monotonic() - t0
        return {name: 100.0 * (sum(_cpu_s(p) for p in group) - start[name]) / dt
                for name, group in procs.items()}

    return read


def _cpu_s(proc) -> float:
    import psutil

    try:
        t = proc.cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return t.user + t.system


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def _wait_for(check, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise InputError(f"timed out after {timeout_s:g} s waiting for {what}")


def run(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.data_dir:
        raise InputError("no MIT-BIH: pass --data-dir or set ECG_MITDB_DIR")
    if args.beds < 1:
        raise InputError(f"--beds must be at least 1, got {args.beds}")
    import psutil

    logs = Path(tempfile.mkdtemp(prefix="dashboard-load-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with ExitStack() as stack:
        broker = stack.enter_context(EmbeddedBroker(log_path=logs / "broker.log"))
        create_topics(broker.bootstrap)
        env = {**os.environ, ENV_BOOTSTRAP: broker.bootstrap, "ECG_MITDB_DIR": args.data_dir,
               "PYTHONUNBUFFERED": "1"}

        def start(name: str, module: str, *argv: str):
            proc = processes.spawn(processes.python_module(module, *argv), logs / f"{name}.log",
                                   env=env, cwd=REPO)
            stack.callback(processes.stop, proc)
            return proc

        children = {"dashboard": start("dashboard", "monitor.dashboard", "--port", str(port),
                                       "--bootstrap", broker.bootstrap)}
        if not args.no_worker:
            children["worker"] = start("worker", "monitor", "worker", "--device", "cpu")
        records = [RECORDS[i % len(RECORDS)] for i in range(args.beds)]
        children["simulator"] = start("simulator", "simulators.replay", "--beds", str(args.beds),
                                      "--records", *records, "--reference", "--quiet")
        driver = _browser()
        stack.callback(driver.quit)
        _wait_for(lambda: _get(driver, url), 60, f"the dashboard at {url}")
        print(f"{args.beds} beds; warming up {args.warmup:g} s (logs in {logs}) ...", flush=True)
        time.sleep(args.warmup)
        for name, proc in children.items():
            if proc.poll() is not None:
                raise InputError(f"{name} exited early; see {logs / (name + '.log')}")
        read_cpu = _cpu_sampler({
            **{name: proc.pid for name, proc in children.items()},
            "browser": driver.service.process.pid,  # chromedriver and every Chromium process
        })
        driver.execute_script("performance.clearResourceTimings();"
                              "window.ecgSweep.stats.times = []; window.ecgSweep.stats.lag = [];")
        time.sleep(args.seconds)
        cpu = read_cpu()
        stats = driver.execute_script(
            "var s = window.ecgSweep.stats, route = arguments[0];"
            "var r = performance.getEntriesByType('resource')"
            "  .filter(function (e) { return e.name.indexOf(route) >= 0; })"
            "  .map(function (e) { return e.duration; });"
            "return {times: s.times, lag: s.lag, requests: r,"
            "        tiles: document.querySelectorAll('canvas.strip').length};", SWEEP_ROUTE)
        rss_mb = psutil.Process(children["dashboard"].pid).memory_info().rss / 2**20
        if args.screenshots:
            _screenshots(driver, url, args.screenshots, args.detail_bed)

    times = stats["times"]
    fps = (len(times) - 1) / ((times[-1] - times[0]) / 1000.0) if len(times) > 1 else 0.0
    gaps = [b - a for a, b in itertools.pairwise(times)]
    rows = [
        ("beds (tiles on screen)", f"{args.beds} ({stats['tiles']})"),
        ("sweep refresh achieved", f"{fps:.2f} Hz (requested 5 Hz)"),
        ("longest gap between frames", f"{max(gaps, default=float('nan')):.0f} ms"),
        ("display lag p50 / p95",
         f"{_pct(stats['lag'], 0.5):.2f} / {_pct(stats['lag'], 0.95):.2f} s"),
        ("sweep request round trip p50 / p95",
         f"{_pct(stats['requests'], 0.5):.0f} / {_pct(stats['requests'], 0.95):.0f} ms"),
        ("dashboard server CPU", f"{cpu['dashboard']:.1f} % of one core"),
        ("dashboard server RSS", f"{rss_mb:.0f} MB"),
        ("browser CPU (all processes)", f"{cpu['browser']:.1f} %"),
        *[(f"{name} CPU", f"{cpu[name]:.1f} %") for name in ("worker", "simulator")
          if name in cpu],
    ]
    print(f"\nDashboard load, {args.seconds:g} s window after {args.warmup:g} s warm-up; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
    if args.screenshots:
        print(f"screenshots: {args.screenshots / 'central-station.png'}, "
              f"{args.screenshots / 'bed-detail.png'}")
    return 0


def _get(driver, url: str) -> bool:
    try:
        driver.get(url)
    except Exception:  # not listening yet
        return False
    return bool(driver.execute_script("return !!document.getElementById('ward-grid');"))


def _screenshots(driver, url: str, out: Path, bed: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(out / "central-station.png"))
    driver.get(f"{url}/bed/{bed}")
    _wait_for(lambda: driver.execute_script(
        "return document.querySelectorAll('#detail-shapes .scatterlayer .trace').length > 0 &&"
        " document.querySelectorAll('#detail-strip .textpoint').length > 0;"), 60,
        "the bed detail to draw")
    time.sleep(2)
    driver.save_screenshot(str(out / "bed-detail.png"))


if __name__ == "__main__":
    sys.exit(run_cli(run))
