"""What the API needs to know that RealtimeKit's requests do not say: which namespace an app
records into, how a meeting id becomes a connector, and where the files go."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from tapedeck_bot.contract import StorageSpec
from tapedeck_bot.contract.base import CamelModel

__all__ = ["ApiSettings", "AppSettings"]


class AppSettings(CamelModel):
    """One RealtimeKit app (the `{app_id}` of the paths)."""

    namespace: Annotated[str, Field(max_length=63)] | None = Field(
        default=None, description="where its Recordings live (default: the app id)"
    )
    janus_url: str | None = Field(
        default=None,
        description="the Janus server of its meetings; the room is `rooms[meeting_id]`, or "
        "the meeting id itself when that is a number",
    )
    rooms: dict[str, Annotated[int, Field(ge=1)]] = Field(
        default={}, description="meeting id -> Janus room"
    )
    storage: StorageSpec | None = Field(
        default=None,
        description="the bucket and credentials Secret of its recordings; a request's "
        "storage_config may choose another bucket, region and path, never credentials",
    )


class ApiSettings(CamelModel):
    apps: dict[str, AppSettings] = Field(default={}, description="by app id")
    default_app: AppSettings = Field(
        default=AppSettings(), description="for app ids not listed in `apps`"
    )

    def app(self, app_id: str) -> AppSettings:
        return self.apps.get(app_id, self.default_app)

    def namespace(self, app_id: str) -> str:
        return self.app(app_id).namespace or app_id
