"""The places where tapedeck reaches into aiortc 1.16's private receiver state.

Re-check both when aiortc is upgraded; `tests/janus` exercise them against real Janus.

1. `refresh_remote_ssrcs`: `RTCRtpReceiver.receive()` registers an m-line's remote SSRCs only
   the first time. Janus re-uses ("recycles") an inactive subscriber m-line for a new feed with
   the same mid and a new SSRC; aiortc then drops every packet of that feed (its RTP router
   falls back to payload types, which all audio m-lines share). RTX SSRCs are never
   registered either, so retransmissions are lost as soon as there are two video m-lines.
2. `tap_sender_reports`: aiortc reads RTCP sender reports but exposes neither their
   NTP/RTP pair nor the RTP→pts offset (its TimestampMapper), which lip sync needs.
3. `tap_encoded_frames`: aiortc never exposes encoded frames (see below).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpReceiver
from aiortc.rtp import RtcpSrPacket
from aiortc.sdp import SessionDescription

__all__ = ["refresh_remote_ssrcs", "tap_encoded_frames", "tap_sender_reports"]

_NTP_UNIT = 2.0**-32
_RTP_WRAP = 1 << 32


def refresh_remote_ssrcs(pc: RTCPeerConnection) -> int:
    """Register every m-line's current SSRCs (and RTX SSRCs); returns how many were new."""
    if pc.remoteDescription is None:
        return 0
    media = {m.rtp.muxId: m for m in SessionDescription.parse(pc.remoteDescription.sdp).media}
    added = 0
    for transceiver in pc.getTransceivers():
        description = media.get(transceiver.mid or "")
        receiver = transceiver.receiver
        router = getattr(receiver.transport, "_rtp_router", None)
        if description is None or router is None:
            continue
        for ssrc in description.ssrc:
            if router.ssrc_table.get(ssrc.ssrc) is not receiver:
                router.ssrc_table[ssrc.ssrc] = receiver
                added += 1
        rtx_map: dict[int, int] | None = getattr(receiver, "_RTCRtpReceiver__rtx_ssrc", None)
        if rtx_map is not None:
            for group in description.ssrc_group:
                if group.semantic == "FID" and len(group.items) == 2:
                    rtx_map[int(group.items[1])] = int(group.items[0])
    return added


def _pts_of(receiver: RTCRtpReceiver, rtp_timestamp: int) -> int | None:
    """The pts aiortc gives (or gave) the frame with this RTP timestamp."""
    mapper = getattr(receiver, "_RTCRtpReceiver__timestamp_mapper", None)
    origin: int | None = getattr(mapper, "_origin", None)
    last: int | None = getattr(mapper, "_last", None)
    if origin is None or last is None:
        return None  # no frame yet: nothing to relate the report to
    pts = rtp_timestamp - origin
    last_pts = last - origin
    # The report and the latest frame are seconds apart; pick the unwrapping nearest to it.
    pts += round((last_pts - pts) / _RTP_WRAP) * _RTP_WRAP
    return pts


def tap_sender_reports(receiver: RTCRtpReceiver, on_report: Callable[[float, int], None]) -> None:
    """Call `on_report(ntp_seconds, pts)` for every RTCP SR this receiver gets."""
    original: Callable[[Any], Awaitable[None]] = receiver._handle_rtcp_packet

    async def handle(packet: Any) -> None:
        if isinstance(packet, RtcpSrPacket):
            pts = _pts_of(receiver, packet.sender_info.rtp_timestamp)
            if pts is not None:
                on_report(packet.sender_info.ntp_timestamp * _NTP_UNIT, pts)
        await original(packet)

    receiver._handle_rtcp_packet = handle  # type: ignore[method-assign]


def tap_encoded_frames(
    receiver: RTCRtpReceiver, on_frame: Callable[[str, bytes, int], None]
) -> None:
    """Call `on_frame(mime_type, data, pts)` for every frame before aiortc decodes it.

    aiortc has no passthrough: its jitter buffer's complete frames go straight to a decoder
    thread's queue, so the tap wraps that queue's `put`. This lets a track file keep the
    sender's VP8 bitstream instead of decoding and re-encoding it.
    """
    decoder_queue = receiver._RTCRtpReceiver__decoder_queue  # type: ignore[attr-defined]
    original_put = decoder_queue.put

    def put(item: Any, *args: Any, **kwargs: Any) -> None:
        if item is not None:
            codec, frame = item
            on_frame(codec.mimeType, frame.data, frame.timestamp)
        original_put(item, *args, **kwargs)

    decoder_queue.put = put
