"""The interface of job tasks: what a plugin package implements to add a task to the worker.

A job task is a subclass of ``JobTask`` registered under the entry point group
``phonefleet.tasks`` (the entry point's name is the task's name)::

    [project.entry-points."phonefleet.tasks"]
    post-instagram-reel = "my_tasks.reel:PostReel"

The worker checks a job's params against ``Params`` (a pydantic model) before anything runs,
hands ``media()``'s files to the phone over adb, asks ``is_done()`` before every attempt (the
idempotency hook that makes "exactly once" possible), then calls ``run()`` under a deadline.
``run`` returns facts for the job's ledger (a post URL, say) or raises one of the ``TaskError``
classes below, which tell the operator whether another attempt makes sense.
"""

from __future__ import annotations

import abc
import dataclasses
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from phonefleet_worker.tasks import TaskContext

__all__ = [
    "ERROR_CLASSES",
    "AccountTaskError",
    "AttemptInfo",
    "JobContext",
    "JobTask",
    "MediaFile",
    "NoParams",
    "PermanentTaskError",
    "TaskError",
]

P = TypeVar("P", bound=BaseModel)

ERROR_CLASSES = ("Retryable", "Permanent", "Account")
"""The error classes of the protocol (the PhoneJob CRD's status.attempts[].errorClass)."""


class TaskError(Exception):
    """A task failed in a way another attempt may fix (the default: a flaky screen, a timeout)."""

    error_class: ClassVar[str] = "Retryable"


class PermanentTaskError(TaskError):
    """Another attempt would fail the same way (a captcha, an action block, a rejected video)."""

    error_class = "Permanent"


class AccountTaskError(TaskError):
    """The account is unusable (banned, suspended, logged out): its other jobs are held too."""

    error_class = "Account"


class NoParams(BaseModel):
    """The params of a task that takes none."""

    model_config = ConfigDict(extra="forbid")


@dataclasses.dataclass(frozen=True)
class MediaFile:
    """A file a task needs on the phone: fetched from ``url`` and pushed to ``path`` by adb."""

    url: str
    path: str


@dataclasses.dataclass(frozen=True)
class AttemptInfo:
    """Which job and which attempt of it is running (for the idempotency hook and logs)."""

    job: str
    """``namespace/name`` of the PhoneJob."""
    job_uid: str
    """The PhoneJob's uid: the same for every attempt of one job, unique across jobs."""
    number: int
    """1 for the first attempt, 2 for the first retry, ..."""
    id: str
    """The attempt's fencing id."""


@dataclasses.dataclass(frozen=True)
class JobContext:
    """What a job task gets besides its params."""

    session: TaskContext
    """The Appium driver, the device and the worker's stop event."""
    attempt: AttemptInfo
    cancel: threading.Event
    """Set when the attempt passed its deadline or was cancelled: return as soon as possible."""
    media: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Each requested file's URL -> its path on the phone, once pushed."""

    def should_stop(self) -> bool:
        """True when the task should return now (cancelled, or the worker is stopping)."""
        return self.cancel.is_set() or self.session.stop.is_set()


class JobTask(abc.ABC, Generic[P]):
    """A task the operator can deliver as a PhoneJob. Subclass it and register it.

    Class attributes: ``Params`` (the pydantic model of ``spec.params``), ``deadline_seconds``
    (the longest one attempt may take; the job's activeDeadlineSeconds may shorten it) and
    ``description`` (one line for ``GET /v1/tasks``).
    """

    Params: ClassVar[type[BaseModel]] = NoParams
    deadline_seconds: ClassVar[float] = 300.0
    description: ClassVar[str] = ""

    def media(self, params: P) -> Sequence[MediaFile]:
        """Files to push to the phone before ``run`` (none by default)."""
        return ()

    def is_done(self, context: JobContext, params: P) -> Mapping[str, Any] | None:
        """The idempotency hook, asked before every attempt: has an earlier attempt done the work?

        Return what ``run`` would have returned (a post URL) when it has: the attempt then ends
        ``AlreadyDone`` and ``run`` is not called. The default, None, means "not done, or cannot
        tell", which is right for tasks that are harmless to repeat.
        """
        return None

    @abc.abstractmethod
    def run(self, context: JobContext, params: P) -> Mapping[str, Any]:
        """Do the work; return facts for the ledger (JSON values) or raise a TaskError."""
