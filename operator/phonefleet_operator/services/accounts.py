"""Which PhoneClaims are this operator's: one operator per Geelark account in one cluster.

PhoneClaims are cluster-scoped, but a claim's phone belongs to one Geelark account, and only
the operator holding that account's credentials can stop it. So every claim carries the label
``phonefleet.dev/account`` (``PHONEFLEET_ACCOUNT``) of the operator that made it, and an
operator watches, sweeps and releases only claims of its own account (docs/accounts.md).

Claims made before the label existed carry none. They are read as the single-account operator
of that time read them: an operator owns an unlabelled claim if its holder's namespace is one
it serves (every namespace, without ``--namespace``). Its orphan sweep then labels the claims it
owns (an upgrade releases nothing: a label is all that changes), after which its claims watch,
which selects by label, sees them too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from phonefleet_operator.constants import DEFAULT_ACCOUNT, LABEL_ACCOUNT

__all__ = ["UNLABELLED", "AccountScope", "account_of"]

#: The label selector of claims made before claims carried their account.
UNLABELLED = f"!{LABEL_ACCOUNT}"


def account_of(claim: Mapping[str, Any]) -> str | None:
    """The account a claim was made under; None for a claim made before claims said so."""
    labels = (claim.get("metadata") or {}).get("labels") or {}
    account = labels.get(LABEL_ACCOUNT)
    return None if account is None else str(account)


@dataclass(frozen=True)
class AccountScope:
    """This operator's account and the namespaces it serves (empty: every namespace)."""

    account: str = DEFAULT_ACCOUNT
    namespaces: frozenset[str] = frozenset()

    @classmethod
    def of(cls, account: str, namespaces: Iterable[str] = ()) -> AccountScope:
        """The scope of an operator run with ``--namespace`` for each of ``namespaces``."""
        return cls(account, frozenset(namespaces))

    @property
    def selector(self) -> str:
        """The label selector of the claims made under this account."""
        return f"{LABEL_ACCOUNT}={self.account}"

    def serves(self, namespace: str) -> bool:
        """Whether bindings in ``namespace`` are this operator's."""
        return not self.namespaces or namespace in self.namespaces

    def owns(self, claim: Mapping[str, Any]) -> bool:
        """Whether this operator may release ``claim`` and stop its phone: a claim of its
        account, or an unlabelled one whose holder lives in a namespace it serves."""
        account = account_of(claim)
        if account is not None:
            return account == self.account
        holder = (claim.get("spec") or {}).get("holder") or {}
        return self.serves(str(holder.get("namespace", "")))
