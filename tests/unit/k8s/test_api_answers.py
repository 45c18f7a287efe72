"""A gateway's expected answers become values: 404 "gone" and 409 "exists or changed"; any other
fault still reaches the caller, as the error kopf retries."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from phonefleet_operator.errors import KubernetesUnavailable
from phonefleet_operator.k8s.api import ApiCaller, Conflict, NotFound, or_none, succeeded


class Answer:
    """A response as the client gives it with _preload_content=False."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def release_conn(self) -> None:
        """Nothing to release."""


def answering(status: int) -> Callable[..., Answer]:
    """A client method that answers ``status`` (200 with a small JSON body)."""

    def method(*_args: Any, **_kwargs: Any) -> Answer:
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


@pytest.mark.parametrize("status", [403, 500, 503])
async def test_other_faults_stay_faults(caller: ApiCaller, status: int) -> None:
    """A status neither helper may absorb reaches the caller as KubernetesUnavailable."""
    with pytest.raises(KubernetesUnavailable):
        await or_none(caller(answering(status)), on=(NotFound, Conflict))
    with pytest.raises(KubernetesUnavailable):
        await succeeded(caller(answering(status)), unless=(NotFound, Conflict))
