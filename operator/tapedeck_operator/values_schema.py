"""The Helm chart's `values.schema.json`, generated from the operator's settings models.

The chart renders most values straight into the operator's settings file, so their schema is
the settings models' own: a key the operator would refuse is refused by `helm install`
already, with the key named. Run `python -m tapedeck_operator.values_schema >
charts/tapedeck/values.schema.json` (`make crds` does) after changing a model; a test fails
when the committed file differs.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from pydantic import BaseModel

from tapedeck_bot.contract import StorageSpec
from tapedeck_operator.api.settings import ApiSettings, AppSettings
from tapedeck_operator.config import (
    BotSettings,
    DownloadSettings,
    Resources,
    RetentionSettings,
    TransferSettings,
    WebhookSettings,
)

__all__ = ["values_schema"]


def _inlined(node: Any, defs: dict[str, Any]) -> Any:
    """Resolve `$ref`s, so that every validator helm has used reads the schema alike."""
    if isinstance(node, list):
        return [_inlined(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _inlined(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
    return {k: _inlined(v, defs) for k, v in node.items() if k not in ("$defs", "title")}


def _model(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True)
    result: dict[str, Any] = _inlined(schema, schema.get("$defs", {}))
    return result


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "properties": properties}


_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_PORT = {"type": "integer", "minimum": 0, "maximum": 65535}


def values_schema() -> dict[str, Any]:
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        **_object(
            {
                "crds": _object({"install": {"type": "boolean"}, "keep": {"type": "boolean"}}),
                "operator": _object(
                    {
                        "image": _object(
                            {
                                "repository": {"type": "string", "minLength": 1},
                                "tag": {"type": "string"},
                                "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
                            }
                        ),
                        "resources": _model(Resources),
                        "watchNamespaces": {"type": "array", "items": {"type": "string"}},
                        "nodeSelector": _STRING_MAP,
                        "tolerations": {"type": "array", "items": {"type": "object"}},
                        "priorityClassName": {"type": "string"},
                        "logLevel": {"enum": ["info", "debug"]},
                    }
                ),
                "metrics": _object(
                    {
                        "port": _PORT,
                        "serviceMonitor": _object(
                            {"enabled": {"type": "boolean"}, "interval": {"type": "string"}}
                        ),
                    }
                ),
                "health": _object({"port": _PORT}),
                "listenAddress": {"type": "string", "minLength": 1},
                "storage": {"anyOf": [_model(StorageSpec), {"type": "null"}]},
                "retention": _model(RetentionSettings),
                "downloads": _model(DownloadSettings),
                "transfers": _model(TransferSettings),
                "webhooks": _model(WebhookSettings),
                "bot": _model(BotSettings),
                "api": _object(
                    {
                        "enabled": {"type": "boolean"},
                        "replicas": {"type": "integer", "minimum": 1},
                        "port": _PORT,
                        "resources": _model(Resources),
                        "apps": _model(ApiSettings)["properties"]["apps"],
                        "defaultApp": _model(AppSettings),
                    }
                ),
                "demo": _object(
                    {
                        "enabled": {"type": "boolean"},
                        "image": {"type": "string", "minLength": 1},
                        "imagePullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
                        "room": {"type": "integer", "minimum": 1},
                        "participants": {"type": "integer", "minimum": 0, "maximum": 8},
                    }
                ),
            }
        ),
    }


if __name__ == "__main__":
    sys.stdout.write(json.dumps(values_schema(), indent=2) + "\n")
