"""`python -m monitor worker|topics`: the stream worker and topic creation.

`worker` takes the worker's own options, exports them as the environment `monitor.app` reads
(so `faust -A monitor.app worker` with the same variables runs the same worker), loads the
model before Faust starts (a missing or incompatible model is one line, not a traceback), and
hands every other option to Faust's `worker` command (default `--without-web -l info`).
"""

from __future__ import annotations

import argparse
import os
import sys

from monitor.broker import ENV_BOOTSTRAP, TOPICS, create_topics
from monitor.errors import InputError, missing_extra, run_cli

#: Worker options and the environment variables monitor.app reads them from.
_WORKER_ENV = {
    "bootstrap": ENV_BOOTSTRAP,
    "device": "ECG_DEVICE",
    "max_batch": "ECG_MAX_BATCH",
    "max_wait_ms": "ECG_MAX_WAIT_MS",
    "model": "ECG_MODEL",
    "torch_threads": "ECG_TORCH_THREADS",
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m monitor", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    w = sub.add_parser(
        "worker",
        help="run the stream worker (other options go to Faust's worker command)",
        description="Classify every bed's beats from ecg.samples and raise alarms.",
        epilog="Any other option goes to Faust's worker command (e.g. -l info for its log).",
    )
    w.add_argument("--bootstrap", help=f"Kafka host:port[,...] (default: ${ENV_BOOTSTRAP})")
    w.add_argument("--device", choices=("auto", "cpu", "cuda"), help="auto = CUDA if available")
    w.add_argument("--max-batch", type=int, help="chunks per round and beats per forward (256)")
    w.add_argument("--max-wait-ms", type=float, help="longest a round waits to fill (25 ms)")
    w.add_argument("--model", help="TorchScript model (default: shipped model, or $ECG_MODEL)")
    w.add_argument("--torch-threads", type=int, help="PyTorch threads on CPU (1)")
    t = sub.add_parser("topics", help="create the product's topics (existing ones are kept)")
    t.add_argument("--bootstrap", help=f"Kafka host:port[,...] (default: ${ENV_BOOTSTRAP})")
    return p


def run(argv: list[str] | None = None) -> int:
    args, rest = _parser().parse_known_args(argv)
    if args.command == "topics":
        if rest:
            raise InputError(f"unknown options for topics: {' '.join(rest)}")
        bootstrap = args.bootstrap or os.environ.get(ENV_BOOTSTRAP)
        if not bootstrap:
            raise InputError(f"no Kafka: pass --bootstrap host:port or set ${ENV_BOOTSTRAP}")
        create_topics(bootstrap)
        print(f"topics on {bootstrap}: " + ", ".join(f"{t} ({n})" for t, n in TOPICS.items()))
        return 0
    for option, env in _WORKER_ENV.items():
        value = getattr(args, option)
        if value is not None:
            os.environ[env] = str(value)
    try:
        from monitor import app as worker
    except ModuleNotFoundError as exc:
        raise missing_extra("the worker", exc.name, "worker") from exc

    worker.runtime()
    if not any(arg.startswith(("--with-web", "--web-")) for arg in rest):
        rest.insert(0, "--without-web")  # Faust's web server would claim port 6066 per host
    if not any(arg == "-l" or arg.startswith(("--loglevel", "-l")) for arg in rest):
        rest[:0] = ["-l", "info"]  # the worker's status line every 5 s is at info
    sys.argv = ["python -m monitor", "worker", *rest]
    worker.app.main()
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(run, argv)


if __name__ == "__main__":
    sys.exit(main())
