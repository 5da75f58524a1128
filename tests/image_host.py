"""An https server on loopback that serves the images a test gives it and counts the GETs:
where a watermark's `url` points. Its certificate authority is in `ca_file`, for the client
(the operator) to trust."""

from __future__ import annotations

import ssl
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tapedeck_dev.certs import Authority

__all__ = ["ImageHost", "loopback_tls"]


def loopback_tls(directory: Path) -> tuple[ssl.SSLContext, bytes]:
    """A server context for https://127.0.0.1, and the PEM of the authority that signed it
    (for the client to trust), its files in `directory`."""
    authority = Authority("tapedeck-test-images")
    serving = authority.issue("127.0.0.1", hosts=("127.0.0.1",))
    (directory / "images.crt").write_bytes(serving.cert_pem)
    (directory / "images.key").write_bytes(serving.key_pem)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(directory / "images.crt", directory / "images.key")
    return tls, authority.pair.cert_pem


class ImageHost:
    def __init__(self, directory: Path) -> None:
        tls, ca_pem = loopback_tls(directory)
        self.ca_file = directory / "images-ca.crt"
        self.ca_file.write_bytes(ca_pem)
        self.files: dict[str, bytes] = {}
        self.gets: Counter[str] = Counter()
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host.gets[self.path] += 1
                body = host.files.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet: the test reads `gets`

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}{path}"

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
