# ecg-monitor — the README's commands. Everything runs from a local virtual environment (.venv).
#
#   make demo    broker + worker + 8 simulated beds + ward dashboard (Ctrl-C stops all)
#   make test    the full test suite (unit, real-broker and real-browser tests)
#
# PyTorch: without a GPU the pinned CPU build is installed first (TORCH_SPEC); pyproject.toml itself
# stays open-ended (torch>=2.3). Set TORCH_INDEX to a wheel index (for example PyTorch's CPU index)
# if your pip would otherwise fetch a CUDA build.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
STAMP := $(VENV)/.installed
# PhysioNet data: a copy beside the checkout (../shared/data/) is used when the variables are unset;
# otherwise the tools download MIT-BIH / NSTDB from PhysioNet into ~/.cache/ecg-monitor.
export ECG_MITDB_DIR ?= $(abspath $(wildcard ../shared/data/mitdb))
export ECG_NSTDB_DIR ?= $(abspath $(wildcard ../shared/data/nstdb))

.PHONY: setup browser demo test lint train evaluate bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
		echo "GPU found: torch comes from pyproject's torch>=2.3"; \
	elif ! $(PY) -c "import torch" 2>/dev/null; then \
		echo "no GPU: installing the CPU build $(TORCH_SPEC) first"; \
		$(PY) -m pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"; \
	fi
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

# The browser tests drive Debian's Chromium and ChromeDriver. Installed here when missing (as root,
# or through sudo); anywhere else this stops with the command to run instead of failing 6 tests.
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then \
		exit 0; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "the browser tests need Chromium and ChromeDriver on PATH (chromium, chromedriver);"; \
		echo "install them with your package manager, then run make test again"; exit 1; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "installing chromium and chromium-driver for the browser tests"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; \
	elif command -v sudo >/dev/null 2>&1; then \
		echo "installing chromium and chromium-driver for the browser tests (sudo)"; \
		sudo DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; \
	else \
		echo "the browser tests need: apt-get install chromium chromium-driver (as root)"; exit 1; \
	fi

demo: setup
	$(PY) -m monitor.demo

test: setup browser
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check .

train: setup
	$(PY) -m trainer.train

evaluate: setup
	$(PY) -m trainer.evaluate --split inter

bench: setup
	$(PY) benchmarks/inference.py
	$(PY) benchmarks/detector_ec57.py
	$(PY) benchmarks/alarm_quality.py
	$(PY) benchmarks/vf_detector.py
	$(PY) benchmarks/vf_alarms.py
	$(PY) benchmarks/stream_throughput.py
	$(PY) benchmarks/stream_latency.py
	$(PY) benchmarks/dashboard_load.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
