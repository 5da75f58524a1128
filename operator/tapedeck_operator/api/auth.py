"""Who is calling, and may they: Kubernetes decides (TokenReview, then SubjectAccessReview).

Keys are ServiceAccount tokens minted for the audience `tapedeck-api` (`kubectl tapedeck
api-key`): the API server accepts them for nothing else, so a key cannot be used to go around
the API, and the API accepts no ordinary Kubernetes token. Nothing is cached, so revoking a
RoleBinding takes effect on the next request.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubernetes import client

from tapedeck_bot.contract import GROUP, PLURAL

__all__ = ["AUDIENCE", "Caller", "KubeAuthorizer"]

AUDIENCE = "tapedeck-api"
_TIMEOUT = (5.0, 10.0)


@dataclass(frozen=True)
class Caller:
    username: str
    uid: str | None = None
    groups: tuple[str, ...] = ()
    extra: dict[str, list[str]] = field(default_factory=dict)


class KubeAuthorizer:
    def __init__(self, api_client: client.ApiClient) -> None:
        self._authn = client.AuthenticationV1Api(api_client)
        self._authz = client.AuthorizationV1Api(api_client)

    def caller(self, token: str) -> Caller | None:
        """The token's user, or None if the API server does not accept the token."""
        review = self._authn.create_token_review(
            client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token, audiences=[AUDIENCE])),
            _request_timeout=_TIMEOUT,
        )
        status = review.status
        if status is None or not status.authenticated or status.user is None:
            return None
        if AUDIENCE not in (status.audiences or []):
            return None
        user = status.user
        return Caller(
            user.username or "", user.uid, tuple(user.groups or ()), dict(user.extra or {})
        )

    def allowed(self, caller: Caller, verb: str, namespace: str) -> bool:
        """May `caller` `verb` Recordings in `namespace`?"""
        review = self._authz.create_subject_access_review(
            client.V1SubjectAccessReview(
                spec=client.V1SubjectAccessReviewSpec(
                    user=caller.username,
                    uid=caller.uid,
                    groups=list(caller.groups),
                    extra=caller.extra or None,
                    resource_attributes=client.V1ResourceAttributes(
                        group=GROUP, resource=PLURAL, verb=verb, namespace=namespace
                    ),
                )
            ),
            _request_timeout=_TIMEOUT,
        )
        return bool(review.status and review.status.allowed)
