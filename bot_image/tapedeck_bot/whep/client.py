"""The client side of WHEP (draft-ietf-wish-whep) over HTTP: offer, trickle, delete.

One `WhepSession` per POST. Servers differ in what they announce, and the client tolerates
the common deviations: an answer sent as `text/plain`, a `Location` shared by every session,
no `ETag`/`Accept-Patch` (then nothing is PATCHed), a DELETE that drops the connection.

Errors::

    WhepError
     ├── WhepRefused       a 4xx: a bad token, no such stream, an offer it cannot take
     └── WhepUnavailable   no answer, a 5xx, 408/425/429 or a malformed answer: retried
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import aiohttp

__all__ = [
    "IceServer",
    "WhepClient",
    "WhepError",
    "WhepRefused",
    "WhepSession",
    "WhepUnavailable",
    "candidates_of",
    "ice_servers_of",
    "trickle_fragment",
]

SDP = "application/sdp"
TRICKLE = "application/trickle-ice-sdpfrag"
_REDIRECTS = 5
_BODY_LIMIT = 256 * 1024
# Busy or slow now, not refused: retried like a server that is down.
_TRANSIENT = frozenset({408, 425, 429})
_LINK = re.compile(r"<([^>]*)>((?:\s*;\s*[^;,]+)*)")
_PARAM = re.compile(r';\s*([\w-]+)\s*=\s*(?:"([^"]*)"|([^;,\s]*))')


class WhepError(RuntimeError):
    pass


class WhepRefused(WhepError):
    def __init__(self, url: str, status: int, reason: str) -> None:
        super().__init__(f"WHEP endpoint {url} refused the offer: HTTP {status} {reason}".strip())
        self.url, self.status = url, status


class WhepUnavailable(WhepError):
    pass


@dataclass(frozen=True)
class IceServer:
    """A STUN/TURN server a WHEP server announced in a `Link: <…>; rel="ice-server"` header."""

    url: str
    username: str | None = None
    credential: str | None = None


def ice_servers_of(links: list[str]) -> list[IceServer]:
    """The ICE servers among `Link` header values (RFC 8288 syntax, WHEP's `ice-server`)."""
    servers = []
    for header in links:
        for target, params in _LINK.findall(header):
            values = {m[0].lower(): m[1] or m[2] for m in _PARAM.findall(params)}
            if values.get("rel") == "ice-server" and re.match(r"^(stuns?|turns?):", target):
                servers.append(IceServer(target, values.get("username"), values.get("credential")))
    return servers


def candidates_of(sdp: str) -> list[str]:
    """The `candidate:…` attributes of an SDP or SDP fragment, without the `a=`."""
    return [line[2:] for line in sdp.splitlines() if line.startswith("a=candidate:")]


def trickle_fragment(local_sdp: str) -> str:
    """RFC 8840 fragment of our ICE credentials and every candidate, under the first m-line
    (one bundled transport), ended: what a server that trickles needs of a full offer."""
    lines = local_sdp.splitlines()
    ice = [line for line in lines if line.startswith(("a=ice-ufrag:", "a=ice-pwd:"))][:2]
    media = next((line for line in lines if line.startswith("m=")), None)
    mid = next((line for line in lines if line.startswith("a=mid:")), None)
    body = [*ice]
    if media is not None:
        body.append(media)
    if mid is not None:
        body.append(mid)
    body += [f"a={c}" for c in candidates_of(local_sdp)]
    body.append("a=end-of-candidates")
    return "\r\n".join(body) + "\r\n"


@dataclass(frozen=True)
class WhepSession:
    """What a 201 told: the answer, where the session lives, and what it allows."""

    answer: str
    location: str
    etag: str | None
    accepts_trickle: bool
    ice_servers: list[IceServer]


class WhepClient:
    """One endpoint's HTTP side. `token` goes out as `Authorization: Bearer`, to the endpoint's
    origin only (aiohttp drops it on a redirect elsewhere; a session `Location` elsewhere does
    not get it either). Errors never quote headers: they would carry the token."""

    def __init__(self, url: str, token: str | None = None, *, timeout_s: float = 10) -> None:
        self.url, self.token = url, token
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    def _headers(self, url: str, **extra: str) -> dict[str, str]:
        auth = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return {**(auth if _origin(url) == _origin(self.url) else {}), **extra}

    async def ice_servers(self) -> list[IceServer]:
        """ICE servers announced on OPTIONS, if the server does (many answer 204 or 405)."""
        try:
            async with (
                aiohttp.ClientSession(timeout=self.timeout) as http,
                http.options(self.url, headers=self._headers(self.url)) as response,
            ):
                return ice_servers_of(response.headers.getall("Link", []))
        except (aiohttp.ClientError, TimeoutError):
            return []

    async def offer(self, sdp: str) -> WhepSession:
        """POST the offer; 307/308 redirects are followed with the offer resent."""
        headers = self._headers(self.url, **{"Content-Type": SDP, "Accept": SDP})
        try:
            async with (
                aiohttp.ClientSession(timeout=self.timeout) as http,
                http.post(
                    self.url, data=sdp.encode(), headers=headers, max_redirects=_REDIRECTS
                ) as response,
            ):
                if response.status in _TRANSIENT:
                    raise WhepUnavailable(
                        f"WHEP endpoint {self.url} answered HTTP {response.status}, not 201"
                    )
                if 400 <= response.status < 500:
                    raise WhepRefused(self.url, response.status, response.reason or "")
                if response.status != 201:
                    raise WhepUnavailable(
                        f"WHEP endpoint {self.url} answered HTTP {response.status}, not 201"
                    )
                body = await _text(response)
                if not body.lstrip().startswith("v=0"):  # text/plain is tolerated, not junk
                    raise WhepUnavailable(f"WHEP endpoint {self.url} answered no SDP")
                location = response.headers.get("Location")
                if not location:
                    raise WhepUnavailable(f"WHEP endpoint {self.url} gave no Location")
                patch = response.headers.get("Accept-Patch", "")
                return WhepSession(
                    answer=body,
                    location=urljoin(str(response.url), location),
                    etag=response.headers.get("ETag"),
                    accepts_trickle=TRICKLE in patch.lower(),
                    ice_servers=ice_servers_of(response.headers.getall("Link", [])),
                )
        except aiohttp.TooManyRedirects as exc:
            raise WhepUnavailable(f"WHEP endpoint {self.url} redirects in a loop") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise WhepUnavailable(f"WHEP endpoint {self.url} unreachable: {_error(exc)}") from exc

    async def trickle(self, session: WhepSession, fragment: str) -> str:
        """PATCH our candidates (with `If-Match` when the server gave an ETag); returns the
        server's fragment (its candidates), empty on 204."""
        headers = self._headers(session.location, **{"Content-Type": TRICKLE})
        if session.etag:
            headers["If-Match"] = session.etag
        try:
            async with (
                aiohttp.ClientSession(timeout=self.timeout) as http,
                http.patch(session.location, data=fragment.encode(), headers=headers) as response,
            ):
                if 400 <= response.status < 500 and response.status not in _TRANSIENT:
                    raise WhepRefused(session.location, response.status, response.reason or "")
                if response.status not in (200, 204):
                    raise WhepUnavailable(
                        f"WHEP session {session.location} refused the candidates: "
                        f"HTTP {response.status}"
                    )
                return await _text(response) if response.status == 200 else ""
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise WhepUnavailable(f"WHEP session {session.location}: {_error(exc)}") from exc

    async def delete(self, session: WhepSession) -> None:
        """End the session on the server (raises WhepUnavailable if it cannot be told)."""
        try:
            async with (
                aiohttp.ClientSession(timeout=self.timeout) as http,
                http.delete(session.location, headers=self._headers(session.location)) as response,
            ):
                if response.status >= 300 and response.status != 404:
                    raise WhepUnavailable(
                        f"WHEP session {session.location}: DELETE answered HTTP {response.status}"
                    )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise WhepUnavailable(
                f"WHEP session {session.location}: DELETE failed: {_error(exc)}"
            ) from exc


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port


def _error(exc: BaseException) -> str:
    """What went wrong, without the request (a repr of aiohttp's errors quotes its headers)."""
    return f"{type(exc).__name__}: {exc}"


async def _text(response: aiohttp.ClientResponse) -> str:
    """The whole body as text, at most `_BODY_LIMIT` bytes (an SDP is a few kB)."""
    body = bytearray()
    async for chunk in response.content.iter_any():
        body += chunk
        if len(body) > _BODY_LIMIT:
            raise WhepUnavailable(f"WHEP answer from {response.url} is over {_BODY_LIMIT} bytes")
    return body.decode("utf-8", errors="replace")
