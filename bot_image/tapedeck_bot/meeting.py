"""What a meeting connector does, whatever the SFU: join, leave, and deliver media.

A connector pushes into a `MeetingSink`, on its network thread: participants joining and
leaving, each frame with its arrival time (decoded, or as sent for the kinds asked so), and
the RTCP sender reports that let the sink put audio and video on one clock. Frames are
already attributed to a participant, so SFU details (mids, recycled m-lines, SSRCs) never
leave the connector. Arrival times are readings of the connector's injected `Clock`.

Errors::

    MeetingError
     ├── MeetingNotFound       the room does not exist (not retried)
     ├── MeetingAccessDenied   the pin or token was refused (not retried)
     └── MeetingUnavailable    the SFU could not be reached after bounded retries
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from av import AudioFrame, VideoFrame

from tapedeck_bot.contract import StreamKind

__all__ = [
    "EncodedFrame",
    "MeetingAccessDenied",
    "MeetingConnector",
    "MeetingError",
    "MeetingNotFound",
    "MeetingSink",
    "MeetingUnavailable",
    "ParticipantInfo",
]


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


@dataclass(frozen=True)
class EncodedFrame:
    """One frame as the sender encoded it. `pts` is in the stream's pts domain (1/48000 for
    audio, 1/90000 for video), the same as the decoded frames'."""

    mime_type: str  # "audio/opus", "video/VP8", …
    data: bytes
    pts: int
    rate: int


class MeetingSink(Protocol):
    def participant_joined(self, participant: ParticipantInfo, at: float) -> None: ...

    def participant_left(self, peer_id: str, at: float) -> None: ...

    def media_frame(
        self, peer_id: str, kind: StreamKind, frame: AudioFrame | VideoFrame, arrival: float
    ) -> None:
        """A decoded frame; `arrival` is the clock's monotonic() when it was delivered."""

    def encoded_frame(
        self, peer_id: str, kind: StreamKind, encoded: EncodedFrame, arrival: float
    ) -> None:
        """A frame as sent (Opus, VP8, H.264), before decoding; only for the kinds the
        connector was asked to deliver encoded."""

    def sender_report(self, peer_id: str, kind: StreamKind, ntp_seconds: float, pts: int) -> None:
        """An RTCP SR, with its RTP timestamp already in the frames' pts domain."""

    def source_changed(self, peer_id: str, kind: StreamKind) -> None:
        """The stream now carries another source: its previous timing no longer applies."""

    def media_interrupted(self, peer_id: str, at: float) -> None:
        """The participant's media stopped at `at` without a leave (their server went away)
        and the connector is reconnecting: they stay present, the gap is kept as time."""

    def media_restored(self, peer_id: str, at: float) -> None:
        """Media flows again after `media_interrupted`."""


class MeetingConnector(Protocol):
    async def join(self) -> None:
        """Join the meeting; raises MeetingNotFound / MeetingAccessDenied at once."""

    async def run(self, sink: MeetingSink) -> None:
        """Deliver everything to `sink` (rejoining after transient errors) until `leave()`."""

    async def leave(self) -> None: ...
