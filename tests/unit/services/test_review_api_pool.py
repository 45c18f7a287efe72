"""Admission reads on an API pool of its own: a review never waits behind the passes' calls."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from phonefleet_operator.k8s import KubeGateway
from phonefleet_operator.services import replica as replica_module
from phonefleet_operator.services.admission import AdmissionService
from phonefleet_operator.services.replica import Replica
from phonefleet_operator.settings import GeelarkSettings, OperatorSettings
from phonefleet_operator.waiting import within

_GEELARK = GeelarkSettings(url="http://127.0.0.1:9", token="t")


class _Answer:
    """What the client's method returns with ``_preload_content=False``."""

    data = b'{"kind": "PhoneClaim"}'

    def release_conn(self) -> None:
        """Nothing pooled to give back."""


async def test_a_review_call_is_answered_while_every_thread_of_the_passes_is_busy(
    kubeconfig: Path,
) -> None:
    """One thread for the passes, held by a call that does not return until released: a call
    on the review pool is answered meanwhile (on one shared pool it waited for the release)."""
    settings = OperatorSettings(kubeconfig=str(kubeconfig), kube_api_workers=1)
    replica = Replica.create(settings, _GEELARK)
    release = threading.Event()

    def held(**_: Any) -> _Answer:
        release.wait(30)
        return _Answer()

    def quick(**_: Any) -> _Answer:
        return _Answer()

    try:
        assert replica.review_caller is not None
        busy = replica.caller(held)
        queued = replica.caller(quick)
        answered = await within(replica.review_caller(quick), 5)
        assert answered == {"kind": "PhoneClaim"}
        release.set()
        assert await within(busy, 5) == await within(queued, 5) == answered
    finally:
        release.set()
        await replica.close()


async def test_admission_reads_through_the_review_pool(
    kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway admission is given is built on ``review_caller``; the passes' ``kube`` is
    not."""
    built: dict[int, object] = {}
    handed: dict[str, object] = {}

    class Recorded(KubeGateway):
        def __init__(self, caller: Any) -> None:
            super().__init__(caller)
            built[id(self)] = caller

    real_admission = AdmissionService

    def admission(directory: Any, kube: Any, **kwargs: Any) -> Any:
        handed["admission"] = kube
        return real_admission(directory, kube, **kwargs)

    monkeypatch.setattr(replica_module, "KubeGateway", Recorded)
    monkeypatch.setattr(replica_module, "AdmissionService", admission)
    replica = Replica.create(OperatorSettings(kubeconfig=str(kubeconfig)), _GEELARK)
    try:
        assert built[id(handed["admission"])] is replica.review_caller
        assert built[id(replica.kube)] is replica.caller
        assert replica.review_caller is not replica.caller
    finally:
        await replica.close()
