"""Packet loss on a publisher's audio, for tests of how the recorder keeps gaps as time.

The loss is made where it happens in a real network: outgoing SRTP packets of the audio
stream are not sent, so the SFU and the recorder see missing sequence numbers, not a pause
of the source. This wraps the publisher's DTLS transport's `_send_rtp`, a private aiortc
method: a dev-only reach (the bot's own are all in `tapedeck_bot.aiortc_patches`), checked
here so that an aiortc upgrade fails the test rig loudly.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiortc import RTCPeerConnection
from aiortc.sdp import SessionDescription

__all__ = ["AudioLoss", "drop_audio"]


@dataclass(frozen=True)
class AudioLoss:
    """Bursts as (start, seconds) after `drop_audio` is called, plus a random share."""

    bursts: Sequence[tuple[float, float]] = ()
    random_share: float = 0.0
    seed: int = 7

    @classmethod
    def parse(cls, bursts: str, random_share: float) -> AudioLoss:
        """`bursts`: "START:SECONDS,…", e.g. "6:1.5"."""
        parsed = [tuple(float(v) for v in b.split(":")) for b in bursts.split(",") if b]
        return cls([(s, d) for s, d in parsed], random_share)


def _audio_ssrc(pc: RTCPeerConnection) -> int:
    description = SessionDescription.parse(pc.localDescription.sdp)
    audio = next(m for m in description.media if m.kind == "audio")
    return audio.ssrc[0].ssrc


def drop_audio(pc: RTCPeerConnection, loss: AudioLoss) -> None:
    """Drop the audio RTP packets `loss` asks for, from now on (after negotiation)."""
    sender = next(s for s in pc.getSenders() if s.kind == "audio")
    transport = sender.transport
    original: Callable[[bytes], Awaitable[None]] | None = getattr(transport, "_send_rtp", None)
    if original is None:
        raise RuntimeError("aiortc's RTCDtlsTransport has no _send_rtp: update tapedeck_dev.lossy")
    ssrc = _audio_ssrc(pc)
    start = time.monotonic()
    windows = [(start + s, start + s + d) for s, d in loss.bursts]
    rng = random.Random(loss.seed)

    async def send(data: bytes) -> None:
        # RTP, not RTCP (payload types 192-223 in the second byte), of the audio SSRC.
        rtp = len(data) >= 12 and not 192 <= data[1] <= 223
        if rtp and int.from_bytes(data[8:12], "big") == ssrc:
            now = time.monotonic()
            if any(a <= now < b for a, b in windows) or rng.random() < loss.random_share:
                return
        await original(data)

    transport._send_rtp = send  # type: ignore[method-assign]
