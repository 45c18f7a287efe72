"""The job tasks every worker image has: ``heartbeat`` and the declarative ``ui-steps``.

``ui-steps`` runs a list of Appium steps given in the job's params, so simple flows need no
plugin package::

    params:
      steps:
        - {action: waitFor, by: id, value: feed, timeoutSeconds: 10}
        - {action: click, by: accessibility id, value: Create}
        - {action: type, by: id, value: caption, text: "hello"}
        - {action: assertText, by: xpath, value: "//title", text: "Posted"}
        - {action: back}

A step that fails raises the error class it names (``errorClass``, Retryable by default), so a
flow can say "this screen means the account is suspended" with ``assertText`` and ``Account``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from selenium.common.exceptions import WebDriverException

from phonefleet_worker.task_api import (
    AccountTaskError,
    JobContext,
    JobTask,
    NoParams,
    PermanentTaskError,
    TaskError,
)

if TYPE_CHECKING:
    from selenium.webdriver.remote.webelement import WebElement

__all__ = ["HeartbeatJob", "UiStep", "UiSteps", "UiStepsParams"]

Locator = Literal["id", "xpath", "accessibility id"]
_ERRORS: Mapping[str, type[TaskError]] = {
    "Retryable": TaskError,
    "Permanent": PermanentTaskError,
    "Account": AccountTaskError,
}
_NEEDS_ELEMENT = frozenset({"find", "click", "type", "waitFor", "assertText"})


class HeartbeatJob(JobTask[NoParams]):
    """Proves the session answers: reads the device's window size through UiAutomator2."""

    description = "Read the window size: proves the phone and its Appium session answer."
    deadline_seconds = 60.0

    def run(self, context: JobContext, params: NoParams) -> Mapping[str, Any]:
        """Read the window size."""
        size = context.session.driver.get_window_size()
        return {"width": size["width"], "height": size["height"]}


class UiStep(BaseModel):
    """One Appium step."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    action: Literal["find", "click", "type", "waitFor", "assertText", "back"] = Field(
        description="What to do: find, click, type, waitFor, assertText or back."
    )
    by: Locator | None = Field(None, description="How to find the element.")
    value: str | None = Field(None, min_length=1, description="The id, xpath or accessibility id.")
    text: str | None = Field(None, description="Text to type, or the text assertText expects.")
    timeout_seconds: float = Field(
        10.0, alias="timeoutSeconds", gt=0, le=300, description="How long waitFor waits."
    )
    error_class: Literal["Retryable", "Permanent", "Account"] = Field(
        "Retryable", alias="errorClass", description="What a failure of this step means."
    )

    @model_validator(mode="after")
    def _complete(self) -> UiStep:
        if self.action in _NEEDS_ELEMENT and (self.by is None or self.value is None):
            raise ValueError(f"{self.action} needs 'by' and 'value'")
        if self.action in ("type", "assertText") and self.text is None:
            raise ValueError(f"{self.action} needs 'text'")
        return self


class UiStepsParams(BaseModel):
    """The params of ``ui-steps``."""

    model_config = ConfigDict(extra="forbid")

    steps: list[UiStep] = Field(min_length=1, max_length=200, description="Run in order.")


class UiSteps(JobTask[UiStepsParams]):
    """Runs a declarative list of Appium steps."""

    Params = UiStepsParams
    description = "Run a list of Appium steps: find, click, type, waitFor, assertText, back."
    deadline_seconds = 600.0

    def run(self, context: JobContext, params: UiStepsParams) -> Mapping[str, Any]:
        """Run each step; the first failure ends the task with the step's error class."""
        for index, step in enumerate(params.steps, start=1):
            if context.should_stop():
                raise TaskError(f"cancelled before step {index}")
            try:
                self._step(context, step)
            except TaskError:
                raise
            except Exception as exc:
                error = _ERRORS[step.error_class]
                raise error(
                    f"step {index} ({step.action} {step.value or ''}) failed: {_one_line(exc)}"
                ) from exc
        return {"steps": len(params.steps)}

    def _step(self, context: JobContext, step: UiStep) -> None:
        driver = context.session.driver
        if step.action == "back":
            driver.back()
            return
        if step.action == "waitFor":
            self._wait_for(context, step)
            return
        element = self._find(context, step)
        if step.action == "click":
            element.click()
        elif step.action == "type":
            element.send_keys(step.text or "")
        elif step.action == "assertText":
            found = element.text
            if found != step.text:
                raise _ERRORS[step.error_class](
                    f"assertText {step.value}: expected {step.text!r}, found {found!r}"
                )

    @staticmethod
    def _find(context: JobContext, step: UiStep) -> WebElement:
        return context.session.driver.find_element(step.by or "id", step.value)

    def _wait_for(self, context: JobContext, step: UiStep) -> None:
        deadline = time.monotonic() + step.timeout_seconds
        while True:
            try:
                self._find(context, step)
                return
            except Exception as exc:
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"no element by {step.by or 'id'} {step.value!r} within "
                        f"{step.timeout_seconds:g} s ({_one_line(exc)})"
                    ) from exc
            if context.cancel.wait(0.5) or context.session.stop.is_set():
                raise TaskError(f"cancelled while waiting for {step.value}")


def _one_line(error: BaseException) -> str:
    """What a failed step's call said, in one line. Selenium's own text adds a link to its
    documentation and the Appium server's stack trace (some 2,000 characters of Node.js
    frames), which would fill the job's status, its Event and the REASON column."""
    if isinstance(error, WebDriverException):
        said = (error.msg or "").strip().splitlines()
        if not said:
            return type(error).__name__
        # Selenium appends its link to the server's message: "...; For documentation on ..."
        return f"{type(error).__name__}: {said[0].split('; For documentation', 1)[0]}"
    said = str(error).strip().splitlines()
    return said[0] if said else type(error).__name__
