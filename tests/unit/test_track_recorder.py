"""The tracks stage on fake time: a file per session from the join, Opus written as sent,
pauses and losses kept as silent time, and files closed when their participant leaves."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from tapedeck_bot.contract import Output, StopReason, TracksSpec
from tapedeck_bot.control import RecordingControl
from tapedeck_bot.media.events import End, Joined, Left, Placed, StageEvent
from tapedeck_bot.media.mailbox import Mailbox
from tapedeck_bot.meeting import ParticipantInfo
from tapedeck_bot.tracks.recorder import TrackRecorder
from tapedeck_bot.tracks.writer import SILENCE_FRAMES, opus_samples
from tests.unit.pipeline_fakes import RATE, BytesWriter, FakeClock, opus_frame, opus_packets

WALL_T0 = 1_800_000_000.0
SILENCE = set(SILENCE_FRAMES.values())
ALICE = ParticipantInfo("11", "alice", "Alice")


class Rig:
    def __init__(self, **spec: object) -> None:
        self.control = RecordingControl(max_seconds=100, idle_timeout_s=60)
        self.mailbox: Mailbox[StageEvent] = Mailbox(100_000)
        self.files: dict[str, BytesWriter] = {}
        self.tracks = TrackRecorder(
            TracksSpec.model_validate({"enabled": True, **spec}),
            "daily",
            self._open,
            self.mailbox,
            lambda: self.control.state,
            WALL_T0,
            FakeClock(),
        )

    def _open(self, output: Output) -> BytesWriter:
        self.files[output.key] = writer = BytesWriter()
        return writer

    def send(self, *events: StageEvent) -> float | None:
        for event in events:
            self.mailbox.put(event, droppable=False)
        return self.tracks.step(0.0)

    def talk(self, peer: str, start: float, seconds: float, *, skip: range = range(0)) -> None:
        """Opus packets every 20 ms from media time `start`, but for the indexes in `skip`."""
        for n in range(round(seconds / 0.02)):
            if n not in skip:
                at = start + n * 0.02
                self.send(Placed(peer, "audio", at, opus_frame(440, n)))


def _decode(writer: BytesWriter) -> np.ndarray:
    with av.open(io.BytesIO(writer.buffer.getvalue())) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        chunks = [
            r.to_ndarray().reshape(-1)
            for f in container.decode(audio=0)
            for r in resampler.resample(f)
        ]
    return np.concatenate(chunks)


def _loud(samples: np.ndarray, start: float, end: float) -> float:
    """RMS of samples in [start, end) seconds of the file."""
    window = samples[int(start * RATE) : int(end * RATE)]
    return float(np.sqrt(np.mean(window**2)))


def test_a_track_spans_the_presence_from_the_join_with_silence_until_the_first_packet() -> None:
    rig = Rig()
    rig.send(Joined("11", ALICE, 2.0))
    rig.talk("11", 2.5, 3.0)  # the first packet arrives half a second after the join
    rig.send(Left("11", 5.5))
    ((name, writer),) = rig.files.items()
    assert name == f"daily_alice_11_webcam_audio_{round((WALL_T0 + 2.0) * 1000)}.webm"
    assert writer.closed
    samples = _decode(writer)
    assert len(samples) / RATE == pytest.approx(3.5, abs=0.03)
    assert _loud(samples, 0.0, 0.45) < 1e-4
    assert _loud(samples, 0.6, 3.4) > 0.1
    # The first packet plays where the media clock put it: 0.5 s into the file, counting the
    # header's pre-skip, which players drop (WebM stamps milliseconds; silence comes in 2.5 ms).
    with av.open(io.BytesIO(writer.buffer.getvalue())) as container:
        stream = container.streams.audio[0]
        pre_skip_ms = int.from_bytes(stream.codec_context.extradata[10:12], "little") / 48
        first = next(p.pts for p in container.demux(stream) if p.size and bytes(p) not in SILENCE)
    assert first - pre_skip_ms == pytest.approx(500, abs=2.6)
    with av.open(io.BytesIO(writer.buffer.getvalue())) as container:
        metadata = container.metadata
    assert metadata["TAPEDECK_STARTED_AT_UNIX_MS"] == str(round((WALL_T0 + 2.0) * 1000))
    assert metadata["TAPEDECK_DISPLAY_NAME"] == "Alice"
    (output,) = rig.tracks.outputs()
    assert (output.content_type, output.complete, output.user_id) == ("audio/webm", True, "alice")


def test_opus_packets_are_written_as_sent() -> None:
    rig = Rig()
    rig.send(Joined("11", ALICE, 0.0))
    rig.talk("11", 0.0, 1.0)
    rig.send(End())
    (writer,) = rig.files.values()
    with av.open(io.BytesIO(writer.buffer.getvalue())) as container:
        written = [bytes(p) for p in container.demux(audio=0) if p.size]
    sent = list(opus_packets(440))
    assert [p for p in written if p not in SILENCE] == sent  # not one byte re-encoded


def test_lost_packets_stay_as_silent_time() -> None:
    rig = Rig()
    rig.send(Joined("11", ALICE, 0.0))
    rig.talk("11", 0.0, 4.0, skip=range(50, 100))  # one second lost after the first
    rig.send(End())
    samples = _decode(next(iter(rig.files.values())))
    assert len(samples) / RATE == pytest.approx(4.0, abs=0.03)
    assert _loud(samples, 1.05, 1.95) < 1e-3
    assert _loud(samples, 0.1, 0.95) > 0.1
    assert _loud(samples, 2.05, 3.9) > 0.1


def test_a_pause_is_written_as_silence_of_its_length() -> None:
    rig = Rig()
    rig.control.pause(1.0)
    rig.control.resume(2.5)
    rig.send(Joined("11", ALICE, 0.0))
    rig.talk("11", 0.0, 4.0)
    rig.send(End())
    samples = _decode(next(iter(rig.files.values())))
    assert len(samples) / RATE == pytest.approx(4.0, abs=0.03)
    assert _loud(samples, 1.05, 2.45) < 1e-3
    assert _loud(samples, 2.6, 3.9) > 0.1


def test_a_rejoin_is_a_new_file_and_the_leave_closes_the_first() -> None:
    rig = Rig()
    again = ParticipantInfo("12", "alice")
    rig.send(Joined("11", ALICE, 0.0))
    rig.talk("11", 0.0, 1.0)
    rig.send(Left("11", 1.0))
    first = rig.tracks.outputs()
    assert [o.complete for o in first] == [True]
    rig.send(Joined("12", again, 3.0))
    rig.talk("12", 3.0, 1.0)
    outputs = rig.tracks.outputs()
    assert [o.key.split("_")[2] for o in outputs] == ["11", "12"]
    assert [o.complete for o in outputs] == [True, False]
    assert rig.send(End()) is None
    assert all(o.complete for o in rig.tracks.outputs())


def test_only_the_listed_users_and_nothing_after_the_stop_is_written() -> None:
    rig = Rig(userIds=["bob"])
    rig.send(Joined("11", ALICE, 0.0))
    rig.talk("11", 0.0, 0.5)
    assert rig.files == {}
    rig = Rig()
    rig.control.stop(0.5, StopReason.STOPPED)
    rig.send(Joined("11", ALICE, 0.0))
    rig.talk("11", 0.0, 1.0)
    rig.send(End())
    samples = _decode(next(iter(rig.files.values())))
    assert len(samples) / RATE == pytest.approx(0.5, abs=0.03)


def test_opus_packet_lengths_follow_the_toc() -> None:
    assert {opus_samples(frame) for frame in SILENCE_FRAMES.values()} == set(SILENCE_FRAMES)
    assert opus_samples(bytes([0x0B << 3 | 1, 0])) == 2 * 2880  # SILK 60 ms, two frames
    assert opus_samples(bytes([0x1C << 3 | 3, 0x03])) == 3 * 120  # CELT 2.5 ms, three frames
    assert opus_samples(b"") == 0


def test_a_failing_file_is_closed_with_its_writer_and_the_others_too() -> None:
    rig = Rig()
    failing: list[BytesWriter] = []

    def open_failing(output: Output) -> BytesWriter:
        failing.append(BytesWriter(fail_after=1500))
        return failing[-1]

    rig.tracks.open_writer = open_failing
    bob = ParticipantInfo("21", "bob")
    rig.mailbox.put(Joined("11", ALICE, 0.0))
    rig.mailbox.put(Joined("21", bob, 0.0))
    for n in range(100):
        rig.mailbox.put(Placed("11", "audio", n * 0.02, opus_frame(440, n)))
        rig.mailbox.put(Placed("21", "audio", n * 0.02, opus_frame(660, n)))
    with pytest.raises(OSError, match="No space left"):
        rig.send()
    with pytest.raises(OSError, match="No space left"):
        rig.tracks.finish()
    assert len(failing) == 2
    assert all(w.closed for w in failing)  # an upload never waits for bytes that won't come
