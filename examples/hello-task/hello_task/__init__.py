"""An example task plugin for phonefleet workers: types a caption and checks it was taken."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from phonefleet_worker.task_api import JobContext, JobTask, PermanentTaskError

__all__ = ["CaptionParams", "HelloCaption"]


class CaptionParams(BaseModel):
    """What a PhoneJob's spec.params must hold for this task."""

    model_config = ConfigDict(extra="forbid")

    caption: str = Field(min_length=1, max_length=2200, description="The text to type.")
    field_id: str = Field("caption", description="Resource id of the text field.")


class HelloCaption(JobTask[CaptionParams]):
    """Types ``caption`` into the field and reads it back."""

    Params = CaptionParams
    description = "Type a caption into a text field and read it back."
    deadline_seconds = 60.0

    def is_done(self, context: JobContext, params: CaptionParams) -> Mapping[str, Any] | None:
        """The field already holds the caption: an earlier attempt typed it."""
        field = context.session.driver.find_element("id", params.field_id)
        return {"caption": params.caption} if field.text == params.caption else None

    def run(self, context: JobContext, params: CaptionParams) -> Mapping[str, Any]:
        """Type, then check; a field that drops the text is a permanent failure."""
        field = context.session.driver.find_element("id", params.field_id)
        field.send_keys(params.caption)
        if field.text != params.caption:
            raise PermanentTaskError(f"the field {params.field_id} did not take the caption")
        return {"caption": params.caption}
