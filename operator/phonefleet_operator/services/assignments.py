"""Which binding asks for which phone: duplicate phones, aliases and phones Geelark lacks.

The operator settles these at run time (the PhoneClaim lets one binding win, the others wait in
``Conflict``); the checks here give the same answers *before* anything is applied, for a
pre-merge check of a GitOps repository. Messages keep the wording of the seed's
``validate_phone_assignments``:

* ``Duplicate phone assignments: {'phone-001'}`` for one phoneId written twice, and for an alias:
  an id in one binding, the same phone's serialName in another (``{'6000...01', 'phone-001'}``);
* ``Phone 'phone-404' not found in Geelark``;
* ``Failed to validate phones with Geelark: ...`` when Geelark could not be asked at all.

A phone is held cluster-wide (claims are cluster-scoped), so namespaces do not separate bindings.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from phonefleet_operator.errors import AmbiguousPhone, PhonefleetError, PhoneNotFound
from phonefleet_operator.services.ports import PhoneDirectory

__all__ = [
    "Assignment",
    "Problem",
    "check_with_geelark",
    "find_duplicates",
    "format_refs",
]


@dataclass(frozen=True)
class Assignment:
    """One binding's request for a phone, and where it was written."""

    source: str
    """Where the binding was written, as problems name it (``path:docindex (namespace/name)``)."""
    phone_id: str
    """spec.phoneId exactly as written: a Geelark id or a serialName."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong, as one line of output."""

    source: str | None
    """The binding (or file) it concerns; None for a problem of the whole check."""
    message: str
    """What is wrong, in the seed's wording where the seed has one."""
    undecided: bool = False
    """The check itself could not be made (Geelark could not be asked): not the manifests' fault."""

    def __str__(self) -> str:
        return f"{self.source}: {self.message}" if self.source else self.message


def format_refs(refs: Iterable[str]) -> str:
    """Phone refs as the seed prints a set (``{'a', 'b'}``), sorted so the output is stable."""
    return "{" + ", ".join(repr(ref) for ref in sorted(set(refs))) + "}"


def find_duplicates(assignments: Sequence[Assignment]) -> list[Problem]:
    """A problem for every assignment whose phoneId an earlier assignment wrote already."""
    first: dict[str, Assignment] = {}
    problems: list[Problem] = []
    for assignment in assignments:
        earlier = first.setdefault(assignment.phone_id, assignment)
        if earlier is not assignment:
            problems.append(
                Problem(
                    assignment.source,
                    f"Duplicate phone assignments: {format_refs([assignment.phone_id])} "
                    f"(also assigned by {earlier.source})",
                )
            )
    return problems


async def check_with_geelark(
    assignments: Sequence[Assignment], directory: PhoneDirectory
) -> list[Problem]:
    """Resolve every phoneId once: phones Geelark lacks, ambiguous names, and aliases.

    An alias is a second assignment of the same Geelark phone under another ref (its id here, its
    serialName there); the same ref written twice is :func:`find_duplicates`' to report. When
    Geelark cannot be asked, the only problem is the seed's "Failed to validate ..." line.
    """
    resolved: dict[str, str] = {}
    problems: list[Problem] = []
    unresolvable: dict[str, str] = {}
    for ref in dict.fromkeys(a.phone_id for a in assignments):
        try:
            resolved[ref] = (await directory.resolve(ref)).id
        except PhoneNotFound:
            unresolvable[ref] = f"Phone {ref!r} not found in Geelark"
        except AmbiguousPhone as error:
            unresolvable[ref] = f"Phone {ref!r} is ambiguous in Geelark: {error}"
        except PhonefleetError as error:
            return [Problem(None, f"Failed to validate phones with Geelark: {error}", True)]

    holders: dict[str, list[Assignment]] = {}
    for assignment in assignments:
        if assignment.phone_id in unresolvable:
            problems.append(Problem(assignment.source, unresolvable[assignment.phone_id]))
            continue
        phone = resolved[assignment.phone_id]
        earlier = holders.setdefault(phone, [])
        if earlier and all(e.phone_id != assignment.phone_id for e in earlier):
            refs = [earlier[0].phone_id, assignment.phone_id]
            problems.append(
                Problem(
                    assignment.source,
                    f"Duplicate phone assignments: {format_refs(refs)} "
                    f"(phone {phone}, also assigned by {earlier[0].source})",
                )
            )
        earlier.append(assignment)
    return problems
