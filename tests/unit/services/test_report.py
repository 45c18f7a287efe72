"""The status merge patch: only what changed, and nested removals as null."""

from __future__ import annotations

from typing import Any

import pytest

from phonefleet_operator.services.report import merge_patch


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
