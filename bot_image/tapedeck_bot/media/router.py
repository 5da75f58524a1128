"""The meeting sink, on the connector's network thread: it only notes who is present and
hands everything over to the placement stage's inbox. No lock is shared with a stage that
encodes or writes, and nothing here waits."""

from __future__ import annotations

import logging
from collections import Counter

from av import AudioFrame, VideoFrame

from tapedeck_bot.contract import StreamKind
from tapedeck_bot.media.events import (
    Arrived,
    Gap,
    Joined,
    Left,
    Presence,
    Report,
    SourceChanged,
)
from tapedeck_bot.media.mailbox import Mailbox
from tapedeck_bot.meeting import EncodedFrame, ParticipantInfo

__all__ = ["MediaRouter", "PlacementInbox"]

log = logging.getLogger("tapedeck_bot.media")

PlacementInbox = Mailbox[Joined | Left | Arrived | Report | SourceChanged]


class MediaRouter:
    """Implements `MeetingSink`. `t0` is the clock's monotonic() at media time 0."""

    def __init__(self, t0: float, inbox: PlacementInbox) -> None:
        self.t0 = t0
        self.inbox = inbox
        self._roster: dict[str, Presence] = {}  # by session: the network thread's own view
        self._joins: Counter[str] = Counter()  # by peer id
        self._here: dict[str, str] = {}  # peer id -> its session, while present

    def participant_joined(self, participant: ParticipantInfo, at: float) -> None:
        peer = participant.peer_id
        if peer in self._here:
            return  # already present: a connector never joins anyone twice
        joins = self._joins[peer]
        self._joins[peer] += 1
        session = self._here[peer] = peer if not joins else f"{peer}#{joins}"
        joined = max(0.0, at - self.t0)
        self._roster[session] = Presence(participant, joined)
        self.inbox.put(Joined(session, participant, joined), droppable=False)
        log.info(
            "participant joined",
            extra={"peer_id": peer, "user_id": participant.user_id, "at_s": joined},
        )

    def participant_left(self, peer_id: str, at: float) -> None:
        session = self._here.pop(peer_id, None)
        if session is None:
            return
        presence = self._roster[session]
        presence.left_at = max(presence.joined_at, at - self.t0)
        gaps = presence.gaps
        if gaps and gaps[-1].end is None:  # lost until they left: absent, not a gap, from then
            if presence.left_at <= gaps[-1].start:
                gaps.pop()
            else:
                gaps[-1].end = presence.left_at
        self.inbox.put(Left(session, presence.left_at), droppable=False)
        log.info("participant left", extra={"peer_id": peer_id, "at_s": presence.left_at})

    def media_frame(
        self, peer_id: str, kind: StreamKind, frame: AudioFrame | VideoFrame, arrival: float
    ) -> None:
        if (session := self._here.get(peer_id)) is not None:
            self.inbox.put(Arrived(session, kind, arrival, frame))

    def encoded_frame(
        self, peer_id: str, kind: StreamKind, encoded: EncodedFrame, arrival: float
    ) -> None:
        if (session := self._here.get(peer_id)) is not None:
            self.inbox.put(Arrived(session, kind, arrival, encoded))

    def sender_report(self, peer_id: str, kind: StreamKind, ntp_seconds: float, pts: int) -> None:
        if (session := self._here.get(peer_id)) is not None:
            self.inbox.put(Report(session, kind, ntp_seconds, pts), droppable=False)

    def source_changed(self, peer_id: str, kind: StreamKind) -> None:
        if (session := self._here.get(peer_id)) is not None:
            self.inbox.put(SourceChanged(session, kind), droppable=False)

    def media_interrupted(self, peer_id: str, at: float) -> None:
        if (session := self._here.get(peer_id)) is not None:
            gaps = self._roster[session].gaps
            if not gaps or gaps[-1].end is not None:
                gaps.append(Gap(max(0.0, at - self.t0)))
                log.warning("participant's media lost", extra={"peer_id": peer_id})

    def media_restored(self, peer_id: str, at: float) -> None:
        if (session := self._here.get(peer_id)) is not None:
            gaps = self._roster[session].gaps
            if gaps and gaps[-1].end is None:
                gaps[-1].end = max(gaps[-1].start, at - self.t0)
                log.info("participant's media restored", extra={"peer_id": peer_id})

    # -- the recorder's view (the same thread) -----------------------------------------------

    def snapshot(self) -> list[Presence]:
        """Every participant session seen, in join order."""
        return list(self._roster.values())

    def present_at(self, t: float) -> list[Presence]:
        return [p for p in self._roster.values() if p.present_at(t)]

    def last_left(self) -> float:
        """When the last one to leave left, as they tell it (dated back, if so); 0 if nobody
        has left."""
        return max((p.left_at or 0.0 for p in self._roster.values()), default=0.0)
