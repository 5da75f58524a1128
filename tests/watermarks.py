"""A watermark image whose pixels the tests know: shared by the unit, Janus and operator tests."""

from __future__ import annotations

import io

from PIL import Image

BLUE = (20, 40, 230)
HALF_WHITE = (255, 255, 255, 128)


def logo_png(width: int = 120, height: int = 60) -> bytes:
    """Opaque blue on the left third, half-transparent white on the rest."""
    image = Image.new("RGBA", (width, height), HALF_WHITE)
    image.paste(Image.new("RGBA", (width // 3, height), (*BLUE, 255)), (0, 0))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()
