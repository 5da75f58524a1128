"""The composite stage on fake time: placed frames in, one file out, with paused spans cut
and the file ending at the stop."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from tapedeck_bot.composite.encoder import EncoderSettings
from tapedeck_bot.composite.pipeline import CompositePipeline
from tapedeck_bot.contract import AudioCodec, Layout, StopReason, VideoCodec
from tapedeck_bot.control import RecordingControl
from tapedeck_bot.media.events import End, Joined, Placed, StageEvent
from tapedeck_bot.media.mailbox import Mailbox
from tapedeck_bot.meeting import ParticipantInfo
from tests.unit.pipeline_fakes import RATE, BytesWriter, FakeClock, colour_frame

T0 = 1000.0
SETTINGS = EncoderSettings(VideoCodec.H264, AudioCodec.AAC, 160, 96, 10, 2)


def _tone(n: int) -> np.ndarray:
    t = np.arange(960) + n * 960
    mono = (np.sin(2 * np.pi * 440 * t / RATE) * 8000).astype(np.int16)
    return np.repeat(mono, 2).reshape(-1, 2)


def test_pauses_are_cut_and_the_file_ends_at_the_stop() -> None:
    control = RecordingControl(max_seconds=100, idle_timeout_s=60)
    mailbox: Mailbox[StageEvent] = Mailbox(100_000)
    writer = BytesWriter()
    stage = CompositePipeline(
        T0, mailbox, lambda: control.state, writer, SETTINGS, Layout.GRID, FakeClock(T0)
    )
    mailbox.put(Joined("1", ParticipantInfo("1", "alice"), 0.0))
    for n in range(200):  # 4 s: audio every 20 ms, video every 100 ms
        mailbox.put(Placed("1", "audio", n * 0.02, _tone(n)))
        if n % 5 == 0:
            mailbox.put(Placed("1", "video", n * 0.02, colour_frame((255, 0, 0), n * 1800)))
    control.pause(1.0)
    control.resume(2.0)
    assert stage.step(T0 + 2.5 + 1.0) is not None  # encodes up to media time 1.0
    control.stop(3.0, StopReason.STOPPED)
    mailbox.put(End())
    assert stage.step(T0 + 2.5 + 1.2) is None  # everything is in: done up to the stop
    stage.finish()
    assert writer.closed

    with av.open(io.BytesIO(writer.buffer.getvalue())) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    with av.open(io.BytesIO(writer.buffer.getvalue())) as container:
        audio = np.concatenate([f.to_ndarray()[0] for f in container.decode(audio=0)])
    assert len(frames) == 20  # 3 s less the 1 s paused, at 10 fps
    assert len(audio) / RATE == pytest.approx(2.0, abs=0.05)
    middle = frames[10]
    assert middle[48, 80, 0] > 200
    assert middle[48, 80, 1] < 60
    assert np.sqrt(np.mean(audio[RATE // 2 : RATE] ** 2)) > 0.05
