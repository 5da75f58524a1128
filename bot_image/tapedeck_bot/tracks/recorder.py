"""Per-participant track files, fed by the router as it places each participant's audio.

One file per participant session: a rejoin is a new peer id, so a new file. Paused spans are
written as silence rather than cut, so that a track stays aligned with the wall clock (and
with the other tracks) by its start time alone; what was said while paused is not recorded.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tapedeck_bot.contract import Output, TracksSpec
from tapedeck_bot.control import RecordingControl
from tapedeck_bot.media.router import MediaRouter, ParticipantMedia
from tapedeck_bot.media.writer import OutputWriter
from tapedeck_bot.tracks.naming import track_file_name
from tapedeck_bot.tracks.writer import AudioTrackFile

__all__ = ["TrackPipeline", "TrackRecorder"]

log = logging.getLogger("tapedeck_bot.tracks")


@dataclass
class _Track:
    media: ParticipantMedia
    name: str
    file: AudioTrackFile
    closed: bool = False


class TrackRecorder:
    """A router listener: writes each wanted participant's audio to its own file."""

    def __init__(
        self,
        spec: TracksSpec,
        prefix: str | None,
        open_writer: Callable[[str], OutputWriter],
        control: RecordingControl,
        wall_t0: float,
    ) -> None:
        self.spec, self.prefix, self.open_writer = spec, prefix, open_writer
        self.control = control
        self.wall_t0 = wall_t0  # time.time() at media time 0
        self._tracks: dict[str, _Track] = {}
        self._lock = threading.Lock()

    def wants(self, media: ParticipantMedia) -> bool:
        return not self.spec.user_ids or media.info.user_id in self.spec.user_ids

    def on_audio(self, media: ParticipantMedia, at: float, pcm: np.ndarray) -> None:
        if not self.wants(media) or at < 0:
            return
        if self.control.stop_at is not None and at >= self.control.stop_at:
            return
        if self.control.is_paused_at(at):
            pcm = np.zeros_like(pcm)
        with self._lock:
            track = self._tracks.get(media.info.peer_id)
            if track is None:
                track = self._tracks[media.info.peer_id] = self._open(media, at)
            if not track.closed:
                track.file.write(at, pcm)

    def _open(self, media: ParticipantMedia, at: float) -> _Track:
        # A track spans the whole presence: from the join (or the recording's start), with
        # silence until the first sample arrives (~0.1 s: subscription and ICE).
        start = min(at, media.joined_at)
        started = dt.datetime.fromtimestamp(self.wall_t0 + start, dt.UTC)
        info = media.info
        name = track_file_name(
            self.prefix, info.user_id, info.peer_id, "audio", round(started.timestamp() * 1000)
        )
        log.info("track started", extra={"file": name, "user_id": info.user_id})
        file = AudioTrackFile(
            self.open_writer(name),
            start=start,
            started_at_utc=started,
            tags={
                "TAPEDECK_USER_ID": info.user_id,
                "TAPEDECK_PEER_ID": info.peer_id,
                "TAPEDECK_DISPLAY_NAME": info.display_name or "",
            },
        )
        return _Track(media, name, file)

    def close_departed(self, horizon: float) -> None:
        """Close the files of participants who left before media time `horizon`."""
        with self._lock:
            for track in self._tracks.values():
                left = track.media.left_at
                if not track.closed and left is not None and left < horizon:
                    self._close(track)

    def close_all(self) -> None:
        with self._lock:
            for track in self._tracks.values():
                if not track.closed:
                    self._close(track)

    def _close(self, track: _Track) -> None:
        track.file.close()
        track.closed = True
        log.info("track finished", extra={"file": track.name, "seconds": track.file.seconds})

    def outputs(self) -> list[Output]:
        with self._lock:
            return [
                Output(
                    kind="track",
                    key=t.name,
                    content_type="audio/webm",
                    bytes=t.file.writer.bytes_written,
                    user_id=t.media.info.user_id,
                    started_at=t.file.started_at_utc,
                    complete=t.closed,
                )
                for t in self._tracks.values()
            ]

    @property
    def bytes_written(self) -> int:
        with self._lock:
            return sum(t.file.writer.bytes_written for t in self._tracks.values())


class TrackPipeline:
    """A thread that keeps frames flowing into the track recorder and closes finished files."""

    def __init__(
        self,
        router: MediaRouter,
        control: RecordingControl,
        tracks: TrackRecorder,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.router, self.control, self.tracks = router, control, tracks
        self._clock = clock
        self._thread = threading.Thread(target=self._run, name="tracks", daemon=True)
        self.error: BaseException | None = None
        self.done = threading.Event()

    def start(self) -> None:
        self._thread.start()

    @property
    def bytes_written(self) -> int:
        return self.tracks.bytes_written

    def _run(self) -> None:
        try:
            while True:
                now = self._clock()
                self.router.settle(now)
                # Everything that arrived before this has been placed.
                horizon = now - self.router.t0 - self.router.placement_delay_s - 0.2
                self.tracks.close_departed(horizon)
                end = self.control.stop_at
                if end is not None and horizon >= end:
                    return
                time.sleep(0.05)
        except BaseException as exc:  # reported to the recorder, which fails the recording
            log.exception("track pipeline failed")
            self.error = exc
        finally:
            self.tracks.close_all()
            self.done.set()
