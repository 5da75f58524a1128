"""An asyncio client for the Janus API (1.x) over HTTP long-poll or WebSocket.

Requests carry a transaction. Synchronous plugin requests are answered with `success`;
asynchronous ones with `ack` and later an `event` with the same transaction, which over HTTP
can arrive through the long poll before the POST returns its ack, so the waiter for the event
is registered before the request is sent. Everything else is queued per handle.

Errors::

    JanusError
     ├── JanusUnavailable   the server cannot be reached (retryable)
     ├── JanusSessionLost   the session timed out or was destroyed (retryable with a new one)
     └── JanusRequestError  Janus or the plugin refused a request (code, reason)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

import aiohttp

__all__ = [
    "JanusError",
    "JanusHandle",
    "JanusRequestError",
    "JanusSession",
    "JanusSessionLost",
    "JanusUnavailable",
]

log = logging.getLogger("tapedeck_bot.janus")

Message = dict[str, Any]

_SESSION_GONE = 458  # JANUS_ERROR_SESSION_NOT_FOUND
_KEEPALIVE_S = 25.0  # below Janus' default session_timeout of 60 s, and mandatory over WS
_LONG_POLL_S = 40.0  # Janus holds a poll up to 30 s


class JanusError(RuntimeError):
    pass


class JanusUnavailable(JanusError):
    pass


class JanusSessionLost(JanusError):
    pass


class JanusRequestError(JanusError):
    def __init__(self, request: str, code: int | None, reason: str) -> None:
        super().__init__(f"Janus refused {request!r}: {reason} (code {code})")
        self.request = request
        self.code = code
        self.reason = reason


def _transaction() -> str:
    return secrets.token_hex(6)


def _plugin_error(request: str, data: dict[str, Any]) -> JanusRequestError | None:
    if "error" in data or "error_code" in data:
        return JanusRequestError(request, data.get("error_code"), str(data.get("error")))
    return None


@dataclass
class JanusHandle:
    """A plugin handle; `events` receives its unsolicited events (no transaction)."""

    session: JanusSession
    id: int
    events: asyncio.Queue[Message] = field(default_factory=asyncio.Queue)

    async def request(self, body: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
        """A synchronous plugin request (create, exists, listparticipants): its data."""
        reply = await self.session.send(
            {"janus": "message", "body": body}, self.id, timeout=timeout
        )
        data: dict[str, Any] = reply.get("plugindata", {}).get("data", {})
        if error := _plugin_error(body.get("request", "?"), data):
            raise error
        return data

    async def message(
        self, body: dict[str, Any], jsep: dict[str, Any] | None = None, timeout: float = 15
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """An asynchronous plugin request: waits for its event; returns (data, jsep)."""
        msg: Message = {"janus": "message", "body": body}
        if jsep is not None:
            msg["jsep"] = jsep
        tx = _transaction()
        event = self.session.expect_event(tx)
        try:
            reply = await self.session.send(msg, self.id, tx=tx, timeout=timeout)
            if reply.get("janus") != "success":  # `success` answers some requests at once
                reply = await asyncio.wait_for(event, timeout)
        finally:
            self.session.forget_event(tx)
        data: dict[str, Any] = reply.get("plugindata", {}).get("data", {})
        if error := _plugin_error(body.get("request", "?"), data):
            raise error
        return data, reply.get("jsep")


class JanusSession:
    """One Janus session over `http(s)://…/janus` (long poll) or `ws(s)://…` (WebSocket)."""

    def __init__(self, url: str, *, keepalive_s: float = _KEEPALIVE_S) -> None:
        self.url = url.rstrip("/")
        self.websocket = url.startswith(("ws://", "wss://"))
        self.keepalive_s = keepalive_s
        self.id: int | None = None
        self.handles: dict[int, JanusHandle] = {}
        self.lost = asyncio.Event()
        self._events: dict[str, asyncio.Future[Message]] = {}
        self._replies: dict[str, asyncio.Future[Message]] = {}
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    async def __aenter__(self) -> JanusSession:
        return await self.create()

    async def __aexit__(self, *exc: object) -> None:
        await self.destroy()

    async def create(self) -> JanusSession:
        self._http = aiohttp.ClientSession()
        try:
            if self.websocket:
                self._ws = await self._http.ws_connect(self.url, protocols=("janus-protocol",))
                self._tasks.append(asyncio.create_task(self._read_websocket()))
            reply = await self.send({"janus": "create"})
        except (aiohttp.ClientError, OSError) as exc:
            await self._http.close()
            raise JanusUnavailable(f"cannot reach Janus at {self.url}: {exc}") from exc
        self.id = int(reply["data"]["id"])
        if not self.websocket:
            self._tasks.append(asyncio.create_task(self._long_poll()))
        self._tasks.append(asyncio.create_task(self._keepalive()))
        return self

    async def attach(self, plugin: str = "janus.plugin.videoroom") -> JanusHandle:
        reply = await self.send({"janus": "attach", "plugin": plugin})
        handle = JanusHandle(self, int(reply["data"]["id"]))
        self.handles[handle.id] = handle
        return handle

    async def destroy(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self.lost.is_set():
            with contextlib.suppress(JanusError, TimeoutError, aiohttp.ClientError):
                await self.send({"janus": "destroy"}, timeout=5)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._ws is not None:
            await self._ws.close()
        if self._http is not None:
            await self._http.close()

    # -- requests ----------------------------------------------------------------------------

    def expect_event(self, tx: str) -> asyncio.Future[Message]:
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._events[tx] = future
        return future

    def forget_event(self, tx: str) -> None:
        future = self._events.pop(tx, None)
        if future is not None and not future.done():
            future.cancel()

    async def send(
        self,
        msg: Message,
        handle_id: int | None = None,
        *,
        tx: str | None = None,
        timeout: float = 10,
    ) -> Message:
        if self.lost.is_set():
            raise JanusSessionLost(f"Janus session {self.id} is gone")
        msg = {**msg, "transaction": tx or _transaction()}
        try:
            reply = await (
                self._send_ws(msg, handle_id, timeout)
                if self.websocket
                else self._send_http(msg, handle_id, timeout)
            )
        except (aiohttp.ClientError, OSError) as exc:
            raise JanusUnavailable(f"Janus at {self.url}: {exc}") from exc
        if reply.get("janus") == "error":
            error = reply.get("error", {})
            if error.get("code") == _SESSION_GONE:
                self.lost.set()
                raise JanusSessionLost(str(error.get("reason")))
            raise JanusRequestError(msg["janus"], error.get("code"), str(error.get("reason")))
        return reply

    async def _send_http(self, msg: Message, handle_id: int | None, timeout: float) -> Message:
        assert self._http is not None
        path = self.url
        if self.id is not None and msg["janus"] != "create":
            path += f"/{self.id}" + (f"/{handle_id}" if handle_id is not None else "")
        async with self._http.post(
            path, json=msg, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as response:
            reply: Message = await response.json(content_type=None)
        return reply

    async def _send_ws(self, msg: Message, handle_id: int | None, timeout: float) -> Message:
        assert self._ws is not None
        if self.id is not None and msg["janus"] != "create":
            msg["session_id"] = self.id
            if handle_id is not None:
                msg["handle_id"] = handle_id
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._replies[msg["transaction"]] = future
        try:
            await self._ws.send_str(json.dumps(msg))
            return await asyncio.wait_for(future, timeout)
        finally:
            self._replies.pop(msg["transaction"], None)

    # -- incoming ----------------------------------------------------------------------------

    def _dispatch(self, msg: Message) -> None:
        kind, tx = msg.get("janus"), msg.get("transaction")
        if kind in ("ack", "success", "error", "server_info"):
            reply = self._replies.get(tx or "")
            if reply is not None and not reply.done():
                reply.set_result(msg)
            return
        if kind == "keepalive":
            return
        if kind == "event" and tx in self._events:
            reply = self._replies.get(tx or "")
            if reply is not None and not reply.done():  # the event overtook its ack (WS)
                reply.set_result({"janus": "ack"})
            event = self._events[tx]
            if not event.done():
                event.set_result(msg)
            return
        handle = self.handles.get(msg.get("sender", -1))
        if handle is not None:
            handle.events.put_nowait(msg)
        elif kind == "timeout" or (
            kind == "error" and msg.get("error", {}).get("code") == _SESSION_GONE
        ):
            log.warning("janus session lost", extra={"session": self.id, "reason": kind})
            self.lost.set()

    async def _long_poll(self) -> None:
        assert self._http is not None
        failures = 0
        while not self._closed and not self.lost.is_set():
            try:
                async with self._http.get(
                    f"{self.url}/{self.id}",
                    params={"maxev": "10"},
                    timeout=aiohttp.ClientTimeout(total=_LONG_POLL_S),
                ) as response:
                    body = await response.json(content_type=None)
                failures = 0
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                failures += 1
                log.warning(
                    "janus long poll failed", extra={"error": str(exc), "failures": failures}
                )
                await asyncio.sleep(min(0.5 * failures, 5.0))
                continue
            for msg in body if isinstance(body, list) else [body]:
                self._dispatch(msg)

    async def _read_websocket(self) -> None:
        assert self._ws is not None
        async for frame in self._ws:
            if frame.type == aiohttp.WSMsgType.TEXT:
                self._dispatch(json.loads(frame.data))
        if not self._closed:
            log.warning("janus websocket closed", extra={"session": self.id})
            self.lost.set()

    async def _keepalive(self) -> None:
        while not self._closed and not self.lost.is_set():
            await asyncio.sleep(self.keepalive_s)
            try:
                await self.send({"janus": "keepalive"}, timeout=5)
            except JanusSessionLost:
                return
            except (JanusError, TimeoutError) as exc:
                log.warning("janus keepalive failed", extra={"error": str(exc)})
