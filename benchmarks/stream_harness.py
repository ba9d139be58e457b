"""What the stream benchmarks share: a broker, a worker process, simulator runs, topic reads.

Each run gets its own broker (embedded Tansu on 127.0.0.1, or $KAFKA_BOOTSTRAP_SERVERS for a
real cluster, where topics must be empty), a fresh worker started as users start it, and stops
everything it started, whatever happens.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor import processes
from monitor.broker import ENV_BOOTSTRAP, EmbeddedBroker, create_topics
from monitor.tail import Record, TopicReader
from monitor.ward import percentile_from_histogram

REPO = Path(__file__).resolve().parents[1]
READY_LINE = "[^Worker]: Ready"


class Stack:
    """Broker + one worker + simulator runs; a context manager that cleans up."""

    def __init__(self, logs: Path, worker_args: list[str], data_dir: str | None = None) -> None:
        self.logs = logs
        self.worker_args = worker_args
        self.data_dir = data_dir
        self._stack = ExitStack()
        self.bootstrap = ""
        self.worker: psutil.Process | None = None

    def __enter__(self) -> Stack:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.bootstrap = os.environ.get(ENV_BOOTSTRAP) or self._stack.enter_context(
            EmbeddedBroker(log_path=self.logs / "broker.log")
        ).bootstrap
        create_topics(self.bootstrap)
        self.env = {
            **os.environ,
            ENV_BOOTSTRAP: self.bootstrap,
            "ECG_WORKER_DATADIR": str(self.logs / "worker-data"),
            "PYTHONUNBUFFERED": "1",
        }
        if self.data_dir:
            self.env["ECG_MITDB_DIR"] = self.data_dir
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _spawn(self, name: str, argv: list[str]):
        proc = processes.spawn(argv, self.logs / f"{name}.log", env=self.env, cwd=REPO)
        self._stack.callback(processes.stop, proc)
        return proc

    def start_worker(self, timeout_s: float = 120.0) -> psutil.Process:
        """Start the worker and wait until it has joined its group and recovered its table."""
        argv = processes.python_module("monitor", "worker", "-l", "info", *self.worker_args)
        proc = self._spawn("worker", argv)
        log = self.logs / "worker.log"
        deadline = time.monotonic() + timeout_s
        while READY_LINE not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("worker did not start:\n" + processes.log_tail(log, 30))
            time.sleep(0.5)
        self.worker = psutil.Process(proc.pid)
        return self.worker

    def simulate(self, *args: str, wait: bool) -> float:
        """Run the simulator; with `wait`, until it ends (returns its wall seconds)."""
        t0 = time.monotonic()
        proc = self._spawn("simulator", processes.python_module("simulators.replay", *args))
        if wait and proc.wait() != 0:
            raise RuntimeError(processes.log_tail(self.logs / "simulator.log", 30))
        return time.monotonic() - t0


def read_until(bootstrap: str, topics: list[str], done, timeout_s: float) -> list[Record]:
    """Read `topics` from the beginning until `done(records)` or `timeout_s`."""
    records: list[Record] = []
    deadline = time.monotonic() + timeout_s
    with TopicReader(bootstrap, topics) as reader:
        while time.monotonic() < deadline:
            records += reader.poll(0.5)
            if done(records):
                return records
    raise TimeoutError(f"gave up after {timeout_s:.0f} s with {len(records)} records")


def histogram_percentiles(stats: dict, base: dict | None, qs: tuple[float, ...]) -> list[float]:
    """Percentiles (ms) of the worker's latency histogram since the `base` stats message."""
    counts = stats["latency_counts"]
    if base is not None:
        counts = [a - b for a, b in zip(counts, base["latency_counts"], strict=True)]
    return [percentile_from_histogram(stats["latency_edges_ms"], counts, q) for q in qs]


def add_stack_arguments(p, default_beds: list[int], duration_help: str) -> None:
    """The flags every stream benchmark takes: beds, replay, worker settings, logs."""
    p.add_argument("--beds", type=int, nargs="+", default=default_beds)
    p.add_argument("--duration-s", type=float, default=60.0, help=duration_help)
    p.add_argument("--records", nargs="+", help="records (default: DS2)")
    p.add_argument("--data-dir", help="MIT-BIH directory (default: $ECG_MITDB_DIR)")
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    p.add_argument("--max-batch", type=int)
    p.add_argument("--max-wait-ms", type=float)
    p.add_argument("--logs", help="keep the processes' logs here (default: a temp dir)")


def worker_arguments(args) -> list[str]:
    """The worker's command-line flags from the `add_stack_arguments` flags."""
    out = ["--device", args.device]
    if args.max_batch:
        out += ["--max-batch", str(args.max_batch)]
    if args.max_wait_ms:
        out += ["--max-wait-ms", str(args.max_wait_ms)]
    return out


def run_sizes(args, run_one, prefix: str) -> list[dict]:
    """`run_one(beds, args, log_dir)` for each requested bed count, logs kept under one folder."""
    logs = Path(args.logs or tempfile.mkdtemp(prefix=prefix))
    args.logs = str(logs)
    rows = []
    for n in args.beds:
        print(f"... {n} beds", file=sys.stderr, flush=True)
        rows.append(run_one(n, args, logs / f"beds-{n}"))
    return rows


def machine() -> str:
    """One line describing where the numbers were measured."""
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = psutil.virtual_memory().total / 2**30
    return f"{cpu}, {psutil.cpu_count()} cores, {mem:.0f} GiB, Python {platform.python_version()}"
