"""Prometheus metrics of the operator, on its own registry (no process-global state)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from tapedeck_bot.contract import Phase

__all__ = ["OperatorMetrics"]


class _PhaseCollector(Collector):
    def __init__(self, phases: dict[str, str]) -> None:
        self._phases = phases

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "tapedeck_recordings", "Recordings this operator watches, by phase", labels=["phase"]
        )
        counts = dict.fromkeys([*(str(p) for p in Phase), "NONE"], 0)
        for phase in list(self._phases.values()):
            counts[phase] = counts.get(phase, 0) + 1
        for phase, count in counts.items():
            family.add_metric([phase], count)
        yield family


class OperatorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.phases: dict[str, str] = {}  # Recording uid -> phase
        self.registry.register(_PhaseCollector(self.phases))
        self.attempts = Counter("tapedeck_bot_attempts", "Bot pods started", registry=self.registry)
        self.reconcile_errors = Counter(
            "tapedeck_reconcile_errors", "Reconciles that raised", registry=self.registry
        )
        self.reconcile_seconds = Histogram(
            "tapedeck_reconcile_duration_seconds",
            "Time to reconcile one Recording",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )

        self.webhook_attempts = Counter(
            "tapedeck_webhook_attempts",
            "Webhook POSTs, by what became of the delivery: delivered, retrying or failed",
            labelnames=["result"],
            registry=self.registry,
        )
        self.transfers = Counter(
            "tapedeck_transfers",
            "Copies to spec.transfers destinations, by result: succeeded, retrying or failed",
            labelnames=["result"],
            registry=self.registry,
        )
        self.expired = Counter(
            "tapedeck_expired_objects", "Objects deleted by retention", registry=self.registry
        )

    def serve(self, port: int, address: str) -> None:
        start_http_server(port, addr=address, registry=self.registry)
