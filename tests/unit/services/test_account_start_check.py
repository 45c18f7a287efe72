"""The start-up check of the account an operator serves (services/account_check.py), on a fake
of the API server's self reviews: granted, refused, not askable, not answering."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from phonefleet_operator.errors import KubernetesRefused, KubernetesUnavailable
from phonefleet_operator.services.account_check import (
    AccountNotServed,
    AccountUncheckable,
    check_account,
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

    async def allowed(self, *, group: str, resource: str, name: str, verb: str) -> bool:
        if self.unavailable:
            self.unavailable -= 1
            raise KubernetesUnavailable("Kubernetes API call failed: 503 Service Unavailable")
        if not self.may_ask:
            raise KubernetesRefused(
                "Kubernetes refused create_self_subject_access_review: 403 selfsubjectaccess"
                'reviews.authorization.k8s.io is forbidden: User "x" cannot create resource',
                status=403,
            )
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


async def test_an_api_server_that_does_not_answer_is_asked_again_then_given_up_on() -> None:
    """Unavailable twice, then granted: passes after two pauses. Unavailable every time: gives
    up after five tries with "did not answer" (never "refused")."""
    pauses: list[float] = []

    async def pause(seconds: float) -> None:
        pauses.append(seconds)

    grant = {("phonefleet.dev", "accounts", "default", "serve")}
    flaky = FakeReviews(granted=grant, unavailable=2)
    assert await check_account(flaky, "default", pause=pause) == USER
    assert len(pauses) == 2

    down = FakeReviews(granted=grant, unavailable=100)
    with pytest.raises(AccountUncheckable, match="the API server did not answer"):
        await check_account(down, "default", pause=no_pause)
    assert down.unavailable == 95
