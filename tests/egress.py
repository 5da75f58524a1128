"""Webhook egress for tests: names resolved by the test, and a transport that stays on loopback."""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Mapping, Sequence

from aiohttp.abc import AbstractResolver, ResolveResult

from tapedeck_operator.webhooks.egress import AddressPolicy, Egress

__all__ = ["StaticResolver", "loopback_egress", "loopback_only_socket"]


class StaticResolver(AbstractResolver):
    """Resolves the names the test gives it, and nothing else: no test asks real DNS."""

    def __init__(self, names: Mapping[str, Sequence[str]]) -> None:
        self._names = {host: list(ips) for host, ips in names.items()}

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host not in self._names:
            raise OSError(f"StaticResolver: unknown host {host!r}")
        results: list[ResolveResult] = []
        for text in self._names[host]:
            ip = ipaddress.ip_address(text)
            ip_family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
            if family not in (socket.AF_UNSPEC, ip_family):
                continue
            results.append(
                ResolveResult(
                    hostname=host,
                    host=str(ip),
                    port=port,
                    family=ip_family,
                    proto=0,
                    flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
                )
            )
        if not results:
            raise OSError(f"StaticResolver: no address of family {family!r} for {host!r}")
        return results

    async def close(self) -> None:
        pass


def loopback_only_socket(addr_info: tuple[int, int, int, str, tuple[object, ...]]) -> socket.socket:
    """aiohttp's socket factory, refusing anything but loopback.

    The safety net under the guard: even if the egress guard were broken, no test packet
    could leave the machine.
    """
    family, type_, proto, _, address = addr_info
    host = str(address[0]).split("%", 1)[0]
    ip = ipaddress.ip_address(host)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if not ip.is_loopback:
        raise PermissionError(f"test transport: refusing non-loopback address {host}")
    # What aiohappyeyeballs does without a factory.
    return socket.socket(family=family, type=type_, proto=proto)


def loopback_egress(
    *,
    allow_loopback: bool = True,
    allow_private: bool = False,
    names: Mapping[str, Sequence[str]] | None = None,
    timeout: float = 5.0,
    tls: ssl.SSLContext | None = None,
) -> Egress:
    """An Egress resolving only `names`, over the loopback-only transport."""
    return Egress(
        AddressPolicy(allow_loopback=allow_loopback, allow_private=allow_private),
        timeout=timeout,
        resolver=StaticResolver(names or {}),
        socket_factory=loopback_only_socket,
        tls=tls,
    )
