"""The WHEP connector: each endpoint is one participant, received over its own PeerConnection.

Per endpoint, a loop of sessions: offer the kinds recorded (receive-only), take the answer,
receive until the media stops (no frame for `stall_s`) or ICE fails, then DELETE the session
and offer again after a backoff. The participant joins with their first frame. While the
connector reconnects they stay present and the gap stays in the files as time (the status
lists it); after `idle_timeout_s` without media they leave, dated back to their last frame,
so that a recording whose every stream went silent stops with ALL_PEERS_LEFT on time.

A 4xx to the first offer fails the join (a bad token, no such stream): nothing is recorded.
Later, a 401/403 ends the recording; other 4xx (a stream not live yet) are retried.

ICE restart by PATCH is not attempted: aiortc cannot restart ICE on a live PeerConnection,
so a lost session is replaced by a new one, which every WHEP server supports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

from aiortc import RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp

from tapedeck_bot.aiortc_patches import check_aiortc
from tapedeck_bot.clock import SYSTEM_CLOCK, Clock
from tapedeck_bot.contract import StreamKind
from tapedeck_bot.meeting import (
    MeetingAccessDenied,
    MeetingError,
    MeetingNotFound,
    MeetingSink,
    MeetingUnavailable,
    ParticipantInfo,
)
from tapedeck_bot.receiving import Delivery, PeerMedia
from tapedeck_bot.webrtc import rtc_configuration
from tapedeck_bot.whep.client import (
    IceServer,
    WhepClient,
    WhepRefused,
    WhepSession,
    WhepUnavailable,
    candidates_of,
    trickle_fragment,
)

__all__ = ["WhepEndpoint", "WhepMeeting"]

log = logging.getLogger("tapedeck_bot.whep")

_RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0)  # then every 8 s while recording
_STALL_S = 2.0  # no frame for this long: the session is lost (audio alone flows every 20 ms)
_CHECK_S = 0.1
_DELETE_TIMEOUT_S = 3.0
_EVERYTHING = Delivery()


@dataclass(frozen=True)
class WhepEndpoint:
    """One stream to record; `field` names it in errors (spec.meeting.whep.endpoints[i])."""

    url: str
    user_id: str
    display_name: str | None = None
    token: str | None = None
    field: str = "the WHEP endpoint"


@dataclass
class _Attempt:
    """One session with one endpoint: the PeerConnection and what the server told."""

    pc: RTCPeerConnection
    kinds: dict[str, StreamKind]  # mid -> kind
    session: WhepSession | None = None
    media: PeerMedia | None = None
    restored: bool = False  # the first frame of this session was seen


@dataclass
class _Stream:
    """One endpoint's participant, across sessions."""

    endpoint: WhepEndpoint
    client: WhepClient
    present: bool = False
    interrupted: bool = False
    last_media: float | None = None  # the clock's monotonic() at the latest frame
    attempt: _Attempt | None = None
    announced: list[IceServer] = field(default_factory=list)  # by the latest 201's Links

    @property
    def info(self) -> ParticipantInfo:
        e = self.endpoint
        return ParticipantInfo(peer_id=e.user_id, user_id=e.user_id, display_name=e.display_name)


def _refusal(endpoint: WhepEndpoint, error: WhepRefused) -> MeetingError:
    """A 4xx as the error a user acts on: which endpoint, which status, what to check."""
    who = f"{error} (participant {endpoint.user_id})"
    if error.status in (401, 403):
        return MeetingAccessDenied(f"{who}: check the token in {endpoint.field}.tokenSecretRef")
    return MeetingNotFound(f"{who}: check {endpoint.field}.url")


class WhepMeeting:
    """Records the streams of one or more WHEP endpoints, each one participant."""

    def __init__(
        self,
        endpoints: Sequence[WhepEndpoint],
        *,
        delivery: Delivery = _EVERYTHING,
        idle_timeout_s: float = 60,
        ice_servers: list[str] | None = None,
        retry_delays_s: tuple[float, ...] = _RETRY_DELAYS_S,
        stall_s: float = _STALL_S,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.delivery = delivery
        self.idle_timeout_s, self.stall_s = idle_timeout_s, stall_s
        self.ice_servers = ice_servers
        self.retry_delays_s = retry_delays_s
        self.clock = clock
        self._streams = [_Stream(e, WhepClient(e.url, e.token)) for e in endpoints]
        self._leaving = asyncio.Event()

    # -- MeetingConnector ----------------------------------------------------------------------

    async def join(self) -> None:
        """The first session with every endpoint, so that a bad token or an unknown stream
        fails before anything is recorded; unreachable servers are retried a few times."""
        await check_aiortc()
        await asyncio.gather(*(self._first_attempt(s) for s in self._streams))

    async def run(self, sink: MeetingSink) -> None:
        loops = [asyncio.create_task(self._follow(s, sink)) for s in self._streams]
        try:
            done, _ = await asyncio.wait(loops, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)

    async def leave(self) -> None:
        """Stop receiving and DELETE every session (a failed DELETE is only a warning)."""
        self._leaving.set()
        await asyncio.gather(*(self._hang_up(s) for s in self._streams))

    # -- sessions -------------------------------------------------------------------------------

    async def _first_attempt(self, stream: _Stream) -> None:
        for delay in (*self.retry_delays_s, None):
            try:
                stream.attempt = await self._connect(stream)
                return
            except WhepRefused as exc:
                raise _refusal(stream.endpoint, exc) from exc
            except WhepUnavailable as exc:
                if delay is None:
                    raise MeetingUnavailable(
                        f"{exc} after {len(self.retry_delays_s) + 1} attempts "
                        f"(participant {stream.endpoint.user_id})"
                    ) from exc
                log.warning("whep unavailable; retrying", extra={"error": str(exc)})
                await self._pause(delay)

    async def _connect(self, stream: _Stream) -> _Attempt:
        """Offer, take the answer, trickle if the server wants candidates it did not get."""
        client = stream.client
        # aiortc takes ICE servers only before the offer: those announced on OPTIONS, else
        # those the previous session's answer announced.
        servers = await client.ice_servers() or stream.announced
        announced = [
            RTCIceServer(urls=s.url, username=s.username, credential=s.credential) for s in servers
        ]
        pc = RTCPeerConnection(rtc_configuration(self.ice_servers, announced))
        try:
            for kind in sorted(self.delivery.kinds):
                pc.addTransceiver(kind, direction="recvonly")
            await pc.setLocalDescription(await pc.createOffer())
            kinds = {t.mid or "": cast(StreamKind, t.kind) for t in pc.getTransceivers()}
            attempt = _Attempt(pc, kinds)
            attempt.session = session = await client.offer(pc.localDescription.sdp)
            stream.announced = session.ice_servers or stream.announced
            await pc.setRemoteDescription(RTCSessionDescription(session.answer, "answer"))
            if session.accepts_trickle and not candidates_of(session.answer):
                theirs = await client.trickle(session, trickle_fragment(pc.localDescription.sdp))
                await self._add_candidates(pc, theirs)
        except BaseException:
            await pc.close()
            raise
        log.info(
            "whep session",
            extra={"user_id": stream.endpoint.user_id, "location": session.location},
        )
        return attempt

    async def _add_candidates(self, pc: RTCPeerConnection, fragment: str) -> None:
        mid = next(
            (line[6:] for line in fragment.splitlines() if line.startswith("a=mid:")),
            pc.getTransceivers()[0].mid,
        )
        for text in candidates_of(fragment):
            candidate = candidate_from_sdp(text)
            candidate.sdpMid = mid
            await pc.addIceCandidate(candidate)

    async def _follow(self, stream: _Stream, sink: MeetingSink) -> None:
        """Sessions with one endpoint until `leave()`: receive, and reconnect when lost."""
        failures = 0
        while not self._leaving.is_set():
            if stream.attempt is None:
                try:
                    stream.attempt = await self._connect(stream)
                except WhepRefused as exc:
                    if exc.status in (401, 403):
                        raise _refusal(stream.endpoint, exc) from exc
                    log.warning("whep stream not available; retrying", extra={"error": str(exc)})
                except WhepUnavailable as exc:
                    log.warning("whep unavailable; retrying", extra={"error": str(exc)})
                if stream.attempt is None:
                    delay = self.retry_delays_s[min(failures, len(self.retry_delays_s) - 1)]
                    failures += 1
                    await self._pause(delay, stream, sink)
                    continue
            failures = 0
            await self._receive(stream, stream.attempt, sink)
            await self._hang_up(stream)

    async def _receive(self, stream: _Stream, attempt: _Attempt, sink: MeetingSink) -> None:
        """Until this session is lost (ICE failed, or no frame for `stall_s`) or we leave."""

        def seen() -> None:
            now = stream.last_media = self.clock.monotonic()
            if attempt.restored:
                return
            attempt.restored = True
            if not stream.present:
                stream.present, stream.interrupted = True, False
                sink.participant_joined(stream.info, now)
                return
            for kind in set(attempt.kinds.values()):  # a new session: new RTP clocks
                sink.source_changed(stream.endpoint.user_id, kind)
            if stream.interrupted:
                stream.interrupted = False
                sink.media_restored(stream.endpoint.user_id, now)
                log.info("whep stream restored", extra={"user_id": stream.endpoint.user_id})

        attempt.media = PeerMedia(
            attempt.pc, self.delivery, _Attribution(stream, attempt), sink, self.clock, seen
        )
        attempt.media.tap()
        while not self._leaving.is_set():
            now = self.clock.monotonic()
            last = stream.last_media if attempt.restored else None
            if attempt.pc.connectionState in ("failed", "closed"):
                reason = f"ICE {attempt.pc.connectionState}"
            elif last is not None and now - last > self.stall_s:
                reason = f"no media for {now - last:.1f} s"
            else:
                self._check_idle(stream, sink)
                await self._pause(_CHECK_S)
                continue
            log.warning(
                "whep stream lost; reconnecting",
                extra={"user_id": stream.endpoint.user_id, "reason": reason},
            )
            if stream.present and not stream.interrupted and stream.last_media is not None:
                stream.interrupted = True
                sink.media_interrupted(stream.endpoint.user_id, stream.last_media)
            return

    def _check_idle(self, stream: _Stream, sink: MeetingSink) -> None:
        """A participant whose media is lost for the idle timeout leaves, as of their last
        frame, so that the recording's idle timeout counts from then too."""
        if not (stream.present and stream.interrupted and stream.last_media is not None):
            return
        if self.clock.monotonic() - stream.last_media >= self.idle_timeout_s:
            stream.present = stream.interrupted = False
            sink.participant_left(stream.endpoint.user_id, stream.last_media)
            log.info("whep participant left: no media", extra={"user_id": stream.endpoint.user_id})

    async def _pause(
        self, seconds: float, stream: _Stream | None = None, sink: MeetingSink | None = None
    ) -> None:
        """Wait `seconds` or until `leave()`, checking `stream`'s idle time meanwhile."""
        end = self.clock.monotonic() + seconds
        while not self._leaving.is_set() and (left := end - self.clock.monotonic()) > 0:
            if stream is not None and sink is not None:
                self._check_idle(stream, sink)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._leaving.wait(), min(left, _CHECK_S))

    async def _hang_up(self, stream: _Stream) -> None:
        attempt, stream.attempt = stream.attempt, None
        if attempt is None:
            return
        if attempt.media is not None:
            await attempt.media.close()
        await attempt.pc.close()
        if attempt.session is not None:
            try:
                await asyncio.wait_for(
                    stream.client.delete(attempt.session), timeout=_DELETE_TIMEOUT_S
                )
            except (WhepUnavailable, TimeoutError) as exc:
                log.warning("whep session not deleted", extra={"error": str(exc)})


@dataclass(frozen=True)
class _Attribution:
    """Every stream of a session is its endpoint's participant, while they are present."""

    stream: _Stream
    attempt: _Attempt

    def of_frame(self, mid: str) -> tuple[str, StreamKind] | None:
        kind = self.attempt.kinds.get(mid)
        if kind is None or not self.stream.present:
            return None
        return self.stream.endpoint.user_id, kind

    def of_report(self, mid: str) -> tuple[str, StreamKind] | None:
        return self.of_frame(mid)
