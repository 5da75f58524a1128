"""WebRTC settings: ICE servers, and which host addresses ICE may use.

aiortc falls back to Google's public STUN server when no ICE servers are given; tapedeck
never does: with no configured servers, only host candidates are gathered.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from aiortc import RTCBundlePolicy, RTCConfiguration, RTCIceServer

from tapedeck_bot import aiortc_patches

__all__ = ["HOST_ADDRESSES_ENV", "ICE_SERVERS_ENV", "restrict_host_candidates", "rtc_configuration"]

ICE_SERVERS_ENV = "TAPEDECK_ICE_SERVERS"  # comma-separated stun:/turn: URLs
HOST_ADDRESSES_ENV = "TAPEDECK_ICE_HOST_ADDRESSES"  # comma-separated IPs


def rtc_configuration(
    ice_servers: Sequence[str] | None = None, announced: Sequence[RTCIceServer] = ()
) -> RTCConfiguration:
    """Bundled transport; STUN/TURN only from `ice_servers` or $TAPEDECK_ICE_SERVERS, and
    those the meeting server `announced` (WHEP's Link headers)."""
    if ice_servers is None:
        ice_servers = [u for u in os.environ.get(ICE_SERVERS_ENV, "").split(",") if u]
    return RTCConfiguration(
        iceServers=[*(RTCIceServer(urls=url) for url in ice_servers), *announced],
        bundlePolicy=RTCBundlePolicy.MAX_BUNDLE,
    )


def restrict_host_candidates(addresses: Sequence[str] | None = None) -> None:
    """Host candidates only on these addresses (default $TAPEDECK_ICE_HOST_ADDRESSES)."""
    if addresses is None:
        addresses = [a for a in os.environ.get(HOST_ADDRESSES_ENV, "").split(",") if a]
    aiortc_patches.restrict_host_candidates(addresses)
