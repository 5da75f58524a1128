"""Signed webhooks (Standard Webhooks): what the operator sends, and `verify` for receivers."""

from tapedeck_operator.webhooks.signing import (
    SigningError,
    WebhookVerificationError,
    parse_secret,
    sign,
    verify,
)

__all__ = ["SigningError", "WebhookVerificationError", "parse_secret", "sign", "verify"]
