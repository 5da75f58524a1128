"""What the operator hands a bot pod: which Recording, its spec, and where to spool.

Secrets never travel in this config: the pod gets them as environment variables from
`secretKeyRef`s (for example the Janus pin as TAPEDECK_JANUS_PIN).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from tapedeck_bot.contract.base import CamelModel
from tapedeck_bot.contract.spec import RecordingSpec

__all__ = ["CONFIG_ENV", "PIN_ENV", "BotConfig"]

CONFIG_ENV = "TAPEDECK_BOT_CONFIG"  # the BotConfig as JSON
PIN_ENV = "TAPEDECK_JANUS_PIN"


class BotConfig(CamelModel):
    namespace: Annotated[str, Field(min_length=1, max_length=63)]
    recording: Annotated[str, Field(min_length=1, max_length=253, description="its name")]
    spec: RecordingSpec
    spool_dir: str = Field(default="/spool", description="local directory outputs go to first")

    @property
    def file_stem(self) -> str:
        return self.spec.file_name_prefix or self.recording
