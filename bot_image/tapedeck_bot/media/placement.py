"""The placement stage: the one owner of the media clock.

Every frame is held for `delay_s` after it arrives, so that the sender report relating its
stream to the sender's clock (Janus sends the first about 1.4 s into a subscription) is known
when the first frames are placed: a participant's audio and video are placed by the same
mapping from their first frame on. Then each frame gets its media time and goes to every
outlet that wants it (the composite, the tracks), through their bounded mailboxes.

A participant's `Left` goes out after their last frames; `End` once everything up to the
stop (and `late_s` of network lateness beyond) has been placed.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from av import AudioFrame, VideoFrame

from tapedeck_bot.clock import Clock
from tapedeck_bot.contract import StreamKind
from tapedeck_bot.control import ControlView
from tapedeck_bot.media.clock import ParticipantClock, StreamClock
from tapedeck_bot.media.events import (
    Arrived,
    End,
    Joined,
    Left,
    Payload,
    Placed,
    Report,
    SourceChanged,
    StageEvent,
)
from tapedeck_bot.media.mailbox import Mailbox
from tapedeck_bot.media.router import PlacementInbox
from tapedeck_bot.media.worker import Stage
from tapedeck_bot.meeting import EncodedFrame

__all__ = ["Outlet", "Placement"]

log = logging.getLogger("tapedeck_bot.media")

_DELAY_S = 1.6
# After the stop, frames arriving this late are still placed: the composite, 2.5 s behind
# real time, has taken them so far.
_LATE_S = 0.9
_STEP_S = 0.02
# Frames waiting for placement, per participant: ~6 s of 30 fps video and 50 fps audio, far
# beyond the 1.6 s delay. Past it this stage has fallen far behind (an overloaded node);
# dropping the oldest beats exhausting the pod's memory (a 640x360 frame is 345 KB).
_MAX_PENDING = 500


def stereo(frame: AudioFrame) -> np.ndarray:
    """aiortc delivers packed s16; make it n x 2."""
    channels = len(frame.layout.channels)
    pcm = frame.to_ndarray().reshape(-1, channels)
    return np.repeat(pcm, 2, axis=1) if channels == 1 else pcm[:, :2]


@dataclass(frozen=True)
class Outlet:
    """A stage's mailbox, and which frames it takes: decoded, and as sent, per kind."""

    mailbox: Mailbox[StageEvent]
    decoded: frozenset[StreamKind] = frozenset()
    encoded: frozenset[StreamKind] = frozenset()

    def wants(self, kind: StreamKind, payload: Payload) -> bool:
        return kind in (self.encoded if isinstance(payload, EncodedFrame) else self.decoded)


@dataclass(frozen=True)
class _Due:
    kind: StreamKind
    stream: StreamClock  # the clock it was observed by, even if its source changed since
    pts: int
    segment: int
    frame: AudioFrame | VideoFrame | EncodedFrame


@dataclass
class _Participant:
    clock: ParticipantClock = field(default_factory=ParticipantClock)
    pending: deque[tuple[float, _Due]] = field(default_factory=lambda: deque(maxlen=_MAX_PENDING))
    left: Left | None = None


class Placement(Stage):
    def __init__(
        self,
        t0: float,
        inbox: PlacementInbox,
        outlets: list[Outlet],
        control: ControlView,
        clock: Clock,
        *,
        delay_s: float = _DELAY_S,
        late_s: float = _LATE_S,
    ) -> None:
        self.t0, self.inbox, self.outlets, self.control = t0, inbox, outlets, control
        self.delay_s, self.late_s = delay_s, late_s
        self._participants: dict[str, _Participant] = {}  # by session
        self._ended = False
        self.dropped = 0  # frames pushed out of a full pending queue
        super().__init__("placement", clock)

    def step(self, now: float) -> float | None:
        for message in self.inbox.take():
            self._ingest(message)
        due = now - self.delay_s
        for session, participant in list(self._participants.items()):
            pending = participant.pending
            while pending and pending[0][0] <= due:
                self._place(session, participant, pending.popleft()[1])
            left = participant.left
            if left is not None and not pending and left.at + self.t0 <= due:
                self._send(left)
                del self._participants[session]
        stop_at = self.control().stop_at
        if stop_at is not None and due - self.t0 - self.late_s >= stop_at:
            self._end()
            return None
        return _STEP_S

    def finish(self) -> None:
        self._end()  # also after a failure: the stages downstream must not wait forever

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self._send(End())

    def _send(self, event: StageEvent) -> None:
        for outlet in self.outlets:
            outlet.mailbox.put(event, droppable=False)

    def _ingest(self, message: Joined | Left | Arrived | Report | SourceChanged) -> None:
        if isinstance(message, Joined):
            self._participants[message.session] = _Participant()
            self._send(message)
            return
        participant = self._participants.get(message.session)
        if participant is None:
            return
        if isinstance(message, Left):
            participant.left = message
        elif isinstance(message, Arrived):
            self._arrived(participant, message)
        elif isinstance(message, Report):
            stream = participant.clock.streams.get(message.kind)
            if stream is not None:
                stream.sender_report(message.ntp_seconds, message.pts)
        else:  # frames still pending keep the clock they were observed by
            participant.clock.reset(message.kind)

    def _arrived(self, participant: _Participant, message: Arrived) -> None:
        frame = message.frame
        if isinstance(frame, EncodedFrame):
            stream = participant.clock.stream(message.kind, frame.rate)
            pts, segment = frame.pts, stream.observe_encoded(frame.pts, message.arrival)
        else:
            if frame.pts is None or frame.time_base is None:
                return
            stream = participant.clock.stream(message.kind, round(1 / frame.time_base))
            pts, segment = frame.pts, stream.observe_decoded(frame.pts, message.arrival)
        pending = participant.pending
        if len(pending) == pending.maxlen:
            self.dropped += 1
        pending.append((message.arrival, _Due(message.kind, stream, pts, segment, frame)))

    def _place(self, session: str, participant: _Participant, due: _Due) -> None:
        local = participant.clock.local_time(due.kind, due.pts, due.segment, stream=due.stream)
        if local is None:
            return
        at = local - self.t0
        payload: Payload = stereo(due.frame) if isinstance(due.frame, AudioFrame) else due.frame
        for outlet in self.outlets:
            if outlet.wants(due.kind, payload):
                outlet.mailbox.put(Placed(session, due.kind, at, payload))
