"""The contract between the operator and the bot: the Recording's spec and status models.

Importing this package must stay cheap (pydantic only, no aiortc/av), because the operator
image carries it.
"""

from tapedeck_bot.contract.bot import (
    CONFIG_ENV,
    PIN_ENV,
    STORAGE_SECRET_ENV,
    BotConfig,
    UploadSettings,
)
from tapedeck_bot.contract.history import (
    TERMINAL,
    current_phase,
    merge_history,
    status_with_history,
)
from tapedeck_bot.contract.media import STREAM_KINDS, StreamKind, content_type_of
from tapedeck_bot.contract.names import API_VERSION, GROUP, KIND, PLURAL, VERSION
from tapedeck_bot.contract.spec import (
    AudioCodec,
    CompositeSpec,
    DesiredState,
    Layout,
    MediaKind,
    Meeting,
    R2Jurisdiction,
    RecordingSpec,
    StorageSpec,
    StorageType,
    TracksSpec,
    VideoCodec,
    WebhookSpec,
)
from tapedeck_bot.contract.status import (
    BotStatus,
    Condition,
    DeliveryState,
    Download,
    OperatorStatus,
    Output,
    Participant,
    Phase,
    RecordingStatus,
    StopReason,
    TransferState,
    TransferStatus,
    Transition,
    WebhookDelivery,
)

__all__ = [
    "API_VERSION",
    "CONFIG_ENV",
    "GROUP",
    "KIND",
    "PIN_ENV",
    "PLURAL",
    "STORAGE_SECRET_ENV",
    "STREAM_KINDS",
    "TERMINAL",
    "VERSION",
    "AudioCodec",
    "BotConfig",
    "BotStatus",
    "CompositeSpec",
    "Condition",
    "DeliveryState",
    "DesiredState",
    "Download",
    "Layout",
    "MediaKind",
    "Meeting",
    "OperatorStatus",
    "Output",
    "Participant",
    "Phase",
    "R2Jurisdiction",
    "RecordingSpec",
    "RecordingStatus",
    "StopReason",
    "StorageSpec",
    "StorageType",
    "StreamKind",
    "TracksSpec",
    "TransferState",
    "TransferStatus",
    "Transition",
    "UploadSettings",
    "VideoCodec",
    "WebhookDelivery",
    "WebhookSpec",
    "content_type_of",
    "current_phase",
    "merge_history",
    "status_with_history",
]
