"""Start Debian's Janus (VideoRoom, HTTP + WebSocket) bound to 127.0.0.1 only.

Janus 1.1.2 never gathers ICE candidates on loopback (`janus_ice_setup_local` skips
IFF_LOOPBACK before applying `ice_enforce_list`), and libnice then falls back to every other
interface. A 30-line `getifaddrs()` shim, preloaded into Janus only, presents `lo` as a normal
interface and hides the rest, so the only candidate is 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tapedeck_dev.binaries import cache_root

__all__ = ["JanusError", "JanusServer", "default_janus_dir"]

_PLUGIN_ROOT = Path("/usr/lib/x86_64-linux-gnu/janus")
_DISABLED_PLUGINS = (
    "libjanus_audiobridge.so,libjanus_duktape.so,libjanus_echotest.so,libjanus_lua.so,"
    "libjanus_nosip.so,libjanus_recordplay.so,libjanus_sip.so,libjanus_streaming.so,"
    "libjanus_textroom.so,libjanus_videocall.so,libjanus_voicemail.so"
)
_DISABLED_TRANSPORTS = (
    "libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_pfunix.so,libjanus_rabbitmq.so"
)

_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stddef.h>

/* Report lo as a normal up interface and every other interface as down, editing the list
 * in place so that freeifaddrs() stays valid. */
int getifaddrs(struct ifaddrs **ifap) {
    static int (*real)(struct ifaddrs **) = NULL;
    if (real == NULL)
        real = (int (*)(struct ifaddrs **))dlsym(RTLD_NEXT, "getifaddrs");
    int rc = real(ifap);
    if (rc != 0 || ifap == NULL)
        return rc;
    for (struct ifaddrs *ifa = *ifap; ifa != NULL; ifa = ifa->ifa_next) {
        if (ifa->ifa_flags & IFF_LOOPBACK) {
            ifa->ifa_flags &= ~IFF_LOOPBACK;
            ifa->ifa_flags |= (IFF_UP | IFF_RUNNING);
        } else {
            ifa->ifa_flags &= ~(IFF_UP | IFF_RUNNING);
        }
    }
    return rc;
}
"""


class JanusError(RuntimeError):
    """Janus is not installed, or did not start."""


def default_janus_dir() -> Path:
    return Path(os.environ.get("TAPEDECK_JANUS_DIR", cache_root() / "janus"))


@dataclass(frozen=True)
class JanusPorts:
    http: int = 8088
    websocket: int = 8188
    rtp_first: int = 20000
    rtp_last: int = 20999


def _jcfg(sections: dict[str, dict[str, object]]) -> str:
    """Janus' libconfig syntax: `name: { key = value }`."""
    out = []
    for name, values in sections.items():
        body = "".join(f"\t{k} = {json.dumps(v)}\n" for k, v in values.items())
        out.append(f"{name}: {{\n{body}}}\n")
    return "".join(out)


def render_config(conf: Path, ports: JanusPorts) -> dict[str, str]:
    """The four config files, loopback only: videoroom plugin, HTTP and WS transports."""
    return {
        "janus.jcfg": _jcfg(
            {
                "general": {
                    "configs_folder": str(conf),
                    "plugins_folder": str(_PLUGIN_ROOT / "plugins"),
                    "transports_folder": str(_PLUGIN_ROOT / "transports"),
                    "events_folder": str(_PLUGIN_ROOT / "events"),
                    "loggers_folder": str(_PLUGIN_ROOT / "loggers"),
                    "debug_level": 4,
                    "debug_timestamps": True,
                    "interface": "127.0.0.1",
                    "session_timeout": 60,
                },
                "media": {"rtp_port_range": f"{ports.rtp_first}-{ports.rtp_last}"},
                "nat": {"ice_enforce_list": "lo", "ignore_mdns": True},
                "plugins": {"disable": _DISABLED_PLUGINS},
                "transports": {"disable": _DISABLED_TRANSPORTS},
                "loggers": {"disable": "libjanus_jsonlog.so"},
                "events": {"broadcast": False},
            }
        ),
        "janus.transport.http.jcfg": _jcfg(
            {
                "general": {
                    "json": "compact",
                    "base_path": "/janus",
                    "http": True,
                    "port": ports.http,
                    "ip": "127.0.0.1",
                    "https": False,
                },
                "admin": {"admin_http": False, "admin_https": False},
            }
        ),
        "janus.transport.websockets.jcfg": _jcfg(
            {
                "general": {
                    "json": "compact",
                    "ws": True,
                    "ws_port": ports.websocket,
                    "ws_ip": "127.0.0.1",
                    "wss": False,
                },
                "admin": {"admin_ws": False, "admin_wss": False},
            }
        ),
        # No admin_key: tests create their rooms through the API.
        "janus.plugin.videoroom.jcfg": _jcfg({"general": {}}),
    }


class JanusServer:
    """One Janus process rooted at a state directory (config, shim, log, pid)."""

    def __init__(self, root: Path | None = None, ports: JanusPorts = JanusPorts()) -> None:
        self.root = root or default_janus_dir()
        self.ports = ports
        self._child: subprocess.Popen[bytes] | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.http}/janus"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ports.websocket}"

    @property
    def log(self) -> Path:
        return self.root / "janus.log"

    @property
    def pid(self) -> int | None:
        path = self.root / "janus.pid"
        return int(path.read_text()) if path.exists() else None

    def up(self) -> None:
        """Start Janus unless it already answers; idempotent."""
        if self.is_healthy():
            return
        janus = shutil.which("janus")
        if janus is None:
            raise JanusError("janus is not installed: run `apt-get install -y janus`")
        conf = self.root / "conf"
        conf.mkdir(parents=True, exist_ok=True)
        for name, text in render_config(conf, self.ports).items():
            (conf / name).write_text(text)
        shim = self._build_shim()
        env = dict(os.environ, LD_PRELOAD=str(shim))
        with self.log.open("ab") as log:
            self._child = subprocess.Popen(
                [janus, "-F", str(conf), "-o"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        (self.root / "janus.pid").write_text(str(self._child.pid))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.is_healthy():
                return
            if self._child.poll() is not None:
                break
            time.sleep(0.05)
        tail = self.log.read_text(errors="replace").splitlines()[-20:]
        raise JanusError("Janus did not start; last log lines:\n" + "\n".join(tail))

    def down(self) -> None:
        pid = self.pid
        if pid is not None:
            try:
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    os.kill(pid, 0)
                    if self._child is not None and self._child.poll() is not None:
                        break
                    time.sleep(0.05)
                else:
                    os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            (self.root / "janus.pid").unlink(missing_ok=True)
        if self._child is not None:
            self._child.wait()
            self._child = None

    def is_healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.http_url}/info", timeout=1) as response:
                return bool(json.loads(response.read()).get("janus") == "server_info")
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def _build_shim(self) -> Path:
        source = self.root / "lo_only_ifaddrs.c"
        shim = self.root / "lo_only_ifaddrs.so"
        if not shim.exists() or not source.exists() or source.read_text() != _SHIM:
            source.write_text(_SHIM)
            compiler = shutil.which("cc") or shutil.which("gcc")
            if compiler is None:
                raise JanusError(
                    "a C compiler is needed for the loopback shim: apt-get install gcc"
                )
            subprocess.run(
                [compiler, "-shared", "-fPIC", "-O2", "-o", str(shim), str(source), "-ldl"],
                check=True,
            )
        return shim
