"""A real webhook endpoint for tests, the bench and the demo: aiohttp on 127.0.0.1, in a
thread of its own.

Each path answers 200 unless told otherwise (`answer`, per event), records every request with
its raw body, and can be stopped and started again on the same port (an endpoint that is down)."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook

from tapedeck_dev.cluster import free_port

__all__ = ["Receiver", "Request", "new_secret", "verified"]


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() when it arrived
    answered: int

    @property
    def id(self) -> str | None:
        return self.headers.get("webhook-id")

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


def verified(request: Request, secret: str) -> dict[str, Any]:
    """The payload, verified by the third-party Standard Webhooks library."""
    payload: dict[str, Any] = Webhook(secret).verify(request.body, request.headers)
    return payload


@dataclass
class Receiver:
    port: int = field(default_factory=free_port)
    _answers: dict[str, tuple[int, ...]] = field(default_factory=dict)
    _always: dict[str, int] = field(default_factory=dict)
    _requests: list[Request] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, path: str, *first: int, then: int = 200) -> None:
        """Answer each event (webhook-id) with `first` in turn, then `then` for good."""
        with self._lock:
            self._answers[path] = first
            self._always[path] = then

    def requests(self, path: str | None = None) -> list[Request]:
        with self._lock:
            return [r for r in self._requests if path is None or r.path == path]

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self._lock:
            event = request.headers.get("webhook-id")
            seen = sum(1 for r in self._requests if r.path == request.path and r.id == event)
            first = self._answers.get(request.path, ())
            status = first[seen] if seen < len(first) else self._always.get(request.path, 200)
            self._requests.append(
                Request(request.path, dict(request.headers), body, time.time(), status)
            )
        return web.Response(status=status)

    def start(self) -> None:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
            self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout=10)

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def stop(self) -> None:
        """Close the port: requests now fail with connection refused."""
        if self._loop is not None and self._runner is not None:
            runner, self._runner = self._runner, None
            asyncio.run_coroutine_threadsafe(runner.cleanup(), self._loop).result(timeout=10)

    def close(self) -> None:
        self.stop()
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()
