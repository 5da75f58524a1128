"""The operator's settings: one YAML file (`tapedeck-operator run --config`), the same file the
Helm chart renders into a ConfigMap. Every field has a documented default, so no file at all
is a working configuration."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, TypeVar

import yaml
from pydantic import BaseModel, Field, ValidationError

from tapedeck_bot.contract import StorageSpec, UploadSettings
from tapedeck_bot.contract.base import CamelModel

__all__ = [
    "BotSettings",
    "ConfigError",
    "DownloadSettings",
    "OperatorSettings",
    "Resources",
    "RetentionSettings",
    "TransferSettings",
    "WebhookEndpoint",
    "WebhookSettings",
    "load_settings",
    "load_yaml_settings",
]


M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    pass


class Resources(CamelModel):
    """A container's requests and limits, as Kubernetes quantities."""

    requests: dict[str, str] = {}
    limits: dict[str, str] = {}


# A 720p30 composite encodes in about one core (bench/RESULTS.md); audio tracks need little.
_COMPOSITE = Resources(
    requests={"cpu": "1", "memory": "512Mi"}, limits={"cpu": "2", "memory": "1536Mi"}
)
_TRACKS = Resources(
    requests={"cpu": "250m", "memory": "256Mi"}, limits={"cpu": "1", "memory": "768Mi"}
)


class BotSettings(CamelModel):
    """How the operator runs bot pods."""

    image: str = "ghcr.io/tapedeck/bot:0.1.0"
    image_pull_policy: str = "IfNotPresent"
    command: list[str] = ["tapedeck-bot", "run"]
    env: dict[str, str] = Field(
        default={}, description="extra environment for every bot (never secrets: use Secrets)"
    )
    composite_resources: Resources = _COMPOSITE
    tracks_resources: Resources = Field(default=_TRACKS, description="for tracks-only bots")
    node_selector: dict[str, str] = {}
    tolerations: list[dict[str, str | int]] = []
    priority_class_name: str | None = None
    grace_period_seconds: Annotated[
        int, Field(ge=30, le=86400, description="time a stopped bot has to finish its uploads")
    ] = 900
    max_attempts: Annotated[
        int, Field(ge=1, le=100, description="bot pods per Recording before ERRORED")
    ] = 5
    max_restarts: Annotated[
        int,
        Field(ge=0, le=100, description="in-place container restarts before a new attempt"),
    ] = 5
    start_timeout_seconds: Annotated[
        int,
        Field(ge=1, description="how long a missing Secret is waited for before ERRORED"),
    ] = 300
    spool_size_limit: str = "20Gi"
    upload: UploadSettings = UploadSettings()


class DownloadSettings(CamelModel):
    """Presigned download URLs, as RealtimeKit hands out (7 days there)."""

    expiry_seconds: Annotated[
        int,
        Field(ge=10, le=604_800, description="how long a URL is valid; at most 7 days (SigV4)"),
    ] = 604_800
    renew_before_seconds: Annotated[
        int,
        Field(ge=1, description="renew the URLs when less than this is left (at most half)"),
    ] = 86_400

    @property
    def renew_before(self) -> float:
        return min(self.renew_before_seconds, self.expiry_seconds / 2)


class RetentionSettings(CamelModel):
    days: Annotated[
        int, Field(ge=1, le=3650, description="for Recordings without spec.retentionDays")
    ] = 7
    sweep_interval_seconds: Annotated[
        float, Field(gt=0, description="how often deleted Recordings' objects are checked")
    ] = 300
    bucket_rules: bool = Field(
        default=True,
        description="also set a bucket lifecycle rule for a deleted Recording's objects, where "
        "the storage key may (not on Azure)",
    )


class TransferSettings(CamelModel):
    """Copies to `spec.transfers[]`: each destination is retried on its own."""

    max_attempts: Annotated[int, Field(ge=1, le=100)] = 5
    initial_backoff_seconds: Annotated[float, Field(gt=0)] = 30
    max_backoff_seconds: Annotated[float, Field(gt=0)] = 1800


class ClusterSecretKeyRef(CamelModel):
    namespace: Annotated[str, Field(min_length=1, max_length=63)]
    name: Annotated[str, Field(min_length=1, max_length=253)]
    key: Annotated[str, Field(min_length=1, max_length=253)]


class WebhookEndpoint(CamelModel):
    """A cluster-wide endpoint: every Recording's events go to it too."""

    url: Annotated[str, Field(max_length=2048, pattern=r"^https?://[^\s]+$")]
    secret_ref: ClusterSecretKeyRef


class WebhookSettings(CamelModel):
    endpoints: Annotated[list[WebhookEndpoint], Field(max_length=8)] = []
    timeout_seconds: Annotated[float, Field(gt=0, le=60, description="per request")] = 10
    retry_window_seconds: Annotated[
        float, Field(gt=0, description="how long a failing event is retried (24 h)")
    ] = 86_400
    initial_backoff_seconds: Annotated[float, Field(gt=0)] = 5
    max_backoff_seconds: Annotated[float, Field(gt=0)] = 3600
    allow_loopback_destinations: bool = False
    allow_private_destinations: bool = Field(
        default=False, description="RFC 1918 and ULA addresses; link-local is never allowed"
    )


class OperatorSettings(CamelModel):
    namespace: str = Field(
        default_factory=lambda: os.environ.get("POD_NAMESPACE", "tapedeck-system"),
        description="the operator's own namespace, where it keeps the retention tombstones "
        "($POD_NAMESPACE by default)",
    )
    bot: BotSettings = BotSettings()
    storage: StorageSpec | None = Field(
        default=None, description="the default bucket for Recordings without spec.storage"
    )
    reconcile_interval_seconds: Annotated[float, Field(gt=0, le=300)] = 2.0
    metrics_port: Annotated[int, Field(ge=0, le=65535, description="0 turns it off")] = 9090
    health_port: Annotated[int, Field(ge=0, le=65535, description="0 turns it off")] = 8080
    listen_address: str = Field(
        default="0.0.0.0", description="where /metrics and /healthz listen (127.0.0.1 locally)"
    )
    downloads: DownloadSettings = DownloadSettings()
    retention: RetentionSettings = RetentionSettings()
    transfers: TransferSettings = TransferSettings()
    webhooks: WebhookSettings = WebhookSettings()


def load_yaml_settings(path: Path | None, model: type[M]) -> M:
    """The settings in `path` (YAML), or the model's defaults; errors name the field and the
    file."""
    if path is None:
        return model()
    try:
        raw = yaml.safe_load(path.read_text()) or {}
        return model.model_validate(raw)
    except OSError as exc:
        raise ConfigError(f"cannot read --config {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not YAML: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from exc


def load_settings(path: Path | None) -> OperatorSettings:
    """The operator's settings in `path`, or the defaults."""
    return load_yaml_settings(path, OperatorSettings)
