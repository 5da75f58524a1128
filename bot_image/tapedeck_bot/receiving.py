"""One PeerConnection's media into a `MeetingSink`: taps, decoding choices, track consumers.

Every connector receives the same way; they differ only in whose media a stream carries,
which an `Attribution` answers per frame (Janus may point an old mid at a new feed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from tapedeck_bot.aiortc_patches import OnEncoded, refresh_remote_ssrcs, tap_receiver
from tapedeck_bot.clock import Clock
from tapedeck_bot.contract import StreamKind
from tapedeck_bot.meeting import EncodedFrame, MeetingSink

__all__ = ["EVERYTHING", "Attribution", "Delivery", "PeerMedia"]

log = logging.getLogger("tapedeck_bot.receiving")


@dataclass(frozen=True)
class Delivery:
    """Media of the kinds in `decoded` is delivered decoded, of those in `encoded` as sent; a
    kind only in `encoded` is decoded too unless its codec (mime type) is in `kept_as_sent`."""

    decoded: frozenset[StreamKind] = frozenset({"audio", "video"})
    encoded: frozenset[StreamKind] = frozenset()
    kept_as_sent: frozenset[str] = frozenset()

    @property
    def kinds(self) -> frozenset[StreamKind]:
        return self.decoded | self.encoded

    def decodes(self, kind: str) -> Callable[[str], bool] | None:
        """Which frames of a stream of `kind` aiortc decodes, by codec (None: all)."""
        if kind in self.decoded:
            return None
        return lambda mime_type: mime_type not in self.kept_as_sent


EVERYTHING = Delivery()


class Attribution(Protocol):
    def of_frame(self, mid: str) -> tuple[str, StreamKind] | None:
        """(peer, kind) whose frame arrived on `mid` now, or None to drop it."""

    def of_report(self, mid: str) -> tuple[str, StreamKind] | None:
        """(peer, kind) whose clock a sender report on `mid` describes, or None."""


class PeerMedia:
    """Delivers `pc`'s media to `sink`; until a sink is set, frames are received and dropped
    (nothing piles up in aiortc's queues). `on_media(arrival)` is told of every frame first."""

    def __init__(
        self,
        pc: RTCPeerConnection,
        delivery: Delivery,
        attribution: Attribution,
        sink: MeetingSink | None,
        clock: Clock,
        on_media: Callable[[float], None] | None = None,
    ) -> None:
        self.pc, self.delivery, self.attribution = pc, delivery, attribution
        self.sink, self.clock, self.on_media = sink, clock, on_media
        self.tasks: list[asyncio.Task[None]] = []
        pc.on("track", self._on_track)
        for transceiver in pc.getTransceivers():  # tracks an answer made before we were here
            if transceiver.receiver.track is not None:
                self._on_track(transceiver.receiver.track)

    def tap(self) -> None:
        """After each local description: tap every receiver (once) for reports, encoded
        frames and the decoding choice."""
        refresh_remote_ssrcs(self.pc)
        for transceiver in self.pc.getTransceivers():
            mid, kind = transceiver.mid or "", transceiver.kind
            tap_receiver(
                transceiver.receiver,
                self._report_handler(mid),
                self._encoded_handler(mid) if kind in self.delivery.encoded else None,
                decode=self.delivery.decodes(kind),
            )

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for outcome in await asyncio.gather(*self.tasks, return_exceptions=True):
            if isinstance(outcome, Exception):
                log.error("receiving a track failed", extra={"error": repr(outcome)})

    def _seen(self, arrival: float) -> MeetingSink | None:
        """The sink to deliver a frame that arrived at `arrival` to, if any."""
        if self.sink is not None and self.on_media is not None:
            self.on_media(arrival)
        return self.sink

    def _report_handler(self, mid: str) -> Callable[[float, int], None]:
        def on_report(ntp_seconds: float, pts: int) -> None:
            attributed = self.attribution.of_report(mid)
            if self.sink is not None and attributed is not None:
                peer, kind = attributed
                self.sink.sender_report(peer, kind, ntp_seconds, pts)

        return on_report

    def _encoded_handler(self, mid: str) -> OnEncoded:
        def on_frame(mime_type: str, data: bytes, pts: int, rate: int) -> None:
            arrival = self.clock.monotonic()
            sink = self._seen(arrival)
            if sink is not None and (attributed := self.attribution.of_frame(mid)) is not None:
                peer, kind = attributed
                sink.encoded_frame(peer, kind, EncodedFrame(mime_type, data, pts, rate), arrival)

        return on_frame

    def _on_track(self, track: MediaStreamTrack) -> None:
        mid = next((t.mid for t in self.pc.getTransceivers() if t.receiver.track is track), None)
        if mid is not None:
            self.tasks.append(asyncio.create_task(self._consume(track, mid)))

    async def _consume(self, track: MediaStreamTrack, mid: str) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            arrival = self.clock.monotonic()
            sink = self._seen(arrival)
            if sink is not None and (attributed := self.attribution.of_frame(mid)) is not None:
                peer, kind = attributed
                sink.media_frame(peer, kind, frame, arrival)  # type: ignore[arg-type]
