# One image for every ecg-monitor service: stream worker, simulator, dashboard, topic creation.
#
#   docker build -t ecg-monitor .                                   # CPU PyTorch (default)
#   docker build -t ecg-monitor --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu124 .
#
# MIT-BIH is not in the image: the simulator downloads it from PhysioNet into
# /home/ecg/.cache/ecg-monitor (a volume in docker-compose.yml) or reads $ECG_MITDB_DIR.
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG TORCH_SPEC=torch==2.13.0

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# PyTorch first, from the chosen wheel index, so the dependency layer below reuses it.
RUN pip install --index-url "$TORCH_INDEX" "$TORCH_SPEC"

COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY simulators ./simulators
COPY trainer ./trainer
COPY models ./models
# Editable: the code and the shipped model stay in /app, where monitor.classifier looks. The
# services' extras only: the trainer's plotting stack stays out of the image.
RUN pip install -e ".[worker,dashboard]"

# Faust keeps its local state here; topics and changelogs live in Kafka.
ENV ECG_WORKER_DATADIR=/tmp/ecg-worker \
    ECG_MODEL=/app/models/ecg_cnn_bilstm.pt

# Unprivileged at run time; the PhysioNet cache is the only place it writes.
RUN useradd --create-home --uid 1000 ecg && mkdir -p /home/ecg/.cache/ecg-monitor \
    && chown -R ecg /home/ecg/.cache
USER ecg

CMD ["python", "-m", "monitor", "worker"]
