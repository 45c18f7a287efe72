"""The task registry: every job task installed in the worker image, found through entry points.

The built-ins (``heartbeat``, ``ui-steps``) are registered by phonefleet's own package metadata in
the same group as a user's plugins (``phonefleet.tasks``), so both take one path. The registry
also answers what the operator asks before it delivers a job: the catalog of tasks with their
params schemas, and whether given params pass a task's schema.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic import ValidationError

from phonefleet_worker.task_api import JobTask

__all__ = ["ENTRY_POINT_GROUP", "TaskRegistry", "describe_validation_error"]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "phonefleet.tasks"


@dataclasses.dataclass(frozen=True)
class TaskRegistry:
    """Task name -> the task, plus the entry points that could not be loaded (and why)."""

    tasks: Mapping[str, JobTask[Any]]
    broken: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_entry_points(cls, found: Iterable[EntryPoint] | None = None) -> TaskRegistry:
        """Load every task of the group; a plugin that fails to load is reported, not fatal."""
        points = entry_points(group=ENTRY_POINT_GROUP) if found is None else found
        tasks: dict[str, JobTask[Any]] = {}
        broken: dict[str, str] = {}
        for point in sorted(points, key=lambda p: p.name):
            try:
                factory = point.load()
                task = factory()
                if not isinstance(task, JobTask):
                    raise TypeError(f"{point.value} is not a phonefleet_worker.task_api.JobTask")
            except Exception as exc:  # a broken plugin must not take the built-ins down with it
                broken[point.name] = f"{type(exc).__name__}: {exc}"
                log.error("Could not load task %s (%s): %s", point.name, point.value, exc)
                continue
            if point.name in tasks:
                broken[point.name] = f"registered twice (again by {point.value})"
                continue
            tasks[point.name] = task
        log.info("Registered tasks: %s", ", ".join(tasks) or "none")
        return cls(tasks, broken)

    def catalog(self) -> dict[str, Any]:
        """What ``GET /v1/tasks`` answers: each task's description, deadline and params schema."""
        return {
            "tasks": {
                name: {
                    "description": task.description,
                    "deadlineSeconds": task.deadline_seconds,
                    "paramsSchema": task.Params.model_json_schema(),
                }
                for name, task in self.tasks.items()
            },
            "broken": dict(self.broken),
        }

    def problem(self, task: str, params: Mapping[str, Any]) -> str | None:
        """Why a job with this task and params cannot run here, or None when it can."""
        found = self.tasks.get(task)
        if found is None:
            known = ", ".join(sorted(self.tasks)) or "none"
            return f"unknown task {task!r}; this worker image registers: {known}"
        try:
            found.Params.model_validate(dict(params))
        except ValidationError as exc:
            return f"params do not fit task {task!r}: {describe_validation_error(exc)}"
        return None


def describe_validation_error(error: ValidationError) -> str:
    """A pydantic error in one line: ``where: what; where: what``."""
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or '(params)'}: {item['msg']}"
        for item in error.errors()
    )
