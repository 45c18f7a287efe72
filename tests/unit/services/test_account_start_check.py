"""The start-up check of the account and the namespaces an operator serves
(services/account_check.py), on a fake of the API server's self reviews: granted, refused, not
askable, not answering; a namespace without its RoleBinding; writes granted cluster-wide."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from phonefleet_operator.errors import KubernetesRefused, KubernetesUnavailable
from phonefleet_operator.services.account_check import (
    AccountNotServed,
    AccountUncheckable,
    NamespaceNotWritable,
    check_account,
    check_namespaces,
)

USER = "system:serviceaccount:phonefleet-shop-b:phonefleet-operator"


@dataclass
class FakeReviews:
    """The API server's answers for one identity: what RBAC grants it (group, resource, name,
    verb), whether it may ask at all (403 otherwise, as the real API server answers), and how
    many calls fail first as unavailable."""

    granted: set[tuple[str, str, str, str]] = field(default_factory=set)
    user: str | None = USER
    may_ask: bool = True
    unavailable: int = 0
    asked: list[tuple[str, str, str, str]] = field(default_factory=list)
    writes_in: set[str] = field(default_factory=set)
    """Namespaces where a RoleBinding grants every tenant write ("": a ClusterRoleBinding)."""
    withheld: set[str] = field(default_factory=set)
    """Tenant writes ("create pods") granted nowhere, whatever ``writes_in`` says."""

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
        if self.unavailable:
            self.unavailable -= 1
            raise KubernetesUnavailable("Kubernetes API call failed: 503 Service Unavailable")
        if not self.may_ask:
            raise KubernetesRefused(
                "Kubernetes refused to create selfsubjectaccessreviews: 403 selfsubjectaccess"
                'reviews.authorization.k8s.io is forbidden: User "x" cannot create resource',
                status=403,
            )
        if (group, resource) != ("phonefleet.dev", "accounts"):
            write = f"{verb} {resource}{'/' + subresource if subresource else ''}"
            everywhere = "" in self.writes_in
            return write not in self.withheld and (everywhere or namespace in self.writes_in)
        self.asked.append((group, resource, name, verb))
        return (group, resource, name, verb) in self.granted

    async def username(self) -> str | None:
        return self.user


async def no_pause(_: float) -> None:
    return None


async def test_an_identity_that_serves_its_account_passes_and_is_named() -> None:
    """Granted "serve" on accounts.phonefleet.dev/shop-b: the check returns the user name, and
    it asked exactly the account policy's question."""
    reviews = FakeReviews(granted={("phonefleet.dev", "accounts", "shop-b", "serve")})
    assert await check_account(reviews, "shop-b", pause=no_pause) == USER
    assert reviews.asked == [("phonefleet.dev", "accounts", "shop-b", "serve")]


async def test_an_identity_that_serves_another_account_is_refused_naming_both() -> None:
    """Granted "serve" on default only, run as shop-b: refused, the message names the account,
    the identity, the missing right and where it is granted."""
    reviews = FakeReviews(granted={("phonefleet.dev", "accounts", "default", "serve")})
    with pytest.raises(AccountNotServed) as refused:
        await check_account(reviews, "shop-b", pause=no_pause)
    message = str(refused.value)
    assert message.startswith(f"Refused to serve account shop-b: {USER} may not serve it")
    assert 'no "serve" on accounts.phonefleet.dev/shop-b' in message
    assert "manifests/rbac/account_role.yaml" in message


async def test_an_identity_the_api_server_cannot_name_is_still_refused() -> None:
    """An API server without SelfSubjectReview: the identity is described, not left blank."""
    reviews = FakeReviews(user=None)
    with pytest.raises(AccountNotServed, match="this operator's identity may not serve it"):
        await check_account(reviews, "default", pause=no_pause)


async def test_an_identity_that_may_not_ask_is_told_which_right_it_lacks() -> None:
    """403 on the SelfSubjectAccessReview itself: not "not served" but "could not check",
    naming the right to grant and the ClusterRole that grants it."""
    reviews = FakeReviews(may_ask=False)
    with pytest.raises(AccountUncheckable) as uncheckable:
        await check_account(reviews, "default", pause=no_pause)
    message = str(uncheckable.value)
    assert f"Could not check whether {USER} serves account default" in message
    assert "create on selfsubjectaccessreviews.authorization.k8s.io" in message
    assert "manifests/rbac/cluster_role.yaml" in message


async def test_an_api_server_that_does_not_answer_is_asked_again_until_it_does() -> None:
    """Unavailable twice, then granted: passes after two pauses. Unavailable for minutes (an API
    server restarting): asked again, pausing from 2 s up to 30 s, never given up on."""
    pauses: list[float] = []

    async def pause(seconds: float) -> None:
        pauses.append(seconds)

    grant = {("phonefleet.dev", "accounts", "default", "serve")}
    flaky = FakeReviews(granted=grant, unavailable=2)
    assert await check_account(flaky, "default", pause=pause) == USER
    assert len(pauses) == 2

    pauses.clear()
    down = FakeReviews(granted=grant, unavailable=12)
    assert await check_account(down, "default", pause=pause) == USER
    assert pauses == [2.0, 4.0, 8.0, 16.0] + [30.0] * 8
    assert down.unavailable == 0


async def test_an_operator_that_may_write_in_each_of_its_namespaces_passes_quietly() -> None:
    """RoleBindings in team-a and team-b, no ClusterRoleBinding: no refusal, no warning."""
    reviews = FakeReviews(writes_in={"team-a", "team-b"})
    assert await check_namespaces(reviews, USER, ["team-b", "team-a"], pause=no_pause) is None


async def test_a_namespace_without_its_rolebinding_is_refused_by_name() -> None:
    """Served team-a, team-b and team-c, bound in team-a only: refused, naming team-b and team-c
    (and no other), the identity, the role to bind and the flag to drop."""
    reviews = FakeReviews(writes_in={"team-a"})
    with pytest.raises(NamespaceNotWritable) as refused:
        await check_namespaces(reviews, USER, ["team-a", "team-b", "team-c"], pause=no_pause)
    message = str(refused.value)
    assert message.startswith(f"Refused to serve namespaces team-b, team-c: {USER} may not")
    assert "(team-b: no write at all; team-c: no write at all)" in message
    assert "team-a" not in message
    assert "phonefleet-operator-tenant" in message
    assert "--namespace=team-b --namespace=team-c" in message
    assert refused.value.reason == "NamespaceNotWritable"


async def test_a_namespace_missing_one_write_is_refused_naming_that_write() -> None:
    """A RoleBinding of a narrower role (no Secret update): the refusal names what is missing."""
    reviews = FakeReviews(writes_in={"team-a"}, withheld={"update secrets"})
    with pytest.raises(NamespaceNotWritable, match=r"\(team-a: no update secrets\)"):
        await check_namespaces(reviews, USER, ["team-a"], pause=no_pause)


async def test_a_restricted_operator_that_may_write_everywhere_is_warned() -> None:
    """The default install's ClusterRoleBinding left behind: it starts (nothing is refused),
    and the warning names the binding to delete and the namespaces it serves."""
    reviews = FakeReviews(writes_in={""})
    warning = await check_namespaces(reviews, USER, ["team-a"], pause=no_pause)
    assert warning is not None
    assert warning.startswith(f"{USER} may write in every namespace (patch phonebindings,")
    assert "yet it serves only team-a" in warning
    assert "kubectl delete clusterrolebinding phonefleet-operator-tenant" in warning


async def test_an_operator_of_every_namespace_asks_nothing_about_namespaces() -> None:
    """No --namespace: it serves every namespace, the cluster-wide grant is the design."""
    reviews = FakeReviews(writes_in={""}, may_ask=False)
    assert await check_namespaces(reviews, USER, [], pause=no_pause) is None


async def test_a_namespace_check_the_api_server_refuses_says_which_right_to_grant() -> None:
    """403 on the review of a namespace's writes: "could not check", as for the account."""
    reviews = FakeReviews(writes_in={"team-a"}, may_ask=False)
    with pytest.raises(AccountUncheckable, match="create on selfsubjectaccessreviews"):
        await check_namespaces(reviews, USER, ["team-a"], pause=no_pause)
