"""The status merge patch: only what changed, and nested removals as null."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import NOW, make_binding
from phonefleet_operator.services.report import Report, merge_patch


@pytest.mark.parametrize(
    ("old", "new", "patch"),
    [
        ({"phase": "Bound"}, {"phase": "Bound"}, {}),
        ({"phase": "Bound"}, {"phase": "Running"}, {"phase": "Running"}),
        ({"phase": "Bound", "message": "m"}, {"phase": "Bound"}, {"message": None}),
        (
            {"phone": {"id": "1", "adbProvisionedAt": "t"}},
            {"phone": {"id": "1"}},
            {"phone": {"adbProvisionedAt": None}},
        ),
        ({"phone": {"id": "1"}}, {}, {"phone": None}),
        ({}, {"phone": {"id": "1"}}, {"phone": {"id": "1"}}),
        (
            {"conditions": [{"a": 1}, {"b": 2}]},
            {"conditions": [{"a": 1}]},
            {"conditions": [{"a": 1}]},
        ),
        ({"phone": "text"}, {"phone": {"id": "1"}}, {"phone": {"id": "1"}}),
    ],
)
def test_merge_patch_sends_changes_only(
    old: dict[str, Any], new: dict[str, Any], patch: dict[str, Any]
) -> None:
    assert merge_patch(old, new) == patch


def test_a_pass_posts_its_normal_steps_as_one_event_and_each_warning() -> None:

    report = Report(make_binding(), NOW)
    report.event("Claimed", "Created PhoneClaim 100")
    report.event("Odd", "Something to look at", warning=True)
    report.event("StartedPhone", "Started phone 100")
    posted = report.postings()
    assert [(e.reason, e.message, e.warning) for e in posted] == [
        ("Odd", "Something to look at", True),
        ("StartedPhone", "Created PhoneClaim 100; Started phone 100", False),
    ]
    assert Report(make_binding(), NOW).postings() == []
