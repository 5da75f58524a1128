"""The Janus VideoRoom connector: one watcher handle for room events, one multistream
subscription (one PeerConnection) for everyone's media, renegotiated as people come and go.

- Only a handle that joined the room gets its events, so a "watcher" joins as a publisher
  that never publishes; it is visible to the room as `display` (the bot).
- The subscriber's mids are not the publishers' mids; the `streams` table of every
  `attached`/`updated` event maps them, and Janus may point an old mid at a new feed, so
  frames are attributed per frame, not per track.
- Offers come from our own `subscribe` and unsolicited (autoupdate on leaves), so all
  negotiation runs under one lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription

from tapedeck_bot.aiortc_patches import check_aiortc
from tapedeck_bot.clock import SYSTEM_CLOCK, Clock
from tapedeck_bot.contract import StreamKind
from tapedeck_bot.janus.client import (
    JanusError,
    JanusHandle,
    JanusRequestError,
    JanusSession,
    JanusSessionLost,
    JanusUnavailable,
)
from tapedeck_bot.meeting import (
    MeetingAccessDenied,
    MeetingNotFound,
    MeetingSink,
    MeetingUnavailable,
    ParticipantInfo,
)
from tapedeck_bot.receiving import EVERYTHING, Delivery, PeerMedia
from tapedeck_bot.webrtc import rtc_configuration

__all__ = ["JanusVideoRoom"]

log = logging.getLogger("tapedeck_bot.janus")

_NO_SUCH_ROOM = 426
_UNAUTHORIZED = 433
_NO_SUCH_FEED = 428
_RETRY_DELAYS_S = (1.0, 2.0, 4.0, 8.0, 16.0)


@dataclass
class _Stream:
    """What Janus says a subscriber mid carries."""

    feed: int
    kind: StreamKind
    active: bool


@dataclass
class _Room:
    """One attempt's state: handles, the PeerConnection and what it carries."""

    session: JanusSession
    watcher: JanusHandle
    subscriber: JanusHandle
    pc: RTCPeerConnection
    private_id: int | None
    own_id: int
    initial_publishers: list[dict[str, Any]]
    sink: MeetingSink | None = None
    media: PeerMedia | None = None
    streams: dict[str, _Stream] = field(default_factory=dict)
    subscribed: set[int] = field(default_factory=set)
    publisher_streams: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    joined: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def out(self) -> MeetingSink:
        assert self.sink is not None, "frames and events only flow while the room is served"
        return self.sink


class JanusVideoRoom:
    """Records a Janus VideoRoom. `url` is the HTTP (`…/janus`) or WebSocket endpoint."""

    def __init__(
        self,
        url: str,
        room: int,
        *,
        pin: str | None = None,
        display: str = "tapedeck-recorder",
        ice_servers: list[str] | None = None,
        retry_delays_s: tuple[float, ...] = _RETRY_DELAYS_S,
        delivery: Delivery = EVERYTHING,
        users: frozenset[str] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """Only the kinds `delivery` asks for are subscribed to. `users` limits the
        subscription too (everyone still counts as present)."""
        self.url, self.room, self.pin, self.display = url, room, pin, display
        self.ice_servers = ice_servers
        self.retry_delays_s = retry_delays_s
        self.delivery = delivery
        self.users = users
        self.kinds = self.delivery.kinds
        self.clock = clock
        self._participants: dict[int, ParticipantInfo] = {}
        self._source: dict[tuple[str, StreamKind], str] = {}  # (peer, kind) -> mid feeding it
        self._leaving = asyncio.Event()
        self._room: _Room | None = None

    async def leave(self) -> None:
        self._leaving.set()

    async def join(self) -> None:
        """Join the room now, so that a wrong room or pin fails before anything is recorded."""
        await check_aiortc()
        self._room = await self._with_retries(self._open)

    async def run(self, sink: MeetingSink) -> None:
        while not self._leaving.is_set():
            # After a lost session (a Janus restart), a non-permanent room may come back a
            # moment after the server: "no such room" is retried too, within the same budget.
            room = self._room or await self._with_retries(self._open, also=(MeetingNotFound,))
            self._room = None
            try:
                await self._serve(room, sink)
                return
            except (JanusUnavailable, JanusSessionLost, ConnectionError, TimeoutError) as exc:
                log.warning("janus connection lost; rejoining", extra={"error": str(exc)})
                self._forget_everyone(sink)
            finally:
                await room.session.destroy()

    async def _with_retries(
        self, attempt: Callable[[], Awaitable[_Room]], also: tuple[type[Exception], ...] = ()
    ) -> _Room:
        """Run `attempt`, retrying transient failures after each of `retry_delays_s`."""
        transient: tuple[type[Exception], ...] = (
            JanusUnavailable,
            JanusSessionLost,
            ConnectionError,
            TimeoutError,
            *also,
        )
        for delay in (*self.retry_delays_s, None):
            try:
                return await attempt()
            except transient as exc:
                if delay is None:
                    raise MeetingUnavailable(
                        f"cannot join Janus room {self.room} at {self.url} after "
                        f"{len(self.retry_delays_s) + 1} attempts: {exc}"
                    ) from exc
                log.warning(
                    "janus unavailable; retrying", extra={"error": str(exc), "delay_s": delay}
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._leaving.wait(), delay)
        raise AssertionError("unreachable")

    # -- one attempt -------------------------------------------------------------------------

    async def _open(self) -> _Room:
        session = await JanusSession(self.url).create()
        try:
            return await self._join(session)
        except BaseException:
            await session.destroy()
            raise

    async def _serve(self, room: _Room, sink: MeetingSink) -> None:
        room.sink = sink
        room.media = PeerMedia(
            room.pc, self.delivery, _RoomAttribution(self, room), sink, self.clock
        )
        room.tasks += [
            asyncio.create_task(self._watch(room)),
            asyncio.create_task(self._renegotiations(room)),
        ]
        lost = asyncio.create_task(room.session.lost.wait())
        leaving = asyncio.create_task(self._leaving.wait())
        try:
            await asyncio.wait([lost, leaving, *room.tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in room.tasks:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            if room.session.lost.is_set() and not self._leaving.is_set():
                raise JanusSessionLost(f"Janus session {room.session.id} was lost")
        finally:
            lost.cancel()
            leaving.cancel()
            await self._hang_up(room)

    async def _join(self, session: JanusSession) -> _Room:
        watcher = await session.attach()
        body: dict[str, Any] = {
            "request": "join",
            "ptype": "publisher",
            "room": self.room,
            "display": self.display,
        }
        if self.pin:
            body["pin"] = self.pin
        try:
            data, _ = await watcher.message(body)
        except JanusRequestError as exc:
            if exc.code == _NO_SUCH_ROOM:
                raise MeetingNotFound(
                    f"Janus room {self.room} does not exist at {self.url}: check "
                    "spec.meeting.janus.room"
                ) from exc
            if exc.code == _UNAUTHORIZED:
                raise MeetingAccessDenied(
                    f"Janus refused the pin for room {self.room}: check the Secret in "
                    "spec.meeting.janus.pinSecretRef"
                ) from exc
            raise
        room = _Room(
            session=session,
            watcher=watcher,
            subscriber=await session.attach(),
            pc=RTCPeerConnection(rtc_configuration(self.ice_servers)),
            private_id=data.get("private_id"),
            own_id=int(data["id"]),
            initial_publishers=data.get("publishers", []),
        )
        log.info(
            "joined janus room",
            extra={"room": self.room, "publishers": len(room.initial_publishers)},
        )
        return room

    async def _hang_up(self, room: _Room) -> None:
        with contextlib.suppress(JanusError, TimeoutError):
            await room.watcher.message({"request": "leave"}, timeout=3)
        for task in room.tasks:
            task.cancel()
        await asyncio.gather(*room.tasks, return_exceptions=True)
        if room.media is not None:
            await room.media.close()
        await room.pc.close()

    def _forget_everyone(self, sink: MeetingSink) -> None:
        now = self.clock.monotonic()
        for feed in list(self._participants):
            sink.participant_left(str(feed), now)
        self._participants.clear()
        self._source.clear()

    # -- room events -------------------------------------------------------------------------

    async def _watch(self, room: _Room) -> None:
        await self._publishers(room, room.initial_publishers)
        while True:
            event = await room.watcher.events.get()
            data = event.get("plugindata", {}).get("data", {})
            if "publishers" in data:
                await self._publishers(room, data["publishers"])
            for key in ("unpublished", "leaving"):
                if isinstance(data.get(key), int):  # `leaving: "ok"` is about ourselves
                    self._left(room, data[key])
            if data.get("videoroom") == "destroyed":
                raise MeetingNotFound(f"Janus room {self.room} was destroyed")

    async def _publishers(self, room: _Room, publishers: list[dict[str, Any]]) -> None:
        new = []
        for publisher in publishers:
            feed = int(publisher["id"])
            if feed == room.own_id or publisher.get("dummy"):
                continue
            if feed not in self._participants:
                display = publisher.get("display")
                info = ParticipantInfo(
                    peer_id=str(feed), user_id=display or str(feed), display_name=display
                )
                self._participants[feed] = info
                room.out.participant_joined(info, self.clock.monotonic())
            wanted = self.users is None or self._participants[feed].user_id in self.users
            streams = self._wanted_streams(feed, publisher.get("streams", []))
            if wanted and streams and feed not in room.subscribed:
                room.publisher_streams[feed] = streams
                new.append(feed)
        if new:
            await self._subscribe(room, new)

    def _wanted_streams(self, feed: int, published: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The `streams` entries of a subscribe request for the kinds recorded."""
        if self.kinds >= {"audio", "video"} or not published:
            return [{"feed": feed}]  # every stream of the feed
        return [
            {"feed": feed, "mid": s["mid"]}
            for s in published
            if s.get("type") in self.kinds and not s.get("disabled")
        ]

    def _left(self, room: _Room, feed: int) -> None:
        room.subscribed.discard(feed)
        if self._participants.pop(feed, None) is not None:  # `unpublished` may come twice
            room.out.participant_left(str(feed), self.clock.monotonic())

    # -- negotiation -------------------------------------------------------------------------

    async def _subscribe(self, room: _Room, feeds: list[int]) -> None:
        async with room.lock:
            feeds = [f for f in feeds if f in self._participants and f not in room.subscribed]
            if not feeds:
                return
            streams = [s for f in feeds for s in room.publisher_streams[f]]
            try:
                if room.joined:
                    data, jsep = await room.subscriber.message(
                        {"request": "subscribe", "streams": streams}
                    )
                else:
                    # A subscriber join needs at least one existing feed, hence lazily here.
                    data, jsep = await room.subscriber.message(
                        {
                            "request": "join",
                            "ptype": "subscriber",
                            "room": self.room,
                            "private_id": room.private_id,
                            "streams": streams,
                        }
                    )
                    room.joined = True
            except JanusRequestError as exc:
                if exc.code == _NO_SUCH_FEED:  # left between the event and the request
                    return
                raise
            room.subscribed.update(feeds)
            if jsep is not None:
                await self._answer(room, data, jsep)

    async def _renegotiations(self, room: _Room) -> None:
        """Unsolicited offers on the subscriber handle (Janus autoupdate after leaves)."""
        while True:
            event = await room.subscriber.events.get()
            jsep = event.get("jsep")
            if jsep is not None and jsep.get("type") == "offer":
                async with room.lock:
                    await self._answer(room, event.get("plugindata", {}).get("data", {}), jsep)

    async def _answer(self, room: _Room, data: dict[str, Any], jsep: dict[str, Any]) -> None:
        if "streams" in data:
            # aiortc fires `track` inside setRemoteDescription: the table must be ready first.
            room.streams = {
                s["mid"]: _Stream(int(s["feed_id"]), s["type"], s.get("active", True))
                for s in data["streams"]
                if s.get("type") in ("audio", "video") and "feed_id" in s
            }
        await room.pc.setRemoteDescription(RTCSessionDescription(jsep["sdp"], "offer"))
        await room.pc.setLocalDescription(await room.pc.createAnswer())
        assert room.media is not None, "negotiation only happens while the room is served"
        room.media.tap()
        await room.subscriber.message(
            {"request": "start"}, jsep={"type": "answer", "sdp": room.pc.localDescription.sdp}
        )

    # -- media -------------------------------------------------------------------------------

    def _attribute(self, room: _Room, mid: str) -> tuple[str, StreamKind] | None:
        """Whose media a mid carries now (per frame: Janus may re-target a mid)."""
        stream = room.streams.get(mid)
        if stream is None or not stream.active or stream.feed not in self._participants:
            return None
        peer = str(stream.feed)
        if self._source.get((peer, stream.kind)) != mid:
            self._source[(peer, stream.kind)] = mid
            room.out.source_changed(peer, stream.kind)
        return peer, stream.kind

    def _reported(self, room: _Room, mid: str) -> tuple[str, StreamKind] | None:
        """Whose clock a report on `mid` describes: only the mid feeding that peer now."""
        stream = room.streams.get(mid)
        if stream is None:
            return None
        peer = str(stream.feed)
        return (peer, stream.kind) if self._source.get((peer, stream.kind)) == mid else None


@dataclass(frozen=True)
class _RoomAttribution:
    connector: JanusVideoRoom
    room: _Room

    def of_frame(self, mid: str) -> tuple[str, StreamKind] | None:
        return self.connector._attribute(self.room, mid)

    def of_report(self, mid: str) -> tuple[str, StreamKind] | None:
        return self.connector._reported(self.room, mid)
