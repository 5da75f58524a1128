"""The webhook egress: the SSRF guard at resolution, and deliveries to a loopback receiver."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web

from tapedeck_operator.webhooks.egress import AddressPolicy, Delivery, Egress
from tests import egress as helpers
from tests.egress import StaticResolver, loopback_only_socket

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def run(coro: Coroutine[Any, Any, Delivery]) -> Delivery:
    return asyncio.run(coro)


async def post_once(egress: Egress, url: str, body: bytes = b"{}") -> Delivery:
    try:
        return await egress.post(url, body, {"content-type": "application/json"})
    finally:
        await egress.close()


# --- the policy ------------------------------------------------------------------------------

PRIVATE = ["10.0.0.1", "172.16.0.1", "192.168.1.1", "100.64.0.1", "fd00::1", "::ffff:10.0.0.1"]
LOOPBACK = ["127.0.0.1", "::1", "::ffff:127.0.0.1"]
ALWAYS = {
    "169.254.169.254": "link-local",
    "fe80::1": "link-local",
    "0.0.0.0": "unspecified",
    "::": "unspecified",
    "224.0.0.1": "multicast",
    "240.0.0.1": "reserved",
    "fd00:ec2::254": "metadata",  # AWS IMDS over IPv6 is a ULA: private, but never allowed
    "2002:a9fe:a9fe::": "link-local",  # 6to4 embedding 169.254.169.254
    "64:ff9b::a00:1": "private",  # NAT64 embedding 10.0.0.1
}
PUBLIC = ["93.184.216.34", "2606:4700::1", "::ffff:93.184.216.34"]
EVERYTHING = AddressPolicy(allow_loopback=True, allow_private=True)


@pytest.mark.parametrize("address", PRIVATE)
def test_private_addresses_are_refused_unless_allowed(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert (AddressPolicy().refusal(ip) or "").startswith("a private address")
    assert (AddressPolicy(allow_loopback=True).refusal(ip) or "").startswith("a private address")
    assert AddressPolicy(allow_private=True).refusal(ip) is None


@pytest.mark.parametrize("address", LOOPBACK)
def test_loopback_is_refused_unless_allowed(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert (AddressPolicy().refusal(ip) or "").startswith("a loopback address")
    assert (AddressPolicy(allow_private=True).refusal(ip) or "").startswith("a loopback address")
    assert AddressPolicy(allow_loopback=True).refusal(ip) is None


@pytest.mark.parametrize(("address", "kind"), ALWAYS.items())
def test_metadata_and_special_addresses_are_always_refused(address: str, kind: str) -> None:
    ip = ipaddress.ip_address(address)
    refusal = EVERYTHING.refusal(ip) if kind != "private" else AddressPolicy().refusal(ip)
    assert refusal is not None
    assert kind in refusal


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert AddressPolicy().refusal(ipaddress.ip_address(address)) is None


# --- the guard at resolution ------------------------------------------------------------------

NAMES = {
    "internal.example": ["10.0.0.1"],
    "metadata.example": ["169.254.169.254"],
    "mixed.example": ["93.184.216.34", "10.0.0.1"],
    "ula.example": ["fd00::1"],
    "local.example": ["127.0.0.1"],
}


class CountingFactory:
    """The loopback-only socket factory, counting every socket aiohttp asks for."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def __call__(self, addr_info: tuple[int, int, int, str, tuple[object, ...]]) -> socket.socket:
        self.calls.append(addr_info)
        return loopback_only_socket(addr_info)


@pytest.mark.parametrize(
    ("host", "address", "why", "fix"),
    [
        ("internal.example", "10.0.0.1", "a private address", "allowPrivateDestinations"),
        ("ula.example", "fd00::1", "a private address", "allowPrivateDestinations"),
        ("mixed.example", "10.0.0.1", "a private address", "allowPrivateDestinations"),
        ("metadata.example", "169.254.169.254", "a link-local address", "no setting allows"),
        ("local.example", "127.0.0.1", "a loopback address", "allowLoopbackDestinations"),
    ],
)
def test_the_guard_refuses_at_resolution(host: str, address: str, why: str, fix: str) -> None:
    factory = CountingFactory()
    egress = Egress(AddressPolicy(), resolver=StaticResolver(NAMES), socket_factory=factory)
    url = f"http://{host}/hook"

    delivery = run(post_once(egress, url))

    assert delivery.refused
    assert not delivery.ok
    assert delivery.status is None
    assert delivery.error is not None
    assert delivery.error.startswith(f"refused {url}: {host} resolves to {address}, {why}")
    assert fix in delivery.error
    assert factory.calls == []  # refused before any socket exists


def test_a_refused_name_is_refused_again() -> None:
    """The DNS cache holds allowed answers only; a refusal is not cached into an allowance."""

    async def twice() -> list[Delivery]:
        egress = helpers.loopback_egress(allow_loopback=False, names=NAMES)
        try:
            return [await egress.post("http://internal.example/", b"", {}) for _ in range(2)]
        finally:
            await egress.close()

    assert all(d.refused for d in asyncio.run(twice()))


@pytest.mark.parametrize(
    ("url", "address", "why"),
    [
        ("http://10.0.0.1:9/hook", "10.0.0.1", "a private address"),
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254", "a link-local address"),
        ("http://[::1]:9/hook", "::1", "a loopback address"),
        ("http://[::ffff:169.254.169.254]/", "::ffff:a9fe:a9fe", "a link-local address"),
    ],
)
def test_ip_literals_are_refused(url: str, address: str, why: str) -> None:
    factory = CountingFactory()
    egress = Egress(AddressPolicy(), resolver=StaticResolver({}), socket_factory=factory)

    delivery = run(post_once(egress, url))

    assert delivery.refused
    assert delivery.error is not None
    assert f": {address} is {why}" in delivery.error
    assert factory.calls == []


def test_non_canonical_ipv4_literals_do_not_reach_loopback() -> None:
    """2130706433 and 127.1 mean 127.0.0.1 to the socket layer; they must not slip past."""

    async def both() -> list[Delivery]:
        egress = helpers.loopback_egress(allow_loopback=False)
        try:
            return [
                await egress.post(url, b"", {})
                for url in ("http://2130706433:9/", "http://127.1:9/")
            ]
        finally:
            await egress.close()

    for delivery in asyncio.run(both()):
        assert not delivery.ok
        assert delivery.status is None


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "/relative"])
def test_only_http_and_https(url: str) -> None:
    delivery = run(post_once(helpers.loopback_egress(), url))
    assert delivery.refused
    assert not delivery.ok


def test_credentials_and_query_stay_out_of_the_message() -> None:
    delivery = run(
        post_once(
            helpers.loopback_egress(names=NAMES), "http://u:secret@internal.example/h?token=t"
        )
    )
    assert delivery.error is not None
    assert "secret" not in delivery.error
    assert "token" not in delivery.error
    assert "internal.example/h" in delivery.error


# --- the safety net ---------------------------------------------------------------------------


def test_the_test_transport_catches_a_broken_guard() -> None:
    """With the guard opened up to 10.0.0.1, the test transport still refuses to connect."""
    egress = helpers.loopback_egress(allow_private=True, names=NAMES)

    delivery = run(post_once(egress, "http://internal.example:9/hook"))

    assert not delivery.ok
    assert not delivery.refused
    assert delivery.status is None
    assert delivery.error is not None
    assert "test transport: refusing non-loopback address 10.0.0.1" in delivery.error


# --- deliveries to a loopback receiver --------------------------------------------------------


class Receiver:
    """An aiohttp server on 127.0.0.1 recording what it receives."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[tuple[str, dict[str, str], bytes]] = []

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.path, dict(request.headers), await request.read()))
        return await self.handler(request)


@asynccontextmanager
async def receiver(handler: Handler) -> AsyncIterator[tuple[Receiver, str]]:
    recv = Receiver(handler)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recv._handle)
    # handler_cancellation: a handler still sleeping when the client gave up ends with it.
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield recv, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def deliver(
    handler: Handler, path: str = "/hook", *, via_name: bool = False, **options: Any
) -> tuple[Delivery, list[tuple[str, dict[str, str], bytes]], float]:
    async def go() -> tuple[Delivery, list[tuple[str, dict[str, str], bytes]], float]:
        async with receiver(handler) as (recv, base):
            url = base + path
            if via_name:  # through the resolver and the guard rather than an IP literal
                url = url.replace("127.0.0.1", "receiver.example")
            egress = helpers.loopback_egress(names={"receiver.example": ["127.0.0.1"]}, **options)
            started = time.monotonic()
            try:
                delivery = await egress.post(
                    url, b'{"type":"recording.uploaded"}', {"webhook-id": "msg_1"}
                )
            finally:
                await egress.close()
            return delivery, recv.requests, time.monotonic() - started

    return asyncio.run(go())


def status_handler(status: int, **headers: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, headers=headers, text="body nobody reads")

    return handler


@pytest.mark.parametrize("via_name", [False, True])
def test_a_2xx_is_a_delivery_with_the_exact_body_and_headers(via_name: bool) -> None:
    delivery, requests, _ = deliver(status_handler(204), via_name=via_name)

    assert delivery == Delivery(status=204, error=None, retry_after=None)
    assert delivery.ok
    [(path, headers, body)] = requests
    assert path == "/hook"
    assert body == b'{"type":"recording.uploaded"}'
    assert headers["webhook-id"] == "msg_1"


def test_a_500_is_a_failure() -> None:
    delivery, requests, _ = deliver(status_handler(500))
    assert delivery.status == 500
    assert delivery.error == "HTTP 500"
    assert not delivery.ok
    assert not delivery.refused
    assert len(requests) == 1


def test_a_redirect_is_a_failure_and_not_followed() -> None:
    delivery, requests, _ = deliver(status_handler(307, Location="/elsewhere"))
    assert delivery.status == 307
    assert not delivery.ok
    assert delivery.error is not None
    assert "HTTP 307" in delivery.error
    assert [path for path, _, _ in requests] == ["/hook"]


def test_retry_after_in_seconds() -> None:
    delivery, _, _ = deliver(status_handler(503, **{"Retry-After": "7"}))
    assert delivery.retry_after == 7.0
    assert delivery.error == "HTTP 503"


def test_retry_after_as_an_http_date() -> None:
    when = time.time() + 120
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(when))
    delivery, _, _ = deliver(status_handler(429, **{"Retry-After": date}))
    assert delivery.retry_after is not None
    assert 100 < delivery.retry_after <= 121


def test_a_slow_receiver_times_out() -> None:
    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(5)
        return web.Response(status=200)

    delivery, requests, elapsed = deliver(slow, timeout=0.5)

    assert len(requests) == 1
    assert not delivery.ok
    assert delivery.status is None
    assert delivery.error == "timed out after 0.5 s"
    assert elapsed < 1.5


def test_a_loopback_receiver_is_refused_unless_allowed() -> None:
    for via_name in (False, True):
        delivery, requests, _ = deliver(
            status_handler(200), via_name=via_name, allow_loopback=False
        )
        assert delivery.refused
        assert delivery.error is not None
        assert "allowLoopbackDestinations" in delivery.error
        assert requests == []


def test_a_closed_port_is_an_error_not_an_exception() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nobody listens on the port any more.

    delivery = run(post_once(helpers.loopback_egress(), f"http://127.0.0.1:{port}/hook"))

    assert delivery.status is None
    assert not delivery.ok
    assert not delivery.refused
    assert delivery.error is not None
    assert delivery.error.startswith("connection refused: ")


def test_a_slow_receiver_does_not_delay_another() -> None:
    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(5)
        return web.Response(status=200)

    async def go() -> tuple[Delivery, Delivery, float]:
        async with receiver(slow) as (_, slow_url), receiver(status_handler(200)) as (_, fast_url):
            egress = helpers.loopback_egress(timeout=1.0)
            started = time.monotonic()

            async def fast() -> tuple[Delivery, float]:
                await asyncio.sleep(0.1)  # the slow delivery is already in flight
                delivery = await egress.post(fast_url + "/hook", b"{}", {})
                return delivery, time.monotonic() - started

            try:
                slow_delivery, (fast_delivery, fast_elapsed) = await asyncio.gather(
                    egress.post(slow_url + "/hook", b"{}", {}), fast()
                )
            finally:
                await egress.close()
            return slow_delivery, fast_delivery, fast_elapsed

    slow_delivery, fast_delivery, fast_elapsed = asyncio.run(go())
    assert slow_delivery.error == "timed out after 1 s"
    assert fast_delivery.ok
    assert fast_elapsed < 0.6
