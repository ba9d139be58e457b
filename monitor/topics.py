"""The product's Kafka topic names, defined once for every producer, consumer and tool.

A module of its own, free of Faust and Kafka clients, so the dashboard and offline tools name the
topics without importing the worker's message classes.
"""

from __future__ import annotations

SAMPLES = "ecg.samples"
BEATS = "ecg.beats"
ALERTS = "ecg.alerts"
VITALS = "ecg.vitals"
REFERENCE = "ecg.reference"
DEADLETTER = "ecg.deadletter"
STATS = "ecg.stats"
