"""A watch response's JSON lines are cut out of its chunks with work linear in their size: a very
large event (an object of a megabyte, split by TCP into a thousand chunks) is not copied again
for every chunk that brings more of it.

The work is read as memory: tracemalloc's peak over what the line splitter allocates while it
takes in each chunk, summed over the chunks (no clock).
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator
from typing import Any

from phonefleet_operator.k8s.watch import _lines

CHUNK = 1024


def event(name: str, size: int) -> bytes:
    """A watch event line of about ``size`` bytes (a big annotation)."""
    obj = {"metadata": {"name": name, "annotations": {"big": "v" * size}}}
    return json.dumps({"type": "ADDED", "object": obj}).encode() + b"\n"


class Measured:
    """A watch response giving ``body`` in chunks of CHUNK bytes; records, for each chunk, how
    much memory its reader allocated at most while it took that chunk in."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.allocated: list[int] = []

    def stream(self, amt: Any = None, decode_content: bool = False) -> Iterator[bytes]:
        for start in range(0, len(self.body), CHUNK):
            chunk = self.body[start : start + CHUNK]
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            yield chunk
            self.allocated.append(tracemalloc.get_traced_memory()[1] - base)


def test_a_megabyte_line_in_a_thousand_chunks_is_copied_a_bounded_number_of_times() -> None:
    big, small = event("big", 1 << 20), event("small", 10)
    response = Measured(small + big + small)
    tracemalloc.start()
    try:
        lines = list(_lines(response))
    finally:
        tracemalloc.stop()
    assert lines == [small.rstrip(), big.rstrip(), small.rstrip()]
    # Linear: the big line is copied a few times in all (its parts joined once); re-copying
    # what came before at each chunk would allocate about chunks/2 times its size.
    assert sum(response.allocated) < 4 * len(big), f"{sum(response.allocated)} bytes allocated"


def test_lines_split_anywhere_come_out_whole_and_blank_lines_are_skipped() -> None:
    class Chunks:
        def stream(self, amt: Any = None, decode_content: bool = False) -> Iterator[bytes]:
            yield from (b'{"a"', b":1}\n\n", b'{"b":2}\n{"c"', b":3}", b"\n", b" \n", b'{"d":4}')

    assert list(_lines(Chunks())) == [b'{"a":1}', b'{"b":2}', b'{"c":3}', b'{"d":4}']
