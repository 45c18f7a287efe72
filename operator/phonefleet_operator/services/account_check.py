"""The start-up check: may this operator's identity serve its ``PHONEFLEET_ACCOUNT``, and
write in every namespace it serves?

The API server lets an operator write the PhoneClaims and PhonePool status of an account only
when its identity may ``serve`` ``accounts.phonefleet.dev/<account>`` (the admission policy
``phonefleet-operator-account``, docs/tenancy.md), and the worker pods, ADB Secrets, Events and
bindings' status of a namespace only where a RoleBinding grants it the ClusterRole
``phonefleet-operator-tenant`` (an account overlay's ``tenants.yaml``). An operator missing
either would start, then have those writes refused one by one. So before it asks for the
leader Lease it asks the API server the same questions (SelfSubjectAccessReviews) and, refused,
stops with one sentence naming the account or the namespace and the identity
(docs/accounts.md, "Start-up check").

A restricted operator (``--namespace``) that may write in *every* namespace is told so (a
warning, it starts): that is the default install's ClusterRoleBinding left behind by a move to
the account overlays, which ``kubectl apply`` does not delete.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from phonefleet_operator.constants import GROUP
from phonefleet_operator.errors import KubernetesRefused, KubernetesUnavailable, PhonefleetError
from phonefleet_operator.k8s import ApiCaller, load_api_client
from phonefleet_operator.k8s.access import AccessReviews
from phonefleet_operator.k8s.events import event_body
from phonefleet_operator.settings import OperatorSettings

__all__ = [
    "ACCOUNTS_RESOURCE",
    "EXIT_NOT_SERVED",
    "SERVE",
    "TENANT_WRITES",
    "AccountCheckFailed",
    "AccountNotServed",
    "AccountUncheckable",
    "NamespaceNotWritable",
    "Reviews",
    "check_account",
    "check_namespaces",
    "verify_account",
]

log = logging.getLogger(__name__)

#: The virtual resource whose name is an account (RBAC grants it by name; no such kind exists).
ACCOUNTS_RESOURCE = "accounts"
#: The verb on it that the account policy asks for.
SERVE = "serve"
#: The exit status of an operator that refused to serve its account (or could not check it).
EXIT_NOT_SERVED = 3
#: Pauses between tries of a check the API server did not answer: from ``_PAUSE`` seconds,
#: doubling up to ``_MAX_PAUSE``. The operator waits for its API server as long as it takes (as
#: its Lease does): one started while the API server restarts must not exit for it.
_PAUSE = 2.0
_MAX_PAUSE = 30.0
#: What the operator writes in each namespace it serves, as (group, resource, subresource,
#: verb): the rules of the ClusterRole phonefleet-operator-tenant (manifests/rbac/tenant_role.yaml).
TENANT_WRITES = (
    (GROUP, "phonebindings", "", "patch"),
    (GROUP, "phonebindings", "status", "patch"),
    (GROUP, "phonejobs", "", "delete"),
    (GROUP, "phonejobs", "", "patch"),
    (GROUP, "phonejobs", "status", "patch"),
    ("", "pods", "", "create"),
    ("", "pods", "", "delete"),
    ("", "secrets", "", "create"),
    ("", "secrets", "", "update"),
    ("", "secrets", "", "delete"),
    ("", "events", "", "create"),
)
#: The Event that says a restricted operator may write in every namespace.
WRITES_CLUSTER_WIDE = "TenantWritesClusterWide"
# A namespace's name; anything else in --namespace (a pattern) cannot be asked about.
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_T = TypeVar("_T")


class Reviews(Protocol):
    """The API server's answers about the operator's own identity (k8s/access.py)."""

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
        """Whether this identity may ``verb`` the ``resource`` (``name``, or any): in
        ``namespace``, or in every namespace (a namespaced resource) without one."""

    async def username(self) -> str | None:
        """This identity's user name, None when the API server does not say."""


class AccountCheckFailed(PhonefleetError):
    """The operator must not start serving its account; the message says why and what to do."""

    reason = "AccountNotServed"


class AccountNotServed(AccountCheckFailed):
    """The identity may not serve the account: every write of its claims would be refused."""


class AccountUncheckable(AccountCheckFailed):
    """The API server refused the question (the identity may not ask it)."""


class NamespaceNotWritable(AccountCheckFailed):
    """The identity may not write in a namespace it serves: no RoleBinding grants it there."""

    reason = "NamespaceNotWritable"


async def check_account(
    reviews: Reviews,
    account: str,
    *,
    pause: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> str:
    """Ask whether this identity may serve ``account``; returns the identity's name when it may.

    Raises AccountNotServed when the authorizer says no, AccountUncheckable when the identity
    may not ask (403 on selfsubjectaccessreviews). While the API server does not answer it asks
    again, pausing from 2 s up to 30 s, as long as it takes. The identity is named by its user
    name, or as "this operator's identity" on an API server that cannot say (SelfSubjectReview
    needs Kubernetes 1.28).
    """
    return await _patiently(
        lambda: _check(reviews, account),
        f"whether this operator's identity serves account {account}",
        pause,
    )


async def check_namespaces(
    reviews: Reviews,
    who: str,
    namespaces: Iterable[str],
    *,
    pause: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> str | None:
    """Ask whether ``who`` may make every write of :data:`TENANT_WRITES` in each of
    ``namespaces`` (the operator's ``--namespace`` list; empty: every namespace, nothing to
    ask). Returns a warning when a restricted operator may make them in every namespace
    instead, else None.

    Raises NamespaceNotWritable naming each namespace it may not write in (and what it may not
    do there), AccountUncheckable as :func:`check_account`.
    """
    served = sorted(set(namespaces))
    if not served:
        return None
    asked = [namespace for namespace in served if _NAMESPACE.fullmatch(namespace)]
    if len(asked) < len(served):
        log.info(
            "Did not check the writes in %s: not namespace names",
            ", ".join(n for n in served if n not in asked),
        )
    return await _patiently(
        lambda: _check_namespaces(reviews, who, asked),
        f"which namespaces {who} may write in",
        pause,
    )


async def _patiently(
    ask: Callable[[], Awaitable[_T]],
    what: str,
    pause: Callable[[float], Awaitable[None]],
) -> _T:
    """``ask()``, again after a growing pause for as long as the API server does not answer; an
    answer that refuses ends it at once."""

    def waiting(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        seconds = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "Could not check %s yet (try %d, again in %.0f s): %s",
            what,
            state.attempt_number,
            seconds,
            error,
        )

    retrying = AsyncRetrying(
        retry=retry_if_exception_type(KubernetesUnavailable),
        wait=wait_exponential(multiplier=_PAUSE, max=_MAX_PAUSE),
        sleep=pause,
        before_sleep=waiting,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await ask()
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


async def _check(reviews: Reviews, account: str) -> str:
    who = await reviews.username() or "this operator's identity"
    right = f'"{SERVE}" on {ACCOUNTS_RESOURCE}.{GROUP}/{account}'
    try:
        allowed = await reviews.allowed(
            group=GROUP, resource=ACCOUNTS_RESOURCE, name=account, verb=SERVE
        )
    except KubernetesRefused as error:
        raise AccountUncheckable(
            f"Could not check whether {who} serves account {account}: the API server refused "
            f"its SelfSubjectAccessReview ({error}). Grant it create on "
            f"selfsubjectaccessreviews.authorization.k8s.io (manifests/rbac/cluster_role.yaml)"
        ) from None
    if not allowed:
        raise AccountNotServed(
            f"Refused to serve account {account}: {who} may not serve it (no {right}), so the "
            f"API server would refuse every write of the account's PhoneClaims and PhonePools. "
            f"Bind it the ClusterRole granting {right} (manifests/rbac/account_role.yaml, or "
            f"the account's overlay), or run the operator of {account} as the ServiceAccount "
            f"that has it (docs/accounts.md)"
        )
    return who


def _write(group: str, resource: str, subresource: str, verb: str) -> str:
    """``patch phonebindings/status``: one write, for people."""
    return f"{verb} {resource}{'/' + subresource if subresource else ''}"


async def _writes_allowed(reviews: Reviews, namespace: str) -> list[bool]:
    """Whether each of :data:`TENANT_WRITES` is allowed in ``namespace`` ("": every one)."""
    answers = []
    for group, resource, subresource, verb in TENANT_WRITES:
        try:
            answers.append(
                await reviews.allowed(
                    group=group,
                    resource=resource,
                    verb=verb,
                    namespace=namespace,
                    subresource=subresource,
                )
            )
        except KubernetesRefused as error:
            raise AccountUncheckable(
                f"Could not check whether the operator may write in its namespaces: the API "
                f"server refused its SelfSubjectAccessReview ({error}). Grant it create on "
                f"selfsubjectaccessreviews.authorization.k8s.io "
                f"(manifests/rbac/cluster_role.yaml)"
            ) from None
    return answers


async def _check_namespaces(reviews: Reviews, who: str, namespaces: list[str]) -> str | None:
    refused: list[tuple[str, str]] = []
    for namespace in namespaces:
        allowed = await _writes_allowed(reviews, namespace)
        if all(allowed):
            continue
        missing = [_write(*w) for w, ok in zip(TENANT_WRITES, allowed, strict=True) if not ok]
        what = "no write at all" if not any(allowed) else f"no {', '.join(missing)}"
        refused.append((namespace, what))
    if refused:
        names = [namespace for namespace, _ in refused]
        flags = " ".join(f"--namespace={name}" for name in names)
        raise NamespaceNotWritable(
            f"Refused to serve namespace{'s' if len(names) > 1 else ''} {', '.join(names)}: "
            f"{who} may not write there ({'; '.join(f'{n}: {w}' for n, w in refused)}), so the "
            f"API server would refuse its worker pods, ADB Secrets, Events and the bindings' "
            f"status there. Bind it the ClusterRole phonefleet-operator-tenant with a "
            f"RoleBinding in each (the account overlay's tenants.yaml), or drop {flags} "
            f"(docs/accounts.md)"
        )
    everywhere = await _writes_allowed(reviews, "")
    if not any(everywhere):
        return None
    granted = [_write(*w) for w, ok in zip(TENANT_WRITES, everywhere, strict=True) if ok]
    return (
        f"{who} may write in every namespace ({', '.join(granted)}), yet it serves only "
        f"{', '.join(namespaces)}: a ClusterRoleBinding grants it that, most likely "
        f"phonefleet-operator-tenant of manifests/default, which applying an account overlay "
        f"does not delete. Once every account's RoleBindings exist: kubectl delete "
        f'clusterrolebinding phonefleet-operator-tenant (docs/accounts.md, "Moving to the '
        f'account overlays")'
    )


async def verify_account(settings: OperatorSettings, namespaces: Iterable[str] = ()) -> bool:
    """The check at start-up, with the operator's own credentials: True when it may serve its
    account and write in each of ``namespaces`` (its ``--namespace`` list); otherwise it logs
    why (one error line), posts a Warning Event (``AccountNotServed``, or
    ``NamespaceNotWritable``) on its pod (this host's name, in its namespace), and returns
    False. A restricted operator that may write in every namespace starts, with a warning and
    the Event ``TenantWritesClusterWide``."""
    caller = ApiCaller(load_api_client(1, settings.kubeconfig), 1)
    reviews = AccessReviews(caller)
    try:
        try:
            who = await check_account(reviews, settings.account)
            broad = await check_namespaces(reviews, who, namespaces)
        except AccountCheckFailed as error:
            log.error("%s", error)
            await _tell(caller, settings, error.reason, str(error))
            return False
        log.info("Checked account %s: %s may serve it", settings.account, who)
        if broad is not None:
            log.warning("%s", broad)
            await _tell(caller, settings, WRITES_CLUSTER_WIDE, broad)
        return True
    finally:
        caller.close()


async def _tell(caller: ApiCaller, settings: OperatorSettings, reason: str, message: str) -> None:
    """One Warning Event on this replica's pod (best effort: the log line is what counts)."""
    name = socket.gethostname()
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": settings.operator_namespace},
    }
    body = event_body(pod, type_="Warning", reason=reason, message=message, instance=name)
    try:
        await caller(caller.core.create_namespaced_event, settings.operator_namespace, body)
    except Exception as error:  # the Event only repeats the log line
        log.warning("Posting Event %s failed, dropped: %s", reason, error)
