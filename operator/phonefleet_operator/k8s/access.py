"""What the API server says about the operator's own identity: who it is (SelfSubjectReview)
and whether it may do one thing (SelfSubjectAccessReview).

Both are asked of the API server with the operator's own credentials and change nothing; the
start-up check of the account and the namespaces it serves is made of them
(services/account_check.py).
"""

from __future__ import annotations

from kubernetes import client

from phonefleet_operator.errors import KubernetesRefused, KubernetesUnavailable
from phonefleet_operator.k8s.api import ApiCaller, NotFound

__all__ = ["AccessReviews"]


class AccessReviews:
    """The operator's questions about itself, through ``caller``."""

    def __init__(self, caller: ApiCaller) -> None:
        self._call = caller
        self._authz = client.AuthorizationV1Api(caller.api_client)
        self._authn = client.AuthenticationV1Api(caller.api_client)

    async def allowed(
        self,
        *,
        group: str,
        resource: str,
        verb: str,
        name: str = "",
        namespace: str = "",
        subresource: str = "",
    ) -> bool:
        """Whether the authorizer lets this identity ``verb`` the ``resource`` (``name``, or
        any) of ``group`` (as a ValidatingAdmissionPolicy's ``authorizer`` asks it): in
        ``namespace``, or, for a namespaced resource without one, in every namespace.

        Raises KubernetesRefused (403) when the identity may not ask.
        """
        attributes = {"group": group, "resource": resource, "verb": verb}
        for key, value in (("name", name), ("namespace", namespace), ("subresource", subresource)):
            if value:
                attributes[key] = value
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes},
        }
        answer = await self._call(self._authz.create_self_subject_access_review, review)
        return bool(((answer or {}).get("status") or {}).get("allowed"))

    async def username(self) -> str | None:
        """The user name the API server gives this identity (a ServiceAccount's is
        ``system:serviceaccount:<namespace>:<name>``); None when it cannot say (an API server
        older than 1.28, or a refusal)."""
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        try:
            answer = await self._call(self._authn.create_self_subject_review, review)
        except KubernetesRefused:
            return None
        except client.ApiException as error:
            if error.status == NotFound:
                return None
            raise KubernetesUnavailable(
                f"Kubernetes API call create_self_subject_review failed: {error.status}"
            ) from None
        user = ((answer or {}).get("status") or {}).get("userInfo") or {}
        name = user.get("username")
        return str(name) if name else None
