"""The composite stage: a thread that turns placed frames into one encoded file.

It runs `delay_s` behind real time (frames are placed `placement_delay` after they arrive,
plus network lateness). For each output tick on the media clock it lays out the participants
present at that instant, composes, and encodes; for each 20 ms it mixes and encodes audio.
Ticks inside paused spans are consumed but not encoded, so the file has no gap. The video
and audio buffers are this stage's own: nothing else touches them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from av import VideoFrame

from tapedeck_bot.clock import Clock
from tapedeck_bot.composite.compositor import EVERYTHING_SHOWN, Compositor, Presentation, Tile
from tapedeck_bot.composite.encoder import CompositeEncoder, EncoderSettings
from tapedeck_bot.composite.layout import Cell, layout_cells
from tapedeck_bot.composite.mixer import SpeakerTracker, level, mix
from tapedeck_bot.contract import Layout
from tapedeck_bot.control import ControlView
from tapedeck_bot.media.buffers import AUDIO_RATE, AudioTimeline, VideoBuffer
from tapedeck_bot.media.events import End, Joined, Left, Placed, Presence, StageEvent
from tapedeck_bot.media.mailbox import Mailbox
from tapedeck_bot.media.worker import Stage
from tapedeck_bot.media.writer import OutputWriter

__all__ = ["CompositePipeline"]

BLOCK = 960  # 20 ms of audio
_STALE_VIDEO_S = 2.0  # a feed silent this long (its camera off, its sender gone): initials


def _tile(cell: Cell, frame: VideoFrame | None, presence: Presence) -> Tile:
    """A cell as the compositor paints it, named by the display name, else the user id."""
    info = presence.info
    return Tile(cell, frame, info.display_name or info.user_id, info.user_id)


@dataclass
class _Tile:
    presence: Presence
    video: VideoBuffer = field(default_factory=VideoBuffer)
    audio: AudioTimeline = field(default_factory=AudioTimeline)


class CompositePipeline(Stage):
    def __init__(
        self,
        t0: float,
        mailbox: Mailbox[StageEvent],
        control: ControlView,
        writer: OutputWriter,
        settings: EncoderSettings,
        layout: Layout,
        clock: Clock,
        *,
        presentation: Presentation = EVERYTHING_SHOWN,
        delay_s: float = 2.5,
    ) -> None:
        self.t0, self.mailbox, self.control, self.writer = t0, mailbox, control, writer
        self.settings, self.layout, self.delay_s = settings, layout, delay_s
        self._compositor = Compositor(settings.width, settings.height, presentation)
        self._speakers = SpeakerTracker()
        self._silence = np.zeros((BLOCK, 2), np.int16)
        self._tiles: dict[str, _Tile] = {}  # by session, in join order
        self._encoder: CompositeEncoder | None = None
        self._ended = False  # the placement stage has sent everything
        self._frame_index = self._block_index = 0
        super().__init__("composite", clock)

    @property
    def bytes_written(self) -> int:
        return self.writer.bytes_written

    def step(self, now: float) -> float | None:
        if self._encoder is None:
            self._encoder = CompositeEncoder(self.writer, self.settings)
        for event in self.mailbox.take():
            self._receive(event)
        self._forget_departed(self._frame_index / self.settings.fps)
        horizon = now - self.t0 - self.delay_s
        end = self.control().stop_at
        if self._ended:  # all media up to the stop is in: encode up to it, and finish
            self._encode_until(horizon if end is None else end)
            self._encoder.close()
            return None
        next_tick = self._encode_until(horizon if end is None else min(horizon, end))
        return max(0.002, next_tick - horizon)

    def finish(self) -> None:
        self.writer.close()

    def _receive(self, event: StageEvent) -> None:
        if isinstance(event, Placed):
            tile = self._tiles.get(event.session)
            if tile is None:
                return
            if isinstance(event.payload, VideoFrame):
                tile.video.push(event.at, event.payload)
            elif isinstance(event.payload, np.ndarray):
                tile.audio.write(event.at, event.payload)
        elif isinstance(event, Joined):
            self._tiles[event.session] = _Tile(Presence(event.info, event.at))
        elif isinstance(event, Left):
            if (tile := self._tiles.get(event.session)) is not None:
                tile.presence.left_at = event.at
        elif isinstance(event, End):
            self._ended = True

    def _forget_departed(self, t: float) -> None:
        """Free the buffers (an audio ring is 3.8 MB) of those gone before media time `t`."""
        for peer, tile in list(self._tiles.items()):
            if tile.presence.left_at is not None and tile.presence.left_at < t - BLOCK / AUDIO_RATE:
                del self._tiles[peer]

    def _encode_until(self, limit: float) -> float:
        """Encode every tick before media time `limit`; returns the next tick's time."""
        fps = self.settings.fps
        while True:
            t_video = self._frame_index / fps
            t_audio = self._block_index * BLOCK / AUDIO_RATE
            t = min(t_video, t_audio)
            if t >= limit:
                return t
            if t_video <= t_audio:
                self._video_tick(t_video)
                self._frame_index += 1
            else:
                self._audio_tick(self._block_index, t_audio)
                self._block_index += 1

    def _present(self, t: float) -> list[str]:
        return [p for p, tile in self._tiles.items() if tile.presence.present_at(t)]

    def _video_tick(self, t: float) -> None:
        assert self._encoder is not None
        frames = {
            peer: tile.video.frame_at(t, stale_after=_STALE_VIDEO_S)
            for peer, tile in self._tiles.items()
        }  # every buffer advances, shown or not
        if self.control().is_paused_at(t):
            return
        cells = layout_cells(
            self.layout,
            self._present(t),
            self.settings.width,
            self.settings.height,
            speaker=self._speakers.speaker,
        )
        tiles = [
            _tile(c, frames[c.participant], self._tiles[c.participant].presence) for c in cells
        ]
        self._encoder.encode_video(self._compositor.compose(tiles, self._speakers.speaking))

    def _audio_tick(self, index: int, t: float) -> None:
        assert self._encoder is not None
        blocks = {peer: tile.audio.read(index * BLOCK, BLOCK) for peer, tile in self._tiles.items()}
        present = set(self._present(t))
        if self.control().is_paused_at(t):
            return
        self._speakers.update(t, {p: level(b) for p, b in blocks.items() if p in present})
        heard = [b for p, b in blocks.items() if p in present] or [self._silence]
        self._encoder.encode_audio(mix(heard, self.settings.channels))
