"""RealtimeKit's recordings API schemas (tests/realtimekit/recordings.schema.json, with its
provenance in the README beside it), for checking tapedeck's API bodies: the bundle, plus no
fields beyond it at the top level of `data`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

BUNDLE = Path(__file__).resolve().parent / "realtimekit" / "recordings.schema.json"
_SCHEMA = json.loads(BUNDLE.read_text())
_DEFS = _SCHEMA["$defs"]


def validate(body: Any, definition: str) -> None:
    """Raise jsonschema.ValidationError unless `body` is a valid `definition` of the bundle."""
    schema = {**_SCHEMA, "$ref": f"#/$defs/{definition}"}
    Draft202012Validator(schema, format_checker=FormatChecker()).validate(body)


def recording_fields() -> set[str]:
    """The fields of RealtimeKit's recording, as lists and the active recording carry it."""
    return set(_DEFS["Recording"]["properties"])


def detail_fields() -> set[str]:
    """The fields of one recording's answers: the recording and its detail."""
    return recording_fields() | set(_DEFS["RecordingDetail"]["allOf"][1]["properties"])
