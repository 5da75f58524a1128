"""Per-participant track files, fed by the router as it places each participant's media.

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
from av import VideoFrame

from tapedeck_bot.contract import MediaKind, Output, TracksSpec
from tapedeck_bot.control import RecordingControl
from tapedeck_bot.media.router import EncodedVideo, MediaRouter, ParticipantMedia
from tapedeck_bot.media.worker import Worker
from tapedeck_bot.media.writer import OpenWriter, OutputWriter
from tapedeck_bot.meeting import MediaKind as MeetingMediaKind
from tapedeck_bot.tracks.naming import track_file_name
from tapedeck_bot.tracks.writer import AudioTrackFile, VideoTrackFile, vp8_keyframe_size

__all__ = ["TRACK_KINDS", "TrackPipeline", "TrackRecorder"]

log = logging.getLogger("tapedeck_bot.tracks")

_CONTENT_TYPES = {"audio": "audio/webm", "video": "video/webm"}

TRACK_KINDS: dict[MediaKind, frozenset[MeetingMediaKind]] = {
    MediaKind.AUDIO: frozenset({"audio"}),
    MediaKind.VIDEO: frozenset({"video"}),
    MediaKind.BOTH: frozenset({"audio", "video"}),
}


@dataclass
class _Track:
    media: ParticipantMedia
    kind: str  # "audio" | "video"
    name: str
    file: AudioTrackFile | VideoTrackFile
    closed: bool = False


class TrackRecorder:
    """A router listener: writes each wanted participant's audio (and video) to own files."""

    def __init__(
        self,
        spec: TracksSpec,
        prefix: str | None,
        open_writer: OpenWriter,
        control: RecordingControl,
        wall_t0: float,
    ) -> None:
        self.spec, self.prefix, self.open_writer = spec, prefix, open_writer
        self.control = control
        self.wall_t0 = wall_t0  # time.time() at media time 0
        self.kinds = TRACK_KINDS[spec.media_kind]
        self._tracks: dict[tuple[str, str], _Track] = {}  # (peer, kind)
        self._passthrough: dict[str, bool] = {}  # peer -> its video arrives as VP8
        self._lock = threading.Lock()

    def _recording(self, media: ParticipantMedia, kind: str, at: float) -> bool:
        wanted = not self.spec.user_ids or media.info.user_id in self.spec.user_ids
        stopped = self.control.stop_at is not None and at >= self.control.stop_at
        return wanted and kind in self.kinds and at >= 0 and not stopped

    def on_audio(self, media: ParticipantMedia, at: float, pcm: np.ndarray) -> None:
        if not self._recording(media, "audio", at):
            return
        if self.control.is_paused_at(at):
            pcm = np.zeros_like(pcm)
        with self._lock:
            track = self._tracks.get((media.info.peer_id, "audio"))
            if track is None:
                # A track spans the whole presence: from the join (or the recording's start),
                # with silence until the first sample arrives (~0.1 s: subscription and ICE).
                start = min(at, media.joined_at)
                track = self._open(
                    media,
                    "audio",
                    start,
                    lambda writer, started, tags: AudioTrackFile(
                        writer, start=start, started_at_utc=started, tags=tags
                    ),
                )
            if not track.closed:
                assert isinstance(track.file, AudioTrackFile)
                track.file.write(at, pcm)

    def on_encoded_video(self, media: ParticipantMedia, at: float, video: EncodedVideo) -> None:
        passthrough = video.mime_type == "video/VP8"
        self._passthrough[media.info.peer_id] = passthrough
        if not passthrough or not self._recording(media, "video", at):
            return
        if self.control.is_paused_at(at):
            return
        with self._lock:
            track = self._video_track(media, at, keyframe=vp8_keyframe_size(video.data) is not None)
            if track is not None and not track.closed:
                assert isinstance(track.file, VideoTrackFile)
                track.file.write_encoded(at, video.data)

    def on_video(self, media: ParticipantMedia, at: float, frame: VideoFrame) -> None:
        if (
            self._passthrough.get(media.info.peer_id, True)
            or not self._recording(media, "video", at)
            or self.control.is_paused_at(at)
        ):
            return  # VP8 is written as sent, from on_encoded_video
        with self._lock:
            track = self._video_track(media, at, keyframe=True)
            if track is not None and not track.closed:
                assert isinstance(track.file, VideoTrackFile)
                track.file.write_frame(at, frame)

    def _video_track(self, media: ParticipantMedia, at: float, *, keyframe: bool) -> _Track | None:
        track = self._tracks.get((media.info.peer_id, "video"))
        if track is None and keyframe:  # a video file can only start at a keyframe
            track = self._open(
                media,
                "video",
                at,
                lambda writer, started, tags: VideoTrackFile(
                    writer, start=at, started_at_utc=started, tags=tags
                ),
            )
        return track

    def _open(
        self,
        media: ParticipantMedia,
        kind: str,
        start: float,
        make: Callable[
            [OutputWriter, dt.datetime, dict[str, str]], AudioTrackFile | VideoTrackFile
        ],
    ) -> _Track:
        started = dt.datetime.fromtimestamp(self.wall_t0 + start, dt.UTC)
        info = media.info
        name = track_file_name(
            self.prefix, info.user_id, info.peer_id, kind, round(started.timestamp() * 1000)
        )
        log.info("track started", extra={"file": name, "user_id": info.user_id})
        tags = {
            "TAPEDECK_USER_ID": info.user_id,
            "TAPEDECK_PEER_ID": info.peer_id,
            "TAPEDECK_DISPLAY_NAME": info.display_name or "",
        }
        output = Output(
            kind="track",
            key=name,
            content_type=_CONTENT_TYPES[kind],
            user_id=info.user_id,
            started_at=started,
        )
        track = _Track(media, kind, name, make(self.open_writer(output), started, tags))
        self._tracks[(info.peer_id, kind)] = track
        return track

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
                    content_type=_CONTENT_TYPES[t.kind],
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


class TrackPipeline(Worker):
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
        super().__init__("tracks")

    @property
    def bytes_written(self) -> int:
        return self.tracks.bytes_written

    def work(self) -> None:
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

    def finish(self) -> None:
        self.tracks.close_all()
