"""The composite worker: a thread that turns the router's buffers into one encoded file.

It runs `delay_s` behind real time (frames need `placement_delay_s` to be placed, plus
network jitter). For each output tick on the media clock it lays out the participants
present at that instant, composes, and encodes; for each 20 ms it mixes and encodes audio.
Ticks inside paused spans are consumed but not encoded, so the file has no gap.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from tapedeck_bot.composite.compositor import Compositor
from tapedeck_bot.composite.encoder import CompositeEncoder, EncoderSettings
from tapedeck_bot.composite.layout import layout_cells
from tapedeck_bot.composite.mixer import SpeakerTracker, level, mix
from tapedeck_bot.contract import Layout
from tapedeck_bot.control import RecordingControl
from tapedeck_bot.media.buffers import AUDIO_RATE
from tapedeck_bot.media.router import MediaRouter
from tapedeck_bot.media.worker import Worker
from tapedeck_bot.media.writer import OutputWriter

__all__ = ["CompositePipeline"]

BLOCK = 960  # 20 ms of audio
_STALE_VIDEO_S = 2.0  # a feed silent this long (e.g. its sender was killed) shows black


class CompositePipeline(Worker):
    def __init__(
        self,
        router: MediaRouter,
        control: RecordingControl,
        writer: OutputWriter,
        settings: EncoderSettings,
        layout: Layout,
        *,
        delay_s: float = 2.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.router, self.control, self.writer = router, control, writer
        self.settings, self.layout, self.delay_s = settings, layout, delay_s
        self._clock = clock
        self._compositor = Compositor(settings.width, settings.height)
        self._speakers = SpeakerTracker()
        self._silence = np.zeros((BLOCK, 2), np.int16)
        super().__init__("composite")

    @property
    def bytes_written(self) -> int:
        return self.writer.bytes_written

    def work(self) -> None:
        self._encoder = CompositeEncoder(self.writer, self.settings)
        self._loop()
        self._encoder.close()

    def finish(self) -> None:
        self.writer.close()

    def _loop(self) -> None:
        fps = self.settings.fps
        frame_index, block_index = 0, 0
        while True:
            now = self._clock()
            horizon = now - self.router.t0 - self.delay_s
            end = self.control.stop_at
            limit = horizon if end is None else min(horizon, end)
            self.router.settle(now)
            while True:
                t_video, t_audio = frame_index / fps, block_index * BLOCK / AUDIO_RATE
                t = min(t_video, t_audio)
                if t >= limit:
                    break
                if t_video <= t_audio:
                    self._video_tick(t_video)
                    frame_index += 1
                else:
                    self._audio_tick(block_index, t_audio)
                    block_index += 1
            if end is not None and horizon >= end:
                return
            time.sleep(max(0.002, min(t_video, t_audio) - horizon))

    def _video_tick(self, t: float) -> None:
        present = self.router.present_at(t)
        frames = {
            m.info.peer_id: m.video.frame_at(t, stale_after=_STALE_VIDEO_S)
            for m in self.router.snapshot()
        }  # every buffer advances, shown or not
        if self.control.is_paused_at(t):
            return
        cells = layout_cells(
            self.layout,
            [m.info.peer_id for m in present],
            self.settings.width,
            self.settings.height,
            speaker=self._speakers.speaker,
        )
        self._encoder.encode_video(
            self._compositor.compose([(c, frames[c.participant]) for c in cells])
        )

    def _audio_tick(self, index: int, t: float) -> None:
        blocks = {
            m.info.peer_id: m.audio.read(index * BLOCK, BLOCK) for m in self.router.snapshot()
        }
        present = {m.info.peer_id for m in self.router.present_at(t)}
        if self.control.is_paused_at(t):
            return
        self._speakers.update(t, {p: level(b) for p, b in blocks.items() if p in present})
        heard = [b for p, b in blocks.items() if p in present] or [self._silence]
        self._encoder.encode_audio(mix(heard, self.settings.channels))
