"""The objects a Recording owns, built as plain dicts from (recording, settings): no API calls.

Per Recording: a ServiceAccount, a Role that reaches only this Recording (and the Secrets it
names), a RoleBinding, and one bot Pod per attempt. All are owned by the Recording, so the
garbage collector removes them with it, and all pass PodSecurity `restricted`.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from tapedeck_bot.contract import (
    API_VERSION,
    CONFIG_ENV,
    GROUP,
    KIND,
    PIN_ENV,
    PLURAL,
    STORAGE_SECRET_ENV,
    BotConfig,
    RecordingSpec,
    SecretKeyRef,
    StorageSpec,
    StorageType,
    Watermark,
    whep_token_env,
)
from tapedeck_operator.config import OperatorSettings

__all__ = [
    "ATTEMPT_LABEL",
    "MANAGED_BY",
    "RECORDING_UID_LABEL",
    "Owner",
    "bot_config",
    "bot_name",
    "bot_pod",
    "bot_role",
    "bot_role_binding",
    "bot_service_account",
    "effective_storage",
    "fetched_watermark",
    "named_secrets",
    "pod_name",
    "storage_secret_keys",
    "watermark_image",
]

MANAGED_BY = {"app.kubernetes.io/managed-by": "tapedeck-operator"}
RECORDING_UID_LABEL = f"{GROUP}/recording-uid"
ATTEMPT_LABEL = f"{GROUP}/attempt"
SPOOL_PATH = "/spool"
WATERMARK_DIR = "/etc/tapedeck/watermark"
WATERMARK_FILE = "watermark.png"  # the key of a fetched image, and its file in the pod
_NAME_LIMIT = 63  # pod names become hostnames


@dataclass(frozen=True)
class Owner:
    """The Recording the objects belong to."""

    namespace: str
    name: str
    uid: str


def _short(name: str, suffix: str) -> str:
    """`{name}-{suffix}`, cut to 63 characters with a hash that keeps it unique."""
    full = f"{name}-{suffix}"
    if len(full) <= _NAME_LIMIT:
        return full
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: _NAME_LIMIT - len(suffix) - 10].rstrip('-.')}-{digest}-{suffix}"


def bot_name(owner: Owner) -> str:
    """The ServiceAccount, Role and RoleBinding of a Recording's bots."""
    return _short(owner.name, "bot")


def pod_name(owner: Owner, attempt: int) -> str:
    return _short(owner.name, f"bot-{attempt}")


def _metadata(owner: Owner, name: str, **labels: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": {
            "app.kubernetes.io/name": "tapedeck-bot",
            "app.kubernetes.io/component": "recorder",
            **MANAGED_BY,
            RECORDING_UID_LABEL: owner.uid,
            **labels,
        },
        "ownerReferences": [
            {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "name": owner.name,
                "uid": owner.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }


def effective_storage(spec: RecordingSpec, settings: OperatorSettings) -> StorageSpec | None:
    return spec.storage or settings.storage


def named_secrets(spec: RecordingSpec, settings: OperatorSettings) -> dict[str, str]:
    """Secret name -> the field that names it, for every Secret the bot's pod reads."""
    secrets: dict[str, str] = {}
    if spec.meeting.janus and spec.meeting.janus.pin_secret_ref:
        secrets[spec.meeting.janus.pin_secret_ref.name] = "spec.meeting.janus.pinSecretRef"
    for index, endpoint in enumerate(spec.meeting.whep.endpoints if spec.meeting.whep else []):
        if endpoint.token_secret_ref:
            field = f"spec.meeting.whep.endpoints[{index}].tokenSecretRef"
            secrets.setdefault(endpoint.token_secret_ref.name, field)
    if spec.storage is not None:
        secrets[spec.storage.secret_ref.name] = "spec.storage.secretRef"
    elif settings.storage is not None:
        secrets[settings.storage.secret_ref.name] = "the operator's default storage.secretRef"
    return secrets


def watermark_image(owner: Owner, watermark: Watermark) -> tuple[str, str]:
    """(ConfigMap, key) holding the image: the user's, or the one the operator fills from
    `url` (`fetched_watermark`)."""
    if watermark.config_map_key_ref is not None:
        return watermark.config_map_key_ref.name, watermark.config_map_key_ref.key
    # The uid in the name: an earlier Recording of the same name may have left its image for
    # the garbage collector; the URL too: spec.composite may change, and the next attempt
    # then draws the new image.
    assert watermark.url is not None, "the contract requires url or configMapKeyRef"
    digest = hashlib.sha256(f"{owner.uid}\n{watermark.url}".encode()).hexdigest()[:10]
    return _short(owner.name, f"watermark-{digest}"), WATERMARK_FILE


def fetched_watermark(owner: Owner, watermark: Watermark, image: bytes) -> dict[str, Any]:
    """The ConfigMap of an image fetched from `url`, owned by the Recording: every attempt's
    pod mounts the same image, fetched once."""
    name, key = watermark_image(owner, watermark)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(owner, name),
        "binaryData": {key: base64.b64encode(image).decode()},
        "immutable": True,
    }


def bot_service_account(owner: Owner) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(owner, bot_name(owner)),
        "automountServiceAccountToken": False,  # only the bot pod mounts its token
    }


def bot_role(owner: Owner, secrets: list[str]) -> dict[str, Any]:
    """Read and watch this Recording, patch its status, read the Secrets it names: no more."""
    rules: list[dict[str, Any]] = [
        {
            "apiGroups": [GROUP],
            "resources": [PLURAL],
            "resourceNames": [owner.name],
            "verbs": ["get", "list", "watch"],
        },
        {
            "apiGroups": [GROUP],
            "resources": [f"{PLURAL}/status"],
            "resourceNames": [owner.name],
            "verbs": ["patch"],
        },
    ]
    if secrets:
        rules.append(
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "resourceNames": sorted(secrets),
                "verbs": ["get"],
            }
        )
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _metadata(owner, bot_name(owner)),
        "rules": rules,
    }


def bot_role_binding(owner: Owner) -> dict[str, Any]:
    name = bot_name(owner)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _metadata(owner, name),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": owner.namespace}],
    }


def bot_config(owner: Owner, spec: RecordingSpec, settings: OperatorSettings) -> BotConfig:
    return BotConfig(
        namespace=owner.namespace,
        recording=owner.name,
        recording_id=owner.uid,
        spec=spec,
        storage=effective_storage(spec, settings),
        upload=settings.bot.upload,
        spool_dir=SPOOL_PATH,
        watermark_file=f"{WATERMARK_DIR}/{WATERMARK_FILE}" if spec.drawn_watermark else None,
    )


def storage_secret_keys(storage_type: StorageType) -> tuple[str, str]:
    """The keys the bot reads from a storage Secret of this type."""
    if storage_type is StorageType.AZURE:
        return ("accountName", "accountKey")
    return ("accessKeyId", "secretAccessKey")


def _secret_env(spec: RecordingSpec, storage: StorageSpec | None) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = []
    if storage is not None:
        keys = storage_secret_keys(storage.type)
        env += [
            {
                "name": STORAGE_SECRET_ENV[key],
                "valueFrom": {"secretKeyRef": {"name": storage.secret_ref.name, "key": key}},
            }
            for key in keys
        ]
    refs: list[tuple[str, SecretKeyRef]] = []
    if spec.meeting.janus and spec.meeting.janus.pin_secret_ref:
        refs.append((PIN_ENV, spec.meeting.janus.pin_secret_ref))
    for index, endpoint in enumerate(spec.meeting.whep.endpoints if spec.meeting.whep else []):
        if endpoint.token_secret_ref:
            refs.append((whep_token_env(index), endpoint.token_secret_ref))
    env += [
        {"name": name, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}
        for name, ref in refs
    ]
    return env


_RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
}
_RESTRICTED_POD = {
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "runAsGroup": 65532,
    "fsGroup": 65532,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def bot_pod(
    owner: Owner, spec: RecordingSpec, settings: OperatorSettings, attempt: int
) -> dict[str, Any]:
    """Attempt `attempt` (1-based) at recording the meeting."""
    bot = settings.bot
    config = bot_config(owner, spec, settings)
    resources = bot.composite_resources if spec.composite.enabled else bot.tracks_resources
    env = [
        {"name": CONFIG_ENV, "value": config.model_dump_json(by_alias=True, exclude_none=True)},
        *_secret_env(spec, config.storage),
        *({"name": k, "value": v} for k, v in sorted(bot.env.items())),
    ]
    pod_spec: dict[str, Any] = {
        "serviceAccountName": bot_name(owner),
        "automountServiceAccountToken": True,
        # A crashed container restarts in place, so its spool (an emptyDir) survives.
        "restartPolicy": "OnFailure",
        "terminationGracePeriodSeconds": bot.grace_period_seconds,
        "enableServiceLinks": False,
        "securityContext": _RESTRICTED_POD,
        "containers": [
            {
                "name": "bot",
                "image": bot.image,
                "imagePullPolicy": bot.image_pull_policy,
                "command": list(bot.command),
                "env": env,
                "resources": resources.to_wire(),
                "securityContext": _RESTRICTED_CONTAINER,
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "volumeMounts": [
                    {"name": "spool", "mountPath": SPOOL_PATH},
                    {"name": "tmp", "mountPath": "/tmp"},
                ],
            }
        ],
        "volumes": [
            {"name": "spool", "emptyDir": {"sizeLimit": bot.spool_size_limit}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
        ],
    }
    watermark = spec.drawn_watermark
    if watermark is not None:
        name, key = watermark_image(owner, watermark)
        # Optional: checked before the first attempt, yet it may be gone by a later one, or
        # by an attempt that only finishes uploads; then the bot, not the kubelet's endless
        # FailedMount, says what is missing, and only if it would draw it.
        items = [{"key": key, "path": WATERMARK_FILE}]
        pod_spec["volumes"].append(
            {
                "name": "watermark",
                "configMap": {"name": name, "items": items, "optional": True},
            }
        )
        pod_spec["containers"][0]["volumeMounts"].append(
            {"name": "watermark", "mountPath": WATERMARK_DIR, "readOnly": True}
        )
    if bot.node_selector:
        pod_spec["nodeSelector"] = dict(bot.node_selector)
    if bot.tolerations:
        pod_spec["tolerations"] = list(bot.tolerations)
    if bot.priority_class_name:
        pod_spec["priorityClassName"] = bot.priority_class_name
    metadata = _metadata(owner, pod_name(owner, attempt), **{ATTEMPT_LABEL: str(attempt)})
    # Evicting a bot mid-meeting loses seconds of media; the autoscaler should wait for it.
    metadata["annotations"] = {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": pod_spec}
