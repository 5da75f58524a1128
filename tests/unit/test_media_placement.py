"""The network hand-over and the placement stage, on fake time: frames wait for the delay,
land at their media time whatever their arrival jitter, follow timestamp jumps, and go to
each outlet that wants them; leaves follow the last frames; the end follows the stop."""

from __future__ import annotations

import numpy as np
import pytest
from av import VideoFrame

from tapedeck_bot.contract import StopReason
from tapedeck_bot.control import RecordingControl
from tapedeck_bot.media.events import End, Joined, Left, Placed, StageEvent
from tapedeck_bot.media.mailbox import Mailbox
from tapedeck_bot.media.placement import Outlet, Placement
from tapedeck_bot.media.router import MediaRouter, PlacementInbox
from tapedeck_bot.meeting import ParticipantInfo
from tests.unit.pipeline_fakes import FakeClock, colour_frame, opus_frame, tone_frame

T0 = 1000.0
ALICE = ParticipantInfo("1", "alice")


class Rig:
    def __init__(self, *, outlet_limit: int = 10_000) -> None:
        self.clock = FakeClock(T0)
        self.control = RecordingControl(max_seconds=100, idle_timeout_s=60)
        inbox: PlacementInbox = Mailbox(10_000)
        self.router = MediaRouter(T0, inbox)
        self.composite: Mailbox[StageEvent] = Mailbox(outlet_limit)
        self.tracks: Mailbox[StageEvent] = Mailbox(outlet_limit)
        self.placement = Placement(
            T0,
            inbox,
            [
                Outlet(self.composite, decoded=frozenset({"audio", "video"})),
                Outlet(self.tracks, encoded=frozenset({"audio"})),
            ],
            lambda: self.control.state,
            self.clock,
        )

    def step(self, at: float) -> float | None:
        return self.placement.step(T0 + at)


def _placed(events: list[StageEvent]) -> list[Placed]:
    return [e for e in events if isinstance(e, Placed)]


def test_frames_wait_for_the_delay_and_land_at_their_pts_despite_jitter() -> None:
    rig = Rig()
    rig.router.participant_joined(ALICE, T0 + 0.5)
    jitter = [0.030, 0.0, 0.012, 0.045, 0.002]
    for n, late in enumerate(jitter):
        rig.router.media_frame("1", "audio", tone_frame(440, n), T0 + 1.0 + n * 0.02 + late)
    rig.step(2.0)  # before the 1.6 s delay has passed for any frame
    events = rig.composite.take()
    assert events == [Joined("1", ALICE, 0.5)]
    rig.step(3.0)
    placed = _placed(rig.composite.take())
    # The least delayed frame (n=1) sets the base: every frame is at 1.0 + n * 20 ms.
    assert [p.at for p in placed] == pytest.approx([1.0 + n * 0.02 for n in range(5)])
    assert all(isinstance(p.payload, np.ndarray) and p.payload.shape == (960, 2) for p in placed)
    assert rig.tracks.take() == [Joined("1", ALICE, 0.5)]  # the tracks take only encoded audio


def test_a_timestamp_jump_starts_a_new_segment_instead_of_moving_frames() -> None:
    rig = Rig()
    rig.router.participant_joined(ALICE, T0)
    for n in range(10):
        rig.router.media_frame("1", "audio", tone_frame(440, n), T0 + n * 0.02)
    # Janus re-targets the m-line: the same arrival cadence, pts far ahead.
    for n in range(10):
        rig.router.media_frame("1", "audio", tone_frame(440, 500_000 + n), T0 + 0.2 + n * 0.02)
    rig.step(5.0)
    times = [p.at for p in _placed(rig.composite.take())]
    assert times == pytest.approx([n * 0.02 for n in range(20)])


def test_encoded_frames_drive_the_clock_and_decoded_twins_share_their_placement() -> None:
    rig = Rig()
    rig.router.participant_joined(ALICE, T0)
    for n in range(5):
        arrival = T0 + n * 0.02
        rig.router.encoded_frame("1", "audio", opus_frame(440, n), arrival)
        # Decoding adds a varying delay; the twin must land where the sent frame did.
        rig.router.media_frame("1", "audio", tone_frame(440, n), arrival + 0.01 + 0.01 * n)
    rig.step(5.0)
    decoded = [p.at for p in _placed(rig.composite.take())]
    encoded = [p.at for p in _placed(rig.tracks.take())]
    assert encoded == pytest.approx([n * 0.02 for n in range(5)])
    assert decoded == pytest.approx(encoded)


def test_sender_reports_put_audio_and_video_of_one_person_on_one_clock() -> None:
    rig = Rig()
    rig.router.participant_joined(ALICE, T0)
    for n in range(30):  # video decoded at once, audio 60 ms later, both stamped together
        rig.router.media_frame("1", "video", colour_frame((255, 0, 0), n * 3000), T0 + n / 30)
    for n in range(50):
        rig.router.media_frame("1", "audio", tone_frame(440, n), T0 + 0.060 + n / 50)
    rig.router.sender_report("1", "video", 5000.5, 45000)
    rig.router.sender_report("1", "audio", 5000.5, 24000)
    rig.step(5.0)
    placed = _placed(rig.composite.take())
    video = [p.at for p in placed if isinstance(p.payload, VideoFrame)]
    audio = [p.at for p in placed if isinstance(p.payload, np.ndarray)]
    # The reports say video pts n*3000 and audio pts n*960 were stamped at n/30 and n/50 s:
    # audio is placed by that, not 60 ms later as it arrived.
    assert video == pytest.approx([n / 30 for n in range(30)])
    assert audio == pytest.approx([n / 50 for n in range(50)])


def test_a_leave_follows_the_last_frames_and_later_frames_are_ignored() -> None:
    rig = Rig()
    rig.router.participant_joined(ALICE, T0)
    for n in range(10):
        rig.router.encoded_frame("1", "audio", opus_frame(440, n), T0 + n * 0.02)
    rig.router.participant_left("1", T0 + 0.2)
    rig.router.encoded_frame("1", "audio", opus_frame(440, 11), T0 + 0.22)  # after leaving
    rig.step(1.0)
    assert rig.tracks.take() == [Joined("1", ALICE, 0.0)]  # neither frames nor the leave yet
    rig.step(2.0)
    events = rig.tracks.take()
    assert len(_placed(events)) == 10
    assert events[-1] == Left("1", pytest.approx(0.2))


def test_the_end_comes_once_everything_up_to_the_stop_is_placed() -> None:
    rig = Rig()
    rig.control.stop(3.0, StopReason.STOPPED)
    assert rig.step(5.4) is not None  # 5.4 - 1.6 delay - 0.9 lateness < 3.0
    assert rig.step(5.6) is None
    assert rig.composite.take() == [End()]
    assert rig.tracks.take() == [End()]


def test_a_full_outlet_drops_media_never_events_and_counts_the_drops() -> None:
    rig = Rig(outlet_limit=3)
    rig.router.participant_joined(ALICE, T0)
    for n in range(10):
        rig.router.media_frame("1", "audio", tone_frame(440, n), T0 + n * 0.02)
    rig.router.participant_left("1", T0 + 0.2)
    rig.step(3.0)
    events = rig.composite.take()
    assert events[0] == Joined("1", ALICE, 0.0)
    assert isinstance(events[-1], Left)
    assert len(_placed(events)) == 2
    assert rig.composite.dropped == 8


def test_frames_of_someone_not_in_the_meeting_are_not_handed_over() -> None:
    rig = Rig()
    rig.router.media_frame("ghost", "audio", tone_frame(440, 0), T0)
    rig.router.sender_report("ghost", "audio", 1.0, 0)
    assert rig.router.inbox.take() == []


def test_frames_pending_when_the_source_changes_keep_the_clock_they_came_with() -> None:
    rig = Rig()
    rig.router.participant_joined(ALICE, T0)
    for n in range(5):  # the old source, 100 s into its RTP timeline
        rig.router.media_frame("1", "audio", tone_frame(440, 5000 + n), T0 + n * 0.02)
    rig.router.source_changed("1", "audio")
    for n in range(5):  # the new one, from pts 0
        rig.router.media_frame("1", "audio", tone_frame(440, n), T0 + 0.1 + n * 0.02)
    rig.step(5.0)
    times = [p.at for p in _placed(rig.composite.take())]
    assert times == pytest.approx([n * 0.02 for n in range(10)])


def test_a_rejoin_under_the_same_peer_id_is_a_new_session_after_the_old_ones_leave() -> None:
    rig = Rig()
    rig.router.participant_joined(ALICE, T0)
    rig.router.encoded_frame("1", "audio", opus_frame(440, 0), T0)
    rig.router.participant_left("1", T0 + 0.5)  # the bot lost the SFU, and rejoined:
    rig.router.participant_joined(ALICE, T0 + 1.0)  # the same feed id comes back
    rig.router.encoded_frame("1", "audio", opus_frame(440, 50), T0 + 1.0)
    rig.step(5.0)
    events = rig.tracks.take()
    assert events[:2] == [Joined("1", ALICE, 0.0), Joined("1#1", ALICE, 1.0)]
    assert [(type(e).__name__, e.session) for e in events[2:]] == [
        ("Placed", "1"),
        ("Left", "1"),
        ("Placed", "1#1"),
    ]
    assert [p.info.user_id for p in rig.router.snapshot()] == ["alice", "alice"]


def test_a_full_pending_queue_drops_the_oldest_and_counts_them() -> None:
    rig = Rig()
    rig.router.participant_joined(ALICE, T0)
    for n in range(600):  # beyond the 500 a participant may have waiting
        rig.router.encoded_frame("1", "audio", opus_frame(440, n), T0 + n * 0.001)
    rig.step(1.0)  # ingested, none due yet
    assert rig.placement.dropped == 100
