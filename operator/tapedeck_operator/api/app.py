"""tapedeck-api: RealtimeKit's recording endpoints over Recordings, authorized by Kubernetes.

Each handler authorizes, maps, and calls the API server; every request becomes (or reads) a
Recording, so kubectl, GitOps and the operator stay the single source of truth, and this
server keeps no state and scales out.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from kubernetes.client.exceptions import ApiException

from tapedeck_bot.contract import TERMINAL, DesiredState, Phase
from tapedeck_operator.api.auth import KubeAuthorizer
from tapedeck_operator.api.requests import (
    RecordingAction,
    RequestRefused,
    composite_recording,
    error_field,
    track_recording,
)
from tapedeck_operator.api.responses import (
    error_body,
    recording_detail,
    recording_object,
    success_body,
)
from tapedeck_operator.api.settings import ApiSettings
from tapedeck_operator.api.store import RecordingStore
from tapedeck_operator.observing import active_meeting_key, phase_of

__all__ = ["ApiError", "create_app"]

log = logging.getLogger("tapedeck_operator.api")

PREFIX = "/accounts/{account_id}/realtime/kit/{app_id}"
_STATES = {
    "stop": DesiredState.STOPPED,
    "pause": DesiredState.PAUSED,
    "resume": DesiredState.RECORDING,
}
_STATUSES = "INVOKED|RECORDING|PAUSED|UPLOADING|UPLOADED|ERRORED"


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _phase(recording: dict[str, Any]) -> Phase:
    return phase_of(recording) or Phase.INVOKED


def _active(recording: dict[str, Any]) -> bool:
    return _phase(recording) not in TERMINAL


def _meeting(recording: dict[str, Any]) -> str | None:
    meeting: str | None = ((recording.get("spec") or {}).get("meeting") or {}).get("id")
    return meeting


# RealtimeKit's list filters tapedeck does not apply: refused, never ignored.
_UNSUPPORTED_FILTERS = {"search", "expired", "start_time", "end_time"}


def _kube_message(exc: ApiException) -> str:
    try:
        message: str = orjson.loads(exc.body or b"{}").get("message", "")
    except orjson.JSONDecodeError:
        message = ""
    return message or str(exc.reason)


def _invoked(recording: dict[str, Any]) -> tuple[str, str]:
    """RFC 3339 UTC stamps of one format sort as they read; the name breaks ties."""
    metadata = recording["metadata"]
    return metadata["creationTimestamp"], metadata["name"]


def create_app(settings: ApiSettings, authorizer: KubeAuthorizer, store: RecordingStore) -> FastAPI:
    app = FastAPI(
        title="tapedeck-api",
        description="RealtimeKit's recordings API, served from Kubernetes Recordings",
    )

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.status, exc.message), status_code=exc.status)

    @app.exception_handler(RequestRefused)
    async def refused(request: Request, exc: RequestRefused) -> JSONResponse:
        return JSONResponse(error_body(400, str(exc)), status_code=400)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        field = error_field({"loc": first["loc"][1:]}) or "request"
        return JSONResponse(error_body(400, f"{field}: {first['msg']}"), status_code=400)

    @app.exception_handler(ApiException)
    async def kube_error(request: Request, exc: ApiException) -> JSONResponse:
        # Only the SubjectAccessReview answers 403 for the caller: a 403 here is the API's
        # own ServiceAccount lacking a right, the operator's problem, not the caller's.
        status = {404: 404, 409: 409, 422: 400}.get(exc.status or 0, 502)
        message = f"the Kubernetes API server answered {exc.status} {exc.reason}"
        if exc.status == 404:
            message = "not found: does the app's namespace exist?"
        elif exc.status == 422:
            message = f"the Recording was refused: {_kube_message(exc)}"
        return JSONResponse(error_body(status, message), status_code=status)

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> JSONResponse:
        log.exception("request failed")
        return JSONResponse(error_body(500, "internal error"), status_code=500)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, bool]:
        return {"ok": True}  # stateless: up is ready

    def caller_may(verb: str) -> Any:
        def check(app_id: str, authorization: Annotated[str | None, Header()] = None) -> str:
            """The app's namespace, if the bearer may `verb` Recordings there."""
            scheme, _, token = (authorization or "").partition(" ")
            if scheme.lower() != "bearer" or not token:
                raise ApiError(401, "unauthorized: send Authorization: Bearer TOKEN")
            caller = authorizer.caller(token.strip())
            if caller is None:
                raise ApiError(401, "unauthorized: the token is not a valid tapedeck-api key")
            namespace = settings.namespace(app_id)
            if not authorizer.allowed(caller, verb, namespace):
                raise ApiError(
                    403,
                    f"forbidden: {caller.username} may not {verb} recordings in "
                    f"namespace {namespace}",
                )
            return namespace

        return Depends(check)

    def found(namespace: str, recording_id: str) -> dict[str, Any]:
        recording = store.by_uid(namespace, recording_id)
        if recording is None:
            raise ApiError(404, f"recording {recording_id} not found")
        return recording

    def start(manifest: dict[str, Any]) -> dict[str, Any]:
        """Create, unless the operator would refuse it as AlreadyRecording. Two starts racing
        past this check both get their 201; the operator then errors the later one."""
        spec, namespace = manifest["spec"], manifest["metadata"]["namespace"]
        if not spec.get("allowMultipleRecordings"):
            meeting = spec["meeting"]["id"]
            for other in store.list(namespace):
                if active_meeting_key(other) == (namespace, meeting):
                    raise ApiError(
                        409,
                        f"meeting {meeting} is already being recorded by recording "
                        f"{other['metadata']['uid']}: stop it, or set "
                        "allow_multiple_recordings",
                    )
        return store.create(manifest)

    @app.post(PREFIX + "/recordings", status_code=201)
    def start_recording(
        app_id: str, body: dict[str, Any], namespace: str = caller_may("create")
    ) -> dict[str, Any]:
        manifest = composite_recording(body, settings.app(app_id), app_id, namespace)
        return success_body(recording_detail(start(manifest)))

    @app.post(PREFIX + "/recordings/track", status_code=201)
    def start_track_recording(
        app_id: str, body: dict[str, Any], namespace: str = caller_may("create")
    ) -> dict[str, Any]:
        manifest = track_recording(body, settings.app(app_id), app_id, namespace)
        return success_body({"recording": recording_object(start(manifest))})

    @app.get(PREFIX + "/recordings")
    def list_recordings(
        app_id: str,
        request: Request,
        namespace: str = caller_may("list"),
        meeting_id: str | None = None,
        status: Annotated[str | None, Query(pattern=f"^({_STATUSES})(,({_STATUSES}))*$")] = None,
        page_no: Annotated[int, Query(ge=0)] = 1,
        per_page: Annotated[int, Query(ge=1, le=100)] = 25,
        sort_by: Annotated[str, Query(pattern="^invokedTime$")] = "invokedTime",
        sort_order: Annotated[str, Query(pattern="^(ASC|DESC)$")] = "DESC",
    ) -> Response:
        for name in _UNSUPPORTED_FILTERS & set(request.query_params):
            raise ApiError(400, f"{name}: this filter is not supported")
        found = store.list(namespace)
        if meeting_id is not None:
            found = [r for r in found if _meeting(r) == meeting_id]
        if status is not None:
            wanted = set(status.split(","))
            found = [r for r in found if _phase(r).value in wanted]
        # Sorted and paged before mapping: only the page is turned into RealtimeKit's shape.
        found.sort(key=_invoked, reverse=sort_order == "DESC")
        first = (max(page_no, 1) - 1) * per_page  # RealtimeKit counts pages from 0 or 1
        page = [recording_object(r) for r in found[first : first + per_page]]
        body = {
            "success": True,
            "data": page,
            "paging": {
                "total_count": len(found),
                "start_offset": first + 1 if page else 0,
                "end_offset": first + len(page) if page else 0,
            },
        }
        # Plain JSON already: skip FastAPI's walk over a page of 100 recordings.
        return Response(orjson.dumps(body), media_type="application/json")

    @app.get(PREFIX + "/recordings/active-recording/{meeting_id}")
    def active_recording(meeting_id: str, namespace: str = caller_may("list")) -> dict[str, Any]:
        for recording in store.list(namespace):
            if _meeting(recording) == meeting_id and _active(recording):
                return success_body(recording_object(recording))
        raise ApiError(404, f"no active recording for meeting {meeting_id}")

    @app.get(PREFIX + "/recordings/{recording_id}")
    def get_recording(recording_id: str, namespace: str = caller_may("get")) -> dict[str, Any]:
        return success_body(recording_detail(found(namespace, recording_id)))

    @app.put(PREFIX + "/recordings/{recording_id}")
    def act(
        recording_id: str, body: dict[str, Any], namespace: str = caller_may("patch")
    ) -> dict[str, Any]:
        try:
            action = RecordingAction.model_validate(body)
        except ValueError as exc:
            raise ApiError(400, 'action: one of "stop", "pause", "resume"') from exc
        recording = found(namespace, recording_id)
        stopped = (recording.get("spec") or {}).get("state") == DesiredState.STOPPED.value
        if stopped or not _active(recording):
            raise ApiError(409, f"recording {recording_id} is stopped or has ended")
        state = _STATES[action.action].value
        return success_body(recording_detail(store.set_state(recording, state)))

    return app
