"""The operator's HTTP egress, refusing internal destinations: webhook POSTs, and the GET of
a watermark image (`composite.watermark.url`), through the same guard."""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import ipaddress
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from tapedeck_operator.webhooks.delivery import Delivery

__all__ = [
    "AddressPolicy",
    "Delivery",
    "Egress",
    "Fetched",
    "GuardedResolver",
    "RefusedDestination",
    "SocketFactory",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# What aiohttp's TCPConnector calls with each addrinfo tuple to create a socket.
SocketFactory = Callable[[tuple[int, int, int, str, tuple[object, ...]]], socket.socket]

PRIVATE_SETTING = "webhooks.allowPrivateDestinations"
LOOPBACK_SETTING = "webhooks.allowLoopbackDestinations"

_v4 = ipaddress.IPv4Network
_v6 = ipaddress.IPv6Network
# Explicit lists rather than `is_private`/`is_global`, whose ranges changed between Python
# patch releases: the policy must not move with the interpreter.
_PRIVATE: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (
    _v4("10.0.0.0/8"),
    _v4("172.16.0.0/12"),
    _v4("192.168.0.0/16"),
    _v4("100.64.0.0/10"),  # carrier-grade NAT, also used for cluster networks
    _v4("198.18.0.0/15"),  # benchmarking, found on internal test networks
    _v6("fc00::/7"),  # unique local addresses
    _v6("fec0::/10"),  # deprecated site-local, still routed internally by some networks
)
# Special-purpose ranges that are no destination of a webhook on any network.
_RESERVED: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (
    _v4("0.0.0.0/8"),  # "this network": Linux connects 0.x.x.x to the local host
    _v4("192.0.0.0/24"),
    _v4("192.0.2.0/24"),
    _v4("198.51.100.0/24"),
    _v4("203.0.113.0/24"),
    _v6("2001:db8::/32"),
)
# Metadata services outside link-local, which allowPrivateDestinations must not open up.
_METADATA = frozenset(
    {
        ipaddress.ip_address("fd00:ec2::254"),  # AWS IMDS over IPv6 (a ULA)
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud (in CGNAT space)
        ipaddress.ip_address("168.63.129.16"),  # Azure WireServer (a public address)
    }
)
_NAT64 = _v6("64:ff9b::/96")

# Receivers see who calls them, not aiohttp's default "Python/3.x aiohttp/3.x".
_USER_AGENT = "tapedeck-operator"
_REDIRECTS = 5  # followed by a fetch, each destination judged again
_TRANSIENT = frozenset({408, 425, 429})  # client errors that are worth another try


@dataclass(frozen=True)
class Fetched:
    """What a GET brought: the body, or why not and whether waiting could help."""

    body: bytes | None
    error: str | None = None
    final: bool = False


class _Unsendable(Exception):
    """A URL no request goes to: malformed, another scheme, or a refused IP literal."""

    def __init__(self, message: str, refused: bool) -> None:
        super().__init__(message)
        self.refused = refused


@dataclass(frozen=True)
class AddressPolicy:
    """Which resolved addresses a webhook may be delivered to."""

    allow_loopback: bool = False
    # RFC 1918, CGNAT 100.64.0.0/10, IPv6 unique local fc00::/7 and the like.
    allow_private: bool = False

    def refusal(self, ip: IPAddress) -> str | None:
        """None when `ip` is allowed, else why not ("a private address", ...)."""
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            # ::ffff:10.0.0.1 and the 6to4/NAT64 forms reach the embedded IPv4 address.
            reason = self.refusal(embedded)
            return None if reason is None else f"{reason} (as {embedded})"
        # Always refused, whatever the settings: metadata endpoints and other non-destinations
        # live here, and no webhook receiver does.
        if ip.is_unspecified:
            return "an unspecified address"
        if ip in _METADATA:
            return "a cloud metadata address"
        if ip.is_link_local:
            return "a link-local address (cloud metadata)"
        if ip.is_multicast:
            return "a multicast address"
        # Before is_reserved: Python counts ::1 in the reserved ::/8.
        if ip.is_loopback:
            return None if self.allow_loopback else "a loopback address"
        if ip.is_reserved or any(ip in net for net in _RESERVED):
            return "a reserved address"
        if any(ip in net for net in _PRIVATE):
            return None if self.allow_private else "a private address"
        return None


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _setting(reason: str) -> str | None:
    if reason.startswith("a private address"):
        return PRIVATE_SETTING
    if reason.startswith("a loopback address"):
        return LOOPBACK_SETTING
    return None


class RefusedDestination(Exception):
    """A webhook host that resolves to an address the policy refuses (SSRF protection)."""

    def __init__(self, host: str, address: str, reason: str, url: str | None = None) -> None:
        self.host = host
        self.address = address
        self.reason = reason
        self.url = url
        setting = _setting(reason)
        fix = (
            f"set {setting}: true in the operator settings to allow it"
            if setting
            else "no setting allows it; point the webhook at a public address"
        )
        where = (
            f"{address} is {reason}"
            if _same_address(host, address)
            else f"{host} resolves to {address}, {reason}"
        )
        prefix = f"refused {url}: " if url else "refused: "
        super().__init__(f"{prefix}{where}; {fix}")

    def for_url(self, url: str) -> RefusedDestination:
        """The same refusal, naming the URL that was being delivered to."""
        return RefusedDestination(self.host, self.address, self.reason, url)


def _same_address(host: str, address: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")) == ipaddress.ip_address(address)
    except ValueError:
        return False


def _parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class GuardedResolver(AbstractResolver):
    """Wraps a resolver; refuses the host if ANY of its addresses is refused by the policy.

    Refusing on any (not all) means a DNS answer mixing public and private addresses is
    refused, as the connector could pick either. aiohttp connects to exactly the addresses
    returned here, so no second lookup can rebind the name between check and connect.
    """

    def __init__(self, policy: AddressPolicy, inner: AbstractResolver) -> None:
        self._policy = policy
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            ip = _parse_ip(result["host"])
            reason = "an unparseable address" if ip is None else self._policy.refusal(ip)
            if reason is not None:
                raise RefusedDestination(host, result["host"], reason)
        return results

    async def close(self) -> None:
        await self._inner.close()


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delay-seconds or HTTP-date), None if absent/bad."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP-date is GMT; "-0000" parses as naive
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def _shown(url: str) -> str:
    """`url` as status and Events may show it."""
    try:
        return _display(URL(url))
    except ValueError:
        return "(a malformed URL)"


def _display(url: URL) -> str:
    # Status and events are widely readable: drop credentials and the query string.
    return str(url.with_user(None).with_query(None).with_fragment(None))


def _refused_cause(exc: BaseException) -> RefusedDestination | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, RefusedDestination):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


class Egress:
    """POSTs webhooks through one pooled session whose resolver refuses internal addresses."""

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        timeout: float = 10.0,
        resolver: AbstractResolver | None = None,
        socket_factory: SocketFactory | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.policy = policy
        self.timeout = timeout
        self._resolver = resolver
        self._socket_factory = socket_factory
        self._tls = tls  # None: the system's trust store
        self._session: aiohttp.ClientSession | None = None
        self._guard: GuardedResolver | None = None

    def _open(self) -> aiohttp.ClientSession:
        # Created on first use: the session and ThreadedResolver bind to the running loop.
        self._guard = GuardedResolver(self.policy, self._resolver or aiohttp.ThreadedResolver())
        connector = aiohttp.TCPConnector(
            resolver=self._guard,
            socket_factory=self._socket_factory,
            ssl=self._tls if self._tls is not None else True,
            # A slow receiver holds at most this many connections, so deliveries to other
            # hosts never queue behind it; a request waiting for one of them counts the wait
            # in its timeout, and is retried like any timeout.
            limit_per_host=16,
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            # No proxy from the environment: the guard must see the real destination.
            trust_env=False,
            headers={"User-Agent": _USER_AGENT},
        )

    def _destination(self, url: str, schemes: tuple[str, ...]) -> tuple[URL, str]:
        """The parsed URL and how it is shown; raises _Unsendable before any request."""
        try:
            parsed = URL(url)
        except ValueError as exc:
            raise _Unsendable(f"invalid URL: {exc}", refused=False) from exc
        if parsed.scheme not in schemes or not parsed.raw_host:
            kind = "http(s)" if "http" in schemes else "/".join(schemes)
            scheme = parsed.scheme or "none"
            raise _Unsendable(f"not an {kind} URL (scheme {scheme})", refused=True)
        shown = _display(parsed)
        # aiohttp does not call the resolver for IP literals (http://10.0.0.1/, http://[::1]/),
        # so those are judged here.
        literal = _parse_ip(parsed.raw_host)
        if literal is not None:
            reason = self.policy.refusal(literal)
            if reason is not None:
                refused = RefusedDestination(parsed.raw_host, str(literal), reason, shown)
                raise _Unsendable(str(refused), refused=True)
        return parsed, shown

    def _failure(self, exc: BaseException, shown: str) -> tuple[str, bool]:
        """(the error, whether it was refused) of a request that raised `exc`."""
        # aiohttp 3.14 wraps only an OSError from the resolver (in ClientConnectorDNSError);
        # RefusedDestination comes out of the request unwrapped. Should a later aiohttp wrap
        # it after all, it is still reported as a refusal.
        refusal = _refused_cause(exc)
        if refusal is not None:
            return str(refusal.for_url(shown)), True
        if isinstance(exc, TimeoutError):
            return f"timed out after {self.timeout:g} s", False
        return _describe(exc), False

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = self._open()
        return self._session

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Delivery:
        """POST `body` to `url`; 2xx is success, redirects are failures and not followed."""
        try:
            parsed, shown = self._destination(url, ("http", "https"))
        except _Unsendable as exc:
            return Delivery(status=None, error=str(exc), refused=exc.refused)
        try:
            async with self._client().post(
                parsed, data=body, headers=dict(headers), allow_redirects=False
            ) as response:
                # The body is never read: receivers' answers carry nothing for us, and on an
                # unread body aiohttp closes the connection (should_close) instead of
                # waiting for a large or slow body to finish.
                status = response.status
                retry_after = _retry_after(response.headers.get("Retry-After"))
        except (RefusedDestination, aiohttp.ClientError, OSError) as exc:
            error, refused = self._failure(exc, shown)
            return Delivery(status=None, error=error, refused=refused)
        if 200 <= status < 300:
            return Delivery(status=status, error=None)
        if 300 <= status < 400:
            # Following a redirect would send the signed body to a destination nobody
            # configured; Standard Webhooks counts a 3xx as a failed attempt.
            error = f"HTTP {status} (redirects are not followed)"
        else:
            error = f"HTTP {status}"
        return Delivery(status=status, error=error, retry_after=retry_after)

    async def fetch(self, url: str, limit: int) -> Fetched:
        """GET an https `url` whose body is at most `limit` bytes, following redirects (each
        destination judged like the first, https only), all within the timeout."""
        try:
            async with asyncio.timeout(self.timeout):
                return await self._fetch(url, limit)
        except TimeoutError:
            return Fetched(None, f"{_shown(url)}: timed out after {self.timeout:g} s")

    async def _fetch(self, url: str, limit: int) -> Fetched:
        shown = _shown(url)
        for _ in range(_REDIRECTS + 1):
            try:
                parsed, shown = self._destination(url, ("https",))
            except _Unsendable as exc:
                return Fetched(None, str(exc), final=True)
            try:
                async with self._client().get(parsed, allow_redirects=False) as response:
                    location = response.headers.get("Location")
                    if response.status in (301, 302, 303, 307, 308) and location:
                        try:
                            url = str(parsed.join(URL(location)))
                        except ValueError:  # UnicodeError too: a host IDNA cannot encode
                            return Fetched(None, f"{shown}: a malformed redirect", final=True)
                        continue
                    if response.status != 200:
                        final = response.status < 500 and response.status not in _TRANSIENT
                        return Fetched(None, f"{shown}: HTTP {response.status}", final=final)
                    body = await _read_at_most(response, limit)
            except (RefusedDestination, aiohttp.ClientError, OSError) as exc:
                error, refused = self._failure(exc, shown)
                return Fetched(None, error if refused else f"{shown}: {error}", final=refused)
            if body is None:
                return Fetched(None, f"{shown}: larger than {limit} bytes", final=True)
            return Fetched(body)
        return Fetched(None, f"{shown}: more than {_REDIRECTS} redirects", final=True)

    async def close(self) -> None:
        """Close the session, its connections and the resolver."""
        session, guard = self._session, self._guard
        self._session = self._guard = None
        if session is not None:
            await session.close()
        # The connector does not close a resolver it was given.
        if guard is not None:
            await guard.close()


async def _read_at_most(response: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The body, or None once it is longer than `limit` (read no further)."""
    if (response.content_length or 0) > limit:
        return None
    body = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        cause = exc.os_error
        if isinstance(exc, aiohttp.ClientConnectorDNSError):
            what = "cannot resolve"
        elif isinstance(cause, ConnectionRefusedError):
            what = "connection refused"
        else:
            what = "cannot connect"
        return f"{what}: {exc.host}:{exc.port}: {cause.strerror or cause}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
