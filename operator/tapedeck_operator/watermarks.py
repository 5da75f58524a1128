"""composite.watermark's image, made ready before a bot pod starts: the user's ConfigMap key
checked, or the image at `url` fetched once, through the webhook egress guard, into a
ConfigMap the Recording owns (`manifests.fetched_watermark`), which every attempt mounts."""

from __future__ import annotations

import asyncio
import struct
from typing import Protocol

from tapedeck_bot.contract import WATERMARK_MAX_PIXELS, RecordingSpec
from tapedeck_operator.kube import ClusterApi, Conflict
from tapedeck_operator.manifests import Owner, fetched_watermark, watermark_image
from tapedeck_operator.policy import Unusable
from tapedeck_operator.webhooks.egress import Fetched

__all__ = ["IMAGE_LIMIT", "ImageFetcher", "png_problem", "prepare_watermark"]

# A ConfigMap holds at most 1 MiB, and binaryData is base64 in it; a logo is far smaller.
IMAGE_LIMIT = 512 * 1024
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ImageFetcher(Protocol):
    async def fetch(self, url: str, limit: int) -> Fetched: ...


def png_problem(image: bytes) -> str | None:
    """What makes `image` no PNG a bot can draw ("is not a PNG: ..."), or None."""
    if not image.startswith(_PNG_SIGNATURE) or image[12:16] != b"IHDR" or len(image) < 24:
        return "is not a PNG: convert it to one (a PNG keeps the transparency a watermark needs)"
    width, height = struct.unpack(">II", image[16:24])
    if width * height > WATERMARK_MAX_PIXELS:
        return (
            f"is {width}x{height} pixels, more than 4096x4096 allows: scale it down to the "
            "size it is shown at"
        )
    if len(image) > IMAGE_LIMIT:
        return f"is {len(image)} bytes, more than {IMAGE_LIMIT} allow: make it smaller"
    return None


async def prepare_watermark(
    api: ClusterApi, fetcher: ImageFetcher, owner: Owner, spec: RecordingSpec
) -> Unusable | None:
    """None once the watermark's image is ready for a pod to mount (or none is asked for);
    else what is wrong, naming the field."""
    watermark = spec.drawn_watermark
    if watermark is None:
        return None
    name, key = watermark_image(owner, watermark)
    files = await asyncio.to_thread(api.config_map_files, owner.namespace, name)
    if watermark.url is None:
        field = "spec.composite.watermark.configMapKeyRef"
        if files is None:
            return Unusable(
                f"ConfigMap {name!r} ({field}) not found: create it in the Recording's namespace"
            )
        if key not in files:
            return Unusable(f"ConfigMap {name!r} ({field}) has no key {key}")
        problem = png_problem(files[key])
        if problem is None:
            return None
        return Unusable(f"{field}: ConfigMap {name!r} key {key} {problem}", final=True)
    if files is not None and key in files:  # fetched by an earlier pass
        return None
    field = "spec.composite.watermark.url"
    fetched = await fetcher.fetch(watermark.url, IMAGE_LIMIT)
    if fetched.body is None:
        return Unusable(f"{field}: cannot fetch the image: {fetched.error}", final=fetched.final)
    problem = png_problem(fetched.body)
    if problem is not None:
        return Unusable(f"{field}: the image {problem}", final=True)
    try:
        await asyncio.to_thread(api.create, fetched_watermark(owner, watermark, fetched.body))
    except Conflict:
        return Unusable(
            f"{field}: ConfigMap {name!r}, where the fetched image goes, belongs to another "
            "object: delete it",
            final=True,
        )
    return None
