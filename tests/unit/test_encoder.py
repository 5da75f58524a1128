"""Every codec pairing the API allows encodes, streams without seeking, and decodes back."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from tapedeck_bot.composite.encoder import CompositeEncoder, EncoderSettings
from tapedeck_bot.contract import AudioCodec, VideoCodec
from tapedeck_bot.media.writer import FileWriter

PAIRS = [
    (VideoCodec.H264, AudioCodec.AAC),
    (VideoCodec.H264, AudioCodec.OPUS),
    (VideoCodec.VP8, AudioCodec.OPUS),
    (VideoCodec.VP8, AudioCodec.VORBIS),
]
DECODED = {AudioCodec.AAC: "aac", AudioCodec.OPUS: "opus", AudioCodec.VORBIS: "vorbis"}


@pytest.mark.parametrize(("video", "audio"), PAIRS, ids=lambda c: str(c))
def test_codec_pair_round_trips(tmp_path: Path, video: VideoCodec, audio: AudioCodec) -> None:
    path = tmp_path / "out"
    writer = FileWriter(path)
    encoder = CompositeEncoder(writer, EncoderSettings(video, audio, 320, 180, 30, 2))
    tone = (8000 * np.sin(2 * np.pi * 440 * np.arange(48000) / 48000)).astype(np.int16)
    for second_block in range(50):
        encoder.encode_audio(
            np.repeat(tone[second_block * 960 : (second_block + 1) * 960, None], 2, axis=1)
        )
    for n in range(30):
        image = np.full((270, 320), 16 + 7 * n, np.uint8)
        encoder.encode_video(av.VideoFrame.from_ndarray(image, format="yuv420p"))
    encoder.close()
    writer.close()

    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == video.value.lower()
        assert container.streams.audio[0].codec_context.name in (
            DECODED[audio],
            f"lib{DECODED[audio]}",
        )
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == 30
