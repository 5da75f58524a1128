"""The bot pod: record its Recording and report through the API server.

It follows `spec.state` (and the Recording's deletion) by a watch, and writes its half of
`.status` (phase, history, times, participants, outputs) with its own ServiceAccount. Both
run on threads of their own, so a slow or absent API server never stalls the media; while it
is away the recording goes on and the status waits to be written.

Exit codes (restartPolicy OnFailure): 0 once the outcome is in the status, or when the pod
was told to go (SIGTERM; the operator starts another attempt); non-zero when uploads are
still in the spool, so that the container restarts in place and salvages them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import threading
from dataclasses import replace
from typing import Any

from tapedeck_bot.contract import (
    TERMINAL,
    BotConfig,
    DesiredState,
    Output,
    Participant,
    Phase,
    StopReason,
    Transition,
)
from tapedeck_bot.kube import KubeRecordingApi, RecordingApi, RecordingApiError
from tapedeck_bot.logs import configure
from tapedeck_bot.recorder import Progress, Recorder, RecordingResult
from tapedeck_bot.reporting import StatusReporter
from tapedeck_bot.standalone import (
    LocalRecording,
    PrintedProgress,
    finish_earlier_attempts,
    pod_recording,
    record,
)
from tapedeck_bot.storage import StorageError, Uploads
from tapedeck_bot.watching import RecordingWatcher, desired_state

__all__ = ["PodStatus", "run_pod"]

log = logging.getLogger("tapedeck_bot.pod")

EXIT_OK, EXIT_SPOOLED = 0, 1
# How long the last status waits for an absent API server before the pod gives up on it.
_REPORT_TIMEOUT_S = 600
# The status schema's limits (tapedeck_bot.contract.status): a longer value would have the
# whole patch refused.
_REASON_LIMIT, _ERROR_LIMIT, _DEGRADED_LIMIT, _PARTICIPANTS_LIMIT = 256, 4096, 1024, 1000


def _cut(text: str | None, limit: int) -> str | None:
    return text if text is None or len(text) <= limit else text[: limit - 1] + "…"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _stored_status(obj: dict[str, Any]) -> dict[str, Any]:
    status: dict[str, Any] = obj.get("status") or {}
    return status


def _earlier_participants(status: dict[str, Any], until: dt.datetime) -> list[Participant]:
    """Participants an earlier attempt reported; whoever it saw last is taken to have left."""
    earlier = [Participant.model_validate(p) for p in status.get("participants") or []]
    return [p if p.left_at else p.model_copy(update={"left_at": until}) for p in earlier]


class PodStatus:
    """The pod's `RecordingObserver`: turns what happens into status writes, and applies the
    desired state (`spec.state`) to the recorder. Runs on the event loop's thread."""

    def __init__(self, reporter: StatusReporter, stored: dict[str, Any]) -> None:
        status = _stored_status(stored)
        self._reporter = reporter
        self._desired = desired_state(stored) if stored else DesiredState.RECORDING
        self._started_at: str | None = status.get("startedAt")
        self._base_seconds = float(status.get("durationSeconds") or 0.0)
        self._earlier = _earlier_participants(status, _now())
        self._recorder: Recorder | None = None
        self._stopping = False
        self.terminal = False  # UPLOADED or ERRORED was reported

    def _transition(self, phase: Phase, reason: str | None = None, **fields: Any) -> None:
        reason = _cut(reason, _REASON_LIMIT)
        self._reporter.transition(Transition(phase=phase, at=_now(), reason=reason), **fields)
        self.terminal = phase in TERMINAL
        log.info("phase", extra={"phase": str(phase), "reason": reason})

    # -- the watch ----------------------------------------------------------------------------

    def seen(self, obj: dict[str, Any]) -> None:
        self._reporter.observe(obj)
        self._desired = desired_state(obj)
        self._apply()

    def _apply(self) -> None:
        recorder = self._recorder
        if recorder is None or self._stopping:
            return
        if self._desired is DesiredState.STOPPED:
            self._stopping = True
            recorder.stop(StopReason.STOPPED)
        elif self._desired is DesiredState.PAUSED and not recorder.control.paused:
            recorder.pause()
            self._transition(Phase.PAUSED, "spec.state is Paused")
        elif self._desired is DesiredState.RECORDING and recorder.control.paused:
            recorder.resume()
            self._transition(Phase.RECORDING, "spec.state is Recording")

    # -- RecordingObserver --------------------------------------------------------------------

    def started(self, recorder: Recorder, at: dt.datetime) -> None:
        self._recorder = recorder
        reason = "rejoined the meeting" if self._started_at else "joined the meeting"
        self._started_at = self._started_at or at.isoformat()
        self._transition(Phase.RECORDING, reason, startedAt=self._started_at)
        self._apply()

    def progress(self, progress: Progress, uploads: Uploads | None) -> None:
        roster = [*self._earlier, *progress.roster][-_PARTICIPANTS_LIMIT:]
        self._reporter.update(
            participants=[p.to_wire() for p in roster],
            durationSeconds=round(self._base_seconds + progress.recorded_s, 1),
            degraded=_cut(uploads.degraded, _DEGRADED_LIMIT) if uploads else None,
        )

    def stopped(self, result: RecordingResult) -> None:
        self._stopping = True
        duration = round(self._base_seconds + result.recorded_s, 1)
        if result.stop_reason is StopReason.TERMINATED:  # the pod goes; the recording does not
            self._reporter.update(durationSeconds=duration)
            return
        self._transition(
            Phase.UPLOADING,
            str(result.stop_reason),
            stoppedAt=_now().isoformat(),
            stopReason=str(result.stop_reason),
            durationSeconds=duration,
        )

    def finished(
        self, result: RecordingResult, outputs: list[Output], upload_error: str | None
    ) -> None:
        listed = [o.to_wire() for o in outputs]
        if upload_error or result.stop_reason is StopReason.TERMINATED:
            self._reporter.update(outputs=listed, degraded=_cut(upload_error, _DEGRADED_LIMIT))
        elif result.error:
            error = _cut(result.error, _ERROR_LIMIT)
            self._transition(Phase.ERRORED, result.error, error=error, outputs=listed)
        else:
            self._transition(Phase.UPLOADED, "every output uploaded", outputs=listed)

    def failed(self, error: str) -> None:
        self._transition(Phase.ERRORED, error, error=_cut(error, _ERROR_LIMIT))

    def finish_only(self, outputs: list[Output], error: str | None) -> None:
        """A stopped Recording's last attempt: nothing recorded, the earlier ones completed."""
        if error:
            self._reporter.update(degraded=_cut(error, _DEGRADED_LIMIT))
            return
        self._transition(
            Phase.UPLOADED, "earlier attempts completed", outputs=[o.to_wire() for o in outputs]
        )


def _read_first(api: RecordingApi) -> dict[str, Any]:
    """The Recording as stored, or {} when the API server is away: recording starts anyway."""
    try:
        return api.get()
    except RecordingApiError as exc:
        log.warning("cannot read the Recording; recording anyway", extra={"error": str(exc)})
        return {}


def _has_recorded(stored: dict[str, Any]) -> bool:
    history = _stored_status(stored).get("history") or []
    return any(entry.get("phase") == Phase.RECORDING for entry in history)


async def _run_reported(config: BotConfig, api: RecordingApi) -> int:
    stored = await asyncio.to_thread(_read_first, api)
    reporter = StatusReporter(api)
    status = PodStatus(reporter, stored)
    loop = asyncio.get_running_loop()
    stop = threading.Event()
    writer = threading.Thread(target=reporter.run, args=(stop,), name="status", daemon=True)
    writer.start()

    def seen(obj: dict[str, Any]) -> None:  # on the watch thread
        loop.call_soon_threadsafe(status.seen, obj)

    watcher = RecordingWatcher(api, seen)
    threading.Thread(
        target=watcher.run, args=(stop, stored or None), name="watch", daemon=True
    ).start()
    code = EXIT_SPOOLED
    try:
        code = await _record_or_finish(pod_recording(config), stored, status)
    except (ValueError, StorageError) as exc:  # an unsupported spec, storage refusing us
        status.failed(str(exc))
    finally:
        stop.set()
        await asyncio.to_thread(writer.join, _REPORT_TIMEOUT_S)
    log.info("status writes", extra={"writes": reporter.writes})
    if not reporter.idle:  # the outcome never reached the API server: try again after a restart
        log.error("the API server did not take the last status in time")
        return EXIT_SPOOLED
    return EXIT_OK if status.terminal else code


async def _record_or_finish(job: LocalRecording, stored: dict[str, Any], status: PodStatus) -> int:
    """Record, or go on recording after a restart; or, once the recording was stopped (by
    spec.state or by a limit), only complete what earlier attempts left."""
    recorded = _stored_status(stored)
    if recorded.get("phase") in TERMINAL:
        return EXIT_OK  # finished before this container started: nothing left to do
    remaining = job.max_seconds - float(recorded.get("durationSeconds") or 0.0)
    stopped = bool(stored) and desired_state(stored) is DesiredState.STOPPED
    if not (stopped or recorded.get("stopReason") or remaining <= 0):
        return await record(replace(job, max_seconds=remaining), status)
    if not _has_recorded(stored) or job.upload is None:
        return EXIT_OK  # stopped before anything was recorded: the operator ends it
    outputs, error = await finish_earlier_attempts(job.upload, job.max_seconds)
    status.finish_only(outputs, error)
    return EXIT_SPOOLED if error else EXIT_OK


def run_pod(config: BotConfig) -> int:
    """`tapedeck-bot run`: in a pod, report through the API server; elsewhere, print."""
    configure()
    if "KUBERNETES_SERVICE_HOST" not in os.environ:
        return asyncio.run(record(pod_recording(config), PrintedProgress()))
    api = KubeRecordingApi.in_cluster(config.namespace, config.recording)
    return asyncio.run(_run_reported(config, api))
