"""aiortc's private parts: the start-up check names whatever a patch needs and is missing,
the Janus connector runs it before joining, and the receiver tap hands out frames as sent,
once, and decodes only when asked."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, TypeVar

import aioice.ice
import aiortc
import pytest
from aiortc import RTCPeerConnection
from aiortc.rtcrtpreceiver import RTCRtpReceiver, TimestampMapper

from tapedeck_bot.aiortc_patches import AiortcIncompatible, check_aiortc, tap_receiver
from tapedeck_bot.janus.videoroom import JanusVideoRoom

T = TypeVar("T")


def _in_loop(fn: Callable[[], T]) -> T:
    """aiortc makes its objects inside a running event loop, as the bot does."""

    async def run() -> T:
        return fn()

    return asyncio.run(run())


def test_the_installed_aiortc_has_everything_patched() -> None:
    asyncio.run(check_aiortc())


def test_a_timestamp_mapper_without_its_origin_fails_loudly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def bare(self: TimestampMapper) -> None:
        self._last = None  # no `_origin`: sender reports could no longer be related to pts

    monkeypatch.setattr(TimestampMapper, "__init__", bare)
    with pytest.raises(AiortcIncompatible) as failure:
        asyncio.run(check_aiortc())
    message = str(failure.value)
    assert "TimestampMapper._origin" in message
    assert f"aiortc {aiortc.__version__}" in message
    assert "pyproject.toml" in message


def test_a_receiver_without_its_private_state_fails_naming_each_piece(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = RTCRtpReceiver.__init__

    def renamed(self: RTCRtpReceiver, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        del self._RTCRtpReceiver__timestamp_mapper  # type: ignore[attr-defined]
        del self._RTCRtpReceiver__decoder_queue  # type: ignore[attr-defined]

    monkeypatch.setattr(RTCRtpReceiver, "__init__", renamed)
    monkeypatch.delattr(aioice.ice, "get_host_addresses")
    with pytest.raises(AiortcIncompatible) as failure:
        asyncio.run(check_aiortc())
    for piece in (
        "RTCRtpReceiver.__timestamp_mapper",
        "RTCRtpReceiver.__decoder_queue",
        "aioice.ice.get_host_addresses",
    ):
        assert piece in str(failure.value)


def test_the_janus_connector_checks_before_it_joins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(aioice.ice, "get_host_addresses")
    # Nothing listens on this port: the check must fail first, not the connection.
    room = JanusVideoRoom("http://127.0.0.1:9/janus", 1234, retry_delays_s=())
    with pytest.raises(AiortcIncompatible, match="get_host_addresses"):
        asyncio.run(room.join())


def _frame(pts: int) -> tuple[Any, Any]:
    codec = SimpleNamespace(mimeType="audio/opus", clockRate=48000)
    return codec, SimpleNamespace(data=b"\xf8\xff\xfe", timestamp=pts)


@pytest.mark.parametrize("decode", [True, False])
def test_the_tap_hands_out_frames_as_sent_and_decodes_only_when_asked(decode: bool) -> None:
    """`decode` answers by codec: here, whether Opus is decoded."""
    receiver = _in_loop(
        lambda: RTCPeerConnection().addTransceiver("audio", direction="recvonly").receiver
    )
    queue = receiver._RTCRtpReceiver__decoder_queue  # type: ignore[attr-defined]
    seen: list[tuple[str, bytes, int, int]] = []
    for _ in range(2):  # a renegotiation lists the receiver again: tapped once
        tap_receiver(
            receiver,
            lambda ntp, pts: None,
            lambda *f: seen.append(f),
            decode=lambda mime_type: decode and mime_type == "audio/opus",
        )
    queue.put(_frame(960))
    assert seen == [("audio/opus", b"\xf8\xff\xfe", 960, 48000)]
    assert queue.qsize() == (1 if decode else 0)
    queue.put(None)  # the decoder thread's stop signal always gets through
    assert [queue.get_nowait() for _ in range(queue.qsize())][-1] is None
