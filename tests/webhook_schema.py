"""RealtimeKit's `recording.statusUpdate` body, as a JSON Schema check for our payloads.

The schema in `tests/realtimekit/` is derived from RealtimeKit's published examples (see the
README there); `validate_status_update` checks a payload we send against it.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

__all__ = ["EXAMPLES", "SCHEMA_PATH", "validate_status_update"]

_HERE = Path(__file__).parent / "realtimekit"
SCHEMA_PATH = _HERE / "recording.statusUpdate.derived.schema.json"
EXAMPLES: list[Path] = sorted(_HERE.glob("recording.statusUpdate.*.dyte-docs-example.json"))


@cache
def _validator() -> jsonschema.Draft202012Validator:
    schema: dict[str, Any] = copy.deepcopy(json.loads(SCHEMA_PATH.read_text()))
    # Deliberate widening, kept out of the file (tests/realtimekit/README.md): the webhook docs
    # list five statuses, RealtimeKit's REST enum also has PAUSED, and tapedeck sends an event
    # for every phase transition, pauses included.
    status = schema["properties"]["recording"]["properties"]["status"]
    if "PAUSED" not in status["enum"]:
        status["enum"] = [*status["enum"], "PAUSED"]
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def validate_status_update(payload: dict[str, Any]) -> None:
    """Raise AssertionError listing every way `payload` differs from the derived schema."""
    errors = sorted(
        _validator().iter_errors(payload), key=lambda e: [str(p) for p in e.absolute_path]
    )
    if errors:
        problems = "\n".join(
            f"  - at {'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
            for e in errors
        )
        raise AssertionError(
            f"not a RealtimeKit recording.statusUpdate body ({len(errors)} error(s)):\n{problems}"
        )
