"""Provider settings decided without a network: R2 endpoints and quirks, keys, expiry."""

from __future__ import annotations

import base64
import datetime as dt
import random

import pytest

from tapedeck_bot.contract import StorageSpec
from tapedeck_bot.storage import (
    MissingCredentials,
    credentials_from_env,
    credentials_from_secret,
    object_key,
    part_size_for,
    recording_prefix,
)
from tapedeck_bot.storage.presign import clamp_expiry
from tapedeck_bot.storage.retry import backoff_delays
from tapedeck_bot.storage.s3 import s3_client_config
from tapedeck_bot.storage.settings import Credentials, azure_target, s3_target

ACCOUNT = "0123456789abcdef0123456789abcdef"


def _spec(**fields: object) -> StorageSpec:
    return StorageSpec.model_validate(
        {"bucket": "recordings", "secretRef": {"name": "s"}, **fields}
    )


def test_r2_is_the_default_with_region_auto_and_checksums_only_when_required() -> None:
    target = s3_target(_spec(accountId=ACCOUNT))
    assert target.endpoint_url == f"https://{ACCOUNT}.r2.cloudflarestorage.com"
    assert target.region == "auto"
    config = s3_client_config(target)
    assert config.request_checksum_calculation == "when_required"
    assert config.response_checksum_validation == "when_required"
    assert config.signature_version == "s3v4"


@pytest.mark.parametrize("jurisdiction", ["eu", "fedramp"])
def test_r2_jurisdiction_endpoints(jurisdiction: str) -> None:
    target = s3_target(_spec(accountId=ACCOUNT, jurisdiction=jurisdiction))
    assert target.endpoint_url == f"https://{ACCOUNT}.{jurisdiction}.r2.cloudflarestorage.com"


def test_other_providers() -> None:
    spaces = s3_target(_spec(type="digitalocean", region="ams3"))
    assert (spaces.endpoint_url, spaces.region) == ("https://ams3.digitaloceanspaces.com", "ams3")
    assert spaces.checksums_when_required
    gcs = s3_target(_spec(type="gcs"))
    assert gcs.endpoint_url == "https://storage.googleapis.com"
    aws = s3_target(_spec(type="s3", region="eu-west-1"))
    assert (aws.endpoint_url, aws.region, aws.checksums_when_required) == (None, "eu-west-1", False)
    azure = azure_target(_spec(type="azure"), Credentials(account_name="acme", account_key="k"))
    assert azure.account_url == "https://acme.blob.core.windows.net"


def test_key_layout_is_path_then_recording_id() -> None:
    assert object_key("team-a/", "uid-1", "x.mp4") == "team-a/uid-1/x.mp4"
    assert object_key(None, "uid-1", "x.mp4") == "uid-1/x.mp4"
    assert recording_prefix("a/b", "uid-1") == "a/b/uid-1/"


def test_credentials_name_what_is_missing_and_never_print() -> None:
    env = {"TAPEDECK_STORAGE_ACCESS_KEY_ID": "AKIA"}
    with pytest.raises(MissingCredentials, match="missing: secretAccessKey"):
        credentials_from_env(env, _spec(accountId=ACCOUNT).type)
    data = {
        k: base64.b64encode(v.encode()).decode()
        for k, v in {"accountName": "acme", "accountKey": "c2VjcmV0"}.items()
    }
    creds = credentials_from_secret(data, _spec(type="azure").type, "storage")
    assert creds.account_name == "acme"
    assert "c2VjcmV0" not in repr(creds)
    assert "c2VjcmV0" not in str(creds)


def test_expiry_is_clamped_to_seven_days() -> None:
    assert clamp_expiry(dt.timedelta(days=30)) == dt.timedelta(seconds=604800)
    assert clamp_expiry(dt.timedelta(0)) == dt.timedelta(seconds=1)
    assert clamp_expiry(dt.timedelta(hours=1)) == dt.timedelta(hours=1)


def test_backoff_doubles_to_a_cap_with_jitter() -> None:
    delays = backoff_delays(0.5, 8, random.Random(3))
    got = [next(delays) for _ in range(8)]
    ceilings = [0.5, 1, 2, 4, 8, 8, 8, 8]
    assert all(c / 2 <= d <= c for d, c in zip(got, ceilings, strict=True))
    assert len({round(d, 6) for d in got[4:]}) == 4  # jittered, not in lockstep


def test_part_size_grows_so_the_longest_recording_fits_in_10000_parts() -> None:
    mib = 1024 * 1024
    assert part_size_for(3600, 8 * mib) == 8 * mib  # an hour needs less
    day = part_size_for(86400, 8 * mib)
    assert day % mib == 0
    assert 86400 * 1_000_000 * 1.1 <= day * 10_000 < 86400 * 1_000_000 * 1.1 + 10_000 * mib
