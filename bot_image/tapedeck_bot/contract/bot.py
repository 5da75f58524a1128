"""What the operator hands a bot pod: which Recording, its spec, and where to spool.

Secrets never travel in this config: the pod gets them as environment variables from
`secretKeyRef`s (the Janus pin as TAPEDECK_JANUS_PIN, the token of WHEP endpoint i as
TAPEDECK_WHEP_TOKEN_i).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from tapedeck_bot.contract.base import CamelModel
from tapedeck_bot.contract.spec import RecordingSpec, StorageSpec

__all__ = [
    "CONFIG_ENV",
    "PIN_ENV",
    "STORAGE_SECRET_ENV",
    "BotConfig",
    "UploadSettings",
    "whep_token_env",
]

CONFIG_ENV = "TAPEDECK_BOT_CONFIG"  # the BotConfig as JSON
PIN_ENV = "TAPEDECK_JANUS_PIN"
# The storage Secret's keys and the environment variables the bot pod reads them from.
STORAGE_SECRET_ENV = {
    "accessKeyId": "TAPEDECK_STORAGE_ACCESS_KEY_ID",
    "secretAccessKey": "TAPEDECK_STORAGE_SECRET_ACCESS_KEY",
    "accountName": "TAPEDECK_STORAGE_ACCOUNT_NAME",
    "accountKey": "TAPEDECK_STORAGE_ACCOUNT_KEY",
}

_MIB = 1024 * 1024


def whep_token_env(index: int) -> str:
    """The variable holding the Bearer token of `spec.meeting.whep.endpoints[index]`."""
    return f"TAPEDECK_WHEP_TOKEN_{index}"


class UploadSettings(CamelModel):
    """How the bot streams outputs to storage while it records."""

    # R2 wants every part but the last to have the same size, and S3 at least 5 MiB; 8 MiB
    # parts allow 78 GiB per file within the 10,000-part limit.
    part_size_bytes: Annotated[int, Field(ge=5 * _MIB, le=512 * _MIB)] = 8 * _MIB
    spool_limit_bytes: Annotated[
        int, Field(ge=0, description="bytes waiting for upload before the bot reports Degraded")
    ] = 2048 * _MIB


class BotConfig(CamelModel):
    namespace: Annotated[str, Field(min_length=1, max_length=63)]
    recording: Annotated[str, Field(min_length=1, max_length=253, description="its name")]
    recording_id: Annotated[
        str,
        Field(
            min_length=1,
            max_length=128,
            pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
            description="the Recording's uid: object keys are {path}/{recordingId}/...",
        ),
    ]
    spec: RecordingSpec
    storage: StorageSpec | None = Field(
        default=None, description="spec.storage, or the operator's default; None keeps files local"
    )
    upload: UploadSettings = UploadSettings()
    spool_dir: str = Field(default="/spool", description="local directory outputs go to first")
    watermark_file: str | None = Field(
        default=None, description="where the pod finds spec.composite.watermark's image"
    )

    @property
    def file_stem(self) -> str:
        return self.spec.file_name_prefix or self.recording
