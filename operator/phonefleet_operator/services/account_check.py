"""The start-up check: may this operator's identity serve its ``PHONEFLEET_ACCOUNT``?

The API server lets an operator write the PhoneClaims and PhonePool status of an account only
when its identity may ``serve`` ``accounts.phonefleet.dev/<account>`` (the admission policy
``phonefleet-operator-account``, docs/tenancy.md). An operator whose identity may not would
start, then have every claim and pool write refused one by one. So before it asks for the
leader Lease it asks the API server the policy's own question (a SelfSubjectAccessReview) and,
refused, stops with one sentence naming the account and the identity (docs/accounts.md,
"Start-up check").
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Protocol

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
    "AccountCheckFailed",
    "AccountNotServed",
    "AccountUncheckable",
    "Reviews",
    "check_account",
    "verify_account",
]

log = logging.getLogger(__name__)

#: The virtual resource whose name is an account (RBAC grants it by name; no such kind exists).
ACCOUNTS_RESOURCE = "accounts"
#: The verb on it that the account policy asks for.
SERVE = "serve"
#: The exit status of an operator that refused to serve its account (or could not check it).
EXIT_NOT_SERVED = 3
#: Tries of a check the API server did not answer, ``_PAUSE`` seconds apart.
_TRIES = 5
_PAUSE = 2.0


class Reviews(Protocol):
    """The API server's answers about the operator's own identity (k8s/access.py)."""

    async def allowed(self, *, group: str, resource: str, name: str, verb: str) -> bool:
        """Whether this identity may ``verb`` the cluster-scoped ``resource`` ``name``."""

    async def username(self) -> str | None:
        """This identity's user name, None when the API server does not say."""


class AccountCheckFailed(PhonefleetError):
    """The operator must not start serving its account; the message says why and what to do."""


class AccountNotServed(AccountCheckFailed):
    """The identity may not serve the account: every write of its claims would be refused."""


class AccountUncheckable(AccountCheckFailed):
    """The API server refused or did not answer the question."""


async def check_account(
    reviews: Reviews,
    account: str,
    *,
    pause: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> str:
    """Ask whether this identity may serve ``account``; returns the identity's name when it may.

    Raises AccountNotServed when the authorizer says no, AccountUncheckable when the identity
    may not ask (403 on selfsubjectaccessreviews) or the API server did not answer after a few
    tries. The identity is named by its user name, or as "this operator's identity" on an API
    server that cannot say (SelfSubjectReview needs Kubernetes 1.28).
    """
    for attempt in range(1, _TRIES + 1):
        try:
            return await _check(reviews, account)
        except KubernetesUnavailable as error:
            if attempt == _TRIES:
                raise AccountUncheckable(
                    f"Could not check whether this operator's identity serves account "
                    f"{account}: the API server did not answer ({error})"
                ) from None
            log.warning(
                "Could not check the account %s yet (try %d of %d): %s",
                account,
                attempt,
                _TRIES,
                error,
            )
            await pause(_PAUSE)
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


async def verify_account(settings: OperatorSettings) -> bool:
    """The check at start-up, with the operator's own credentials: True when it may serve its
    account; otherwise it logs why (one error line) and posts a Warning Event
    ``AccountNotServed`` on its pod (this host's name, in its namespace), and returns False."""
    caller = ApiCaller(load_api_client(1, settings.kubeconfig), 1)
    try:
        try:
            who = await check_account(AccessReviews(caller), settings.account)
        except AccountCheckFailed as error:
            log.error("%s", error)
            await _tell(caller, settings, str(error))
            return False
        log.info("Checked account %s: %s may serve it", settings.account, who)
        return True
    finally:
        caller.close()


async def _tell(caller: ApiCaller, settings: OperatorSettings, message: str) -> None:
    """One Warning Event on this replica's pod (best effort: the log line is what counts)."""
    name = socket.gethostname()
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": settings.operator_namespace},
    }
    body = event_body(
        pod, type_="Warning", reason="AccountNotServed", message=message, instance=name
    )
    try:
        await caller(caller.core.create_namespaced_event, settings.operator_namespace, body)
    except Exception as error:  # the Event only repeats the log line; the exit still happens
        log.warning("Posting Event AccountNotServed failed, dropped: %s", error)
