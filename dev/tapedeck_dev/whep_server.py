"""Pion's `whip-whep` example (github.com/pion/webrtc/v4), the WHEP server of the tests.

The example listens on every interface and asks Google's STUN server for candidates, and Pion
leaves loopback candidates out, so on a loopback-only machine ICE would never connect. The
build copies the example's `main.go` out of the module with three changes, each checked to
apply exactly once, and adds `loopback.go` beside it; the WHIP/WHEP handlers stay as they are:

1. no ICE servers;
2. it listens on $TAPEDECK_WHEP_LISTEN (127.0.0.1:port), behind an optional Bearer-token
   check ($TAPEDECK_WHEP_TOKEN: a 401 otherwise, as a real server refuses a bad token);
3. a `webrtc.SettingEngine` with loopback candidates only, UDP4, mDNS off.

The binary is cached under `~/.cache/tapedeck/pion-whip-whep-<version>-<hash>/`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from tapedeck_dev.binaries import BinaryNotFound, cache_root, run_go
from tapedeck_dev.local_server import LocalServer

__all__ = [
    "PION_VERSION",
    "PionWhep",
    "WhepServerError",
    "default_whep_dir",
    "ensure_pion_whep",
    "loopback_main",
]

PION_MODULE = "github.com/pion/webrtc/v4"
PION_VERSION = "v4.2.26"
LISTEN_ENV = "TAPEDECK_WHEP_LISTEN"
TOKEN_ENV = "TAPEDECK_WHEP_TOKEN"

_LOOPBACK_GO = """\
package main

// tapedeck's loopback settings for Pion's whip-whep example (see dev/tapedeck_dev/whep_server.py).

import (
	"net"
	"net/http"
	"os"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

func listenAddress() string {
	if address := os.Getenv("TAPEDECK_WHEP_LISTEN"); address != "" {
		return address
	}
	return "127.0.0.1:8080"
}

// withToken refuses requests without "Authorization: Bearer $TAPEDECK_WHEP_TOKEN", if set.
func withToken(next http.Handler) http.Handler {
	token := os.Getenv("TAPEDECK_WHEP_TOKEN")
	return http.HandlerFunc(func(res http.ResponseWriter, req *http.Request) {
		if token != "" && req.Method != http.MethodOptions &&
			req.Header.Get("Authorization") != "Bearer "+token {
			http.Error(res, "bad token", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(res, req)
	})
}

func loopbackSettings() webrtc.SettingEngine {
	settings := webrtc.SettingEngine{}
	settings.SetIncludeLoopbackCandidate(true)
	settings.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	settings.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	settings.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return settings
}
"""

# (pattern, replacement, times it must match): the three changes to the example's main.go.
_CHANGES: tuple[tuple[str, str, int], ...] = (
    (
        r"peerConnectionConfiguration = webrtc\.Configuration\{.*?\n\t\}\n",
        "peerConnectionConfiguration = webrtc.Configuration{}\n",
        1,
    ),
    (
        r'http\.ListenAndServe\(":8080", nil\)',
        "http.ListenAndServe(listenAddress(), withToken(http.DefaultServeMux))",
        1,
    ),
    (r"webrtc\.NewAPI\(", "webrtc.NewAPI(webrtc.WithSettingEngine(loopbackSettings()), ", 2),
)


class WhepServerError(RuntimeError):
    """Pion's whip-whep did not start."""


def default_whep_dir() -> Path:
    return cache_root() / "whep"


def loopback_main(example: str) -> str:
    """The example's main.go with the three changes; an upstream change fails loudly."""
    for pattern, replacement, times in _CHANGES:
        example, count = re.subn(pattern, replacement, example, flags=re.S)
        if count != times:
            raise BinaryNotFound(
                f"Pion's whip-whep {PION_VERSION} main.go changed: {pattern!r} matched "
                f"{count} times, not {times}"
            )
    return example


def _binary() -> Path:
    digest = hashlib.sha256((_LOOPBACK_GO + repr(_CHANGES)).encode()).hexdigest()[:12]
    return cache_root() / f"pion-whip-whep-{PION_VERSION}-{digest}" / "whip-whep"


def ensure_pion_whep() -> Path:
    """The loopback build of Pion's example, built once from the Go module proxy."""
    binary = _binary()
    if binary.is_file():
        return binary
    if shutil.which("go") is None:
        raise BinaryNotFound("`go` is not installed to build Pion's whip-whep example")
    binary.parent.mkdir(parents=True, exist_ok=True)
    log = binary.parent / "build.log"
    with tempfile.TemporaryDirectory(prefix="tapedeck-build-") as tmp:
        module = Path(tmp)
        (module / "go.mod").write_text("module tapedeck.invalid/tools/whipwhep\n\ngo 1.24.0\n")
        run_go(["get", f"{PION_MODULE}@{PION_VERSION}"], module, log)
        listing = subprocess.run(
            ["go", "list", "-m", "-f", "{{.Dir}}", PION_MODULE],
            cwd=module,
            capture_output=True,
            text=True,
            check=True,
        )
        example = Path(listing.stdout.strip()) / "examples" / "whip-whep" / "main.go"
        (module / "main.go").write_text(loopback_main(example.read_text()))
        (module / "loopback.go").write_text(_LOOPBACK_GO)
        run_go(["mod", "tidy"], module, log)
        run_go(["build", "-trimpath", "-ldflags", "-s -w", "-o", str(binary), "."], module, log)
    if not binary.is_file():
        raise BinaryNotFound(f"Pion's whip-whep build finished but {binary} is missing")
    return binary


class PionWhep(LocalServer):
    """One loopback Pion whip-whep process: WHIP in at /whip, WHEP out at /whep. Its pid is
    kept in `root`, so that `tapedeck-dev whep down` stops what `whep up` started."""

    name = "Pion's whip-whep"
    error = WhepServerError

    def __init__(self, root: Path, port: int, token: str | None = None) -> None:
        super().__init__()
        self.root, self.port, self.token = root, port, token
        self.log = root / "whip-whep.log"
        self._pid_file = root / "whip-whep.pid"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def whep_url(self) -> str:
        return f"{self.url}/whep"

    @property
    def whip_url(self) -> str:
        return f"{self.url}/whip"

    def up(self) -> None:
        """Start the server unless it already answers; idempotent."""
        if self.is_healthy():
            return
        binary = ensure_pion_whep()
        self.root.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
        env[LISTEN_ENV] = f"127.0.0.1:{self.port}"
        if self.token:
            env[TOKEN_ENV] = self.token
        self._start([str(binary)], self.is_healthy, 15, env=env, cwd=self.root)
        assert self._child is not None
        self._pid_file.write_text(str(self._child.pid))

    def down(self) -> None:
        """Stop it, also when another process started it (by the pid in `root`)."""
        if self._child is None and self._pid_file.exists():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(self._pid_file.read_text()), signal.SIGKILL)
        super().down()
        self._pid_file.unlink(missing_ok=True)

    def is_healthy(self) -> bool:
        """The example answers OPTIONS on /whep (its CORS preflight) without a token."""
        request = urllib.request.Request(self.whep_url, method="OPTIONS")
        try:
            with urllib.request.urlopen(request, timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False
