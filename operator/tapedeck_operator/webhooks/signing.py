"""Standard Webhooks signatures: `sign` what the operator sends, `verify` what a receiver gets."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["SigningError", "WebhookVerificationError", "parse_secret", "sign", "verify"]

_PREFIX = "whsec_"
# HMAC-SHA256 keys shorter than this are guessable offline from one captured webhook.
_MIN_KEY_BYTES = 16
_GENERATE = (
    "python -c 'import secrets,base64;"
    'print("whsec_"+base64.b64encode(secrets.token_bytes(32)).decode())\''
)
_TOLERANCE = dt.timedelta(minutes=5)
_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


class SigningError(ValueError):
    """A secret or message that cannot be signed; the message says how to fix it."""


class WebhookVerificationError(ValueError):
    """A webhook that did not verify: reject it (HTTP 400) and do not act on it."""


def parse_secret(text: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret (a bare base64 string is accepted too)."""
    # Messages never include `text`: they end up in logs and Kubernetes events.
    encoded = text.strip().removeprefix(_PREFIX).rstrip("=")
    if not encoded:
        raise SigningError(f"webhook secret is empty: generate one with `{_GENERATE}`")
    try:
        # Re-pad, as the reference library does, so that unpadded base64 is accepted.
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except ValueError:  # binascii.Error, or non-ASCII text
        raise SigningError(
            f"webhook secret is not whsec_<base64>: generate one with `{_GENERATE}`"
        ) from None
    if len(key) < _MIN_KEY_BYTES:
        raise SigningError(
            f"webhook secret is {len(key)} bytes, too short to resist guessing (at least "
            f"{_MIN_KEY_BYTES}, 24 to 64 recommended): generate one with `{_GENERATE}`"
        )
    return key


def _signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    return hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()


def sign(msg_id: str, timestamp: int, body: bytes, secrets: Sequence[bytes]) -> dict[str, str]:
    """The headers of a webhook: one `v1` signature per active secret (several while rotating)."""
    if not secrets or not all(secrets):
        raise SigningError("no webhook secret to sign with: configure at least one")
    # The signed content is "{id}.{timestamp}.{body}": a '.' in the id would make it ambiguous.
    if not msg_id or "." in msg_id:
        raise SigningError(f"webhook id {msg_id!r} must be non-empty and contain no '.'")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise SigningError(f"webhook timestamp must be integer unix seconds, not {timestamp!r}")
    signatures = (_signature(key, msg_id, timestamp, body) for key in secrets)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(f"v1,{base64.b64encode(s).decode()}" for s in signatures),
        "content-type": "application/json",
    }


def _keys(secret: str | bytes | Sequence[str | bytes]) -> list[bytes]:
    secrets = [secret] if isinstance(secret, str | bytes) else list(secret)
    keys = [parse_secret(s) if isinstance(s, str) else s for s in secrets]
    # An empty key would accept signatures that anyone can compute.
    if not keys or not all(keys):
        raise SigningError("no webhook secret to verify with: configure at least one")
    return keys


def verify(
    headers: Mapping[str, str],
    body: bytes | str,
    secret: str | bytes | Sequence[str | bytes],
    *,
    tolerance: dt.timedelta = _TOLERANCE,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The JSON object of a webhook whose signature matches one of `secret`; else raise.

    `body` must be the raw request body: a re-serialized one will not match. `secret` is a
    `whsec_` string, raw key bytes, or a list of those (to accept old and new during rotation).
    Raises `WebhookVerificationError`, or `SigningError` for a malformed secret of our own.
    """
    keys = _keys(secret)
    lowered = {name.lower(): value.strip() for name, value in headers.items()}
    for name in _HEADERS:
        if not lowered.get(name):
            raise WebhookVerificationError(f"missing {name} header")
    msg_id, stamp, signatures = (lowered[name] for name in _HEADERS)
    if not (stamp.isascii() and stamp.isdigit()):
        raise WebhookVerificationError("webhook-timestamp is not integer unix seconds")
    timestamp = int(stamp)
    current = now if now is not None else dt.datetime.now(dt.UTC)
    if current.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    # A bounded age in both directions stops replays of a captured webhook.
    age = current.timestamp() - timestamp
    if age > tolerance.total_seconds():
        raise WebhookVerificationError("message timestamp too old")
    if age < -tolerance.total_seconds():
        raise WebhookVerificationError("message timestamp too new")

    raw = body.encode() if isinstance(body, str) else body
    expected = [_signature(key, msg_id, timestamp, raw) for key in keys]
    if not any(
        hmac.compare_digest(candidate, wanted)
        for candidate in _v1_signatures(signatures)
        for wanted in expected
    ):
        raise WebhookVerificationError("no matching signature")
    try:
        payload = json.loads(raw)
    except ValueError as err:  # also UnicodeDecodeError
        raise WebhookVerificationError("body is not JSON") from err
    if not isinstance(payload, dict):
        raise WebhookVerificationError("body is not a JSON object")
    return payload


def _v1_signatures(header: str) -> list[bytes]:
    # Other versions (e.g. v1a, asymmetric) and malformed elements are skipped, not errors:
    # a sender may add schemes this receiver does not know.
    found = []
    for element in header.split():
        version, _, encoded = element.partition(",")
        if version == "v1":
            try:
                found.append(base64.b64decode(encoded, validate=True))
            except ValueError:
                continue
    return found
