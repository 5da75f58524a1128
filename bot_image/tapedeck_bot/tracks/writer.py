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
from av import AudioFrame

from tapedeck_bot.media.buffers import AUDIO_RATE
from tapedeck_bot.media.writer import OutputWriter

__all__ = ["AudioTrackFile"]

_CONTINUE_WITHIN = 480  # 10 ms: a frame this close to the previous one's end continues it
_BITRATE = 64_000


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
        self._container: Any = av.open(writer, mode="w", format="webm", options={"live": "1"})
        unix_ms = round(started_at_utc.timestamp() * 1000)
        self._container.metadata.update(
            {
                "creation_time": started_at_utc.isoformat(timespec="microseconds").replace(
                    "+00:00", "Z"
                ),
                "TAPEDECK_STARTED_AT_UNIX_MS": str(unix_ms),
                **tags,
            }
        )
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
