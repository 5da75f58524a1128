"""Synthetic VideoRoom participants: aiortc publishers with a known colour and tone.

`tapedeck-dev participant` runs one publisher in its own process (so that a test can SIGKILL
it); `tapedeck-dev meeting` runs several on a schedule of joins and leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription

from tapedeck_bot.janus.client import JanusHandle, JanusSession, JanusUnavailable
from tapedeck_bot.webrtc import restrict_host_candidates, rtc_configuration
from tapedeck_dev.lossy import AudioLoss, drop_audio
from tapedeck_dev.media import COLORS, ColorTrack, MediaClock, ToneTrack

__all__ = [
    "Publisher",
    "ensure_room",
    "participant_command",
    "participant_plan",
    "run_meeting",
    "run_participant",
    "until_signalled",
]

log = logging.getLogger("tapedeck_dev.participant")

# Distinct colours and tones, far enough apart for FFT and colour checks.
PALETTE = ["red", "green", "blue", "yellow", "magenta", "cyan", "orange", "purple", "grey"]
TONES = [440.0, 660.0, 880.0, 1100.0, 1320.0, 1540.0, 1760.0, 1980.0, 2200.0]


async def ensure_room(
    url: str, room: int, *, videocodec: str = "vp8,h264", pin: str | None = None
) -> None:
    """Create the VideoRoom `room` unless it exists (opus audio, join notifications on)."""
    async with JanusSession(url) as session:
        handle = await session.attach()
        exists = await handle.request({"request": "exists", "room": room})
        if exists.get("exists"):
            return
        await handle.request(
            {
                "request": "create",
                "room": room,
                "permanent": False,
                "publishers": 16,
                "audiocodec": "opus",
                "videocodec": videocodec,
                "notify_joining": True,
                "bitrate": 1_000_000,
                "description": f"tapedeck-dev room {room}",
                **({"pin": pin} if pin else {}),
            }
        )


@dataclass
class Publisher:
    url: str
    room: int
    display: str
    color: str
    freq: float
    sync: bool = False
    videocodec: str | None = None
    amplitude: float = 0.3
    loss: AudioLoss | None = None
    video: bool = True  # False: audio only
    video_off: tuple[float, float] | None = None  # the camera off in this span
    feed_id: int | None = None

    async def start(self) -> int:
        self._session = await JanusSession(self.url).create()
        self._handle: JanusHandle = await self._session.attach()
        data, _ = await self._handle.message(
            {"request": "join", "ptype": "publisher", "room": self.room, "display": self.display}
        )
        self.feed_id = int(data["id"])
        self._pc = RTCPeerConnection(rtc_configuration())
        clock = MediaClock()
        self._pc.addTrack(ToneTrack(self.freq, clock, amplitude=self.amplitude, sync=self.sync))
        if self.video:
            self._add_video(clock)
        await self._pc.setLocalDescription(await self._pc.createOffer())
        body = {"request": "publish", "display": self.display}
        data, jsep = await self._handle.message(
            body, jsep={"type": "offer", "sdp": self._pc.localDescription.sdp}
        )
        assert jsep is not None, data
        await self._pc.setRemoteDescription(RTCSessionDescription(jsep["sdp"], jsep["type"]))
        if self.loss is not None:
            drop_audio(self._pc, self.loss)
        return self.feed_id

    def _add_video(self, clock: MediaClock) -> None:
        track = ColorTrack(COLORS[self.color], clock, sync=self.sync, off=self.video_off)
        video = self._pc.addTransceiver(track, direction="sendonly")
        if self.videocodec:
            wanted = f"video/{self.videocodec.upper()}"
            codecs = RTCRtpSender.getCapabilities("video").codecs
            video.setCodecPreferences([c for c in codecs if c.mimeType in (wanted, "video/rtx")])

    async def stop(self) -> None:
        with contextlib.suppress(Exception):  # leaving a room that is already gone is fine
            await self._handle.message({"request": "leave"}, timeout=5)
        await self._pc.close()
        await self._session.destroy()


async def until_signalled(seconds: float | None) -> None:
    """Until SIGTERM or SIGINT, or `seconds` (None: no limit)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


def participant_plan(count: int) -> list[tuple[str, str, float]]:
    """(display, colour, tone) for `count` participants."""
    names = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan"]
    return [(names[i], PALETTE[i], TONES[i]) for i in range(count)]


async def run_participant(
    url: str,
    room: int,
    display: str,
    color: str,
    freq: float,
    *,
    seconds: float | None,
    sync: bool,
    videocodec: str | None,
    amplitude: float = 0.3,
    loss: AudioLoss | None = None,
    video: bool = True,
    video_off: tuple[float, float] | None = None,
) -> None:
    restrict_host_candidates()
    publisher = Publisher(
        url,
        room,
        display,
        color,
        freq,
        sync=sync,
        videocodec=videocodec,
        amplitude=amplitude,
        loss=loss,
        video=video,
        video_off=video_off,
    )
    feed = await publisher.start()
    print(f"PUBLISHED {feed} {display} {time.time():.3f}", flush=True)
    await until_signalled(seconds)
    await publisher.stop()
    print(f"LEFT {feed} {display} {time.time():.3f}", flush=True)


def participant_command(
    url: str,
    room: int,
    index: int,
    *,
    sync: bool = False,
    videocodec: str | None = None,
    freq: float | None = None,
    seconds: float | None = None,
    amplitude: float | None = None,
    drop_audio: str | None = None,
    audio_loss: float | None = None,
    audio_only: bool = False,
    video_off: tuple[float, float] | None = None,
) -> list[str]:
    """The `tapedeck-dev participant` command line of planned participant `index`."""
    display, color, planned = participant_plan(index + 1)[index]
    args = [
        sys.executable,
        "-m",
        "tapedeck_dev.cli",
        "participant",
        "--janus",
        url,
        "--room",
        str(room),
        "--name",
        display,
        "--color",
        color,
        "--freq",
        str(freq or planned),
    ]
    if amplitude is not None:
        args += ["--amplitude", str(amplitude)]
    if seconds is not None:
        args += ["--seconds", str(seconds)]
    if sync:
        args.append("--sync")
    if videocodec:
        args += ["--codec", videocodec]
    if drop_audio:
        args += ["--drop-audio", drop_audio]
    if audio_loss:
        args += ["--audio-loss", str(audio_loss)]
    if audio_only:
        args.append("--audio-only")
    if video_off:
        args += ["--video-off", f"{video_off[0]}:{video_off[1] - video_off[0]}"]
    return args


def spawn_participant(
    url: str, room: int, index: int, *, sync: bool = False, videocodec: str | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        participant_command(url, room, index, sync=sync, videocodec=videocodec),
        stdout=subprocess.PIPE,
        text=True,
    )


_JANUS_WAIT_S = 60


class MeetingFailed(RuntimeError):
    """A participant ended on its own, so the meeting is no longer what was asked for."""


async def _with_janus(call: Callable[[], Awaitable[None]], wait_s: float) -> None:
    """`call`, tried again while Janus does not answer yet (a Service without endpoints)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            await call()
            return
        except JanusUnavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1)


def _check_alive(procs: dict[int, subprocess.Popen[str]], left: set[int]) -> None:
    for i, proc in procs.items():
        if i not in left and (code := proc.poll()) is not None:
            name = participant_plan(i + 1)[i][0]
            raise MeetingFailed(f"participant {name} exited with status {code}")


async def run_meeting(
    url: str,
    room: int,
    count: int,
    *,
    join_at: list[float],
    leave_at: list[float],
    sync: bool,
    videocodec: str | None,
    seconds: float | None,
) -> None:
    """Run `count` participant processes; participant i joins at join_at[i] and leaves at
    leave_at[i] seconds (missing entries: at once, and never). Waits up to a minute for Janus
    to answer; raises MeetingFailed when a participant ends that was not meant to leave."""
    await _with_janus(lambda: ensure_room(url, room), _JANUS_WAIT_S)
    # SIGTERM must end the participants too: cancel this task so that `finally` runs.
    this = asyncio.current_task()
    assert this is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, this.cancel)
    started = time.monotonic()
    procs: dict[int, subprocess.Popen[str]] = {}
    events = sorted(
        [(join_at[i] if i < len(join_at) else 0.0, "join", i) for i in range(count)]
        + [(leave_at[i], "leave", i) for i in range(min(count, len(leave_at))) if leave_at[i] >= 0]
    )
    left: set[int] = set()
    end = None if seconds is None else started + seconds
    try:
        for at, what, i in events:
            while time.monotonic() - started < at:
                _check_alive(procs, left)
                await asyncio.sleep(min(1.0, at - (time.monotonic() - started)))
            if what == "join":
                procs[i] = spawn_participant(url, room, i, sync=sync, videocodec=videocodec)
                print(
                    f"{time.monotonic() - started:.1f}s join {participant_plan(i + 1)[i][0]}",
                    flush=True,  # the demo waits for this line in a log file
                )
            elif i in procs:
                left.add(i)
                procs[i].send_signal(signal.SIGTERM)
                print(
                    f"{time.monotonic() - started:.1f}s leave {participant_plan(i + 1)[i][0]}",
                    flush=True,
                )
        while end is None or time.monotonic() < end:
            _check_alive(procs, left)
            await asyncio.sleep(1.0 if end is None else min(1.0, end - time.monotonic()))
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            proc.wait()
