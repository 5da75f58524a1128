"""The meeting sink: who is present when, and each participant's media on the media clock.

Media time is seconds since the recording started (`t0`, a time.monotonic() reading).
Frames are held back for `placement_delay_s` before they are placed, so that the sender
report that relates a stream to its sender's clock (Janus sends the first about 1.4 s into a
subscription) is known when its first frames are placed: a participant's audio and video are
placed by the same mapping from their first frame on.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from av import AudioFrame, VideoFrame

from tapedeck_bot.media.buffers import AudioTimeline, VideoBuffer
from tapedeck_bot.media.clock import ParticipantClock
from tapedeck_bot.meeting import MediaKind, ParticipantInfo

__all__ = ["EncodedVideo", "MediaListener", "MediaRouter", "ParticipantMedia"]

log = logging.getLogger("tapedeck_bot.media")

_PLACEMENT_DELAY_S = 1.6
# Frames waiting for placement, per participant: ~6 s of 30 fps video and 50 fps audio, far
# beyond the 1.6 s placement delay. Past it the encoders have fallen far behind (an overloaded
# node); dropping the oldest beats exhausting the pod's memory (a 640x360 frame is 345 KB).
_MAX_PENDING = 500


@dataclass(frozen=True)
class EncodedVideo:
    mime_type: str
    data: bytes


Payload = VideoFrame | np.ndarray | EncodedVideo


def _stereo(frame: AudioFrame) -> np.ndarray:
    """aiortc delivers packed s16; make it n x 2."""
    channels = len(frame.layout.channels)
    pcm = frame.to_ndarray().reshape(-1, channels)
    return np.repeat(pcm, 2, axis=1) if channels == 1 else pcm[:, :2]


@dataclass
class ParticipantMedia:
    info: ParticipantInfo
    joined_at: float
    left_at: float | None = None
    clock: ParticipantClock = field(default_factory=ParticipantClock)
    video: VideoBuffer = field(default_factory=VideoBuffer)
    audio: AudioTimeline = field(default_factory=AudioTimeline)
    # (arrival, kind, pts, timestamp segment, payload)
    _pending: deque[tuple[float, MediaKind, int, int, Payload]] = field(
        default_factory=lambda: deque(maxlen=_MAX_PENDING)
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def present_at(self, t: float) -> bool:
        return self.joined_at <= t and (self.left_at is None or t < self.left_at)


class MediaListener(Protocol):
    """Told of every frame once it is placed at media time `at`, in arrival order."""

    def on_audio(self, media: ParticipantMedia, at: float, pcm: np.ndarray) -> None:
        """`pcm`: n x 2 int16 at 48 kHz."""

    def on_video(self, media: ParticipantMedia, at: float, frame: VideoFrame) -> None: ...

    def on_encoded_video(self, media: ParticipantMedia, at: float, video: EncodedVideo) -> None:
        """Only when the connector delivers encoded video."""


class MediaRouter:
    """Implements `MeetingSink`; the encoder threads read from it."""

    def __init__(
        self, t0: float, placement_delay_s: float = _PLACEMENT_DELAY_S, *, buffers: bool = True
    ) -> None:
        """`buffers`: keep video and audio buffers for a composite; else only notify listeners."""
        self.t0 = t0
        self.placement_delay_s = placement_delay_s
        self.buffers = buffers
        self.listeners: list[MediaListener] = []
        self.listener_errors: list[str] = []
        self._participants: dict[str, ParticipantMedia] = {}
        self._lock = threading.Lock()

    # -- MeetingSink (asyncio thread) --------------------------------------------------------

    def participant_joined(self, participant: ParticipantInfo, at: float) -> None:
        joined = max(0.0, at - self.t0)
        with self._lock:
            self._participants[participant.peer_id] = ParticipantMedia(participant, joined)
        log.info(
            "participant joined",
            extra={"peer_id": participant.peer_id, "user_id": participant.user_id, "at_s": joined},
        )

    def participant_left(self, peer_id: str, at: float) -> None:
        with self._lock:
            media = self._participants.get(peer_id)
            if media is not None and media.left_at is None:
                media.left_at = max(media.joined_at, at - self.t0)
                log.info("participant left", extra={"peer_id": peer_id, "at_s": media.left_at})

    def media_frame(
        self, peer_id: str, kind: MediaKind, frame: AudioFrame | VideoFrame, arrival: float
    ) -> None:
        media = self._participants.get(peer_id)
        if media is None or frame.pts is None or frame.time_base is None:
            return
        rate = round(1 / frame.time_base)
        payload: Payload = frame if isinstance(frame, VideoFrame) else _stereo(frame)
        with media._lock:
            segment = media.clock.stream(kind, rate).observe(frame.pts, arrival)
            media._pending.append((arrival, kind, frame.pts, segment, payload))

    def encoded_video(
        self, peer_id: str, mime_type: str, data: bytes, pts: int, arrival: float
    ) -> None:
        media = self._participants.get(peer_id)
        if media is None:
            return
        with media._lock:
            # Same pts domain as the decoded frames, which alone drive the clock.
            segment = media.clock.stream("video", 90000).current
            media._pending.append((arrival, "video", pts, segment, EncodedVideo(mime_type, data)))

    def sender_report(self, peer_id: str, kind: MediaKind, ntp_seconds: float, pts: int) -> None:
        media = self._participants.get(peer_id)
        if media is not None:
            with media._lock:
                stream = media.clock.streams.get(kind)
                if stream is not None:
                    stream.sender_report(ntp_seconds, pts)

    def source_changed(self, peer_id: str, kind: MediaKind) -> None:
        media = self._participants.get(peer_id)
        if media is not None:
            with media._lock:
                media.clock.reset(kind)

    # -- readers (encoder threads) -----------------------------------------------------------

    def settle(self, now: float) -> None:
        """Place every frame that arrived at least `placement_delay_s` before `now`."""
        for media in self.snapshot():
            with media._lock:
                while media._pending and media._pending[0][0] <= now - self.placement_delay_s:
                    _, kind, pts, segment, payload = media._pending.popleft()
                    local = media.clock.local_time(kind, pts, segment)
                    if local is None:
                        continue
                    at = local - self.t0
                    if self.buffers and isinstance(payload, VideoFrame):
                        media.video.push(at, payload)
                    elif self.buffers and isinstance(payload, np.ndarray):
                        media.audio.write(at, payload)
                    self._notify(media, at, payload)

    def _notify(self, media: ParticipantMedia, at: float, payload: Payload) -> None:
        for listener in list(self.listeners):
            try:
                if isinstance(payload, VideoFrame):
                    listener.on_video(media, at, payload)
                elif isinstance(payload, EncodedVideo):
                    listener.on_encoded_video(media, at, payload)
                else:
                    listener.on_audio(media, at, payload)
            except Exception as exc:  # e.g. a full disk: keep the other outputs recording
                log.exception("media listener failed; detaching it")
                self.listeners.remove(listener)
                self.listener_errors.append(f"{type(listener).__name__}: {exc}")

    def snapshot(self) -> list[ParticipantMedia]:
        """Every participant seen, in join order."""
        with self._lock:
            return list(self._participants.values())

    def present_at(self, t: float) -> list[ParticipantMedia]:
        return [m for m in self.snapshot() if m.present_at(t)]
