"""Access to the Kubernetes API: one client, a thread pool for its blocking calls, fault mapping,
and the answers a gateway expects (404 "gone", 409 "exists or changed", and where a caller says
so 403/422 "refused") turned into values."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import Awaitable, Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import urllib3.exceptions
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from phonefleet_operator.errors import KubernetesRefused, KubernetesUnavailable
from phonefleet_operator.fence import Fence
from phonefleet_operator.k8s.handoff import Handoff
from phonefleet_operator.waiting import event_within

__all__ = [
    "ApiCaller",
    "ApiGateway",
    "Conflict",
    "Forbidden",
    "Invalid",
    "NotFound",
    "create_or_update",
    "fault_reason",
    "is_conflict",
    "is_not_found",
    "load_api_client",
    "or_none",
    "succeeded",
    "unavailable_text",
]

NotFound = 404
Conflict = 409
Forbidden = 403
Invalid = 422

T = TypeVar("T")

#: The official client's method names that change nothing; every other call is refused once
#: the replica's fence is closed (``fence.py``).
_READS = ("read_", "list_", "get_")


def load_api_client(pool_size: int, kubeconfig: str | None = None) -> client.ApiClient:
    """An API client from the in-cluster service account, else from ``kubeconfig``."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except ConfigException:
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)  # type: ignore[no-untyped-call]
    # urllib3 keeps 4 connections per host by default: too few for many bindings at once.
    configuration.connection_pool_maxsize = pool_size
    return client.ApiClient(configuration)


def is_not_found(error: ApiException) -> bool:
    """The object does not exist."""
    return bool(error.status == NotFound)


def is_conflict(error: ApiException) -> bool:
    """The object exists already, or a precondition (uid, resourceVersion) did not hold."""
    return bool(error.status == Conflict)


class ApiCaller:
    """Runs the official client's blocking calls in a dedicated pool, off the event loop.

    ``ApiException`` with a status the caller expects (404, 409) passes through for the caller to
    decide; a refusal (403, 422) becomes :class:`KubernetesRefused` with the API server's
    message, which names the policy or rule; every other fault becomes
    :class:`KubernetesUnavailable`, which kopf retries. Once ``fence`` is closed, a call that
    writes raises :class:`~phonefleet_operator.errors.ReplicaStopping` instead of being made.
    """

    def __init__(
        self, api_client: client.ApiClient, workers: int, *, fence: Fence | None = None
    ) -> None:
        self.api_client = api_client
        self.fence = fence if fence is not None else Fence()
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="k8s-api")
        self._handoff: Handoff | None = None
        self._queued: set[asyncio.Future[Any]] = set()
        """Answers of calls no thread has started yet (a thread takes its call out)."""
        self._quiet: asyncio.Event | None = None
        """Set while no call waits for a thread, as of the last answer (see :meth:`quiet`)."""

    async def __call__(self, method: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Call ``method(*args, **kwargs)`` in the pool and translate its faults.

        The answer comes back as plain JSON (dicts and lists, API field names), never as the
        client's model objects: turning a Pod into a V1Pod and back costs more CPU than the
        request itself, and a thousand bindings make tens of thousands of requests. Answers
        reach the event loop in batches (``k8s/handoff.py``), not one wake-up each.
        """
        loop = asyncio.get_running_loop()
        quiet = self._quiet
        if self._handoff is None or self._handoff.loop is not loop or quiet is None:
            self._handoff = Handoff(loop)
            quiet = self._quiet = asyncio.Event()
        kwargs.setdefault("_request_timeout", 30)
        answer: asyncio.Future[Any] = loop.create_future()
        call = functools.partial(_plain_json, method, *args, **kwargs)
        name = getattr(method, "__name__", type(method).__name__)
        if not name.startswith(_READS):  # checked in the thread: queued calls too
            call = functools.partial(self.fence.guard, name, call)
        self._queued.add(answer)
        quiet.clear()
        self._pool.submit(_answer, self._handoff, answer, call, self._queued.discard)
        try:
            return await answer
        except ApiException as error:
            if error.status in (NotFound, Conflict):
                raise
            if error.status in (Forbidden, Invalid):
                raise KubernetesRefused(
                    f"Kubernetes refused to {_doing(method, args)}: {error.status} "
                    f"{_message(error)}",
                    status=error.status,
                ) from None
            raise KubernetesUnavailable(
                unavailable_text(self.api_client, method, args, error), delay=5
            ) from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise KubernetesUnavailable(
                unavailable_text(self.api_client, method, args, error), delay=5
            ) from None
        finally:
            self._queued.discard(answer)
            if not self._queued:
                quiet.set()

    async def quiet(self, within: float) -> bool:
        """Wait until no call waits for a thread, at most ``within`` seconds; True if none does.

        For work that can wait (Events): sent while the pool has a backlog, it would take the API
        server's time from the calls that a binding's progress awaits. Known at each answer: a
        backlog that has just drained is seen when the next call in flight comes back.
        """
        if not self._queued or self._quiet is None:  # nothing was ever called: no backlog
            return True
        return await event_within(self._quiet, within)

    def close(self) -> None:
        """Release the pool and the connections; calls no thread has started are cancelled
        (their callers get CancelledError), as the pool's own futures were."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        for answer in list(self._queued):
            with contextlib.suppress(RuntimeError):  # its loop is closed: nobody awaits it
                answer.get_loop().call_soon_threadsafe(answer.cancel)
        self.api_client.close()  # type: ignore[no-untyped-call]


def _answer(
    handoff: Handoff,
    answer: asyncio.Future[Any],
    call: Callable[[], Any],
    started: Callable[[asyncio.Future[Any]], None],
) -> None:
    """In a pool thread: make the call (unless its caller gave up while it was queued) and
    hand its result or fault to the loop."""
    if answer.done():  # cancelled while queued
        return
    started(answer)
    try:
        result = call()
    except BaseException as error:  # handed to the caller, who raises it
        handoff.post(functools.partial(_settle, answer, None, error))
    else:
        handoff.post(functools.partial(_settle, answer, result, None))


def _settle(answer: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if answer.done():  # the caller was cancelled meanwhile
        return
    if error is not None:
        answer.set_exception(error)
    else:
        answer.set_result(result)


async def or_none(call: Awaitable[T], *, on: Collection[int] = (NotFound,)) -> T | None:
    """The answer of ``call``, or None when the API server answered one of the statuses ``on``
    (by default 404: the object does not exist)."""
    try:
        return await call
    except (ApiException, KubernetesRefused) as error:
        if error.status in on:
            return None
        raise


#: Create-then-update rounds of :func:`create_or_update` before it gives up.
_CREATE_OR_UPDATE_ROUNDS = 3


async def create_or_update(
    create: Callable[[], Awaitable[object]],
    update: Callable[[], Awaitable[object]],
    *,
    what: str,
    updated: str,
) -> None:
    """Create an object, or update the one of that name (409 on the create). One deleted between
    the two (404 on the update: someone else removed it) is created again, a few rounds at most;
    then :class:`KubernetesUnavailable` says ``what`` "was deleted each time it was ``updated``"."""
    for _ in range(_CREATE_OR_UPDATE_ROUNDS):
        if await succeeded(create(), unless=(Conflict,)) or await succeeded(
            update(), unless=(NotFound,)
        ):
            return
    raise KubernetesUnavailable(f"{what} was deleted each time it was {updated}", delay=5)


async def succeeded(call: Awaitable[object], *, unless: Collection[int]) -> bool:
    """True when ``call`` went through, False when the API server answered one of the statuses
    ``unless`` (404: no such object; 409: it exists already, or a precondition did not hold;
    403/422: refused)."""
    try:
        await call
    except (ApiException, KubernetesRefused) as error:
        if error.status in unless:
            return False
        raise
    return True


class ApiGateway:
    """The base of the gateways: the caller and the two APIs most of their calls go through."""

    def __init__(self, caller: ApiCaller) -> None:
        self._call = caller
        self._core = caller.core
        self._custom = caller.custom

    async def _items(
        self, method: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> list[dict[str, Any]]:
        """The ``items`` of a list call."""
        result = await self._call(method, *args, **kwargs)
        items: list[dict[str, Any]] = result.get("items", [])
        return items


def _message(error: ApiException) -> str:
    """The API server's own words for a refusal (its Status message), else the HTTP reason."""
    try:
        status = json.loads(error.body or "")
    except ValueError:
        status = None
    message = status.get("message") if isinstance(status, dict) else None
    return str(message or error.reason)


#: What to check when the API server cannot be reached or refuses the credentials.
_CHECK_ACCESS = (
    "check the server and user of the kubeconfig in use (the CLI's --kubeconfig, else "
    "$KUBECONFIG, else ~/.kube/config) or, inside a pod, its service account"
)
_VERBS = {"get": "read", "read": "read", "list": "list", "create": "create", "patch": "patch"}


def unavailable_text(
    api_client: client.ApiClient,
    method: Callable[..., Any],
    args: tuple[Any, ...],
    error: Exception,
) -> str:
    """A fault of the API server in a user's words: what was being done, the server's address,
    why (``connection refused``, ``503 Service Unavailable``) and, where it is the likely cause,
    what to check. urllib3's own text names pools, retries and object addresses instead."""
    where = f"Kubernetes API server at {api_client.configuration.host}"
    doing = _doing(method, args)
    if isinstance(error, ApiException):
        if error.status == 401:
            return f"{where} refused the credentials to {doing} (401 Unauthorized): {_CHECK_ACCESS}"
        return f"{where} could not {doing}: it answered {error.status} {error.reason}"
    return f"{where} could not be reached to {doing} ({fault_reason(error)}): {_CHECK_ACCESS}"


def _doing(method: Callable[..., Any], args: tuple[Any, ...]) -> str:
    """``list phonebindings``, ``patch phonebindings ns/name (status)``, ``delete pods ns/name``,
    ``create secrets in ns``: in Kubernetes terms, the verb, the resource and the object the
    client method's name and arguments give."""
    verb, _, rest = getattr(method, "__name__", "call").partition("_")
    verb = _VERBS.get(verb, verb)
    names = [a for a in args if isinstance(a, str)]
    if verb == "create":  # the new object's name is in its body
        bodies = [a for a in args if isinstance(a, Mapping)]
        created = ((bodies[0].get("metadata") or {}).get("name") if bodies else None) or None
        names += [created] if created else []
    if "custom_object" not in rest:
        return _doing_builtin(verb, rest, names)
    names = names[2:]  # after group and version
    namespace = names.pop(0) if rest.startswith("namespaced") and names else None
    plural = names.pop(0) if names else "objects"
    target = "/".join(part for part in (namespace, names[0] if names else None) if part)
    if target and not names:
        target = f"in {target}"  # a namespace only: a list
    status = " (status)" if rest.endswith("_status") else ""
    return f"{verb} {plural}{f' {target}' if target else ''}{status}"


def _doing_builtin(verb: str, rest: str, names: list[str]) -> str:
    """``_doing`` for a built-in resource's method (``delete_namespaced_pod(name, namespace)``,
    ``create_namespaced_secret(namespace, body)``, ``list_pod_for_all_namespaces()``)."""
    status = " (status)" if rest.endswith("_status") else ""
    kind = rest.removesuffix("_status").removesuffix("_for_all_namespaces")
    namespaced = kind.startswith("namespaced_")
    kind = kind.removeprefix("namespaced_").replace("_", "")
    plural = kind if kind.endswith("s") else f"{kind}s"
    if verb == "create" and namespaced:  # (namespace, body): its name, if it has one, next
        target = "/".join(names[:2]) if len(names) > 1 else f"in {names[0]}" if names else ""
    elif verb == "list":
        target = f"in {names[0]}" if namespaced and names else ""
    elif namespaced:
        target = "/".join(reversed(names[:2]))  # (name, namespace) -> namespace/name
    else:
        target = names[0] if names else ""
    return f"{verb} {plural}{f' {target}' if target else ''}{status}".strip()


def fault_reason(error: BaseException) -> str:
    """The innermost reason of a connection fault: the socket's own words where there are
    some (``connection refused``), else the fault's first line without object addresses."""
    if isinstance(error, urllib3.exceptions.MaxRetryError) and error.reason is not None:
        error = error.reason
    inner: BaseException | None = error
    while inner is not None:
        if isinstance(inner, OSError) and inner.strerror:
            return inner.strerror[:1].lower() + inner.strerror[1:]
        inner = inner.__cause__ or inner.__context__
    if isinstance(error, urllib3.exceptions.TimeoutError):  # after: a refused connect is one too
        return "no answer in time"
    text = (str(error).splitlines() or [""])[0]
    return text.split("): ", 1)[-1] or type(error).__name__


def _plain_json(method: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """Call ``method`` without the client's model decoding; its answer as plain JSON, or None."""
    response = method(*args, _preload_content=False, **kwargs)
    try:
        data = response.data
    finally:
        response.release_conn()
    return json.loads(data) if data else None
