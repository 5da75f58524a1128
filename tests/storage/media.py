"""Recordings that are big enough to span several 5 MiB parts in a few seconds of encoding.

They come from the bot's own composite encoder (fragmented MP4, live WebM), fed with noise
(which compresses badly, so parts fill fast) and a 1 kHz tone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from av import VideoFrame

from tapedeck_bot.composite.encoder import CompositeEncoder, EncoderSettings
from tapedeck_bot.contract import AudioCodec, VideoCodec
from tapedeck_bot.media.writer import FileWriter

FPS, TONE_HZ = 30, 1000.0
_CODECS = {"mp4": (VideoCodec.H264, AudioCodec.AAC), "webm": (VideoCodec.VP8, AudioCodec.OPUS)}


def noise_recording(path: Path, seconds: int) -> Path:
    video, audio = _CODECS[path.suffix.lstrip(".")]
    settings = EncoderSettings(video, audio, 320, 240, FPS, 1, video_bitrate=8_000_000)
    writer = FileWriter(path)
    encoder = CompositeEncoder(writer, settings)
    rng = np.random.default_rng(7)
    t = np.arange(1600) / 48000
    for n in range(seconds * FPS):
        image = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
        encoder.encode_video(VideoFrame.from_ndarray(image, format="rgb24"))
        tone = np.sin(2 * np.pi * TONE_HZ * (t + n / FPS)) * 8000
        encoder.encode_audio(tone.astype(np.int16).reshape(-1, 1))
    encoder.close()
    writer.close()
    return path


def playable_seconds(path: Path) -> tuple[float, float]:
    """Seconds of video and audio that decode. A file cut mid-fragment (a salvaged segment
    ends at a part edge) may lose packets of its last fragment (2 s), which players skip;
    a packet that fails to decode anywhere before that fails the test."""
    import av

    ends = {"video": 0.0, "audio": 0.0}
    failed_at: list[float] = []
    with av.open(str(path)) as container:
        for packet in container.demux():
            kind = packet.stream.type
            if kind not in ends or packet.pts is None:
                continue
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                failed_at.append(float(packet.pts * packet.time_base))
                continue
            for frame in frames:
                length = 1 / FPS if kind == "video" else frame.samples / frame.sample_rate
                ends[kind] = max(ends[kind], float(frame.pts * frame.time_base) + length)
    last = max(ends.values())
    assert all(t > last - 2.1 for t in failed_at), f"undecodable packets at {failed_at} s"
    return ends["video"], ends["audio"]
