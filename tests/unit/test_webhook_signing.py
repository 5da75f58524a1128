"""Standard Webhooks signing and verification, checked against the reference library."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from standardwebhooks import webhooks as reference
from standardwebhooks.webhooks import Webhook

from tapedeck_operator.webhooks import (
    SigningError,
    WebhookVerificationError,
    parse_secret,
    sign,
    verify,
)

NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)
T = int(NOW.timestamp())
KEY = bytes(range(32))
OLD_KEY = bytes(range(100, 124))
SECRET = "whsec_" + base64.b64encode(KEY).decode()
OLD_SECRET = "whsec_" + base64.b64encode(OLD_KEY).decode()
BODY = b'{"type": "recording.statusUpdate", "data": {"phase": "RECORDING", "name": "caf\xc3\xa9"}}'
MSG_ID = "msg_2Ozm7Yb3X9kTq"


class _FrozenDatetime(dt.datetime):
    @classmethod
    def now(cls, tz: dt.tzinfo | None = None) -> _FrozenDatetime:
        return cls.fromtimestamp(NOW.timestamp(), tz)


@pytest.fixture(autouse=True)
def _frozen_reference_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    # The reference library reads the wall clock; pin it to NOW like our `now=`.
    monkeypatch.setattr(reference, "datetime", _FrozenDatetime)


def _headers(timestamp: int = T, keys: tuple[bytes, ...] = (KEY,)) -> dict[str, str]:
    return sign(MSG_ID, timestamp, BODY, keys)


def test_our_signature_verifies_with_the_reference_library() -> None:
    headers = _headers()
    assert headers["content-type"] == "application/json"
    assert Webhook(SECRET).verify(BODY, headers)["data"]["phase"] == "RECORDING"


def test_a_reference_library_signature_verifies_with_ours() -> None:
    signature = Webhook(SECRET).sign(MSG_ID, NOW, BODY.decode())
    headers = {"webhook-id": MSG_ID, "webhook-timestamp": str(T), "webhook-signature": signature}
    assert verify(headers, BODY, SECRET, now=NOW)["type"] == "recording.statusUpdate"


def test_while_rotating_each_secret_alone_verifies() -> None:
    headers = _headers(keys=(KEY, OLD_KEY))
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret, key in ((SECRET, KEY), (OLD_SECRET, OLD_KEY)):
        assert Webhook(secret).verify(BODY, headers)
        assert verify(headers, BODY, secret, now=NOW)
        assert verify(headers, BODY, key, now=NOW)


def test_a_receiver_accepts_any_of_its_secrets() -> None:
    headers = _headers(keys=(OLD_KEY,))
    assert verify(headers, BODY, [SECRET, OLD_SECRET], now=NOW)
    assert verify(headers, BODY, [KEY, OLD_KEY], now=NOW)


def test_a_bare_or_unpadded_base64_secret_is_accepted() -> None:
    encoded = base64.b64encode(OLD_KEY + b"x").decode()  # 25 bytes: padded with '='
    assert parse_secret(encoded) == OLD_KEY + b"x"
    assert parse_secret("whsec_" + encoded.rstrip("=")) == OLD_KEY + b"x"


def test_a_tampered_body_is_rejected() -> None:
    tampered = BODY.replace(b"RECORDING", b"RECORDINH")
    with pytest.raises(WebhookVerificationError, match="no matching signature"):
        verify(_headers(), tampered, SECRET, now=NOW)


def test_a_reserialized_body_is_rejected() -> None:
    reserialized = json.dumps(json.loads(BODY)).encode()  # same JSON, other bytes
    assert reserialized != BODY
    with pytest.raises(WebhookVerificationError, match="no matching signature"):
        verify(_headers(), reserialized, SECRET, now=NOW)


def test_a_str_body_verifies_like_its_utf8_bytes() -> None:
    assert verify(_headers(), BODY.decode(), SECRET, now=NOW)["data"]["name"] == "café"


def test_a_message_older_than_the_tolerance_is_rejected() -> None:
    assert verify(_headers(T - 300), BODY, SECRET, now=NOW)
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify(_headers(T - 301), BODY, SECRET, now=NOW)
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify(_headers(T - 61), BODY, SECRET, now=NOW, tolerance=dt.timedelta(minutes=1))


def test_a_message_from_the_future_is_rejected() -> None:
    assert verify(_headers(T + 300), BODY, SECRET, now=NOW)
    with pytest.raises(WebhookVerificationError, match="too new"):
        verify(_headers(T + 301), BODY, SECRET, now=NOW)


@pytest.mark.parametrize("stamp", ["", "soon", "1.5", "-3", str(T) + "x"])
def test_a_timestamp_that_is_not_integer_seconds_is_rejected(stamp: str) -> None:
    headers = _headers() | {"webhook-timestamp": stamp}
    with pytest.raises(WebhookVerificationError):
        verify(headers, BODY, SECRET, now=NOW)


def test_a_wrong_secret_is_rejected() -> None:
    with pytest.raises(WebhookVerificationError, match="no matching signature"):
        verify(_headers(), BODY, OLD_SECRET, now=NOW)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_rejected(missing: str) -> None:
    headers = {name: value for name, value in _headers().items() if name != missing}
    with pytest.raises(WebhookVerificationError, match=f"missing {missing} header"):
        verify(headers, BODY, SECRET, now=NOW)


@pytest.mark.parametrize("signature", ["v1", "garbage", "v1,", "v1,not base64!", ",,", "v1a,abc"])
def test_a_malformed_signature_header_is_rejected(signature: str) -> None:
    headers = _headers() | {"webhook-signature": signature}
    with pytest.raises(WebhookVerificationError, match="no matching signature"):
        verify(headers, BODY, SECRET, now=NOW)


def test_signatures_of_other_versions_and_malformed_elements_are_skipped() -> None:
    headers = _headers()
    headers["webhook-signature"] = f"v1a,abc garbage v1 {headers['webhook-signature']}"
    assert verify(headers, BODY, SECRET, now=NOW)


def test_header_names_are_matched_in_any_case() -> None:
    headers = {name.title(): value for name, value in _headers().items()}
    headers["WEBHOOK-ID"] = headers.pop("Webhook-Id")
    assert verify(headers, BODY, SECRET, now=NOW)


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"not json", b"\xff\xfe"])
def test_a_signed_body_that_is_not_a_json_object_is_rejected(body: bytes) -> None:
    with pytest.raises(WebhookVerificationError, match="body is not"):
        verify(sign(MSG_ID, T, body, [KEY]), body, SECRET, now=NOW)


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("whsec_not*base64!&s3cr3t", "not whsec_<base64>"),
        ("whsec_", "empty"),
        ("whsec_" + base64.b64encode(b"s3cr3t-0123456").decode(), "14 bytes, too short"),
        ("whsec_ünïcødé-s3cr3t", "not whsec_<base64>"),
    ],
)
def test_parse_secret_names_the_problem_without_echoing_the_secret(
    secret: str, problem: str
) -> None:
    with pytest.raises(SigningError, match=problem) as raised:
        parse_secret(secret)
    message = str(raised.value)
    assert "secrets.token_bytes" in message  # says how to make a good one
    assert "s3cr3t" not in message
    encoded = secret.removeprefix("whsec_")
    assert not encoded or encoded not in message
    assert raised.value.__cause__ is None


def test_sign_refuses_an_id_with_a_dot() -> None:
    with pytest.raises(SigningError, match=r"no '\.'"):
        sign("msg.1", T, BODY, [KEY])


def test_sign_refuses_to_sign_without_a_secret() -> None:
    with pytest.raises(SigningError, match="no webhook secret"):
        sign(MSG_ID, T, BODY, [])
    with pytest.raises(SigningError, match="no webhook secret"):
        verify(_headers(), BODY, [], now=NOW)
