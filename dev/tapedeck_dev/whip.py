"""A synthetic WHIP publisher: an aiortc sender of a known colour (H.264) and tone (Opus).

`tapedeck-dev whip-publish` runs one in its own process, so that a test can stop or kill it.
It prints `PUBLISHED <time.time()>` once ICE connected and `LEFT <time>` when it stops.
"""

from __future__ import annotations

import asyncio
import sys
import time

import aiohttp
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription

from tapedeck_bot.webrtc import restrict_host_candidates, rtc_configuration
from tapedeck_dev.media import COLORS, ColorTrack, MediaClock, ToneTrack
from tapedeck_dev.participant import until_signalled

__all__ = ["WhipFailed", "publish", "run_whip_publisher", "whip_publisher_command"]

_CONNECT_TIMEOUT_S = 20


class WhipFailed(RuntimeError):
    pass


async def publish(
    url: str, color: str, freq: float, *, amplitude: float, token: str | None = None
) -> RTCPeerConnection:
    """Offer H.264 video and Opus audio to a WHIP endpoint; returns once ICE connected."""
    pc = RTCPeerConnection(rtc_configuration())
    clock = MediaClock()
    pc.addTransceiver(ToneTrack(freq, clock, amplitude=amplitude), direction="sendonly")
    video = pc.addTransceiver(ColorTrack(COLORS[color], clock), direction="sendonly")
    codecs = RTCRtpSender.getCapabilities("video").codecs
    video.setCodecPreferences([c for c in codecs if c.mimeType == "video/H264"])
    connected = asyncio.Event()

    @pc.on("connectionstatechange")
    def changed() -> None:
        if pc.connectionState == "connected":
            connected.set()

    await pc.setLocalDescription(await pc.createOffer())
    headers = {"Content-Type": "application/sdp"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=pc.localDescription.sdp, headers=headers) as response,
    ):
        answer = await response.text()
        if response.status != 201:
            await pc.close()
            raise WhipFailed(f"WHIP {url} answered HTTP {response.status}: {answer[:200]}")
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    try:
        await asyncio.wait_for(connected.wait(), _CONNECT_TIMEOUT_S)
    except TimeoutError as exc:
        await pc.close()
        raise WhipFailed(f"WHIP {url}: ICE did not connect in {_CONNECT_TIMEOUT_S} s") from exc
    return pc


async def run_whip_publisher(
    url: str,
    color: str,
    freq: float,
    *,
    amplitude: float = 0.3,
    seconds: float | None = None,
    token: str | None = None,
) -> None:
    restrict_host_candidates()
    pc = await publish(url, color, freq, amplitude=amplitude, token=token)
    print(f"PUBLISHED {time.time():.3f}", flush=True)
    await until_signalled(seconds)
    await pc.close()
    print(f"LEFT {time.time():.3f}", flush=True)


def whip_publisher_command(
    url: str, color: str, freq: float, token: str | None = None
) -> list[str]:
    """The `tapedeck-dev whip-publish` command line."""
    return [
        sys.executable,
        "-m",
        "tapedeck_dev.cli",
        "whip-publish",
        "--url",
        url,
        "--color",
        color,
        "--freq",
        str(freq),
        *(["--token", token] if token else []),
    ]
