"""The tracks stage: per-participant track files, fed by the placement stage.

One file per participant session: a rejoin is a new peer id, so a new file. Paused spans are
written as silence rather than cut, so that a track stays aligned with the wall clock (and
with the other tracks) by its start time alone; what was said while paused is not recorded.

Only this stage's thread touches the files; the recorder reads `outputs()` and
`bytes_written` for progress, from a list that is only ever appended to.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from av import VideoFrame

from tapedeck_bot.clock import Clock
from tapedeck_bot.contract import STREAM_KINDS, Output, StreamKind, TracksSpec, content_type_of
from tapedeck_bot.control import ControlState, ControlView
from tapedeck_bot.media.events import End, Joined, Left, Placed, Presence, StageEvent
from tapedeck_bot.media.mailbox import Mailbox
from tapedeck_bot.media.worker import Stage
from tapedeck_bot.media.writer import OpenWriter, OutputWriter
from tapedeck_bot.meeting import EncodedFrame
from tapedeck_bot.tracks.naming import track_file_name
from tapedeck_bot.tracks.writer import (
    KEPT_AS_SENT,
    AudioTrackFile,
    VideoTrackFile,
    vp8_keyframe_size,
)

__all__ = ["TrackRecorder"]

log = logging.getLogger("tapedeck_bot.tracks")

_STEP_S = 0.05


@dataclass
class _Track:
    presence: Presence
    kind: StreamKind
    name: str
    file: AudioTrackFile | VideoTrackFile
    closed: bool = False


class TrackRecorder(Stage):
    """Writes each wanted participant's audio (and video) to their own files."""

    def __init__(
        self,
        spec: TracksSpec,
        prefix: str | None,
        open_writer: OpenWriter,
        mailbox: Mailbox[StageEvent],
        control: ControlView,
        wall_t0: float,
        clock: Clock,
    ) -> None:
        self.spec, self.prefix, self.open_writer = spec, prefix, open_writer
        self.mailbox, self.control = mailbox, control
        self.wall_t0 = wall_t0  # the wall clock at media time 0
        self.kinds = STREAM_KINDS[spec.media_kind]
        self._present: dict[str, Presence] = {}  # by session
        self._open_tracks: dict[tuple[str, StreamKind], _Track] = {}  # (session, kind)
        self._tracks: list[_Track] = []  # every file, in order; only appended to
        self._passthrough: dict[str, bool] = {}  # session -> its video arrives as VP8
        super().__init__("tracks", clock)

    def step(self, now: float) -> float | None:
        for event in self.mailbox.take():
            if isinstance(event, Placed):
                self._placed(event)
            elif isinstance(event, Joined):
                self._present[event.session] = Presence(event.info, event.at)
            elif isinstance(event, Left):
                self._left(event)
            elif isinstance(event, End):
                self._close_all()
                return None
        return _STEP_S

    def finish(self) -> None:
        self._close_all()

    def _placed(self, event: Placed) -> None:
        presence = self._present.get(event.session)
        control = self.control()  # one snapshot per frame
        if presence is None or not self._recording(presence, event.kind, event.at, control):
            return
        paused = control.is_paused_at(event.at)
        payload = event.payload
        if event.kind == "audio" and isinstance(payload, EncodedFrame):
            self._audio(event.session, presence, event.at, payload, paused=paused)
        elif isinstance(payload, EncodedFrame):
            passthrough = payload.mime_type in KEPT_AS_SENT
            self._passthrough[event.session] = passthrough
            if passthrough and not paused:
                keyframe = vp8_keyframe_size(payload.data) is not None
                track = self._video_track(event.session, presence, event.at, keyframe=keyframe)
                if track is not None:
                    assert isinstance(track.file, VideoTrackFile)
                    track.file.write_encoded(event.at, payload.data)
        elif isinstance(payload, VideoFrame) and not paused:
            if self._passthrough.get(event.session, True):
                return  # VP8 is written as sent
            track = self._video_track(event.session, presence, event.at, keyframe=True)
            if track is not None:
                assert isinstance(track.file, VideoTrackFile)
                track.file.write_frame(event.at, payload)

    def _recording(
        self, presence: Presence, kind: StreamKind, at: float, control: ControlState
    ) -> bool:
        wanted = not self.spec.user_ids or presence.info.user_id in self.spec.user_ids
        return wanted and kind in self.kinds and at >= 0 and not control.stopped_by(at)

    def _audio(
        self, session: str, presence: Presence, at: float, frame: EncodedFrame, *, paused: bool
    ) -> None:
        track = self._open_tracks.get((session, "audio"))
        if track is None:
            # A track spans the whole presence: from the join (or the recording's start),
            # with silence until the first packet arrives (~0.1 s: subscription and ICE).
            start = min(at, presence.joined_at)
            track = self._open(
                session,
                presence,
                "audio",
                start,
                lambda writer, started, tags: AudioTrackFile(
                    writer, start=start, started_at_utc=started, tags=tags
                ),
            )
        assert isinstance(track.file, AudioTrackFile)
        track.file.write(at, frame.data, silent=paused)

    def _video_track(
        self, session: str, presence: Presence, at: float, *, keyframe: bool
    ) -> _Track | None:
        track = self._open_tracks.get((session, "video"))
        if track is None and keyframe:  # a video file can only start at a keyframe
            track = self._open(
                session,
                presence,
                "video",
                at,
                lambda writer, started, tags: VideoTrackFile(
                    writer, start=at, started_at_utc=started, tags=tags
                ),
            )
        return track

    def _open(
        self,
        session: str,
        presence: Presence,
        kind: StreamKind,
        start: float,
        make: Callable[
            [OutputWriter, dt.datetime, dict[str, str]], AudioTrackFile | VideoTrackFile
        ],
    ) -> _Track:
        started = dt.datetime.fromtimestamp(self.wall_t0 + start, dt.UTC)
        info = presence.info
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
            content_type=content_type_of(name),
            user_id=info.user_id,
            started_at=started,
        )
        writer = self.open_writer(output)
        try:
            file = make(writer, started, tags)
        except BaseException:
            writer.close()  # a spooled upload must not wait for bytes that never come
            raise
        track = _Track(presence, kind, name, file)
        self._open_tracks[(session, kind)] = track
        self._tracks.append(track)
        return track

    def _left(self, event: Left) -> None:
        """Their last frames are placed: close their files."""
        presence = self._present.pop(event.session, None)
        if presence is not None:
            presence.left_at = event.at
        self._passthrough.pop(event.session, None)
        for kind in self.kinds:
            track = self._open_tracks.pop((event.session, kind), None)
            if track is not None:
                self._close(track)

    def _close_all(self) -> None:
        """Close every open file; a failing close does not leave the others open."""
        failure: BaseException | None = None
        while self._open_tracks:
            try:
                self._close(self._open_tracks.popitem()[1])
            except Exception as exc:
                log.exception("closing a track failed")
                failure = failure or exc
        if failure is not None:
            raise failure

    def _close(self, track: _Track) -> None:
        track.file.close()
        track.closed = True
        log.info("track finished", extra={"file": track.name, "seconds": track.file.seconds})

    def outputs(self) -> list[Output]:
        return [
            Output(
                kind="track",
                key=t.name,
                content_type=content_type_of(t.name),
                bytes=t.file.writer.bytes_written,
                user_id=t.presence.info.user_id,
                started_at=t.file.started_at_utc,
                complete=t.closed,
            )
            for t in list(self._tracks)
        ]

    @property
    def bytes_written(self) -> int:
        return sum(t.file.writer.bytes_written for t in list(self._tracks))
