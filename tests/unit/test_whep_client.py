"""The WHEP client's HTTP side against an in-process aiohttp server on 127.0.0.1: redirects,
Location, ETag/If-Match trickle, Link ICE servers, refusals and unreachable servers. (Pion's
real server, which announces none of the optional parts, is in tests/whep.)"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiortc import RTCPeerConnection, RTCSessionDescription

from tapedeck_bot.meeting import MeetingAccessDenied, MeetingNotFound
from tapedeck_bot.whep.client import (
    TRICKLE,
    WhepClient,
    WhepRefused,
    WhepUnavailable,
    candidates_of,
    ice_servers_of,
    trickle_fragment,
)
from tapedeck_bot.whep.connector import WhepMeeting, WhepStream
from tapedeck_dev.cluster import free_port

ANSWER = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Server:
    """Routes of one test; every request is kept as (method, path, headers, body)."""

    def __init__(self, routes: dict[tuple[str, str], Handler]) -> None:
        self.routes = routes
        self.seen: list[tuple[str, str, dict[str, str], str]] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.text()
        self.seen.append((request.method, request.path, dict(request.headers), body))
        handler = self.routes.get((request.method, request.path))
        if handler is None:
            return web.Response(status=404)
        return await handler(request)

    async def run(self, scenario: Callable[[], Awaitable[Any]]) -> Any:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        try:
            return await scenario()
        finally:
            await runner.cleanup()


def _answer(status: int = 201, text: str = ANSWER, **headers: str) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        return web.Response(status=status, text=text, headers=headers)

    return handle


def _redirect(status: int, to: str) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        return web.Response(status=status, headers={"Location": to})

    return handle


def test_link_headers_give_ice_servers_with_their_credentials() -> None:
    links = [
        '<stun:stun.example.net>; rel="ice-server"',
        '<turn:turn.example.net?transport=udp>; rel="ice-server"; username="user"; '
        'credential="p;w"; credential-type="password", <https://example.net/doc>; rel="help"',
    ]
    servers = ice_servers_of(links)
    assert [(s.url, s.username, s.credential) for s in servers] == [
        ("stun:stun.example.net", None, None),
        ("turn:turn.example.net?transport=udp", "user", "p;w"),
    ]


def test_the_trickle_fragment_carries_our_credentials_and_every_candidate() -> None:
    async def offer() -> str:
        pc = RTCPeerConnection()
        pc.addTransceiver("audio", direction="recvonly")
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        sdp: str = pc.localDescription.sdp
        await pc.close()
        return sdp

    sdp = asyncio.run(offer())
    fragment = trickle_fragment(sdp)
    lines = fragment.splitlines()
    assert lines[0].startswith("a=ice-ufrag:")
    assert lines[1].startswith("a=ice-pwd:")
    assert lines[2].startswith("m=audio")
    assert lines[3] == "a=mid:0"
    assert candidates_of(fragment) == candidates_of(sdp) != []
    assert lines[-1] == "a=end-of-candidates"


@pytest.mark.parametrize("redirect", [307, 308])
def test_an_offer_follows_redirects_and_keeps_what_the_server_announced(redirect: int) -> None:
    server = Server(
        {
            ("POST", "/whep/old"): _redirect(redirect, "/whep/new"),
            ("POST", "/whep/new"): _answer(
                Location="sessions/1",
                ETag='"v1"',
                **{"Accept-Patch": TRICKLE, "Link": '<stun:stun.example.net>; rel="ice-server"'},
                content_type="text/plain",
            ),
        }
    )
    client = WhepClient(f"{server.url}/whep/old", token="s3cret")
    session = asyncio.run(server.run(lambda: client.offer("v=0 offer")))

    assert session.answer == ANSWER
    assert session.location == f"{server.url}/whep/sessions/1"
    assert (session.etag, session.accepts_trickle) == ('"v1"', True)
    assert [s.url for s in session.ice_servers] == ["stun:stun.example.net"]
    (_, _, first, _), (_, path, headers, body) = server.seen
    assert first["Authorization"] == "Bearer s3cret"
    assert (path, body, headers["Content-Type"]) == ("/whep/new", "v=0 offer", "application/sdp")
    assert headers["Authorization"] == "Bearer s3cret"  # same origin: the token follows


def test_trickle_and_delete_address_the_session_with_if_match() -> None:
    async def patched(request: web.Request) -> web.Response:
        return web.Response(status=200, text="a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n")

    server = Server(
        {
            ("POST", "/whep"): _answer(Location="/s/1", ETag='"e"', **{"Accept-Patch": TRICKLE}),
            ("PATCH", "/s/1"): patched,
            ("DELETE", "/s/1"): _answer(status=200, text=""),
        }
    )
    client = WhepClient(f"{server.url}/whep")

    async def scenario() -> str:
        session = await client.offer("v=0")
        theirs = await client.trickle(session, "a=end-of-candidates\r\n")
        await client.delete(session)
        return theirs

    theirs = asyncio.run(server.run(scenario))
    assert candidates_of(theirs) == ["candidate:1 1 udp 1 127.0.0.1 9 typ host"]
    _, (method, _, headers, body), (delete, path, _, _) = server.seen
    assert (method, headers["If-Match"], headers["Content-Type"]) == ("PATCH", '"e"', TRICKLE)
    assert body == "a=end-of-candidates\r\n"
    assert (delete, path) == ("DELETE", "/s/1")
    assert "Authorization" not in headers  # no token configured, none sent


@pytest.mark.parametrize(
    ("route", "error", "says"),
    [
        (_answer(status=403, text="no"), WhepRefused, "HTTP 403 Forbidden"),
        (_answer(status=503), WhepUnavailable, "answered HTTP 503, not 201"),
        (_answer(text="<html>", Location="/s"), WhepUnavailable, "answered no SDP"),
        (_answer(), WhepUnavailable, "gave no Location"),
        (_redirect(307, "/whep"), WhepUnavailable, "redirects in a loop"),
    ],
)
def test_bad_answers_are_refusals_or_unavailability(
    route: Handler, error: type[Exception], says: str
) -> None:
    server = Server({("POST", "/whep"): route})
    client = WhepClient(f"{server.url}/whep")
    with pytest.raises(error, match=says) as caught:
        asyncio.run(server.run(lambda: client.offer("v=0")))
    assert f"{server.url}/whep" in str(caught.value)


def test_an_unreachable_server_is_unavailable() -> None:
    client = WhepClient(f"http://127.0.0.1:{free_port()}/whep", timeout_s=2)
    with pytest.raises(WhepUnavailable, match="unreachable"):
        asyncio.run(client.offer("v=0"))
    with pytest.raises(WhepUnavailable, match="DELETE"):
        asyncio.run(client.delete(_session_at(client.url)))


def _session_at(url: str) -> Any:
    from tapedeck_bot.whep.client import WhepSession

    return WhepSession("v=0", url, None, False, [])


@pytest.mark.parametrize(
    ("status", "error", "field"),
    [(401, MeetingAccessDenied, ".tokenSecretRef"), (404, MeetingNotFound, ".url")],
)
def test_a_refused_join_names_the_endpoint_status_and_field(
    status: int, error: type[Exception], field: str
) -> None:
    server = Server({("POST", "/whep"): _answer(status=status)})
    endpoint = WhepStream(
        f"{server.url}/whep",
        "stage",
        token="t",
        url_field="spec.meeting.whep.endpoints[0].url",
        token_field="spec.meeting.whep.endpoints[0].tokenSecretRef",
    )
    meeting = WhepMeeting([endpoint], retry_delays_s=())
    with pytest.raises(error) as caught:
        asyncio.run(server.run(meeting.join))
    message = str(caught.value)
    assert f"WHEP endpoint {server.url}/whep refused the offer: HTTP {status}" in message
    assert f"spec.meeting.whep.endpoints[0]{field}" in message
    assert "participant stage" in message
    assert [m for m, *_ in server.seen] == ["OPTIONS", "POST"]  # one offer, no retry


def test_an_answer_without_candidates_gets_ours_by_patch_and_gives_its_own() -> None:
    """A server that trickles: the answer has no candidates and Accept-Patch announces the
    fragment type; the connector PATCHes its candidates and adds the server's."""
    remote = RTCPeerConnection()

    async def offered(request: web.Request) -> web.Response:
        await remote.setRemoteDescription(RTCSessionDescription(await request.text(), "offer"))
        await remote.setLocalDescription(await remote.createAnswer())
        full = remote.localDescription.sdp
        bare = "\r\n".join(line for line in full.splitlines() if "candidate" not in line)
        headers = {"Location": "/s/1", "ETag": '"e1"', "Accept-Patch": TRICKLE}
        return web.Response(status=201, text=bare + "\r\n", headers=headers)

    async def patched(request: web.Request) -> web.Response:
        return web.Response(status=200, text=trickle_fragment(remote.localDescription.sdp))

    server = Server({("POST", "/whep"): offered, ("PATCH", "/s/1"): patched})
    meeting = WhepMeeting([WhepStream(f"{server.url}/whep", "stage")], retry_delays_s=())

    async def scenario() -> list[str]:
        await meeting.join()
        (participant,) = meeting._participants
        assert participant.attempt is not None
        pc = participant.attempt.pc
        added = [
            c.ip for c in pc.getTransceivers()[0].receiver.transport.transport.getRemoteCandidates()
        ]
        await meeting.leave()
        await remote.close()
        return added

    added = asyncio.run(server.run(scenario))
    patch = next(s for s in server.seen if s[0] == "PATCH")
    assert patch[2]["If-Match"] == '"e1"'
    assert candidates_of(patch[3])
    assert "a=end-of-candidates" in patch[3]
    assert added  # the server's candidates reached our ICE transport


def test_a_malformed_response_is_unavailable_without_quoting_the_token() -> None:
    async def scenario() -> str:
        async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 201 Created\r\nLocation /s\r\n\r\n")  # a header without ':'
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(garbage, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = WhepClient(f"http://127.0.0.1:{port}/whep", token="s3cret-token")
        try:
            await client.offer("v=0")
        except WhepUnavailable as exc:
            return str(exc)
        finally:
            server.close()
        raise AssertionError("a malformed response was taken")

    message = asyncio.run(scenario())
    assert "s3cret-token" not in message
    assert "unreachable" in message


def test_the_token_goes_to_the_endpoints_origin_only() -> None:
    server = Server({})
    elsewhere = f"http://localhost:{server.port}/s/1"  # the same server, another origin
    server.routes = {
        ("POST", "/whep"): _answer(Location=elsewhere),
        ("DELETE", "/s/1"): _answer(status=204, text=""),
    }
    client = WhepClient(f"{server.url}/whep", token="s3cret-token")

    async def scenario() -> None:
        await client.delete(await client.offer("v=0"))

    asyncio.run(server.run(scenario))
    (post, post_headers), (delete, delete_headers) = [(m, h) for m, _, h, _ in server.seen]
    assert (post, post_headers["Authorization"]) == ("POST", "Bearer s3cret-token")
    assert delete == "DELETE"
    assert "Authorization" not in delete_headers


def _answering(remote: RTCPeerConnection, location: str) -> Handler:
    """A WHEP endpoint whose answers come from `remote` (an aiortc PeerConnection)."""

    async def handle(request: web.Request) -> web.Response:
        await remote.setRemoteDescription(RTCSessionDescription(await request.text(), "offer"))
        await remote.setLocalDescription(await remote.createAnswer())
        sdp = remote.localDescription.sdp
        return web.Response(status=201, text=sdp, headers={"Location": location})

    return handle


def test_a_failed_join_hangs_up_the_sessions_the_other_endpoints_got() -> None:
    remote = RTCPeerConnection()
    refuse = _answer(status=401)

    async def refuse_later(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(0.5)  # after /a's session exists (its offer was never cancelled)
        return await refuse(request)

    server = Server(
        {
            ("POST", "/a"): _answering(remote, "/a/session"),
            ("DELETE", "/a/session"): _answer(status=200, text=""),
            ("POST", "/b"): refuse_later,
        }
    )
    meeting = WhepMeeting(
        [WhepStream(f"{server.url}/a", "a"), WhepStream(f"{server.url}/b", "b")],
        retry_delays_s=(),
    )

    async def scenario() -> None:
        try:
            await meeting.join()
        finally:
            await remote.close()

    with pytest.raises(MeetingAccessDenied, match="it wants a token; set"):
        asyncio.run(server.run(scenario))
    assert ("DELETE", "/a/session") in [(m, p) for m, p, *_ in server.seen]
    assert all(p.attempt is None for p in meeting._participants)


class Events:
    """A MeetingSink that keeps what it was told, in order, with the clock's times."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, float]] = []
        self.got_frame, self.got_left = asyncio.Event(), asyncio.Event()

    def participant_joined(self, participant: Any, at: float) -> None:
        self.calls.append(("joined", participant.peer_id, at))

    def participant_left(self, peer_id: str, at: float) -> None:
        self.calls.append(("left", peer_id, at))
        self.got_left.set()

    def media_frame(self, peer_id: str, kind: str, frame: Any, arrival: float) -> None:
        self.got_frame.set()
        self.last_frame = arrival

    def encoded_frame(self, peer_id: str, kind: str, encoded: Any, arrival: float) -> None:
        pass

    def sender_report(self, peer_id: str, kind: str, ntp_seconds: float, pts: int) -> None:
        pass

    def source_changed(self, peer_id: str, kind: str) -> None:
        self.calls.append(("source_changed", peer_id, 0.0))

    def media_interrupted(self, peer_id: str, at: float) -> None:
        self.calls.append(("interrupted", peer_id, at))

    def media_restored(self, peer_id: str, at: float) -> None:
        self.calls.append(("restored", peer_id, at))


class Publishing:
    """A WHEP endpoint whose first session sends silence from an aiortc PeerConnection; the
    later offers get `then` (a status). `cut()` ends the first session's media."""

    def __init__(self, then: int) -> None:
        self.then, self.remotes = then, list[RTCPeerConnection]()

    async def offer(self, request: web.Request) -> web.Response:
        if self.remotes:
            return web.Response(status=self.then)
        from aiortc.mediastreams import AudioStreamTrack

        remote = RTCPeerConnection()
        self.remotes.append(remote)
        remote.addTrack(AudioStreamTrack())
        await remote.setRemoteDescription(RTCSessionDescription(await request.text(), "offer"))
        await remote.setLocalDescription(await remote.createAnswer())
        headers = {"Location": "/session"}
        return web.Response(status=201, text=remote.localDescription.sdp, headers=headers)

    async def cut(self) -> None:
        for remote in self.remotes:
            await remote.close()


@pytest.fixture
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    """aioice leaves 127.0.0.1 out; both PeerConnections here are on loopback."""
    import aioice.ice

    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


def _meeting(server: Server, **kwargs: Any) -> WhepMeeting:
    from tapedeck_bot.receiving import Delivery

    stream = WhepStream(f"{server.url}/whep", "stage", token="t", token_field="the token")
    return WhepMeeting(
        [stream],
        delivery=Delivery(decoded=frozenset({"audio"})),
        stall_s=0.5,
        retry_delays_s=(0.2,),
        **kwargs,
    )


@pytest.mark.usefixtures("loopback_ice")
def test_a_lost_stream_is_a_gap_then_a_leave_dated_to_its_last_frame() -> None:
    endpoint = Publishing(then=503)  # the server stays away
    server = Server({("POST", "/whep"): endpoint.offer, ("DELETE", "/session"): _answer(204)})
    meeting, sink = _meeting(server, idle_timeout_s=1.5), Events()

    async def scenario() -> None:
        await meeting.join()
        running = asyncio.create_task(meeting.run(sink))  # type: ignore[arg-type]
        await sink.got_frame.wait()
        await asyncio.sleep(1.0)
        await endpoint.cut()
        await sink.got_left.wait()
        await meeting.leave()
        running.cancel()

    asyncio.run(asyncio.wait_for(server.run(scenario), 30))
    names = [name for name, *_ in sink.calls]
    assert names == ["joined", "interrupted", "left"]
    (_, _, joined), (_, _, lost), (_, _, left) = sink.calls
    assert lost == left == sink.last_frame  # both dated to the last frame, not when noticed
    assert lost - joined > 0.9
    posts = [m for m, *_ in server.seen if m == "POST"]
    assert len(posts) >= 2  # it tried to reconnect, with backoff, until the idle timeout


@pytest.mark.usefixtures("loopback_ice")
def test_a_refused_token_while_reconnecting_ends_the_recording() -> None:
    endpoint = Publishing(then=401)
    server = Server({("POST", "/whep"): endpoint.offer, ("DELETE", "/session"): _answer(204)})
    meeting, sink = _meeting(server), Events()

    async def scenario() -> None:
        await meeting.join()
        running = asyncio.create_task(meeting.run(sink))  # type: ignore[arg-type]
        await sink.got_frame.wait()
        await endpoint.cut()
        await asyncio.wait_for(running, 10)

    with pytest.raises(MeetingAccessDenied, match=r"HTTP 401.*check the token in the token"):
        asyncio.run(server.run(scenario))
    deletes = [p for m, p, *_ in server.seen if m == "DELETE"]
    assert deletes == ["/session"]  # the lost session was ended before the new offer
