"""One participant session's audio as Opus in WebM, from the moment they joined.

The file carries the UTC time of its first sample (`creation_time`, and
`TAPEDECK_STARTED_AT_UNIX_MS` to the millisecond), so tracks can be aligned with each other
and with the composite. Gaps in the incoming audio (loss, DTX) become silence, so the file's
timeline is the wall clock from its first sample on.
"""

from __future__ import annotations

import datetime as dt
import fractions
from typing import Any

import av
import numpy as np
from av import AudioFrame, VideoFrame

from tapedeck_bot.media.buffers import AUDIO_RATE
from tapedeck_bot.media.writer import OutputWriter

__all__ = ["AudioTrackFile", "VideoTrackFile", "vp8_keyframe_size"]

_CONTINUE_WITHIN = 480  # 10 ms: a frame this close to the previous one's end continues it
_BITRATE = 64_000


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
    def __init__(
        self,
        writer: OutputWriter,
        *,
        start: float,
        started_at_utc: dt.datetime,
        tags: dict[str, str],
    ) -> None:
        """`start`: the media time the file begins at (silence until the first sample)."""
        self.writer = writer
        self.started_at_utc = started_at_utc
        self._container = _open_webm(writer, started_at_utc, tags)
        self._audio = self._container.add_stream("libopus", rate=AUDIO_RATE)
        self._audio.layout = "mono"
        self._audio.codec_context.bit_rate = _BITRATE
        self._next = round(start * AUDIO_RATE)  # media-clock sample index of the next sample
        self._samples = 0

    @property
    def seconds(self) -> float:
        return self._samples / AUDIO_RATE

    def write(self, at: float, pcm: np.ndarray) -> None:
        """`pcm`: n x 2 int16 samples starting at media time `at`."""
        index = round(at * AUDIO_RATE)
        if abs(index - self._next) < _CONTINUE_WITHIN:
            index = self._next
        if index > self._next:
            self._encode(np.zeros(index - self._next, np.int16))
        elif index < self._next:
            pcm = pcm[self._next - index :]  # overlaps what is already written
        if len(pcm):
            self._encode(pcm.astype(np.int32).mean(axis=1).astype(np.int16))

    def _encode(self, mono: np.ndarray) -> None:
        frame = AudioFrame.from_ndarray(mono.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = self._samples
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        self._samples += len(mono)
        self._next += len(mono)
        for packet in self._audio.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        for packet in self._audio.encode(None):
            self._container.mux(packet)
        self._container.close()
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
        if self._stream is not None and self._stream.codec_context.is_encoder:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        self._container.close()
        self.writer.close()
