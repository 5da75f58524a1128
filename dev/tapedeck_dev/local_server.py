"""A server process of the dev harness: started in a session of its own with its output in a
log, ready when a check says so, stopped with its whole process group."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["LocalServer", "stop_group"]


def stop_group(child: subprocess.Popen[bytes] | None, grace_s: float = 10) -> None:
    """SIGTERM a child started in a session of its own, and its children; SIGKILL them all
    after `grace_s`."""
    if child is None or child.poll() is not None:
        return
    os.killpg(child.pid, signal.SIGTERM)
    try:
        child.wait(grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()


def _log_tail(path: Path) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-15:])


class LocalServer:
    """A server process of ours: started with its output in `log`, stopped with its group."""

    name = "server"
    error: type[Exception] = RuntimeError  # raised when it does not start
    log: Path

    def __init__(self) -> None:
        self._child: subprocess.Popen[bytes] | None = None

    def _start(
        self,
        command: list[str],
        ready: Callable[[], bool],
        timeout_s: float,
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        with self.log.open("ab") as log:
            self._child = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=env,
                cwd=cwd,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self._child.poll() is None:
            if ready():
                return
            time.sleep(0.1)
        self.down()
        raise self.error(f"{self.name} did not start; last log lines:\n" + _log_tail(self.log))

    def _log_says(self, text: str) -> bool:
        return text in self.log.read_text(errors="replace")

    def down(self) -> None:
        stop_group(self._child)
        self._child = None
