"""Fakes for the bot's pipeline unit tests: a clock that never sleeps, an in-memory meeting
and writer, and media (Opus packets, tone frames, coloured frames) made with PyAV."""

from __future__ import annotations

import asyncio
import fractions
import functools
import io
import threading
from dataclasses import dataclass, field

import av
import numpy as np
from av import AudioFrame, VideoFrame

from tapedeck_bot.meeting import EncodedFrame, MeetingSink, ParticipantInfo

RATE = 48000


class FakeClock:
    """Time that moves only when someone waits or sleeps: nothing ever sleeps for real.

    By default a `wait` moves time on by its timeout (one thread drives time). With
    `driven_by_sleep`, only the asyncio side's `sleep` moves time, and only once every thread
    that waits on this clock is waiting (or gone): the recorder's stages then run in lockstep
    with the recorder's clock, however the machine schedules them. A pipeline stage's thread
    (by its name) holds time from its start, before its first wait: on a loaded machine its
    first step would otherwise overlap seconds of fake time.
    """

    STAGE_THREADS = frozenset({"placement", "composite", "tracks"})

    def __init__(
        self, start: float = 1000.0, wall: float = 1_800_000_000.0, *, driven_by_sleep: bool = False
    ) -> None:
        self._now = start
        self._wall_offset = wall - start
        self._moved = threading.Condition()
        self.driven_by_sleep = driven_by_sleep
        self.waits: list[float] = []
        self._waiters: set[threading.Thread] = set()  # threads that wait on this clock
        self._waiting: set[threading.Thread] = set()  # those waiting now

    def monotonic(self) -> float:
        with self._moved:
            return self._now

    def time(self) -> float:
        return self.monotonic() + self._wall_offset

    def advance(self, seconds: float) -> None:
        with self._moved:
            self._now += seconds
            self._moved.notify_all()

    def wait(self, event: threading.Event, timeout: float) -> bool:
        if event.is_set():
            return True
        self.waits.append(timeout)
        if not self.driven_by_sleep:
            self.advance(timeout)
            return event.is_set()
        me = threading.current_thread()
        with self._moved:
            self._waiters.add(me)
            self._waiting.add(me)
            self._moved.notify_all()
            deadline = self._now + timeout
            self._moved.wait_for(lambda: self._now >= deadline or event.is_set())
            self._waiting.discard(me)
        return event.is_set()

    def _all_waiting(self) -> bool:
        stages = {t for t in threading.enumerate() if t.name in self.STAGE_THREADS}
        return all(t in self._waiting or not t.is_alive() for t in self._waiters | stages)

    async def sleep(self, seconds: float) -> None:
        if self.driven_by_sleep:
            with self._moved:
                # Re-checked every 10 ms for threads that ended without a last wait.
                while not self._all_waiting():
                    self._moved.wait(0.01)
        self.advance(seconds)
        await asyncio.sleep(0)  # let the loop's other tasks run


class BytesWriter:
    """An OutputWriter into memory."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.buffer = io.BytesIO()
        self.closed = False
        self.fail_after = fail_after  # bytes, then OSError (a full disk)

    @property
    def bytes_written(self) -> int:
        return self.buffer.tell()

    def write(self, data: bytes) -> int:
        if self.fail_after is not None and self.bytes_written + len(data) > self.fail_after:
            raise OSError(28, "No space left on device")
        return self.buffer.write(data)

    def close(self) -> None:
        self.closed = True


@functools.cache
def opus_packets(freq: float, count: int = 50) -> tuple[bytes, ...]:
    """`count` 20 ms Opus packets of a stereo tone, as a WebRTC sender sends them mid-call
    (past the encoder's start-up, whose first packets hold its look-ahead delay)."""
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = RATE, "stereo", "s16"
    encoder.open()
    packets: list[bytes] = []
    for n in range(count + 10):
        t = np.arange(960) + n * 960
        mono = (np.sin(2 * np.pi * freq * t / RATE) * 8000).astype(np.int16)
        frame = AudioFrame.from_ndarray(
            np.repeat(mono, 2).reshape(1, -1), format="s16", layout="stereo"
        )
        frame.sample_rate, frame.pts = RATE, n * 960
        packets += [bytes(p) for p in encoder.encode(frame)]
    return tuple(packets[5 : count + 5])


def opus_frame(freq: float, n: int) -> EncodedFrame:
    packets = opus_packets(freq)
    return EncodedFrame("audio/opus", packets[n % len(packets)], n * 960, RATE)


def tone_frame(freq: float, n: int) -> AudioFrame:
    """Decoded audio as aiortc delivers it: 20 ms packed stereo s16, pts in 1/48000."""
    t = np.arange(960) + n * 960
    mono = (np.sin(2 * np.pi * freq * t / RATE) * 8000).astype(np.int16)
    frame = AudioFrame.from_ndarray(
        np.repeat(mono, 2).reshape(1, -1), format="s16", layout="stereo"
    )
    frame.sample_rate = RATE
    frame.pts, frame.time_base = n * 960, fractions.Fraction(1, RATE)
    return frame


def colour_frame(
    rgb: tuple[int, int, int], pts: int, size: tuple[int, int] = (64, 36)
) -> VideoFrame:
    image = np.zeros((size[1], size[0], 3), np.uint8)
    image[:, :] = rgb
    frame = VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
    frame.pts, frame.time_base = pts, fractions.Fraction(1, 90000)
    return frame


@dataclass
class Person:
    """A participant of a ScriptedMeeting: present in [joins, leaves), sending a tone but
    for the `lost` span (their media interrupted); a leave is told at `leave_told`, dated
    back to `leaves` (a connector that noticed late), or at once."""

    name: str
    freq: float
    joins: float = 0.0
    leaves: float | None = None
    lost: tuple[float, float] | None = None
    leave_told: float | None = None
    info: ParticipantInfo = field(init=False)

    def __post_init__(self) -> None:
        self.info = ParticipantInfo(peer_id=f"{self.name}-{self.joins}", user_id=self.name)


class ScriptedMeeting:
    """A MeetingConnector on the fake clock: people join, send 20 ms of Opus (and decoded
    audio, when `decoded`) every 20 ms, and leave, at the times of the script."""

    def __init__(
        self,
        clock: FakeClock,
        people: list[Person],
        *,
        decoded: bool = False,
        join_error: Exception | None = None,
        fail_at: float | None = None,
    ) -> None:
        self.clock, self.people, self.decoded = clock, people, decoded
        self.join_error, self.fail_at = join_error, fail_at
        self._leaving = asyncio.Event()
        self._lost: set[str] = set()  # peers whose media is interrupted now

    async def join(self) -> None:
        if self.join_error is not None:
            raise self.join_error
        self.t0 = self.clock.monotonic()

    async def leave(self) -> None:
        self._leaving.set()

    async def run(self, sink: MeetingSink) -> None:
        joined: set[str] = set()
        left: set[str] = set()
        n = 0  # 20 ms slots sent so far
        while not self._leaving.is_set():
            now = self.clock.monotonic()
            if self.fail_at is not None and now - self.t0 >= self.fail_at:
                raise ConnectionError("the SFU went away")
            while n * 0.02 <= now - self.t0:  # every slot due by now (time moves in leaps)
                self._slot(sink, n, self.t0 + n * 0.02, joined, left)
                n += 1
            await self.clock.sleep(0.02)

    def _slot(
        self, sink: MeetingSink, n: int, now: float, joined: set[str], left: set[str]
    ) -> None:
        t = now - self.t0
        for person in self.people:
            peer = person.info.peer_id
            if peer not in joined and t >= person.joins:
                joined.add(peer)
                sink.participant_joined(person.info, now)
            if peer in joined and peer not in left:
                if person.leaves is not None and t >= max(person.leaves, person.leave_told or 0):
                    left.add(peer)
                    sink.participant_left(peer, self.t0 + person.leaves)
                    continue
                if person.lost is not None and person.lost[0] <= t < person.lost[1]:
                    if peer not in self._lost:
                        self._lost.add(peer)
                        sink.media_interrupted(peer, now)
                    continue
                if person.leaves is not None and t >= person.leaves:
                    continue  # gone, not told yet
                if peer in self._lost:
                    self._lost.discard(peer)
                    sink.media_restored(peer, now)
                sink.encoded_frame(peer, "audio", opus_frame(person.freq, n), now)
                if self.decoded:
                    sink.media_frame(peer, "audio", tone_frame(person.freq, n), now)
