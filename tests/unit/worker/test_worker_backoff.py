"""The delays between recovery attempts."""

from __future__ import annotations

import pytest

from phonefleet_worker.backoff import Backoff


def make_backoff(*, initial: float = 2.0, maximum: float = 60.0) -> Backoff:
    """A backoff from 2 s to 60 s; ``random`` fixed at the middle (no jitter effect)."""
    return Backoff(initial=initial, maximum=maximum, jitter=0.2, random=lambda: 0.5)


def test_delays_double_up_to_the_maximum() -> None:
    """2, 4, 8, 16, 32, then 60 for as long as failures go on."""
    backoff = make_backoff()

    assert [backoff.next_delay() for _ in range(8)] == [2, 4, 8, 16, 32, 60, 60, 60]
    assert backoff.attempts == 8


def test_reset_starts_again_from_the_initial_delay() -> None:
    """After a success the next failure waits the initial delay again."""
    backoff = make_backoff()
    for _ in range(5):
        backoff.next_delay()

    backoff.reset()

    assert backoff.next_delay() == 2


@pytest.mark.parametrize(("draw", "expected"), [(0.0, 1.6), (1.0, 2.4)])
def test_jitter_spreads_each_delay_by_the_given_fraction(draw: float, expected: float) -> None:
    """With 20 % jitter the first delay lies between 1.6 s and 2.4 s."""
    backoff = Backoff(initial=2.0, maximum=60.0, jitter=0.2, random=lambda: draw)

    assert backoff.next_delay() == pytest.approx(expected)


def test_jitter_never_exceeds_the_maximum() -> None:
    """The cap holds after jitter too."""
    backoff = Backoff(initial=60.0, maximum=60.0, jitter=0.5, random=lambda: 1.0)

    assert backoff.next_delay() == 60.0


def test_thousands_of_failures_do_not_overflow() -> None:
    """A phone that stays away for days still gets the maximum delay."""
    backoff = make_backoff()
    for _ in range(5000):
        backoff.next_delay()

    assert backoff.next_delay() == 60


@pytest.mark.parametrize(
    ("initial", "maximum", "jitter"),
    [(-1.0, 60.0, 0.2), (10.0, 5.0, 0.2), (1.0, 5.0, 1.0)],
    ids=["negative-start", "maximum-below-start", "full-jitter"],
)
def test_nonsense_settings_are_refused(initial: float, maximum: float, jitter: float) -> None:
    """A negative start, a maximum below the start or 100 % jitter are errors."""
    with pytest.raises(ValueError, match="need"):
        Backoff(initial=initial, maximum=maximum, jitter=jitter)
