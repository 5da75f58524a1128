"""One participant session's media in WebM: audio as the sender's Opus, video as VP8.

The file carries the UTC time of its first sample (`creation_time`, and
`TAPEDECK_STARTED_AT_UNIX_MS` to the millisecond), so tracks can be aligned with each other
and with the composite. Audio is written as sent, never decoded or re-encoded; gaps in it
(loss, DTX, the time before the first packet) are filled with Opus silence packets, so the
file's timeline is the media clock from its first sample on, whatever the player.
"""

from __future__ import annotations

import datetime as dt
import fractions
from typing import Any

import av
from av import VideoFrame

from tapedeck_bot.media.buffers import AUDIO_RATE
from tapedeck_bot.media.writer import OutputWriter

__all__ = [
    "KEPT_AS_SENT",
    "SILENCE_FRAMES",
    "AudioTrackFile",
    "VideoTrackFile",
    "opus_samples",
    "vp8_keyframe_size",
]

# The codecs a WebM track holds as the sender encoded them; others are decoded and re-encoded.
KEPT_AS_SENT = frozenset({"audio/opus", "video/VP8"})

_CONTINUE_WITHIN = 480  # 10 ms: a packet this close to the previous one's end continues it
# CELT frames of 20, 10, 5 and 2.5 ms (TOC configurations 31-28) with the silence flag set
# (RFC 6716, section 4.3): every decoder plays them as digital silence.
SILENCE_FRAMES = {
    960: b"\xf8\xff\xfe",
    480: b"\xf0\xff\xfe",
    240: b"\xe8\xff\xfe",
    120: b"\xe0\xff\xfe",
}
_AUDIO_TIME_BASE = fractions.Fraction(1, AUDIO_RATE)
# Frame sizes in 48 kHz samples by TOC configuration (RFC 6716, section 3.1): SILK 10-60 ms,
# hybrid 10-20 ms, CELT 2.5-20 ms.
_FRAME_SAMPLES = [480, 960, 1920, 2880] * 3 + [480, 960] * 2 + [120, 240, 480, 960] * 4


def opus_samples(packet: bytes) -> int:
    """The 48 kHz samples one Opus packet holds (0 if it is malformed)."""
    if not packet:
        return 0
    toc = packet[0]
    code = toc & 3
    if code == 0:
        frames = 1
    elif code in (1, 2):
        frames = 2
    else:
        frames = packet[1] & 0x3F if len(packet) > 1 else 0
    return frames * _FRAME_SAMPLES[toc >> 3]


def _start_tags(started_at_utc: dt.datetime) -> dict[str, str]:
    return {
        "creation_time": started_at_utc.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "TAPEDECK_STARTED_AT_UNIX_MS": str(round(started_at_utc.timestamp() * 1000)),
    }


def _open_webm(writer: OutputWriter, started_at_utc: dt.datetime, tags: dict[str, str]) -> Any:
    """A live (unseekable) WebM container carrying the start time and `tags`."""
    container = av.open(writer, mode="w", format="webm", options={"live": "1"})
    container.metadata.update(_start_tags(started_at_utc) | tags)
    return container


class AudioTrackFile:
    """Opus packets as sent, placed on the media clock."""

    def __init__(
        self,
        writer: OutputWriter,
        *,
        start: float,
        started_at_utc: dt.datetime,
        tags: dict[str, str],
    ) -> None:
        """`start`: the media time the file begins at (silence until the first packet)."""
        self.writer = writer
        self.started_at_utc = started_at_utc
        self._container = _open_webm(writer, started_at_utc, tags)
        self._audio = self._container.add_stream("libopus", rate=AUDIO_RATE)
        self._audio.layout = "stereo"  # as WebRTC negotiates Opus; mono packets play in both
        self._audio.time_base = _AUDIO_TIME_BASE
        # Opened for its stream header (OpusHead) only: no sample is ever encoded.
        self._audio.codec_context.open()
        # Players drop the header's pre-skip from the start, so the file begins that much
        # earlier: its first played sample is at `start`.
        pre_skip = int.from_bytes(self._audio.codec_context.extradata[10:12], "little")
        self._next = round(start * AUDIO_RATE) - pre_skip  # media-clock index of the next sample
        self._pts = 0  # the next packet's timestamp in the file
        self._pre_skip = pre_skip

    @property
    def seconds(self) -> float:
        return max(0, self._pts - self._pre_skip) / AUDIO_RATE

    def write(self, at: float, packet: bytes, *, silent: bool = False) -> None:
        """An Opus packet whose first sample is at media time `at`; `silent` writes silence
        of its length instead (a paused span)."""
        samples = opus_samples(packet)
        if not samples:
            return
        index = round(at * AUDIO_RATE)
        gap = index - self._next
        if gap <= -_CONTINUE_WITHIN:
            return  # overlaps what is already written (a late or repeated packet)
        if gap >= _CONTINUE_WITHIN or (self._pts == 0 and gap > 0):
            self._silence(gap)  # the first packet is placed exactly, pre-skip included
        if silent:
            self._silence(samples)
        else:
            self._mux(packet, samples)

    def _silence(self, samples: int) -> None:
        """About `samples` of silence, to 2.5 ms."""
        for size, packet in SILENCE_FRAMES.items():
            while samples >= size - 60:
                self._mux(packet, size)
                samples -= size

    def _mux(self, data: bytes, samples: int) -> None:
        packet = av.Packet(data)
        packet.stream = self._audio
        packet.pts = packet.dts = self._pts
        packet.duration = samples
        packet.time_base = _AUDIO_TIME_BASE
        self._container.mux(packet)
        self._pts += samples
        self._next += samples

    def close(self) -> None:
        try:
            self._container.close()
        finally:
            self.writer.close()


def vp8_keyframe_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) if `data` is a VP8 keyframe (RFC 6386, section 9.1), else None."""
    if len(data) < 10 or data[0] & 1 or data[3:6] != b"\x9d\x01\x2a":
        return None
    return int.from_bytes(data[6:8], "little") & 0x3FFF, int.from_bytes(
        data[8:10], "little"
    ) & 0x3FFF


class VideoTrackFile:
    """One participant session's video in WebM, from its first keyframe.

    VP8 from the sender is written as sent (it already fits WebM); anything else is decoded
    and re-encoded to VP8. Timestamps are milliseconds from the first frame.
    """

    def __init__(
        self,
        writer: OutputWriter,
        *,
        start: float,
        started_at_utc: dt.datetime,
        tags: dict[str, str],
    ) -> None:
        self.writer = writer
        self.started_at_utc = started_at_utc
        self._start = start
        self._container = _open_webm(writer, started_at_utc, tags)
        self._stream: Any = None
        self._last_pts = -1
        self.frames = 0

    def _pts(self, at: float) -> int | None:
        pts = round((at - self._start) * 1000)
        if pts <= self._last_pts:
            return None  # a duplicate or late frame: WebM needs increasing timestamps
        self._last_pts = pts
        return pts

    def write_encoded(self, at: float, data: bytes) -> None:
        """A VP8 frame as sent; the first one must be a keyframe."""
        if self._stream is None:
            size = vp8_keyframe_size(data)
            assert size is not None, "a VP8 track starts with a keyframe"
            self._container.metadata["TAPEDECK_VIDEO"] = "as-sent"
            self._stream = self._container.add_stream("vp8", rate=30)
            self._stream.width, self._stream.height = size
            self._stream.pix_fmt = "yuv420p"
            self._stream.time_base = fractions.Fraction(1, 1000)
        if (pts := self._pts(at)) is None:
            return
        packet = av.Packet(data)
        packet.stream = self._stream
        packet.pts = packet.dts = pts
        packet.time_base = fractions.Fraction(1, 1000)
        packet.is_keyframe = vp8_keyframe_size(data) is not None
        self._container.mux(packet)
        self.frames += 1

    def write_frame(self, at: float, frame: VideoFrame) -> None:
        """A decoded frame, re-encoded to VP8 (the sender's codec does not fit WebM)."""
        if self._stream is None:
            self._container.metadata["TAPEDECK_VIDEO"] = "re-encoded"
            self._stream = self._container.add_stream(
                "libvpx",
                rate=30,
                options={"deadline": "realtime", "cpu-used": "-6", "lag-in-frames": "0"},
            )
            self._stream.width, self._stream.height = frame.width, frame.height
            self._stream.pix_fmt = "yuv420p"
            self._stream.codec_context.bit_rate = 800_000
            self._stream.codec_context.thread_count = 1
            self._stream.time_base = fractions.Fraction(1, 1000)
        if (pts := self._pts(at)) is None:
            return
        frame = frame.reformat(format="yuv420p") if frame.format.name != "yuv420p" else frame
        frame.pts, frame.time_base = pts, fractions.Fraction(1, 1000)
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    @property
    def seconds(self) -> float:
        return self._last_pts / 1000 if self._last_pts >= 0 else 0.0

    def close(self) -> None:
        try:
            if self._stream is not None and self._stream.codec_context.is_encoder:
                for packet in self._stream.encode(None):
                    self._container.mux(packet)
            self._container.close()
        finally:
            self.writer.close()
