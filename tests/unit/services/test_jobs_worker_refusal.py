"""How a job's status quotes a worker that refused it."""

from __future__ import annotations

from phonefleet_operator.services.jobs.attempts import refusal_message
from phonefleet_operator.workers.client import Answer


def test_a_refusal_quotes_the_workers_message() -> None:
    """The worker's own words follow its status code."""
    answer = Answer(422, {"message": "params.caption: field required"})
    assert refusal_message(answer) == "the worker answered 422: params.caption: field required"


def test_a_refusal_without_a_message_says_so_and_what_to_check() -> None:
    """An empty answer (something else listens there, or a proxy) is told as such, not as
    "the worker answered 404:" with nothing after the colon."""
    said = refusal_message(Answer(404, {}))
    assert said == (
        "the worker answered HTTP 404 with no message: is phonefleet's worker listening at the "
        "pod's address?"
    )
