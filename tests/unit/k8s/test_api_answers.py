"""A gateway's expected answers become values: 404 "gone" and 409 "exists or changed", and a
refusal (403, 422) where the caller names it; a refusal it does not name reaches it as
KubernetesRefused with the API server's words, any other fault as KubernetesUnavailable."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from phonefleet_operator.errors import KubernetesRefused, KubernetesUnavailable
from phonefleet_operator.k8s.api import ApiCaller, Conflict, NotFound, or_none, succeeded
from phonefleet_operator.k8s.gateway import KubeGateway


class Answer:
    """A response as the client gives it with _preload_content=False."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def release_conn(self) -> None:
        """Nothing to release."""


#: The Status body the API server sends with a refusal, as the client keeps it in ``body``.
REFUSED = {
    403: (
        "Forbidden",
        'phoneclaims.phonefleet.dev "100" is forbidden: ValidatingAdmissionPolicy '
        "'phonefleet-operator-scope' with binding 'phonefleet-operator-scope' denied request: "
        "the operator changes a PhoneClaim only by removing finalizers, setting releasePolicy "
        "or labelling its account",
    ),
    422: (
        "Unprocessable Entity",
        'PhoneClaim.phonefleet.dev "100" is invalid: spec: Invalid value: "object": spec is '
        "immutable but for releasePolicy: delete the PhoneClaim to release the phone",
    ),
}


def answering(status: int) -> Callable[..., Answer]:
    """A client method that answers ``status`` (200 with a small JSON body; a refusal with the
    API server's Status body)."""

    def method(*_args: Any, **_kwargs: Any) -> Answer:
        if status in REFUSED:
            reason, message = REFUSED[status]
            error = ApiException(status=status, reason=reason)
            error.body = json.dumps({"kind": "Status", "status": "Failure", "message": message})
            raise error
        if status != 200:
            raise ApiException(status=status, reason="as asked")
        return Answer(b'{"kind": "Thing"}')

    return method


@pytest.fixture
async def caller() -> AsyncIterator[ApiCaller]:
    api = ApiCaller(client.ApiClient(), 1)
    yield api
    api.close()


async def test_or_none_gives_the_answer_or_none_for_the_statuses_named(caller: ApiCaller) -> None:
    """The answer when the call succeeds; None for 404 by default, or for the statuses given."""
    assert await or_none(caller(answering(200))) == {"kind": "Thing"}
    assert await or_none(caller(answering(NotFound))) is None
    assert await or_none(caller(answering(Conflict)), on=(NotFound, Conflict)) is None
    with pytest.raises(ApiException) as raised:
        await or_none(caller(answering(Conflict)))
    assert raised.value.status == Conflict


async def test_succeeded_says_whether_the_call_went_through(caller: ApiCaller) -> None:
    """True on success, False for the statuses named, an ApiException for the others."""
    assert await succeeded(caller(answering(200)), unless=(Conflict,)) is True
    assert await succeeded(caller(answering(Conflict)), unless=(Conflict,)) is False
    assert await succeeded(caller(answering(NotFound)), unless=(NotFound, Conflict)) is False
    with pytest.raises(ApiException) as raised:
        await succeeded(caller(answering(NotFound)), unless=(Conflict,))
    assert raised.value.status == NotFound


@pytest.mark.parametrize("status", [500, 503])
async def test_other_faults_stay_faults(caller: ApiCaller, status: int) -> None:
    """A status neither helper may absorb reaches the caller as KubernetesUnavailable."""
    with pytest.raises(KubernetesUnavailable):
        await or_none(caller(answering(status)), on=(NotFound, Conflict))
    with pytest.raises(KubernetesUnavailable):
        await succeeded(caller(answering(status)), unless=(NotFound, Conflict))


@pytest.mark.parametrize("status", [403, 422])
async def test_a_refusal_is_a_value_where_named_else_the_api_servers_words(
    caller: ApiCaller, status: int
) -> None:
    """403 and 422 are the API server's answer, not its absence: False or None where the
    caller names them, else KubernetesRefused carrying the status and the server's message
    (never "unavailable")."""
    assert await succeeded(caller(answering(status)), unless=(Conflict, status)) is False
    assert await or_none(caller(answering(status)), on=(NotFound, status)) is None
    with pytest.raises(KubernetesRefused) as raised:
        await succeeded(caller(answering(status)), unless=(NotFound, Conflict))
    assert raised.value.status == status
    assert REFUSED[status][1] in str(raised.value)
    assert not isinstance(raised.value, KubernetesUnavailable)


class ClaimPatches:
    """``patch_cluster_custom_object`` of a client whose API server answers ``status``."""

    def __init__(self, status: int) -> None:
        self.patch_cluster_custom_object = answering(status)


def gateway_answering(caller: ApiCaller, status: int) -> KubeGateway:
    """The real KubeGateway over a client whose claim patches get ``status``."""
    caller.custom = ClaimPatches(status)  # type: ignore[assignment]
    return KubeGateway(caller)


CLAIM = {"metadata": {"name": "100", "uid": "u-1", "resourceVersion": "7"}, "spec": {}}


@pytest.mark.parametrize("status", [NotFound, Conflict])
async def test_a_claim_patch_that_lost_a_race_is_false(caller: ApiCaller, status: int) -> None:
    """The claim went (404) or changed since it was read (409): False, for both claim patches."""
    kube = gateway_answering(caller, status)
    assert await kube.patch_claim(CLAIM, {"spec": {"releasePolicy": "Keep"}}) is False
    assert await kube.drop_claim_finalizer(CLAIM) is False


@pytest.mark.parametrize("status", [403, 422])
async def test_a_refused_claim_patch_says_so_instead_of_kubernetes_unavailable(
    caller: ApiCaller, status: int
) -> None:
    """An older scope policy (403) or CRD (422) refuses the patch: the gateway raises
    KubernetesRefused with the API server's message for its caller to decide on; before,
    that answer became "Kubernetes unavailable" and the False the caller handled never came."""
    kube = gateway_answering(caller, status)
    with pytest.raises(KubernetesRefused) as raised:
        await kube.patch_claim(CLAIM, {"spec": {"releasePolicy": "Keep"}})
    assert raised.value.status == status
    assert REFUSED[status][1] in str(raised.value)


class ScriptedWrites:
    """An API of a client whose writes answer the given statuses in order (see ``answering``),
    each call recorded by its verb."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.calls: list[str] = []

    def answer(self, name: str) -> Callable[..., Answer]:
        """The client method ``name`` (``create_namespaced_secret``: verb ``create``)."""

        def method(*args: Any, **kwargs: Any) -> Answer:
            self.calls.append(name.partition("_")[0])
            return answering(self.statuses.pop(0))(*args, **kwargs)

        method.__name__ = name
        return method


class SecretWrites(ScriptedWrites):
    """The core API of a client: Secret creates and replaces answer in the order given."""

    @property
    def create_namespaced_secret(self) -> Callable[..., Answer]:
        return self.answer("create_namespaced_secret")

    @property
    def replace_namespaced_secret(self) -> Callable[..., Answer]:
        return self.answer("replace_namespaced_secret")


SECRET = {"metadata": {"name": "b-adb", "namespace": "ns"}, "data": {}}


async def test_a_secret_deleted_between_its_create_and_replace_is_created_again(
    caller: ApiCaller,
) -> None:
    """put_secret: the create finds the Secret (409), which goes before the replace (404): the
    Secret is created again. Before, the replace's 404 reached the pass as a raw ApiException
    (a failed pass, logged with a traceback), and the Secret stayed missing until the next."""
    writes = SecretWrites(Conflict, NotFound, 200)
    caller.core = writes  # type: ignore[assignment]

    await KubeGateway(caller).put_secret(SECRET)

    assert writes.calls == ["create", "replace", "create"]


async def test_a_secret_that_keeps_changing_is_a_temporary_fault_not_a_loop(
    caller: ApiCaller,
) -> None:
    """Created and deleted by someone else again and again: the write gives up after a bound
    number of tries, as a KubernetesUnavailable the pass retries later."""
    writes = SecretWrites(*[Conflict, NotFound] * 10)
    caller.core = writes  # type: ignore[assignment]

    with pytest.raises(KubernetesUnavailable):
        await KubeGateway(caller).put_secret(SECRET)

    assert len(writes.calls) <= 6
