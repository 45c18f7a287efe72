"""The worker's job endpoint bounds what a client can make it read and how long a client can hold
one of its threads, before any token is checked: anything in the cluster can reach the port.

Real servers on loopback, spoken to over raw sockets (an HTTP client would not send these
requests). The sockets' timeouts are deadlines for the test's failure, never pauses.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from phonefleet_worker.job_desk import JobDesk
from phonefleet_worker.job_server import JobServer
from phonefleet_worker.registry import TaskRegistry

#: How long the test waits for the server's answer before it fails.
DEADLINE_SECONDS = 10.0


@pytest.fixture
def port() -> Iterator[int]:
    """A job server on a free loopback port, its requests timed out after 0.5 s of silence."""
    server = JobServer(
        host="127.0.0.1",
        port=0,
        desk=JobDesk(TaskRegistry({})),
        token=lambda: "job-token",
        request_timeout=0.5,
    )
    server.start()
    yield server.port
    server.close()


def _send(port: int, head: bytes) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_SECONDS)
    conn.sendall(head)
    return conn


def _answer(conn: socket.socket) -> bytes:
    """Everything the server writes until it closes the connection."""
    received = b""
    with conn:
        while chunk := conn.recv(65536):
            received += chunk
    return received


@pytest.mark.parametrize("length", ["-1", "ten"])
def test_a_body_length_that_is_no_length_is_refused_without_reading(port: int, length: str) -> None:
    """A negative Content-Length made the server read to the end of the stream (past its 1 MiB
    limit, for as long as the client sends); a word made its thread fail without an answer."""
    head = f"POST /v1/attempts HTTP/1.1\r\nHost: w\r\nContent-Length: {length}\r\n\r\n".encode()
    conn = _send(port, head + b"{")  # the client keeps its side open
    assert _answer(conn).startswith(b"HTTP/1.0 400 ")


def test_a_client_that_stops_sending_loses_its_connection(port: int) -> None:
    """Headers promise 100 bytes and 10 come: the server's thread gives up on the client."""
    head = b"POST /v1/validate HTTP/1.1\r\nHost: w\r\nContent-Length: 100\r\n\r\n"
    conn = _send(port, head + b'{"task": "')
    assert _answer(conn) == b""  # closed without an answer, well before the test's deadline
