"""Generate the Recording CRD from the contract's pydantic models.

The models are the one source of truth: `crds/recording.yaml` and the Helm chart's copy are
generated here, and a test fails when a committed copy differs from what this returns.
Run `python -m tapedeck_bot.contract.crd > crds/recording.yaml` after changing a model.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml
from pydantic import BaseModel

from tapedeck_bot.contract.names import API_VERSION, GROUP, KIND, PLURAL, SINGULAR, VERSION
from tapedeck_bot.contract.spec import RecordingSpec
from tapedeck_bot.contract.status import RecordingStatus

__all__ = ["build_crd", "openapi_schema", "render_crd"]

# JSON-schema keywords pydantic emits that a structural OpenAPI v3 schema does not take.
_DROPPED = {"title", "$defs", "additionalProperties"}
_CEL = "x-kubernetes-validations"
# Keywords whose values are data, not schemas: copied as they are.
_DATA = {"default", "enum", "const", "examples", _CEL}


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    """Turn pydantic's JSON schema into a Kubernetes structural schema.

    $refs are inlined, `X | None` unions collapse to X (absent means None), and
    enum-only schemas get their `type`.
    """
    if isinstance(node, list):
        return [_structural(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        rules = [*target.get(_CEL, []), *node.get(_CEL, [])]
        if rules:
            merged[_CEL] = rules
        return _structural(merged, defs)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o != {"type": "null"}]
        if len(options) != 1:
            raise ValueError(f"cannot express union {node['anyOf']} structurally")
        rest = {k: v for k, v in node.items() if k not in ("anyOf", "default")}
        return _structural({**options[0], **rest}, defs)
    out = {
        k: v if k in _DATA else _structural(v, defs) for k, v in node.items() if k not in _DROPPED
    }
    if "default" in out:
        out["default"] = _without_nulls(out["default"])
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    if "const" in out:
        out["enum"] = [out.pop("const")]
        out.setdefault("type", "string")
    return out


def _without_nulls(value: Any) -> Any:
    # An unset optional is absent in Kubernetes, not null (which the schema would refuse).
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


def openapi_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, mode="validation")
    defs = schema.pop("$defs", {})
    result: dict[str, Any] = _structural(schema, defs)
    return result


def _printer_columns() -> list[dict[str, Any]]:
    return [
        {"name": "Meeting", "type": "string", "jsonPath": ".spec.meeting.id"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {
            "name": "Duration",
            "type": "number",
            "jsonPath": ".status.durationSeconds",
            "description": "seconds recorded, pauses excluded",
        },
        {"name": "Reason", "type": "string", "jsonPath": ".status.stopReason", "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]


def build_crd() -> dict[str, Any]:
    """The CustomResourceDefinition object, as a plain dict."""
    spec = openapi_schema(RecordingSpec)
    spec["description"] = "What to record and where to put it."
    status = openapi_schema(RecordingStatus)
    status["description"] = "Written by the bot (phase, history, outputs) and the operator."
    # Served as observedGeneration 0 until the operator first writes: kstatus (Flux, kpt) then
    # reads a Recording no operator has seen as InProgress, where no status at all is Current.
    status["default"] = {"observedGeneration": 0}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": ["rec"],
                "categories": ["tapedeck"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": _printer_columns(),
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": f"A {KIND} ({API_VERSION}) records one WebRTC meeting.",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": status,
                            },
                        }
                    },
                }
            ],
        },
    }


def render_crd() -> str:
    header = "# Generated by `python -m tapedeck_bot.contract.crd` from tapedeck_bot.contract.\n"
    return header + yaml.safe_dump(build_crd(), sort_keys=False, width=100)


if __name__ == "__main__":
    sys.stdout.write(render_crd())
