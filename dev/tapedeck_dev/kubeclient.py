"""The dev tools' and tests' way into the `kubernetes` client: one ApiClient per kubeconfig.

The generated client decodes answers into pydantic models that drop what they do not know
and make every field optional; the process kubelet and the tests read pods and custom objects
as the API server's JSON instead, through `read_json` on calls made with
`_preload_content=False`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

__all__ = ["MERGE_PATCH", "api_client", "error_message", "read_json"]

# For a built-in kind the client sends a dict as a strategic merge patch; a JSON merge patch
# replaces lists whole, as a status report that lists every container wants.
MERGE_PATCH = "application/merge-patch+json"


def api_client(kubeconfig: Path) -> client.ApiClient:
    """A client for the current context of `kubeconfig`; the global default config is untouched."""
    configuration = client.Configuration()
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig), client_configuration=configuration, persist_config=False
    )
    return client.ApiClient(configuration)


def read_json(response: object) -> dict[str, Any]:
    """The JSON body of a call made with `_preload_content=False` (an urllib3 response).

    Reading the whole body hands the connection back to the pool, so call this even when the
    answer does not matter.
    """
    if not isinstance(response, urllib3.BaseHTTPResponse):
        raise TypeError(f"expected the raw response of a _preload_content=False call: {response!r}")
    try:
        body = response.data
    finally:
        response.release_conn()
    return cast(dict[str, Any], json.loads(body)) if body else {}


def error_message(exc: ApiException) -> str:
    """The API server's own message in a refusal (its Status), else the HTTP reason."""
    try:
        message = json.loads(exc.body or "")["message"]
    except (ValueError, KeyError, TypeError):
        return f"{exc.status} {exc.reason}"
    return str(message)
