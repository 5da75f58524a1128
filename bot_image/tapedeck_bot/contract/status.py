"""The Recording status: what the bot and the operator report.

The status has two owners, and neither overwrites the other's fields:
- the bot owns `BotStatus` (phase, times, participants, outputs, history) and patches it with
  its per-recording ServiceAccount, so a recording is reported while the operator is down;
- the operator owns `OperatorStatus` (conditions, observedGeneration, the bot pod's name, and
  after the upload: download URLs, transfers, webhook deliveries and retention).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from tapedeck_bot.contract.base import CamelModel

__all__ = [
    "BotStatus",
    "Condition",
    "DeliveryState",
    "Download",
    "MediaGap",
    "OperatorStatus",
    "Output",
    "Participant",
    "Phase",
    "RecordingStatus",
    "StopReason",
    "TransferState",
    "TransferStatus",
    "Transition",
    "WebhookDelivery",
]


class Phase(StrEnum):
    """RealtimeKit's recording states, in the order a recording normally passes them."""

    INVOKED = "INVOKED"
    RECORDING = "RECORDING"
    PAUSED = "PAUSED"
    UPLOADING = "UPLOADING"
    UPLOADED = "UPLOADED"
    ERRORED = "ERRORED"


class StopReason(StrEnum):
    STOPPED = "STOPPED"  # asked to stop: spec.state set to Stopped, or SIGINT to the CLI
    MAX_SECONDS = "MAX_SECONDS"  # spec.maxSeconds reached
    ALL_PEERS_LEFT = "ALL_PEERS_LEFT"  # meeting empty for spec.idleTimeoutSeconds
    TERMINATED = "TERMINATED"  # the pod was asked to stop (SIGTERM)
    ERROR = "ERROR"


class Transition(CamelModel):
    """One entry of the append-only phase history."""

    phase: Phase
    at: datetime
    reason: Annotated[str, Field(max_length=256)] | None = None


class MediaGap(CamelModel):
    """A span without a present participant's media, kept in the files as silent time."""

    started_at: datetime
    ended_at: datetime | None = Field(default=None, description="unset while still lost")


class Participant(CamelModel):
    user_id: Annotated[str, Field(max_length=256)]
    display_name: Annotated[str, Field(max_length=256)] | None = None
    joined_at: datetime
    left_at: datetime | None = None
    gaps: Annotated[list[MediaGap], Field(max_length=100)] = []


class Output(CamelModel):
    """A file the bot wrote: where it is and what it holds."""

    kind: Literal["composite", "track"]
    key: Annotated[str, Field(max_length=1024, description="object key in the bucket")]
    content_type: Annotated[str, Field(max_length=128)]
    bytes: Annotated[int, Field(ge=0)] = 0
    user_id: Annotated[str, Field(max_length=256)] | None = None
    started_at: datetime | None = Field(
        default=None, description="UTC time of the first sample, to align outputs"
    )
    complete: bool = False
    salvaged: bool = Field(
        default=False, description="completed from an earlier bot attempt's uploaded parts"
    )


class BotStatus(CamelModel):
    """The part of `.status` that only the bot writes."""

    phase: Phase | None = Field(default=None, description="the last phase in history")
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    duration_seconds: (
        Annotated[float, Field(ge=0, description="seconds recorded, pauses excluded")] | None
    ) = None
    stop_reason: StopReason | None = None
    error: Annotated[str, Field(max_length=4096)] | None = None
    degraded: (
        Annotated[str, Field(max_length=1024, description="why uploads are falling behind")] | None
    ) = None
    participants: Annotated[list[Participant], Field(max_length=1000)] = []
    outputs: Annotated[list[Output], Field(max_length=1000)] = []
    history: Annotated[
        list[Transition], Field(max_length=1000, description="append-only phase transitions")
    ] = []


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(CamelModel):
    """A Kubernetes condition (metav1.Condition)."""

    type: Annotated[str, Field(min_length=1, max_length=316)]
    status: ConditionStatus
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    last_transition_time: datetime
    reason: Annotated[
        str,
        Field(min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"),
    ]
    message: Annotated[str, Field(max_length=32768)] = ""


class Download(CamelModel):
    """A presigned URL for one output, renewed before it expires while the object is kept."""

    key: Annotated[str, Field(max_length=1024)]
    kind: Literal["composite", "track"]
    user_id: Annotated[str, Field(max_length=256)] | None = None
    bytes: Annotated[int, Field(ge=0)] = 0
    salvaged: bool = False
    url: Annotated[str, Field(max_length=8192)]
    expires_at: datetime


class TransferState(StrEnum):
    PENDING = "Pending"  # not tried yet, or waiting for its next try
    COPYING = "Copying"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"  # gave up after the last attempt


class TransferStatus(CamelModel):
    """The copy of the outputs to one `spec.transfers[]` destination."""

    index: Annotated[int, Field(ge=0, description="position in spec.transfers")]
    destination: Annotated[str, Field(max_length=512, description="type, endpoint and bucket")]
    state: TransferState = TransferState.PENDING
    attempts: Annotated[int, Field(ge=0)] = 0
    bytes: Annotated[int, Field(ge=0, description="copied by the latest attempt")] = 0
    objects: Annotated[int, Field(ge=0)] = 0
    error: Annotated[str, Field(max_length=1024)] | None = None
    next_attempt_at: datetime | None = None
    finished_at: datetime | None = None


class DeliveryState(StrEnum):
    PENDING = "Pending"  # due at nextAttemptAt
    DELIVERED = "Delivered"
    FAILED = "Failed"  # refused for good: a 4xx, an unsafe address, or the retry window ended


class WebhookDelivery(CamelModel):
    """One event to one endpoint. `id` is the `webhook-id` header, the same on every retry."""

    id: Annotated[str, Field(max_length=64)]
    target: Annotated[
        str, Field(max_length=64, description="spec.webhooks[i] or settings.webhooks[i]")
    ]
    endpoint: Annotated[
        str, Field(max_length=64, description="the endpoint's identity: a hash of its URL")
    ]
    event: Annotated[str, Field(max_length=64)]
    subject: Annotated[
        str, Field(max_length=64, description="history/{i} or transfers/{hash}: what it reports")
    ]
    state: DeliveryState = DeliveryState.PENDING
    attempts: Annotated[int, Field(ge=0)] = 0
    last_status: Annotated[int, Field(ge=0, le=999)] | None = None
    last_error: Annotated[str, Field(max_length=1024)] | None = None
    first_attempt_at: datetime | None = None
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None


class OperatorStatus(CamelModel):
    """The part of `.status` that only the operator writes."""

    observed_generation: Annotated[int, Field(ge=0)] | None = None
    conditions: Annotated[
        list[Condition],
        Field(
            max_length=16,
            json_schema_extra={
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
            },
        ),
    ] = []
    bot_pod: (
        Annotated[str, Field(max_length=253, description="the pod recording this meeting")] | None
    ) = None
    attempts: Annotated[int, Field(ge=0, description="bot pods started so far")] = 0
    last_attempt_at: datetime | None = Field(
        default=None, description="when the latest bot pod was created; backoff counts from it"
    )
    announced_transitions: Annotated[
        int, Field(ge=0, description="history entries already posted as Events")
    ] = 0
    download_url: Annotated[str, Field(max_length=8192)] | None = Field(
        default=None, description="the composite's presigned URL (RealtimeKit's downloadUrl)"
    )
    download_url_expiry: datetime | None = None
    downloads: Annotated[
        list[Download], Field(max_length=1000, description="a URL per output, segments too")
    ] = []
    transfers: Annotated[list[TransferStatus], Field(max_length=8)] = []
    webhook_deliveries: Annotated[list[WebhookDelivery], Field(max_length=2000)] = []
    expires_at: datetime | None = Field(
        default=None, description="when the retention period ends and the outputs are deleted"
    )
    expired: bool = Field(default=False, description="the outputs were deleted (retention)")


class RecordingStatus(BotStatus, OperatorStatus):
    """The whole `.status`, as the CRD declares it."""
