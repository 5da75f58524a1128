"""Encode the composite: H.264 + AAC/Opus in fragmented MP4, or VP8 + Opus/Vorbis in WebM.

Outputs are written as a stream (no seeking), so a writer can upload them while recording:
fragmented MP4 (`empty_moov`, one fragment per keyframe) and WebM both stay playable when cut
after any fragment or cluster. Video pts count output frames and audio pts count samples,
both from 0 and gapless: pauses are simply not encoded.
"""

from __future__ import annotations

import fractions
from dataclasses import dataclass
from typing import Any

import av
import numpy as np
from av import AudioFrame, VideoFrame

from tapedeck_bot.contract import AudioCodec, CompositeSpec, VideoCodec
from tapedeck_bot.media.writer import OutputWriter

__all__ = ["CompositeEncoder", "EncoderSettings"]

_AUDIO_RATE = 48000

_VIDEO = {
    # superfast + zerolatency: ~0.1 core for 720p30 meeting content, no B-frame delay.
    VideoCodec.H264: ("libx264", {"preset": "superfast", "tune": "zerolatency", "crf": "23"}),
    # Negative cpu-used is a fixed speed; threads>1 collapses under CPU contention.
    VideoCodec.VP8: (
        "libvpx",
        {"deadline": "realtime", "cpu-used": "-6", "lag-in-frames": "0", "auto-alt-ref": "0"},
    ),
}
_AUDIO = {
    AudioCodec.AAC: ("aac", 128_000, {}),
    AudioCodec.OPUS: ("libopus", 96_000, {}),
    AudioCodec.VORBIS: ("vorbis", 128_000, {"strict": "experimental"}),
}
_CONTAINER = {
    VideoCodec.H264: ("mp4", {"movflags": "frag_keyframe+empty_moov+default_base_moof"}),
    VideoCodec.VP8: ("webm", {"live": "1"}),
}
EXTENSIONS = {VideoCodec.H264: "mp4", VideoCodec.VP8: "webm"}


@dataclass(frozen=True)
class EncoderSettings:
    video_codec: VideoCodec
    audio_codec: AudioCodec
    width: int
    height: int
    fps: int
    channels: int
    video_bitrate: int = 0  # 0: a default for the size (VP8 needs a target)

    @classmethod
    def from_spec(cls, spec: CompositeSpec) -> EncoderSettings:
        v = spec.video
        return cls(v.codec, spec.audio_codec, v.width, v.height, v.fps, spec.audio.channels)


class CompositeEncoder:
    """Video and mixed audio into one container, written to `sink` as it is produced."""

    def __init__(self, sink: OutputWriter, settings: EncoderSettings) -> None:
        self.settings = settings
        fmt, options = _CONTAINER[settings.video_codec]
        self._container: Any = av.open(sink, mode="w", format=fmt, options=options)
        self._video = self._add_video(settings)
        self._audio = self._add_audio(settings)
        self._frames = 0
        self._samples = 0

    def _add_video(self, s: EncoderSettings) -> Any:
        name, options = _VIDEO[s.video_codec]
        stream = self._container.add_stream(name, rate=s.fps, options=options)
        stream.width, stream.height, stream.pix_fmt = s.width, s.height, "yuv420p"
        stream.codec_context.gop_size = 2 * s.fps  # a fragment (and seek point) every 2 s
        stream.codec_context.thread_count = 1
        pixels_per_second = s.width * s.height * s.fps
        stream.codec_context.bit_rate = s.video_bitrate or max(300_000, pixels_per_second // 15)
        stream.time_base = fractions.Fraction(1, s.fps)
        return stream

    def _add_audio(self, s: EncoderSettings) -> Any:
        name, bitrate, options = _AUDIO[s.audio_codec]
        stream = self._container.add_stream(name, rate=_AUDIO_RATE, options=options)
        stream.layout = "mono" if s.channels == 1 else "stereo"
        stream.codec_context.bit_rate = bitrate
        return stream

    def encode_video(self, frame: VideoFrame) -> None:
        frame.pts = self._frames
        frame.time_base = fractions.Fraction(1, self.settings.fps)
        self._frames += 1
        for packet in self._video.encode(frame):
            self._container.mux(packet)

    def encode_audio(self, pcm: np.ndarray) -> None:
        """`pcm`: n x channels int16 at 48 kHz."""
        layout = "mono" if pcm.shape[1] == 1 else "stereo"
        frame = AudioFrame.from_ndarray(
            np.ascontiguousarray(pcm).reshape(1, -1), format="s16", layout=layout
        )
        frame.sample_rate = _AUDIO_RATE
        frame.pts = self._samples
        frame.time_base = fractions.Fraction(1, _AUDIO_RATE)
        self._samples += len(pcm)
        for packet in self._audio.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        """Flush both encoders and write the container's tail."""
        for stream in (self._video, self._audio):
            for packet in stream.encode(None):
                self._container.mux(packet)
        self._container.close()
