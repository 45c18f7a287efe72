"""An API server that cannot be reached, fails or refuses the credentials is told in a user's
words: what was being done, the server's address, why, and what to check; the exception stays
KubernetesUnavailable (kopf retries it, callers catch it)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import urllib3.exceptions
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from phonefleet_operator import constants as c
from phonefleet_operator.errors import KubernetesRefused, KubernetesUnavailable
from phonefleet_operator.k8s.api import ApiCaller
from phonefleet_operator.k8s.gateway import KubeGateway
from phonefleet_operator.k8s.jobs import JobGateway
from phonefleet_operator.k8s.watch import _describe as describe_watch_fault

SERVER = "https://127.0.0.1:9"  # nobody serves port 9: connection refused


@pytest.fixture
async def caller() -> AsyncIterator[ApiCaller]:
    configuration = client.Configuration()
    configuration.host = SERVER
    api = ApiCaller(client.ApiClient(configuration), 1)
    yield api
    api.close()


def failing(name: str, error: Exception) -> Callable[..., Any]:
    """A client method called ``name`` that raises ``error`` (the caller names it by __name__)."""

    def method(*_args: Any, **_kwargs: Any) -> Any:
        raise error

    method.__name__ = name
    return method


async def test_a_refused_connection_names_the_work_the_server_and_what_to_check(
    caller: ApiCaller,
) -> None:
    """A real call to a port nobody serves: no urllib3 pool, retry or object address."""
    with pytest.raises(KubernetesUnavailable) as raised:
        await KubeGateway(caller).list_bindings()
    text = str(raised.value)
    assert text == (
        f"Kubernetes API server at {SERVER} could not be reached to list phonebindings "
        "(connection refused): check the server and user of the kubeconfig in use (the CLI's "
        "--kubeconfig, else $KUBECONFIG, else ~/.kube/config) or, inside a pod, its service "
        "account"
    )
    assert raised.value.delay == 5


async def test_a_namespaced_write_names_the_object(caller: ApiCaller) -> None:
    """A status patch names the plural, namespace/name and (status)."""
    with pytest.raises(KubernetesUnavailable) as raised:
        await KubeGateway(caller).patch_binding_status("farm", "b1", {"phase": "Running"})
    assert (
        f"Kubernetes API server at {SERVER} could not be reached to patch phonebindings "
        "farm/b1 (status) (connection refused)"
    ) in str(raised.value)


async def test_a_list_in_a_namespace_names_it(caller: ApiCaller) -> None:
    with pytest.raises(KubernetesUnavailable) as raised:
        await JobGateway(caller).list_bindings("farm")
    assert "could not be reached to list phonebindings in farm (connection refused)" in str(
        raised.value
    )


async def test_a_server_error_says_what_the_server_answered(caller: ApiCaller) -> None:
    method = failing(
        "list_namespaced_custom_object", ApiException(status=503, reason="Service Unavailable")
    )
    with pytest.raises(KubernetesUnavailable) as raised:
        await caller(method, c.GROUP, c.VERSION, "farm", c.JOB_PLURAL)
    assert str(raised.value) == (
        f"Kubernetes API server at {SERVER} could not list {c.JOB_PLURAL} in farm: it answered "
        "503 Service Unavailable"
    )


async def test_refused_credentials_say_what_to_check(caller: ApiCaller) -> None:
    """401: the kubeconfig's user or the pod's service account token is wrong."""
    method = failing("get_cluster_custom_object", ApiException(status=401, reason="Unauthorized"))
    with pytest.raises(KubernetesUnavailable) as raised:
        await caller(method, c.GROUP, c.VERSION, c.CLAIM_PLURAL, "100")
    assert str(raised.value).startswith(
        f"Kubernetes API server at {SERVER} refused the credentials to read {c.CLAIM_PLURAL} "
        "100 (401 Unauthorized): check the server and user of the kubeconfig"
    )


async def test_a_timeout_is_told_as_no_answer_in_time(caller: ApiCaller) -> None:
    timeout = urllib3.exceptions.ReadTimeoutError(None, "/api", "Read timed out. (read timeout=30)")
    method = failing("read_namespaced_pod", urllib3.exceptions.MaxRetryError(None, "/api", timeout))
    with pytest.raises(KubernetesUnavailable) as raised:
        await caller(method, "worker", "farm")
    assert str(raised.value).startswith(
        f"Kubernetes API server at {SERVER} could not be reached to read pods farm/worker "
        "(no answer in time)"
    )


def test_a_watch_that_cannot_connect_logs_the_reason_not_the_class() -> None:
    """The watches' warning ("Watch of phonebindings failed (...)") gives the socket's words,
    where it gave ``MaxRetryError``."""
    with pytest.raises(urllib3.exceptions.MaxRetryError) as raised:
        urllib3.PoolManager(retries=0).request("GET", "http://127.0.0.1:9/")
    assert describe_watch_fault(raised.value) == "connection refused"
    assert describe_watch_fault(ApiException(status=500, reason="Internal")) == "500 Internal"


FORBIDDEN = (
    '{"kind": "Status", "message": "pods \\"alpha-worker\\" is forbidden: '
    "ValidatingAdmissionPolicy 'phonefleet-operator-scope' denied request\"}"
)


@pytest.mark.parametrize(
    ("name", "args", "doing"),
    [
        (
            "create_namespaced_pod",
            ("farm", {"metadata": {"name": "alpha-worker"}}),
            "create pods farm/alpha-worker",
        ),
        ("delete_namespaced_pod", ("alpha-worker", "farm"), "delete pods farm/alpha-worker"),
        (
            "create_namespaced_secret",
            ("farm", {"metadata": {"name": "alpha-adb"}, "stringData": {"password": "pw-123"}}),
            "create secrets farm/alpha-adb",
        ),
        (
            "patch_cluster_custom_object",
            (c.GROUP, c.VERSION, c.CLAIM_PLURAL, "100", {"metadata": {}}),
            f"patch {c.CLAIM_PLURAL} 100",
        ),
        (
            "patch_namespaced_custom_object_status",
            (c.GROUP, c.VERSION, "farm", c.JOB_PLURAL, "j1", {"status": {}}),
            f"patch {c.JOB_PLURAL} farm/j1 (status)",
        ),
    ],
)
async def test_a_refusal_names_the_verb_resource_and_object_never_the_client_method(
    caller: ApiCaller, name: str, args: tuple[object, ...], doing: str
) -> None:
    """403/422: what was refused in Kubernetes terms, then the API server's own words (which
    name the rule); not the client's method name, and nothing of a body but its name."""
    method_error = ApiException(status=403, reason="Forbidden")
    method_error.body = FORBIDDEN
    method = failing(name, method_error)
    with pytest.raises(KubernetesRefused) as raised:
        await caller(method, *args)
    text = str(raised.value)
    assert text == (
        f'Kubernetes refused to {doing}: 403 pods "alpha-worker" is forbidden: '
        "ValidatingAdmissionPolicy 'phonefleet-operator-scope' denied request"
    )
    assert raised.value.status == 403
    assert name not in text
    assert "pw-123" not in text
