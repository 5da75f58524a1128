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
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

from aiortc import RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.exceptions import InvalidAccessError, InvalidStateError, OperationError
from aiortc.rtcicetransport import parse_stun_turn_uri
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
from tapedeck_bot.receiving import EVERYTHING, Delivery, PeerMedia
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

__all__ = ["WhepMeeting", "WhepStream"]

log = logging.getLogger("tapedeck_bot.whep")

_RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0)  # then every 8 s while recording
_STALL_S = 2.0  # no frame for this long: the session is lost (audio alone flows every 20 ms)
_CHECK_S = 0.1
_DELETE_TIMEOUT_S = 3.0
_LEAVE_TIMEOUT_S = 5.0
# A new session for a participant whose media is lost, that never gets a frame: replaced
# after this long (a server may tie a session to a stream that was published again).
_FIRST_FRAME_S = 10.0
# What aiortc raises for an answer or ICE server it cannot use: the server's fault, retried.
_UNUSABLE = (ValueError, IndexError, InvalidAccessError, InvalidStateError, OperationError)


@dataclass(frozen=True)
class WhepStream:
    """One endpoint to record as one participant. `url_field` and `token_field` name where
    the user set them (spec.meeting.whep.endpoints[i].url, …), for errors they act on."""

    url: str
    user_id: str
    display_name: str | None = None
    token: str | None = None
    url_field: str = "the WHEP endpoint's url"
    token_field: str = "the WHEP endpoint's token"


@dataclass
class _Attempt:
    """One session with one endpoint: the PeerConnection and what the server told."""

    pc: RTCPeerConnection
    kinds: dict[str, StreamKind] = field(default_factory=dict)  # mid -> kind
    session: WhepSession | None = None
    media: PeerMedia | None = None
    restored: bool = False  # a frame of this session was seen


@dataclass
class _Participant:
    """One endpoint's participant, across sessions."""

    stream: WhepStream
    client: WhepClient
    present: bool = False
    interrupted: bool = False
    last_media: float | None = None  # the clock's monotonic() at the latest frame
    attempt: _Attempt | None = None
    announced: list[IceServer] = field(default_factory=list)  # by the latest 201's Links

    @property
    def peer(self) -> str:
        return self.stream.user_id

    @property
    def lost_since(self) -> float | None:
        """Their last frame, while present with their media lost."""
        return self.last_media if self.present and self.interrupted else None

    @property
    def info(self) -> ParticipantInfo:
        s = self.stream
        return ParticipantInfo(peer_id=s.user_id, user_id=s.user_id, display_name=s.display_name)


def _usable(servers: list[IceServer]) -> list[IceServer]:
    """The announced ICE servers aiortc can use (it refuses some valid URLs, e.g. with
    `?transport=` on a STUN URL); the others are left out, with a warning."""
    usable = []
    for server in servers:
        try:
            parse_stun_turn_uri(server.url)
        except ValueError:
            log.warning("announced ICE server left out", extra={"url": server.url})
            continue
        usable.append(server)
    return usable


def _refusal(stream: WhepStream, error: WhepRefused) -> MeetingError:
    """A 4xx as the error a user acts on: which endpoint, which status, what to check."""
    who = f"{error} (participant {stream.user_id})"
    if error.status in (401, 403):
        if stream.token is None:
            return MeetingAccessDenied(f"{who}: it wants a token; set {stream.token_field}")
        return MeetingAccessDenied(f"{who}: check the token in {stream.token_field}")
    if error.status in (404, 410):
        return MeetingNotFound(f"{who}: check {stream.url_field}")
    return MeetingError(f"{who}: the server cannot take our offer; check {stream.url_field}")


class WhepMeeting:
    """Records the streams of one or more WHEP endpoints, each one participant."""

    def __init__(
        self,
        streams: Sequence[WhepStream],
        *,
        delivery: Delivery = EVERYTHING,
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
        self._participants = [_Participant(s, WhepClient(s.url, s.token)) for s in streams]
        self._leaving = asyncio.Event()
        self._sink: MeetingSink | None = None
        self._loops: list[asyncio.Task[None]] = []

    # -- MeetingConnector ----------------------------------------------------------------------

    async def join(self) -> None:
        """The first session with every endpoint, so that a bad token or an unknown stream
        fails before anything is recorded; unreachable servers are retried a few times. A
        failure hangs up the sessions the other endpoints got."""
        await check_aiortc()
        try:
            async with asyncio.TaskGroup() as group:
                for participant in self._participants:
                    group.create_task(self._first_attempt(participant))
        except BaseException as exc:
            await self.leave()
            if isinstance(exc, BaseExceptionGroup):
                raise exc.exceptions[0] from None
            raise

    async def run(self, sink: MeetingSink) -> None:
        self._sink = sink
        self._loops = [asyncio.create_task(self._follow(p, sink)) for p in self._participants]
        self._loops.append(asyncio.create_task(self._watch_idle(sink)))
        try:
            done, _ = await asyncio.wait(self._loops, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            for task in self._loops:
                task.cancel()
            await asyncio.gather(*self._loops, return_exceptions=True)

    async def leave(self) -> None:
        """Stop receiving and DELETE every session (a failed DELETE is only a warning); each
        loop hangs its own session up, also a session it was opening."""
        self._leaving.set()
        if self._loops:
            _, pending = await asyncio.wait(self._loops, timeout=_LEAVE_TIMEOUT_S)
            for task in pending:  # still opening a session: it is discarded as it is cancelled
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await asyncio.gather(*(self._hang_up(p) for p in self._participants))

    # -- sessions -------------------------------------------------------------------------------

    async def _first_attempt(self, participant: _Participant) -> None:
        for delay in (*self.retry_delays_s, None):
            try:
                participant.attempt = await self._connect(participant)
                return
            except WhepRefused as exc:
                raise _refusal(participant.stream, exc) from exc
            except WhepUnavailable as exc:
                if delay is None:
                    raise MeetingUnavailable(
                        f"{exc} after {len(self.retry_delays_s) + 1} attempts "
                        f"(participant {participant.peer})"
                    ) from exc
                log.warning("whep unavailable; retrying", extra={"error": str(exc)})
                await self._wait(delay)

    async def _connect(self, participant: _Participant) -> _Attempt:
        """A session; offered again at once if its answer announced other ICE servers (aiortc
        takes them only before an offer)."""
        servers = await participant.client.ice_servers() or participant.announced
        attempt = await self._offer(participant, servers)
        assert attempt.session is not None
        announced = attempt.session.ice_servers
        if announced and announced != servers:
            participant.announced = announced
            await asyncio.shield(self._discard(participant.client, attempt))
            attempt = await self._offer(participant, announced)
        return attempt

    async def _offer(self, participant: _Participant, servers: list[IceServer]) -> _Attempt:
        """Offer, take the answer, trickle if the server wants candidates it did not get."""
        ice = [
            RTCIceServer(urls=s.url, username=s.username, credential=s.credential)
            for s in _usable(servers)
        ]
        attempt = _Attempt(RTCPeerConnection(rtc_configuration(self.ice_servers, ice)))
        pc, client = attempt.pc, participant.client
        attempt.media = PeerMedia(
            pc,
            self.delivery,
            _Attribution(participant, attempt),
            None,  # frames before `run()` are dropped, not queued
            self.clock,
            lambda arrival: self._on_media(participant, attempt, arrival),
        )
        try:
            try:
                for kind in sorted(self.delivery.kinds):
                    pc.addTransceiver(kind, direction="recvonly")
                await pc.setLocalDescription(await pc.createOffer())
                attempt.kinds = {
                    t.mid or "": cast(StreamKind, t.kind) for t in pc.getTransceivers()
                }
                attempt.session = session = await client.offer(pc.localDescription.sdp)
                await pc.setRemoteDescription(RTCSessionDescription(session.answer, "answer"))
                attempt.media.tap()
                if session.accepts_trickle and not candidates_of(session.answer):
                    fragment = trickle_fragment(pc.localDescription.sdp)
                    await self._add_candidates(pc, await client.trickle(session, fragment))
            except _UNUSABLE as exc:
                raise WhepUnavailable(
                    f"WHEP endpoint {participant.stream.url}: aiortc cannot use what it "
                    f"announced or answered: {type(exc).__name__}: {exc}"
                ) from exc
        except BaseException:
            await asyncio.shield(self._discard(client, attempt))
            raise
        log.info("whep session", extra={"user_id": participant.peer, "location": session.location})
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

    async def _follow(self, participant: _Participant, sink: MeetingSink) -> None:
        """Sessions with one endpoint until `leave()`: receive, and reconnect when lost."""
        failures = 0
        try:
            while not self._leaving.is_set():
                if participant.attempt is None:
                    participant.attempt = await self._reconnect(participant)
                attempt = participant.attempt
                if attempt is not None:
                    await self._receive(participant, attempt, sink)
                    await self._hang_up(participant)
                    if attempt.restored:  # backoff again only after a session that worked
                        failures = 0
                        continue
                await self._wait(self._backoff(failures))
                failures += 1
        finally:
            await asyncio.shield(self._hang_up(participant))

    async def _reconnect(self, participant: _Participant) -> _Attempt | None:
        """A new session, or None to try again later; a refused token ends the recording."""
        try:
            return await self._connect(participant)
        except WhepRefused as exc:
            if exc.status in (401, 403):
                raise _refusal(participant.stream, exc) from exc
            log.warning("whep stream not available", extra={"error": str(exc)})
        except WhepUnavailable as exc:
            log.warning("whep unavailable; retrying", extra={"error": str(exc)})
        return None

    async def _receive(
        self, participant: _Participant, attempt: _Attempt, sink: MeetingSink
    ) -> None:
        """Until this session is lost (ICE failed, or no frame for `stall_s`) or we leave."""
        assert attempt.media is not None
        attempt.media.sink = sink
        if participant.present:  # a new session: its RTP clocks are not the last one's
            for kind in set(attempt.kinds.values()):
                sink.source_changed(participant.peer, kind)
        started = self.clock.monotonic()
        while not self._leaving.is_set():
            now, last = self.clock.monotonic(), participant.last_media
            if attempt.pc.connectionState in ("failed", "closed"):
                reason = f"ICE {attempt.pc.connectionState}"
            elif attempt.restored and last is not None and now - last > self.stall_s:
                reason = f"no media for {now - last:.1f} s"
            elif participant.interrupted and now - started > max(self.stall_s, _FIRST_FRAME_S):
                reason = "no media in a new session"
            else:
                await self._wait(_CHECK_S)
                continue
            log.warning(
                "whep stream lost; reconnecting",
                extra={"user_id": participant.peer, "reason": reason},
            )
            if participant.present and not participant.interrupted and last is not None:
                participant.interrupted = True
                sink.media_interrupted(participant.peer, last)
            return

    def _on_media(self, participant: _Participant, attempt: _Attempt, arrival: float) -> None:
        """Every frame, before it is delivered: the join, or the end of a gap, comes first."""
        participant.last_media = arrival
        sink = self._sink
        if attempt.restored or sink is None:  # PeerMedia tells of frames only once served
            return
        attempt.restored = True
        if not participant.present:
            participant.present, participant.interrupted = True, False
            sink.participant_joined(participant.info, arrival)
        elif participant.interrupted:
            participant.interrupted = False
            sink.media_restored(participant.peer, arrival)
            log.info("whep stream restored", extra={"user_id": participant.peer})

    async def _watch_idle(self, sink: MeetingSink) -> None:
        """A participant whose media is lost for the idle timeout leaves, as of their last
        frame, so that the recording's idle timeout counts from then too."""
        while not self._leaving.is_set():
            now = self.clock.monotonic()
            for p in self._participants:
                if p.lost_since is not None and now - p.lost_since >= self.idle_timeout_s:
                    sink.participant_left(p.peer, p.lost_since)
                    p.present = p.interrupted = False
                    log.info("whep participant left: no media", extra={"user_id": p.peer})
            await self._wait(_CHECK_S)

    def _backoff(self, failures: int) -> float:
        delays = self.retry_delays_s or (_CHECK_S,)
        return delays[min(failures, len(delays) - 1)]

    async def _wait(self, seconds: float) -> None:
        """`seconds` on the clock, or less if we leave meanwhile."""
        end = self.clock.monotonic() + seconds
        while not self._leaving.is_set() and (left := end - self.clock.monotonic()) > 0:
            await self.clock.sleep(min(left, _CHECK_S))

    async def _hang_up(self, participant: _Participant) -> None:
        attempt, participant.attempt = participant.attempt, None
        if attempt is not None:  # shielded: once taken out, nobody else would close it
            await asyncio.shield(self._discard(participant.client, attempt))

    async def _discard(self, client: WhepClient, attempt: _Attempt) -> None:
        """Close an attempt's PeerConnection and DELETE its session, if it got one."""
        if attempt.media is not None:
            await attempt.media.close()
        await attempt.pc.close()
        if attempt.session is not None:
            try:
                await asyncio.wait_for(client.delete(attempt.session), timeout=_DELETE_TIMEOUT_S)
            except (WhepUnavailable, TimeoutError) as exc:
                log.warning("whep session not deleted", extra={"error": str(exc)})


@dataclass(frozen=True)
class _Attribution:
    """Every stream of a session is its endpoint's participant, while they are present."""

    participant: _Participant
    attempt: _Attempt

    def of_frame(self, mid: str) -> tuple[str, StreamKind] | None:
        kind = self.attempt.kinds.get(mid)
        if kind is None or not self.participant.present:
            return None
        return self.participant.peer, kind

    def of_report(self, mid: str) -> tuple[str, StreamKind] | None:
        return self.of_frame(mid)
