"""The built-in ``ui-steps`` job task against a real Appium server with the fake driver."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from appium_support import PHONE_ID, fake_driver_capabilities

from phonefleet_worker.appium_gateway import AppiumClient
from phonefleet_worker.builtin_tasks import UiSteps, UiStepsParams
from phonefleet_worker.task_api import (
    AccountTaskError,
    AttemptInfo,
    JobContext,
    TaskError,
)
from phonefleet_worker.tasks import Device, TaskContext

pytestmark = pytest.mark.appium

JOB_APP = Path(__file__).parent / "fixtures" / "job_app.xml"
SERIAL = "127.0.0.1:40118"


def job_app_capabilities(serial: str) -> dict[str, Any]:
    """The fake driver showing the posting screen."""
    return {**fake_driver_capabilities(serial), "appium:app": str(JOB_APP)}


@pytest.fixture
def context(appium_url: str) -> Iterator[JobContext]:
    """A job context on a fresh session of the posting screen."""
    client = AppiumClient(appium_url, capabilities=job_app_capabilities, command_timeout=60)
    driver = client.open_session(SERIAL)
    session = TaskContext(driver, Device(PHONE_ID, SERIAL), threading.Event())
    yield JobContext(
        session=session,
        attempt=AttemptInfo("farm/post", "uid-post", 1, "attempt-1"),
        cancel=threading.Event(),
    )
    client.quit_session()


def run(context: JobContext, *steps: dict[str, Any]) -> Any:
    """Run ``ui-steps`` with these steps (validated as the worker validates a job's params)."""
    params = UiStepsParams.model_validate({"steps": list(steps)})
    return UiSteps().run(context, params)


def test_steps_find_wait_click_type_and_assert_through_appium(context: JobContext) -> None:
    """waitFor by id, click by accessibility id, type by xpath, assertText by id: all pass."""
    result = run(
        context,
        {"action": "waitFor", "by": "id", "value": "composer", "timeoutSeconds": 5},
        {"action": "find", "by": "xpath", "value": "//MockButton[@id='share']"},
        {"action": "type", "by": "xpath", "value": "//MockInputField", "text": "hello"},
        {"action": "assertText", "by": "id", "value": "caption", "text": "hello"},
        {"action": "click", "by": "accessibility id", "value": "share"},
    )

    assert result == {"steps": 5}


def test_a_failed_assertion_raises_the_error_class_the_step_names(context: JobContext) -> None:
    """assertText on other text fails with the step's errorClass (Account here)."""
    with pytest.raises(AccountTaskError, match="expected 'suspended', found ''"):
        run(
            context,
            {
                "action": "assertText",
                "by": "id",
                "value": "caption",
                "text": "suspended",
                "errorClass": "Account",
            },
        )


def test_waiting_for_a_missing_element_gives_up_after_its_timeout(context: JobContext) -> None:
    """waitFor an element the screen lacks fails (Retryable by default) after timeoutSeconds,
    saying so in one line: what it waited for, how long, and Appium's own words without its
    stack trace (before: some 2,000 characters of Node.js frames in the job's status)."""
    with pytest.raises(TaskError) as caught:
        run(context, {"action": "waitFor", "by": "id", "value": "nowhere", "timeoutSeconds": 1})

    assert caught.value.error_class == "Retryable"
    assert str(caught.value) == (
        "step 1 (waitFor nowhere) failed: no element by id 'nowhere' within 1 s "
        "(NoSuchElementException: An element could not be located on the page using the "
        "given search parameters.)"
    )


def test_a_failed_step_says_appiums_words_in_one_line(context: JobContext) -> None:
    """click on a missing element: Appium's message, without the documentation link and the
    server's stack trace Selenium's text carries."""
    with pytest.raises(TaskError) as caught:
        run(context, {"action": "click", "by": "id", "value": "nowhere"})

    assert str(caught.value) == (
        "step 1 (click nowhere) failed: NoSuchElementException: An element could not be "
        "located on the page using the given search parameters."
    )
