"""What flows between the pipeline's stages, and who is present when.

Times named `at` are media time: seconds since the recording started. `arrival` is a reading
of the recording's monotonic clock. `session` names one participant session: the peer id, and
on a rejoin under the same peer id (the bot reconnected to the SFU) a new key, so that every
stage sees one join and one leave per session.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from av import AudioFrame, VideoFrame

from tapedeck_bot.contract import StreamKind
from tapedeck_bot.meeting import EncodedFrame, ParticipantInfo

__all__ = [
    "Arrived",
    "End",
    "Gap",
    "Joined",
    "Left",
    "Payload",
    "Placed",
    "Presence",
    "Report",
    "SourceChanged",
    "StageEvent",
]


@dataclass
class Gap:
    """A span in which a present participant's media was lost (their server went away)."""

    start: float
    end: float | None = None


@dataclass
class Presence:
    """When one participant session was in the meeting; each stage keeps its own."""

    info: ParticipantInfo
    joined_at: float
    left_at: float | None = None
    gaps: list[Gap] = field(default_factory=list)

    def present_at(self, t: float) -> bool:
        return self.joined_at <= t and (self.left_at is None or t < self.left_at)


@dataclass(frozen=True)
class Joined:
    session: str
    info: ParticipantInfo
    at: float


@dataclass(frozen=True)
class Left:
    session: str
    at: float


# -- network thread -> placement ------------------------------------------------------------


@dataclass(frozen=True)
class Arrived:
    session: str
    kind: StreamKind
    arrival: float
    frame: AudioFrame | VideoFrame | EncodedFrame


@dataclass(frozen=True)
class Report:
    """An RTCP sender report: the sender's clock read `ntp_seconds` at `pts`."""

    session: str
    kind: StreamKind
    ntp_seconds: float
    pts: int


@dataclass(frozen=True)
class SourceChanged:
    session: str
    kind: StreamKind


# -- placement -> composite and tracks ------------------------------------------------------

# A decoded video frame, decoded audio as n x 2 int16 at 48 kHz, or a frame as sent.
Payload = VideoFrame | np.ndarray | EncodedFrame


@dataclass(frozen=True)
class Placed:
    session: str
    kind: StreamKind
    at: float
    payload: Payload


@dataclass(frozen=True)
class End:
    """Everything up to the stop is placed: nothing more will come."""


# Joined passes at once; Left after the participant's last frames are placed.
StageEvent = Joined | Left | Placed | End
