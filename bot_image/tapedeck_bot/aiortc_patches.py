"""Every place where tapedeck reaches into aiortc 1.16's or aioice's private state.

aiortc exposes neither encoded frames nor RTCP sender reports, and a few of its behaviours
must be mended for Janus. Each reach is below, and `check_aiortc()` verifies at start-up that
everything they touch exists, so an aiortc upgrade that moves one fails the bot at once with
a clear error instead of quietly losing lip sync or a participant.
`tests/unit/test_aiortc_patches.py` pins the check; `tests/janus` exercise the patches
against real Janus.

1. `refresh_remote_ssrcs`: `RTCRtpReceiver.receive()` registers an m-line's remote SSRCs only
   the first time. Janus re-uses ("recycles") an inactive subscriber m-line for a new feed with
   the same mid and a new SSRC; aiortc then drops every packet of that feed (its RTP router
   falls back to payload types, which all audio m-lines share). RTX SSRCs are never
   registered either, so retransmissions are lost as soon as there are two video m-lines.
2. `tap_receiver`: reads each RTCP sender report's NTP/RTP pair and the RTP→pts offset (the
   receiver's TimestampMapper), which lip sync needs; and hands out the encoded frames from
   the decoder thread's queue, so that track files keep the sender's Opus and VP8 as sent.
3. `restrict_host_candidates`: aioice offers every interface address but loopback, with no
   setting to choose; the bot's host candidates are limited to configured addresses.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aioice
import aioice.ice
import aiortc
from aiortc import RTCPeerConnection, RTCRtpReceiver
from aiortc.rtp import RtcpSrPacket
from aiortc.sdp import SessionDescription

__all__ = [
    "AiortcIncompatible",
    "check_aiortc",
    "refresh_remote_ssrcs",
    "restrict_host_candidates",
    "tap_receiver",
]

_NTP_UNIT = 2.0**-32
_RTP_WRAP = 1 << 32
_TIMESTAMP_MAPPER = "_RTCRtpReceiver__timestamp_mapper"
_DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"
_RTX_SSRC = "_RTCRtpReceiver__rtx_ssrc"

# Receivers already tapped (a renegotiation lists every transceiver again), without tagging
# aiortc's own objects.
_tapped: weakref.WeakSet[RTCRtpReceiver] = weakref.WeakSet()


class AiortcIncompatible(RuntimeError):
    pass


def _missing(receiver: RTCRtpReceiver) -> list[str]:
    missing = [
        f"RTCRtpReceiver.{name.removeprefix('_RTCRtpReceiver')}"
        for name in (_TIMESTAMP_MAPPER, _DECODER_QUEUE, _RTX_SSRC)
        if not hasattr(receiver, name)
    ]
    mapper = getattr(receiver, _TIMESTAMP_MAPPER, None)
    if mapper is not None:
        missing += [f"TimestampMapper.{a}" for a in ("_origin", "_last") if not hasattr(mapper, a)]
    queue = getattr(receiver, _DECODER_QUEUE, None)
    if queue is not None and not callable(getattr(queue, "put", None)):
        missing.append("RTCRtpReceiver.__decoder_queue.put")
    if not callable(getattr(receiver, "_handle_rtcp_packet", None)):
        missing.append("RTCRtpReceiver._handle_rtcp_packet")
    router = getattr(receiver.transport, "_rtp_router", None)
    if not isinstance(getattr(router, "ssrc_table", None), dict):
        missing.append("RTCDtlsTransport._rtp_router.ssrc_table")
    if not callable(getattr(aioice.ice, "get_host_addresses", None)):
        missing.append("aioice.ice.get_host_addresses")
    return missing


async def check_aiortc() -> None:
    """Raise AiortcIncompatible, naming each missing piece, unless every patch applies."""
    pc = RTCPeerConnection()  # no network until it negotiates
    try:
        missing = _missing(pc.addTransceiver("audio", direction="recvonly").receiver)
    finally:
        await pc.close()
    if missing:
        raise AiortcIncompatible(
            f"aiortc {aiortc.__version__} / aioice {aioice.__version__} lack what tapedeck "
            f"patches: {', '.join(missing)}. Install the aiortc version in pyproject.toml, "
            "or update tapedeck_bot/aiortc_patches.py for this one"
        )


def refresh_remote_ssrcs(pc: RTCPeerConnection) -> int:
    """Register every m-line's current SSRCs (and RTX SSRCs); returns how many were new."""
    if pc.remoteDescription is None:
        return 0
    media = {m.rtp.muxId: m for m in SessionDescription.parse(pc.remoteDescription.sdp).media}
    added = 0
    for transceiver in pc.getTransceivers():
        description = media.get(transceiver.mid or "")
        receiver = transceiver.receiver
        if description is None:
            continue
        table: dict[int, Any] = receiver.transport._rtp_router.ssrc_table
        for ssrc in description.ssrc:
            if table.get(ssrc.ssrc) is not receiver:
                table[ssrc.ssrc] = receiver
                added += 1
        rtx_map: dict[int, int] = getattr(receiver, _RTX_SSRC)
        for group in description.ssrc_group:
            if group.semantic == "FID" and len(group.items) == 2:
                rtx_map[int(group.items[1])] = int(group.items[0])
    return added


def _pts_of(receiver: RTCRtpReceiver, rtp_timestamp: int) -> int | None:
    """The pts aiortc gives (or gave) the frame with this RTP timestamp."""
    mapper = getattr(receiver, _TIMESTAMP_MAPPER)
    origin: int | None = mapper._origin
    last: int | None = mapper._last
    if origin is None or last is None:
        return None  # no frame yet: nothing to relate the report to
    pts = rtp_timestamp - origin
    last_pts = last - origin
    # The report and the latest frame are seconds apart; pick the unwrapping nearest to it.
    pts += round((last_pts - pts) / _RTP_WRAP) * _RTP_WRAP
    return pts


# on_encoded(mime_type, data, pts, clock_rate)
OnEncoded = Callable[[str, bytes, int, int], None]


def tap_receiver(
    receiver: RTCRtpReceiver,
    on_report: Callable[[float, int], None],
    on_encoded: OnEncoded | None = None,
    *,
    decode: Callable[[str], bool] | None = None,
) -> None:
    """Once per receiver: call `on_report(ntp_seconds, pts)` for every RTCP SR, and
    `on_encoded` for every frame before aiortc decodes it. `decode(mime_type)` says whether
    aiortc's decoder gets the frame (None: every frame); a stream it never gets is never
    decoded (and its track's `recv()` never returns): nothing is decoded that no output
    needs."""
    if receiver in _tapped:
        return
    _tapped.add(receiver)
    original: Callable[[Any], Awaitable[None]] = receiver._handle_rtcp_packet

    async def handle(packet: Any) -> None:
        if isinstance(packet, RtcpSrPacket):
            pts = _pts_of(receiver, packet.sender_info.rtp_timestamp)
            if pts is not None:
                on_report(packet.sender_info.ntp_timestamp * _NTP_UNIT, pts)
        await original(packet)

    receiver._handle_rtcp_packet = handle  # type: ignore[method-assign]
    if on_encoded is None and decode is None:
        return
    # aiortc has no passthrough: its jitter buffer's complete frames go straight to a
    # decoder thread's queue (already mapped to pts), so the tap wraps that queue's `put`.
    queue = getattr(receiver, _DECODER_QUEUE)
    original_put = queue.put

    def put(item: Any, *args: Any, **kwargs: Any) -> None:
        if item is None:  # the decoder thread's stop signal
            original_put(item, *args, **kwargs)
            return
        codec, frame = item
        if on_encoded is not None:
            on_encoded(codec.mimeType, frame.data, frame.timestamp, codec.clockRate)
        if decode is None or decode(codec.mimeType):
            original_put(item, *args, **kwargs)

    queue.put = put


def restrict_host_candidates(addresses: Sequence[str]) -> None:
    """Gather host candidates only on `addresses` (none: aioice's own choice).

    aioice skips 127.0.0.1 and offers every other interface address; on loopback test rigs
    (and on nodes with addresses that must not be advertised) the list is set explicitly.
    """
    if not addresses:
        return
    chosen = list(addresses)
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: list(chosen)
