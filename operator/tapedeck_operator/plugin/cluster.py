"""The plugin's calls to the API server (the official client, with kubectl's kubeconfig,
context and namespace), each failure turned into one line that names the fix."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tapedeck_bot.contract import GROUP, PLURAL, VERSION
from tapedeck_operator.api.auth import AUDIENCE
from tapedeck_operator.kube import raw_json
from tapedeck_operator.manifests import ATTEMPT_LABEL, RECORDING_UID_LABEL

__all__ = ["PluginError", "Recordings"]

_TIMEOUT = (5.0, 30.0)
# Raw answers, read as JSON: the client's models would drop fields it does not know.
_RAW: dict[str, Any] = {"_preload_content": False, "_request_timeout": _TIMEOUT}
CRD = f"{PLURAL}.{GROUP}"


class PluginError(RuntimeError):
    """One line for the user, naming what to do."""


class Recordings:
    """Recordings of one namespace, as the user's kubeconfig allows."""

    def __init__(self, kubeconfig: str | None, context: str | None, namespace: str | None) -> None:
        configuration = client.Configuration()
        try:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=context, client_configuration=configuration
            )
            contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        except (config.ConfigException, OSError) as error:
            raise PluginError(
                f"no usable kubeconfig ({error}): set KUBECONFIG or pass --kubeconfig"
            ) from None
        chosen = (
            active
            if context is None
            else next((c for c in contexts if c.get("name") == context), None)
        )
        context_namespace = ((chosen or {}).get("context") or {}).get("namespace")
        self.namespace: str = namespace or context_namespace or "default"
        self.server = configuration.host
        self._api = client.ApiClient(configuration)
        self._custom = client.CustomObjectsApi(self._api)
        self._core = client.CoreV1Api(self._api)

    def _call(self, what: str, call: Callable[[], Any], name: str | None = None) -> Any:
        """`call`'s answer (made with `_preload_content=False`) as JSON, or a PluginError."""
        try:
            response = call()
        except ApiException as error:
            raise self._explain(what, error, name) from None
        except urllib3.exceptions.HTTPError as error:
            raise PluginError(
                f"cannot reach the API server at {self.server} ({type(error).__name__}): "
                "check the cluster is up and your kubeconfig's current context"
            ) from None
        return response

    def _explain(self, what: str, error: ApiException, name: str | None) -> PluginError:
        message = _message(error)
        if error.status == 401:
            return PluginError(
                f"the API server at {self.server} refused your credentials: log in again or "
                "refresh your kubeconfig"
            )
        if error.status == 404 and _details_kind(error) == "namespaces":
            return PluginError(
                f'namespace "{self.namespace}" does not exist: create it, or pass -n'
            )
        if error.status == 404 and not self._crd_installed():
            return PluginError(
                f"the Recording CRD ({CRD}) is not installed in this cluster: "
                "kubectl apply -f crds/recording.yaml, or install the chart (helm install "
                "tapedeck charts/tapedeck)"
            )
        if error.status == 404 and name is not None:
            return PluginError(
                f'recording "{name}" not found in namespace "{self.namespace}": '
                f"list them with kubectl get recordings -n {self.namespace}"
            )
        if error.status == 403:
            return PluginError(
                f"forbidden to {what} in namespace {self.namespace!r} ({message}): ask for a "
                "Role that allows it"
            )
        if error.status == 409 and name is not None:
            return PluginError(
                f'recording "{name}" already exists in namespace "{self.namespace}": '
                "pick another --name, or delete it first"
            )
        if error.status == 422:
            return PluginError(f"the API server refused the Recording: {message}")
        return PluginError(f"cannot {what}: {error.status} {message}")

    def _crd_installed(self) -> bool:
        """Discovery, which every authenticated user may read: is tapedeck.dev served?"""
        try:
            self._custom.get_api_resources(
                GROUP, VERSION, _preload_content=False, _request_timeout=_TIMEOUT
            )
        except ApiException as error:
            return bool(error.status != 404)
        except urllib3.exceptions.HTTPError:
            return True  # unknown: say what the first answer said
        return True

    def get(self, name: str) -> dict[str, Any]:
        return raw_json(
            self._call(
                f"get recording {name}",
                lambda: self._custom.get_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL, name, **_RAW
                ),
                name,
            )
        )

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        name = manifest["metadata"]["name"]
        return raw_json(
            self._call(
                "create recordings",
                lambda: self._custom.create_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL, manifest, **_RAW
                ),
                name,
            )
        )

    def create_api_key(self, objects: list[dict[str, Any]], seconds: int) -> str:
        """Create the ServiceAccount, Role and RoleBinding; return a token of `seconds`."""
        rbac = client.RbacAuthorizationV1Api(self._api)
        account, role, binding = objects
        name = account["metadata"]["name"]
        namespace = self.namespace
        self._call(
            "create serviceaccounts",
            lambda: self._core.create_namespaced_service_account(
                namespace, client.V1ServiceAccount.model_validate(account), **_RAW
            ),
            name,
        )
        self._call(
            "create roles",
            lambda: rbac.create_namespaced_role(
                namespace, client.V1Role.model_validate(role), **_RAW
            ),
            name,
        )
        self._call(
            "create rolebindings",
            lambda: rbac.create_namespaced_role_binding(
                namespace, client.V1RoleBinding.model_validate(binding), **_RAW
            ),
            name,
        )
        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[AUDIENCE], expiration_seconds=seconds)
        )
        answer = raw_json(
            self._call(
                "create serviceaccounts/token",
                lambda: self._core.create_namespaced_service_account_token(
                    name, namespace, request, **_RAW
                ),
                name,
            )
        )
        token: str = answer["status"]["token"]
        return token

    def set_state(self, name: str, state: str) -> dict[str, Any]:
        patch = {"spec": {"state": state}}
        return raw_json(
            self._call(
                f"patch recording {name}",
                lambda: self._custom.patch_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    self.namespace,
                    PLURAL,
                    name,
                    patch,
                    _content_type="application/merge-patch+json",
                    **_RAW,
                ),
                name,
            )
        )

    def events(self, recording: dict[str, Any]) -> list[dict[str, Any]]:
        selector = f"involvedObject.uid={recording['metadata']['uid']}"
        listed = self._call(
            "list events",
            lambda: self._core.list_namespaced_event(
                self.namespace, field_selector=selector, **_RAW
            ),
        )
        items: list[dict[str, Any]] = raw_json(listed)["items"]
        return items

    def bot_pods(self, recording: dict[str, Any]) -> list[dict[str, Any]]:
        """The Recording's bot pods, first attempt first."""
        selector = f"{RECORDING_UID_LABEL}={recording['metadata']['uid']}"
        listed = self._call(
            "list pods",
            lambda: self._core.list_namespaced_pod(self.namespace, label_selector=selector, **_RAW),
        )
        pods: list[dict[str, Any]] = raw_json(listed)["items"]
        return sorted(pods, key=lambda p: int(p["metadata"]["labels"].get(ATTEMPT_LABEL, 0)))

    def pod_log(self, pod: str) -> Iterator[bytes]:
        """The bot container's log, streamed."""
        response = self._call(
            f"get the log of pod {pod}",
            lambda: self._core.read_namespaced_pod_log(
                pod, self.namespace, container="bot", **_RAW
            ),
        )
        try:
            yield from response.stream(64 * 1024)
        except urllib3.exceptions.HTTPError as error:
            raise PluginError(
                f"the log of pod {pod} broke off ({type(error).__name__}): try again"
            ) from None


def _details_kind(error: ApiException) -> str | None:
    try:
        kind = json.loads(error.body or "{}").get("details", {}).get("kind")
    except (ValueError, AttributeError):
        return None
    return str(kind) if kind else None


def _message(error: ApiException) -> str:
    try:
        return str(json.loads(error.body or "{}").get("message") or error.reason)
    except (ValueError, AttributeError):
        return str(error.reason)
