"""The bot's ServiceAccount, Role, RoleBinding and Pod, built from (recording, settings)."""

from __future__ import annotations

import json

from tapedeck_bot.contract import CONFIG_ENV, BotConfig, RecordingSpec
from tapedeck_operator.config import BotSettings, OperatorSettings
from tapedeck_operator.manifests import (
    Owner,
    bot_pod,
    bot_role,
    bot_role_binding,
    named_secrets,
    pod_name,
)
from tapedeck_operator.rbac import operator_rules
from tests.recordings import recording

OWNER = Owner("team-a", "standup", "0b7d4f2e-1111-2222-3333-444455556666")
STORAGE = {"type": "s3", "bucket": "recs", "region": "eu-west-1", "secretRef": {"name": "s3"}}


def _spec(**fields: object) -> RecordingSpec:
    return RecordingSpec.model_validate(recording(**fields)["spec"])


def test_pod_passes_restricted_and_keeps_its_spool_across_restarts() -> None:
    pod = bot_pod(OWNER, _spec(storage=STORAGE), OperatorSettings(), 2)
    spec = pod["spec"]
    assert pod["metadata"]["name"] == "standup-bot-2"
    assert spec["restartPolicy"] == "OnFailure"
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = spec["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
    }
    assert {"name": "spool", "mountPath": "/spool"} in container["volumeMounts"]
    assert {v["name"]: set(v) for v in spec["volumes"]}["spool"] == {"name", "emptyDir"}
    assert pod["metadata"]["annotations"] == {
        "cluster-autoscaler.kubernetes.io/safe-to-evict": "false"
    }
    assert spec["terminationGracePeriodSeconds"] == BotSettings().grace_period_seconds
    (owner,) = pod["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("Recording", OWNER.uid, True)


def test_secrets_reach_the_pod_by_reference_never_as_values() -> None:
    spec = _spec(
        storage=STORAGE,
        meeting={
            "id": "m",
            "janus": {
                "url": "http://127.0.0.1:8088/janus",
                "room": 5,
                "pinSecretRef": {"name": "pins", "key": "room5"},
            },
        },
    )
    env = bot_pod(OWNER, spec, OperatorSettings(), 1)["spec"]["containers"][0]["env"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in env if "valueFrom" in e}
    assert refs == {
        "TAPEDECK_STORAGE_ACCESS_KEY_ID": {"name": "s3", "key": "accessKeyId"},
        "TAPEDECK_STORAGE_SECRET_ACCESS_KEY": {"name": "s3", "key": "secretAccessKey"},
        "TAPEDECK_JANUS_PIN": {"name": "pins", "key": "room5"},
    }
    config = BotConfig.model_validate_json(next(e["value"] for e in env if e["name"] == CONFIG_ENV))
    assert config.recording_id == OWNER.uid
    assert config.storage is not None
    assert config.storage.bucket == "recs"
    assert "secretAccessKey" not in json.dumps(config.to_wire())


def test_whep_tokens_reach_the_pod_by_reference_one_variable_per_endpoint() -> None:
    token = {"name": "sfu", "key": "token"}
    endpoints = [
        {"url": "https://a.example/whep", "userId": "a", "tokenSecretRef": token},
        {"url": "https://b.example/whep", "userId": "b"},
        {"url": "https://c.example/whep", "userId": "c", "tokenSecretRef": {**token, "key": "c"}},
    ]
    spec = _spec(storage=STORAGE, meeting={"id": "m", "whep": {"endpoints": endpoints}})
    env = bot_pod(OWNER, spec, OperatorSettings(), 1)["spec"]["containers"][0]["env"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in env if "valueFrom" in e}
    assert refs["TAPEDECK_WHEP_TOKEN_0"] == token
    assert refs["TAPEDECK_WHEP_TOKEN_2"] == {"name": "sfu", "key": "c"}
    assert "TAPEDECK_WHEP_TOKEN_1" not in refs
    assert named_secrets(spec, OperatorSettings())["sfu"] == (
        "spec.meeting.whep.endpoints[0].tokenSecretRef"
    )


def test_role_reaches_only_its_recording_and_named_secrets() -> None:
    spec = _spec(storage=STORAGE)
    role = bot_role(OWNER, sorted(named_secrets(spec, OperatorSettings())))
    assert role["rules"] == [
        {
            "apiGroups": ["tapedeck.dev"],
            "resources": ["recordings"],
            "resourceNames": ["standup"],
            "verbs": ["get", "list", "watch"],
        },
        {
            "apiGroups": ["tapedeck.dev"],
            "resources": ["recordings/status"],
            "resourceNames": ["standup"],
            "verbs": ["patch"],
        },
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["s3"], "verbs": ["get"]},
    ]
    binding = bot_role_binding(OWNER)
    assert binding["roleRef"]["name"] == role["metadata"]["name"] == "standup-bot"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "standup-bot", "namespace": "team-a"}
    ]


def test_the_default_storage_applies_when_the_spec_names_none() -> None:
    settings = OperatorSettings.model_validate({"storage": {**STORAGE, "secretRef": {"name": "d"}}})
    assert named_secrets(_spec(), settings) == {"d": "the operator's default storage.secretRef"}
    tracks_only = _spec(composite={"enabled": False}, tracks={"enabled": True})
    resources = bot_pod(OWNER, tracks_only, settings, 1)["spec"]["containers"][0]["resources"]
    assert resources == settings.bot.tracks_resources.to_wire()


def test_long_names_are_cut_to_a_unique_hostname() -> None:
    long_a = Owner("ns", "a" * 70, "u1")
    long_b = Owner("ns", "a" * 69 + "b", "u2")
    assert len(pod_name(long_a, 12)) <= 63
    assert pod_name(long_a, 12) != pod_name(long_b, 12)


def test_the_operator_holds_everything_it_grants_its_bots() -> None:
    held = {
        (group, resource, verb)
        for rule in operator_rules()
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    granted = bot_role(OWNER, ["s3", "pins"])["rules"]
    for rule in granted:
        for resource in rule["resources"]:
            for verb in rule["verbs"]:
                assert (rule["apiGroups"][0], resource, verb) in held, (resource, verb)
    assert not any("*" in str(rule) for rule in operator_rules())
