"""The bot's status writer: coalesced progress, immediate transitions, no lost history."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from tapedeck_bot.contract import Phase, Transition, merge_history
from tapedeck_bot.kube import ApiRefused, ApiUnavailable, Conflict
from tapedeck_bot.reporting import StatusReporter

T0 = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)


class FakeApi:
    """A Recording held in memory, with resourceVersions, conflicts and outages."""

    def __init__(self) -> None:
        self.obj: dict[str, Any] = {"metadata": {"resourceVersion": "1"}, "status": {}}
        self.patches: list[dict[str, Any]] = []
        self.down = False

    def get(self) -> dict[str, Any]:
        if self.down:
            raise ApiUnavailable("down")
        return self.obj

    def others_append(self, phase: Phase, at: dt.datetime) -> None:
        history = [*self.obj["status"].get("history", []), Transition(phase=phase, at=at).to_wire()]
        self._store({"history": history, "phase": str(phase)})

    def _store(self, status: dict[str, Any]) -> None:
        version = str(int(self.obj["metadata"]["resourceVersion"]) + 1)
        self.obj = {
            "metadata": {"resourceVersion": version},
            "status": {**self.obj["status"], **status},
        }

    def patch_status(
        self, status: dict[str, Any], resource_version: str | None = None
    ) -> dict[str, Any]:
        if self.down:
            raise ApiUnavailable("down")
        if (
            resource_version is not None
            and resource_version != self.obj["metadata"]["resourceVersion"]
        ):
            raise Conflict("stale")
        self.patches.append(status)
        self._store(status)
        return self.obj

    def watch(self, resource_version: str) -> Any:
        return iter(())


def _at(s: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=s)


def test_progress_is_coalesced_to_one_write_per_interval() -> None:
    api = FakeApi()
    reporter = StatusReporter(api, progress_every_s=10)
    for second in range(60):
        reporter.update(durationSeconds=float(second))
        reporter.step(float(second))
    assert len(api.patches) == 6
    assert api.obj["status"]["durationSeconds"] == 50.0


def test_a_transition_is_written_at_once_with_its_fields() -> None:
    api = FakeApi()
    reporter = StatusReporter(api, progress_every_s=10)
    reporter.update(durationSeconds=1.0)
    reporter.step(0.0)
    reporter.transition(Transition(phase=Phase.RECORDING, at=_at(1)), startedAt="x")
    assert reporter.step(1.0)
    assert api.obj["status"]["phase"] == "RECORDING"
    assert api.obj["status"]["startedAt"] == "x"


def test_history_written_by_the_operator_meanwhile_is_kept_in_order() -> None:
    api = FakeApi()
    reporter = StatusReporter(api)
    reporter.observe(api.get())  # the bot's view is now stale
    api.others_append(Phase.INVOKED, _at(0))
    reporter.transition(Transition(phase=Phase.RECORDING, at=_at(1)))
    assert reporter.step(5.0)
    phases = [h["phase"] for h in api.obj["status"]["history"]]
    assert phases == ["INVOKED", "RECORDING"]


def test_an_outage_loses_no_transition_and_catches_up() -> None:
    api = FakeApi()
    reporter = StatusReporter(api)
    api.down = True
    reporter.transition(Transition(phase=Phase.RECORDING, at=_at(0)))
    reporter.transition(Transition(phase=Phase.PAUSED, at=_at(3)))
    reporter.update(durationSeconds=3.0)
    for second in range(20):
        assert not reporter.step(float(second))
    api.down = False
    wait = reporter.due_in(20.0)
    assert wait is not None
    assert reporter.step(20.0 + wait)
    assert [h["phase"] for h in api.obj["status"]["history"]] == ["RECORDING", "PAUSED"]
    assert api.obj["status"]["phase"] == "PAUSED"
    assert api.obj["status"]["durationSeconds"] == 3.0
    assert reporter.idle


def test_a_stopping_bot_flushes_its_last_progress_without_waiting() -> None:
    api = FakeApi()
    reporter = StatusReporter(api, progress_every_s=10)
    reporter.update(durationSeconds=1.0)
    reporter.step(0.0)
    reporter.update(durationSeconds=2.0, outputs=[])
    stop = threading.Event()
    stop.set()
    reporter.run(stop)  # returns once everything is written
    assert len(api.patches) == 2
    assert api.obj["status"]["durationSeconds"] == 2.0


def test_history_keeps_stored_entries_as_they_are_and_ends_at_a_terminal_one() -> None:
    invoked = Transition(phase=Phase.INVOKED, at=_at(5))  # the operator's clock runs ahead
    recording = Transition(phase=Phase.RECORDING, at=_at(1))
    uploaded = Transition(phase=Phase.UPLOADED, at=_at(9))
    late = Transition(phase=Phase.RECORDING, at=_at(10))
    assert merge_history([invoked], [recording, recording]) == [invoked, recording]
    assert merge_history([invoked], [recording, uploaded, late]) == [invoked, recording, uploaded]
    assert merge_history([invoked, uploaded], [late]) == [invoked, uploaded]


def test_a_refused_field_does_not_take_the_transition_with_it() -> None:
    api = FakeApi()
    refusals = iter([True])

    def patch(status: dict[str, Any], resource_version: str | None = None) -> dict[str, Any]:
        if "error" in status and next(refusals, False):
            raise ApiRefused("422 status.error: Too long")
        return FakeApi.patch_status(api, status, resource_version)

    api.patch_status = patch  # type: ignore[method-assign]
    reporter = StatusReporter(api)
    reporter.transition(Transition(phase=Phase.ERRORED, at=_at(0)), error="x" * 9999)
    stop = threading.Event()
    stop.set()
    reporter.run(stop)
    assert api.obj["status"]["phase"] == "ERRORED"
    assert reporter.idle
