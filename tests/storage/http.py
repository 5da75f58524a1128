"""A plain HTTP client, as someone given a presigned URL would use."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        body: bytes = response.read()
        return body


def refused(url: str) -> int:
    """The HTTP status of a GET that must fail."""
    with pytest.raises(urllib.error.HTTPError) as caught:
        get(url)
    caught.value.close()  # else its socket leaks into a ResourceWarning
    return caught.value.code
