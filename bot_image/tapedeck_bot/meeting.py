"""What a meeting connector does, whatever the SFU: join, leave, and deliver media.

A connector pushes into a `MeetingSink`: participants joining and leaving, each decoded
frame with its arrival time, and the RTCP sender reports that let the sink put audio and
video on one clock. Frames are already attributed to a participant, so SFU details (mids,
recycled m-lines, SSRCs) never leave the connector.

Errors::

    MeetingError
     ├── MeetingNotFound       the room does not exist (not retried)
     ├── MeetingAccessDenied   the pin or token was refused (not retried)
     └── MeetingUnavailable    the SFU could not be reached after bounded retries
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from av import AudioFrame, VideoFrame

__all__ = [
    "MediaKind",
    "MeetingAccessDenied",
    "MeetingConnector",
    "MeetingError",
    "MeetingNotFound",
    "MeetingSink",
    "MeetingUnavailable",
    "ParticipantInfo",
]

MediaKind = Literal["audio", "video"]


class MeetingError(RuntimeError):
    pass


class MeetingNotFound(MeetingError):
    pass


class MeetingAccessDenied(MeetingError):
    pass


class MeetingUnavailable(MeetingError):
    pass


@dataclass(frozen=True)
class ParticipantInfo:
    """peer_id is unique per session (a rejoin gets a new one); user_id names the person."""

    peer_id: str
    user_id: str
    display_name: str | None = None


class MeetingSink(Protocol):
    def participant_joined(self, participant: ParticipantInfo, at: float) -> None: ...

    def participant_left(self, peer_id: str, at: float) -> None: ...

    def media_frame(
        self, peer_id: str, kind: MediaKind, frame: AudioFrame | VideoFrame, arrival: float
    ) -> None:
        """A decoded frame; `arrival` is time.monotonic() when it was delivered."""

    def encoded_video(
        self, peer_id: str, mime_type: str, data: bytes, pts: int, arrival: float
    ) -> None:
        """A video frame as sent (e.g. VP8), before decoding; only if the connector was
        asked for encoded video. `pts` is in the decoded frames' pts domain."""

    def sender_report(self, peer_id: str, kind: MediaKind, ntp_seconds: float, pts: int) -> None:
        """An RTCP SR, with its RTP timestamp already in the frames' pts domain."""

    def source_changed(self, peer_id: str, kind: MediaKind) -> None:
        """The stream now carries another source: its previous timing no longer applies."""


class MeetingConnector(Protocol):
    async def join(self) -> None:
        """Join the meeting; raises MeetingNotFound / MeetingAccessDenied at once."""

    async def run(self, sink: MeetingSink) -> None:
        """Deliver everything to `sink` (rejoining after transient errors) until `leave()`."""

    async def leave(self) -> None: ...
