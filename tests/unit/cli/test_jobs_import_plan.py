"""`phonefleet jobs import`: which binding a row goes to, and what the command says."""

from __future__ import annotations

from typing import Any

from phonefleet_operator.cli.jobs import failed_to_retry, plan_import

HEADER = {"status": "pending", "video_path": "/v.mp4", "caption": "hi", "max_attempts": "3"}


def binding(name: str, phase: str, serial: str = "phone-001", namespace: str = "demo") -> Any:
    """A binding whose status resolved the phone ``serial``, in ``phase``."""
    return {
        "metadata": {"name": name, "namespace": namespace},
        "status": {"phase": phase, "phone": {"id": "6000", "serialName": serial}},
    }


def test_a_row_goes_to_the_holder_not_to_the_bindings_in_conflict_over_its_phone() -> None:
    """make demo's phone-001 has a holder and two bindings in Conflict: the row goes to the
    holder (before: '3 PhoneBindings bound to a phone with serialName ...', not placed)."""
    bindings = [
        binding("alpha", "Running"),
        binding("charlie-duplicate", "Conflict"),
        binding("delta-alias", "Conflict"),
    ]

    plan = plan_import([{**HEADER, "job_id": "J-1", "account": "phone-001"}], bindings, task="t")

    assert plan.problems == []
    assert [job["spec"]["bindingName"] for job in plan.jobs] == ["alpha"]


def test_two_holders_of_one_serial_name_are_named_with_the_way_out() -> None:
    """Two namespaces hold phones of one serialName (two Geelark accounts): the line names
    both bindings and says to import per namespace; a row nobody holds says so."""
    bindings = [
        binding("a", "Running", namespace="farm"),
        binding("b", "Suspended", namespace="lab"),
    ]
    rows = [
        {**HEADER, "job_id": "J-1", "account": "phone-001"},
        {**HEADER, "job_id": "J-2", "account": "phone-404"},
    ]

    plan = plan_import(rows, bindings, task="t")

    assert plan.jobs == []
    assert plan.problems == [
        "line 2 (job J-1): 2 PhoneBindings hold a phone with serialName 'phone-001' "
        "(farm/a, lab/b): import with -n NAMESPACE",
        "line 3 (job J-2): no PhoneBinding holds a phone with serialName 'phone-404'",
    ]


def test_only_failed_jobs_of_the_same_work_are_created_again() -> None:
    """--retry-failed takes an existing job of the planned name back only when it Failed and
    does the same work: never a Succeeded one (its post was made), a waiting or running one,
    or a job of that name for other work."""
    rows = [
        {**HEADER, "job_id": f"J-{n}", "account": "phone-001", "caption": f"c{n}"}
        for n in range(1, 6)
    ]
    plan = plan_import(rows, [binding("alpha", "Running")], task="t")
    phases = {"j-1": "Failed", "j-2": "Succeeded", "j-3": "Pending", "j-4": "Failed"}
    existing = []
    for job in plan.jobs:
        name = job["metadata"]["name"]
        if name in phases:
            there = {
                "metadata": {**job["metadata"], "uid": f"uid-{name}"},
                "spec": dict(job["spec"]),
                "status": {"phase": phases[name]},
            }
            if name == "j-4":
                there["spec"]["params"] = {"video": "/other.mp4", "caption": "c4"}
            existing.append(there)

    assert failed_to_retry(plan, existing) == {("demo", "j-1"): "uid-j-1"}
