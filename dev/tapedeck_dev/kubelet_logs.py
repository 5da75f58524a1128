"""The process kubelet's log endpoint: what the API server proxies `kubectl logs` (and
`kubectl tapedeck logs`) to, `GET /containerLogs/{namespace}/{pod}/{container}`, answered
from the container's log file. HTTPS on 127.0.0.1 with a throwaway certificate; the API
server does not verify a kubelet's certificate unless --kubelet-certificate-authority is set,
and it is not here. A dev/test tool only: it serves any pod's log to whoever can reach the
port, as a real kubelet would not."""

from __future__ import annotations

import ssl
import tempfile
import threading
import urllib.parse
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tapedeck_dev.certs import Authority

__all__ = ["LogServer", "container_log"]


def container_log(root: Path, namespace: str, pod: str, container: str) -> Path | None:
    """The log file of a container of a pod that runs (or ran) under `root`."""
    for directory in sorted(root.glob(f"{namespace}_{pod}_*")):
        log = directory / f"{container}.log"
        if log.is_file():
            return log
    return None


def _tail(data: bytes, lines: int) -> bytes:
    kept = deque(data.splitlines(keepends=True), maxlen=lines)
    return b"".join(kept)


class _TLSServer(ThreadingHTTPServer):
    """TLS per connection, in the connection's own thread with a timeout: a client that
    connects and says nothing holds up neither other requests nor shutdown."""

    daemon_threads = True
    context: ssl.SSLContext

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(_TIMEOUT_S)
        with self.context.wrap_socket(request, server_side=True) as tls:
            super().finish_request(tls, client_address)


_TIMEOUT_S = 10


class LogServer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._server = _TLSServer(("127.0.0.1", 0), self._handler())
        serving = Authority("tapedeck-process-kubelet").issue("127.0.0.1", hosts=("127.0.0.1",))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory(prefix="tapedeck-kubelet-tls-") as tmp:
            cert, key = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
            cert.write_bytes(serving.cert_pem)
            key.write_bytes(serving.key_pem)
            context.load_cert_chain(cert, key)
        self._server.context = context
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        root = self.root

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                parts = url.path.strip("/").split("/")
                if len(parts) != 4 or parts[0] != "containerLogs":
                    self.send_error(404, "only /containerLogs/{namespace}/{pod}/{container}")
                    return
                log = container_log(root, parts[1], parts[2], parts[3])
                if log is None:
                    self.send_error(404, f"no log for {'/'.join(parts[1:])}")
                    return
                data = log.read_bytes()
                query = urllib.parse.parse_qs(url.query)
                if lines := query.get("tailLines"):
                    data = _tail(data, int(lines[0]))
                if limit := query.get("limitBytes"):
                    data = data[: int(limit[0])]
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass  # the kubelet's own log says enough

        return Handler
