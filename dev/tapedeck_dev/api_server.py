"""tapedeck-api on uvicorn in a thread of this process, on a free loopback port: for tests
and the bench, which drive it over real HTTP."""

from __future__ import annotations

import gc
import threading
import time

import httpx
import uvicorn
from kubernetes import client

from tapedeck_dev.cluster import free_port
from tapedeck_operator.api.app import create_app
from tapedeck_operator.api.auth import KubeAuthorizer
from tapedeck_operator.api.settings import ApiSettings
from tapedeck_operator.api.store import RecordingStore

__all__ = ["ServedApi"]


class ServedApi:
    """tapedeck-api on uvicorn, on a free loopback port, in a thread of this process."""

    def __init__(
        self, settings: ApiSettings, kube: client.ApiClient, *, freeze: bool = False
    ) -> None:
        """`freeze`: as tapedeck-api's main does (api/server.py), for a process that serves
        the API alone, such as the bench's."""
        app = create_app(settings, KubeAuthorizer(kube), RecordingStore(kube))
        if freeze:
            gc.collect()
            gc.freeze()
        port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:  # uvicorn binds within milliseconds
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"tapedeck-api did not start on port {port}")
            time.sleep(0.01)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)

    def close(self) -> None:
        self.http.close()
        self.server.should_exit = True
        self.thread.join(timeout=10)
