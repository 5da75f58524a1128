"""The process kubelet's pure decisions: restart back-off, pod phase, env, and mounts."""

from __future__ import annotations

from typing import Any

import pytest

from tapedeck_dev.kubelet import pod_phase, restart_delay, service_env
from tapedeck_dev.podmounts import (
    Mount,
    MountError,
    config_map_files,
    container_mounts,
    in_mount_namespace,
    split_tmp,
    token_projection,
    unsupported_volumes,
)

# What the ServiceAccount admission plugin adds to a pod that automounts its token.
API_ACCESS = {
    "name": "kube-api-access-x1",
    "projected": {
        "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace"}]}},
        ]
    },
}
SA_MOUNT = {
    "name": "kube-api-access-x1",
    "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
    "readOnly": True,
}


def _pod(volumes: list[dict[str, Any]], mounts: list[dict[str, Any]]) -> dict[str, Any]:
    container = {"name": "bot", "command": ["run"], "volumeMounts": mounts}
    return {"spec": {"containers": [container], "volumes": volumes}}


@pytest.mark.parametrize(
    ("restarts", "delay"), [(0, 0), (1, 10), (2, 20), (3, 40), (5, 160), (6, 300), (20, 300)]
)
def test_first_restart_is_immediate_then_backs_off_to_five_minutes(
    restarts: int, delay: float
) -> None:
    assert restart_delay(restarts) == delay


@pytest.mark.parametrize(
    ("policy", "codes", "phase"),
    [
        ("Never", [None], "Running"),
        ("Never", [0], "Succeeded"),
        ("Never", [0, 1], "Failed"),
        ("OnFailure", [137], "Running"),  # a restart is due
        ("OnFailure", [0], "Succeeded"),
        ("Always", [0], "Running"),
    ],
)
def test_pod_phase_follows_exit_codes_and_restart_policy(
    policy: str, codes: list[int | None], phase: str
) -> None:
    assert pod_phase(policy, codes) == phase


def test_service_env_names_the_api_server_of_the_kubeconfig() -> None:
    assert service_env("https://127.0.0.1:40123") == {
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": "40123",
    }


def test_empty_dir_and_service_account_are_mounted_where_the_spec_says() -> None:
    pod = _pod(
        [{"name": "spool", "emptyDir": {}}, API_ACCESS],
        [{"name": "spool", "mountPath": "/spool"}, SA_MOUNT],
    )
    assert container_mounts(pod, pod["spec"]["containers"][0]) == [
        Mount("volumes/spool", "/spool"),
        Mount("serviceaccount", "/var/run/secrets/kubernetes.io/serviceaccount", read_only=True),
        Mount("bot.termination-log", "/dev/termination-log", is_file=True),
    ]


def test_token_projection_is_present_only_when_admission_added_it() -> None:
    with_token = _pod([API_ACCESS], [SA_MOUNT])
    projection = token_projection(with_token)
    assert projection is not None
    assert (projection.path, projection.expiration_seconds) == ("token", 3607)
    assert token_projection(_pod([{"name": "spool", "emptyDir": {}}], [])) is None


def test_other_volumes_are_reported_unsupported() -> None:
    pod = _pod([{"name": "data", "persistentVolumeClaim": {"claimName": "c"}}, API_ACCESS], [])
    assert unsupported_volumes(pod) == ["data"]


def test_a_config_map_is_mounted_read_only_with_its_keys_or_items_as_files() -> None:
    volume = {"name": "settings", "configMap": {"name": "tapedeck"}}
    pod = _pod([volume], [{"name": "settings", "mountPath": "/etc/tapedeck"}])
    assert container_mounts(pod, pod["spec"]["containers"][0])[0] == Mount(
        "volumes/settings", "/etc/tapedeck", read_only=True
    )
    data = {"settings.yaml": b"a: 1\n", "logo.png": b"\x89PNG\r\n"}
    assert config_map_files(volume, data) == data
    picked = {**volume, "configMap": {"name": "t", "items": [{"key": "logo.png", "path": "o/x"}]}}
    assert config_map_files(picked, data) == {"o/x": b"\x89PNG\r\n"}
    with pytest.raises(MountError, match="no keys"):
        config_map_files(
            {**picked, "configMap": {"name": "t", "items": [{"key": "k", "path": "k"}]}}, data
        )


def test_sub_path_cannot_leave_its_volume() -> None:
    pod = _pod([{"name": "spool", "emptyDir": {}}], [])
    mount = {"name": "spool", "mountPath": "/x", "subPath": "../../etc"}
    with pytest.raises(MountError, match="subPath"):
        container_mounts(pod, {"name": "bot", "volumeMounts": [mount]})


def test_parents_are_mounted_before_children_and_the_command_is_execed() -> None:
    mounts = [Mount("volumes/b", "/tmp/b"), Mount("volumes/a", "/tmp")]
    argv = in_mount_namespace(mounts, ["python", "-c", "pass"], workdir="/tmp/b")
    script = argv[argv.index("-c") + 1]
    assert script.index("/tmp/b ") > script.index("/proc/self/fd/3/volumes/a /tmp ")
    assert script.endswith('cd /tmp/b && exec "$@"')
    assert argv[-4:] == ["sh", "python", "-c", "pass"]


def test_an_empty_dir_at_tmp_is_handed_over_as_tmpdir_not_mounted() -> None:
    pod = _pod(
        [{"name": "spool", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
        [{"name": "spool", "mountPath": "/spool"}, {"name": "tmp", "mountPath": "/tmp"}],
    )
    mounts, tmp = split_tmp(container_mounts(pod, pod["spec"]["containers"][0]))
    assert tmp == Mount("volumes/tmp", "/tmp")
    assert [m.target for m in mounts] == ["/spool", "/dev/termination-log"]
