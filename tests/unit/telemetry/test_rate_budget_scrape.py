"""The Geelark rate budget is counted on the event loop (each request) and read by the /metrics
scrape thread: a scrape that comes between two steps of the loop's pruning must neither break
the request's count (nor raise in the request) nor lose a request of the last minute.

The thread switch is forced at the worst point: the loop thread has just read the oldest entry
to judge it expired, and a whole scrape runs before it goes on (a deque that starts the scrape
from that read and waits for its end). The clock is the test's.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import SupportsIndex

from phonefleet_operator.telemetry.metrics import RateBudget

#: How long the loop thread waits for the scrape before the test fails (a deadline).
DEADLINE_SECONDS = 10.0


class ScrapeOnRead(deque[float]):
    """A deque that, on the ``at``-th read of an entry by the thread that armed it, runs
    ``scrape`` in another thread to its end before it answers."""

    def __init__(self) -> None:
        super().__init__()
        self.scrape: Callable[[], object] | None = None
        self.at = 0
        self.reads = 0
        self.owner = 0
        self.scraped = threading.Event()

    def arm(self, scrape: Callable[[], object], at: int) -> None:
        self.scrape, self.at, self.reads, self.owner = scrape, at, 0, threading.get_ident()

    def __getitem__(self, index: SupportsIndex) -> float:  # type: ignore[override]
        value = super().__getitem__(index)
        if self.scrape is not None and threading.get_ident() == self.owner:
            self.reads += 1
            if self.reads == self.at:
                scrape, self.scrape = self.scrape, None

                def run() -> None:
                    scrape()
                    self.scraped.set()

                thread = threading.Thread(target=run)
                thread.start()
                thread.join(DEADLINE_SECONDS)
        return value


def test_a_scrape_during_a_requests_prune_loses_no_request_of_the_last_minute() -> None:
    now = [0.0]
    budget = RateBudget(clock=lambda: now[0])
    budget.configure(125)
    sent = ScrapeOnRead()
    budget._sent = sent
    for t in (0.0, 1.0):
        now[0] = t
        budget.spent()
    now[0] = 70.0
    # The request at 70 s prunes the two expired ones; the scrape comes as it reads the second.
    sent.arm(budget.remaining, at=2)

    budget.spent()

    assert sent.scraped.is_set()
    assert budget.remaining() == 124  # the request at 70 s counts


def test_two_scrapes_at_once_do_not_raise() -> None:
    """prometheus_client's server answers each scrape in a thread of its own."""
    now = [0.0]
    budget = RateBudget(clock=lambda: now[0])
    budget.configure(125)
    sent = ScrapeOnRead()
    budget._sent = sent
    budget.spent()
    now[0] = 70.0
    sent.arm(budget.remaining, at=1)  # the second scrape comes as the first reads the entry

    assert budget.remaining() == 125
