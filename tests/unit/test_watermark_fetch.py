"""The operator's side of composite.watermark: an https image fetched through the egress
guard (redirects judged again, a size limit), checked to be a PNG, and stored once in a
ConfigMap the Recording owns; a user's ConfigMap key checked before a pod mounts it."""

from __future__ import annotations

import asyncio
import base64
import ssl
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tapedeck_bot.contract import RecordingSpec
from tapedeck_operator.config import OperatorSettings
from tapedeck_operator.kube import Conflict
from tapedeck_operator.manifests import Owner, bot_pod, watermark_image
from tapedeck_operator.policy import Unusable
from tapedeck_operator.watermarks import IMAGE_LIMIT, png_problem, prepare_watermark
from tapedeck_operator.webhooks.egress import Fetched
from tests.egress import loopback_egress
from tests.image_host import loopback_tls
from tests.recordings import recording
from tests.watermarks import logo_png

OWNER = Owner("team", "standup", "0123456789abcdef")
LOGO = logo_png()


@asynccontextmanager
async def image_server(tmp_path: Path) -> AsyncIterator[tuple[str, ssl.SSLContext]]:
    """https://127.0.0.1:<port> serving /logo.png, /big.png, redirects and failures; and a
    client context that trusts its certificate authority."""
    server_tls, ca_pem = loopback_tls(tmp_path)
    client_tls = ssl.create_default_context(cadata=ca_pem.decode())

    async def handle(request: web.Request) -> web.StreamResponse:
        routes: dict[str, web.StreamResponse] = {
            "/logo.png": web.Response(body=LOGO, content_type="image/png"),
            "/big.png": web.Response(body=b"\x89PNG" + bytes(IMAGE_LIMIT)),
            "/moved": web.Response(status=302, headers={"Location": "/logo.png"}),
            "/to-http": web.Response(status=302, headers={"Location": "http://127.0.0.1/x"}),
            "/to-private": web.Response(status=307, headers={"Location": "https://10.0.0.7/x"}),
            "/loop": web.Response(status=302, headers={"Location": "/loop"}),
            "/busy": web.Response(status=503),
            "/bad-location": web.Response(status=302, headers={"Location": "https://[::1/x"}),
            "/page": web.Response(text="<html>logo</html>", content_type="text/html"),
        }
        if request.path == "/streamed":  # chunked: no Content-Length to judge by
            response = web.StreamResponse()
            await response.prepare(request)
            for _ in range(IMAGE_LIMIT // 65536 + 2):
                await response.write(bytes(65536))
            return response
        if request.path == "/slow":
            await asyncio.sleep(10)
        return routes.get(request.path) or web.Response(status=404)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_tls)
    await site.start()
    try:
        yield f"https://127.0.0.1:{runner.addresses[0][1]}", client_tls
    finally:
        await runner.cleanup()


def test_fetch_follows_redirects_through_the_guard_and_limits_the_size(tmp_path: Path) -> None:
    async def fetch_all() -> dict[str, Fetched]:
        async with image_server(tmp_path) as (base, tls):
            egress = loopback_egress(tls=tls)
            try:
                paths = ["/logo.png", "/moved", "/to-http", "/to-private", "/loop", "/busy"]
                paths += ["/big.png", "/streamed", "/bad-location", "/gone"]
                return {path: await egress.fetch(base + path, IMAGE_LIMIT) for path in paths}
            finally:
                await egress.close()

    got = asyncio.run(fetch_all())
    assert got["/logo.png"] == Fetched(LOGO)
    assert got["/moved"] == Fetched(LOGO)
    for path, says in [
        ("/to-http", "not an https URL (scheme http)"),
        ("/to-private", "10.0.0.7 is a private address; set webhooks.allowPrivateDestinations"),
        ("/loop", "more than 5 redirects"),
        ("/big.png", f"larger than {IMAGE_LIMIT} bytes"),
        ("/streamed", f"larger than {IMAGE_LIMIT} bytes"),
        ("/bad-location", "/bad-location: a malformed redirect"),
        ("/gone", "/gone: HTTP 404"),
    ]:
        assert got[path].body is None
        assert got[path].final, path
        assert says in (got[path].error or ""), got[path]
    assert got["/busy"].body is None
    assert not got["/busy"].final  # a server error may pass: worth another try
    assert "HTTP 503" in (got["/busy"].error or "")


def test_a_slow_server_times_out_as_a_whole(tmp_path: Path) -> None:
    async def fetch() -> Fetched:
        async with image_server(tmp_path) as (base, tls):
            egress = loopback_egress(tls=tls, timeout=0.5)
            try:
                return await egress.fetch(base + "/slow?sig=secret", IMAGE_LIMIT)
            finally:
                await egress.close()

    fetched = asyncio.run(fetch())
    assert not fetched.final  # the next pass tries again
    assert fetched.error is not None
    assert fetched.error.endswith("/slow: timed out after 0.5 s")
    assert "secret" not in fetched.error


def test_a_loopback_image_is_refused_unless_the_webhook_setting_allows_it(tmp_path: Path) -> None:
    async def fetch() -> Fetched:
        async with image_server(tmp_path) as (base, tls):
            egress = loopback_egress(allow_loopback=False, tls=tls)
            try:
                return await egress.fetch(base + "/logo.png", IMAGE_LIMIT)
            finally:
                await egress.close()

    fetched = asyncio.run(fetch())
    assert fetched.final
    assert "a loopback address; set webhooks.allowLoopbackDestinations" in (fetched.error or "")


def _png_header(width: int, height: int) -> bytes:
    return (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", width, height)
    )


def test_only_a_png_of_sensible_size_is_taken() -> None:
    assert png_problem(LOGO) is None
    assert (png_problem(b"GIF89a...") or "").startswith("is not a PNG")
    assert "5000x4000 pixels" in (png_problem(_png_header(5000, 4000) + bytes(10)) or "")
    assert "more than 524288" in (png_problem(_png_header(10, 10) + bytes(IMAGE_LIMIT)) or "")


class ConfigMaps:
    """The ConfigMap calls of ClusterApi, in memory."""

    def __init__(self, **maps: dict[str, bytes]) -> None:
        self.maps = maps
        self.created: list[dict[str, Any]] = []

    def config_map_files(self, namespace: str, name: str) -> dict[str, bytes] | None:
        return self.maps.get(name)

    def create(self, obj: dict[str, Any]) -> None:
        self.created.append(obj)
        binary = obj["binaryData"]
        self.maps[obj["metadata"]["name"]] = {k: base64.b64decode(v) for k, v in binary.items()}


class Images:
    def __init__(self, fetched: Fetched) -> None:
        self.fetched = fetched
        self.urls: list[str] = []

    async def fetch(self, url: str, limit: int) -> Fetched:
        self.urls.append(url)
        return self.fetched


def _spec(watermark: dict[str, Any]) -> RecordingSpec:
    return RecordingSpec.model_validate(recording(composite={"watermark": watermark})["spec"])


def _prepare(api: ConfigMaps, images: Images, spec: RecordingSpec) -> Unusable | None:
    return asyncio.run(prepare_watermark(api, images, OWNER, spec))  # type: ignore[arg-type]


def test_an_image_from_a_url_is_fetched_once_into_a_config_map_the_pod_mounts() -> None:
    spec = _spec({"url": "https://cdn.example.com/logo.png", "position": "right bottom"})
    api, images = ConfigMaps(), Images(Fetched(LOGO))
    assert _prepare(api, images, spec) is None
    assert _prepare(api, images, spec) is None  # a later pass, a later attempt: no new fetch
    assert images.urls == ["https://cdn.example.com/logo.png"]
    (created,) = api.created
    name, key = watermark_image(OWNER, spec.composite.watermark)  # type: ignore[arg-type]
    assert created["metadata"]["name"] == name
    assert name.startswith("standup-watermark-")
    assert created["metadata"]["ownerReferences"][0]["uid"] == OWNER.uid
    assert created["immutable"] is True
    assert base64.b64decode(created["binaryData"][key]) == LOGO
    # A new url (spec.composite may change): a new image for the next attempt.
    changed = _spec({"url": "https://cdn.example.com/logo-v2.png"})
    assert _prepare(api, images, changed) is None
    assert images.urls[-1] == "https://cdn.example.com/logo-v2.png"
    assert len({c["metadata"]["name"] for c in api.created}) == 2


def test_a_config_map_of_that_name_owned_by_another_is_not_taken() -> None:
    class Taken(ConfigMaps):
        def create(self, obj: dict[str, Any]) -> None:
            raise Conflict(f"ConfigMap {obj['metadata']['name']} still belongs to another")

    spec = _spec({"url": "https://cdn.example.com/logo.png"})
    problem = _prepare(Taken(), Images(Fetched(LOGO)), spec)
    assert problem is not None
    assert problem.final
    assert "belongs to another object: delete it" in problem.message


@pytest.mark.parametrize(
    ("fetched", "final", "says"),
    [
        (Fetched(None, "refused https://10.0.0.1/x: a private address", final=True), True, "10"),
        (Fetched(None, "https://cdn/x: timed out after 10 s", final=False), False, "timed out"),
        (Fetched(b"<html></html>"), True, "the image is not a PNG"),
    ],
)
def test_an_image_that_cannot_be_fetched_or_used_names_the_url(
    fetched: Fetched, final: bool, says: str
) -> None:
    api = ConfigMaps()
    spec = _spec({"url": "https://cdn.example.com/logo.png"})
    problem = _prepare(api, Images(fetched), spec)
    assert problem is not None
    assert problem.final is final
    assert problem.message.startswith("spec.composite.watermark.url: ")
    assert says in problem.message
    assert api.created == []


def test_a_users_config_map_is_checked_and_mounted_as_it_is() -> None:
    spec = _spec({"configMapKeyRef": {"name": "branding", "key": "logo.png"}})
    images = Images(Fetched(None, "never asked"))
    missing = _prepare(ConfigMaps(), images, spec)
    assert missing == Unusable(
        "ConfigMap 'branding' (spec.composite.watermark.configMapKeyRef) not found: create it "
        "in the Recording's namespace"
    )
    no_key = _prepare(ConfigMaps(branding={"other": LOGO}), images, spec)
    assert no_key is not None
    assert "has no key logo.png" in no_key.message
    assert not no_key.final  # someone may still add it
    not_png = _prepare(ConfigMaps(branding={"logo.png": b"GIF89a"}), images, spec)
    assert not_png is not None
    assert not_png.final
    assert "is not a PNG" in not_png.message
    assert _prepare(ConfigMaps(branding={"logo.png": LOGO}), images, spec) is None
    assert images.urls == []

    pod = bot_pod(OWNER, spec, OperatorSettings(), 1)
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "watermark")
    assert volume["configMap"] == {
        "name": "branding",
        "items": [{"key": "logo.png", "path": "watermark.png"}],
        "optional": True,  # gone by a later attempt: the bot says so, the mount never hangs
    }
    mount = next(
        m for m in pod["spec"]["containers"][0]["volumeMounts"] if m["name"] == "watermark"
    )
    assert mount == {"name": "watermark", "mountPath": "/etc/tapedeck/watermark", "readOnly": True}
    config = next(
        e for e in pod["spec"]["containers"][0]["env"] if e["name"] == "TAPEDECK_BOT_CONFIG"
    )
    assert '"watermarkFile":"/etc/tapedeck/watermark/watermark.png"' in config["value"]


def test_no_watermark_is_prepared_without_a_composite() -> None:
    spec = RecordingSpec.model_validate(
        recording(
            composite={"enabled": False, "watermark": {"url": "https://cdn.example.com/l.png"}},
            tracks={"enabled": True},
        )["spec"]
    )
    images = Images(Fetched(LOGO))
    assert _prepare(ConfigMaps(), images, spec) is None
    assert images.urls == []
