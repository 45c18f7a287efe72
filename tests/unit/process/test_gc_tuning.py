"""The operator freezes what start-up built and collects young objects less often."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from phonefleet_operator.gc_tuning import THRESHOLDS, tune_gc


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_gc")
def test_start_up_objects_are_frozen_and_young_collections_come_later() -> None:
    kept = [object() for _ in range(10)]  # something start-up built and keeps
    tune_gc()
    assert gc.get_threshold() == THRESHOLDS
    assert gc.get_threshold()[0] > 700  # CPython's default
    assert gc.get_freeze_count() >= len(kept)


@pytest.mark.usefixtures("restored_gc")
def test_cycles_made_after_tuning_are_still_collected() -> None:
    tune_gc()

    class Node:
        other: object = None

    a, b = Node(), Node()
    a.other, b.other = b, a  # a reference cycle, unreachable once the names go
    del a, b
    assert gc.collect() >= 2
