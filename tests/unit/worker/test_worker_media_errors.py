"""A job's bad media URL: what the job's status is told, and whether it is retried.

A real HTTP server on loopback answers; nothing leaves the machine (port 9 on loopback has no
listener, and an ftp URL is refused before any request). The adb push is an in-memory recorder.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from phonefleet_worker.media import HttpMediaPusher
from phonefleet_worker.task_api import MediaFile, PermanentTaskError, TaskError


class Pushes:
    """Records ``adb push`` calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def push(self, serial: str, local: str, remote: str) -> None:
        self.calls.append((serial, local, remote))


class _Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/busy"):
            self.send_error(429)
        elif self.path.startswith("/expired"):
            self.send_error(403)
        else:
            super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def media_server(tmp_path: Path) -> Iterator[str]:
    """A plain HTTP server on loopback: /clip.mp4 exists, /expired answers 403, /busy 429."""
    (tmp_path / "clip.mp4").write_bytes(b"v" * 16)
    handler = partial(_Handler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(10)


def fetch(url: str) -> None:
    HttpMediaPusher(Pushes(), timeout=5)("phone-1", [MediaFile(url, "/sdcard/x.mp4")])


@pytest.mark.parametrize(
    ("path", "said"),
    [
        ("/gone.mp4", "HTTP 404 File not found"),
        ("/expired.mp4", "HTTP 403 Forbidden"),
    ],
)
def test_a_url_the_server_refuses_fails_the_job_at_once_saying_what_to_fix(
    media_server: str, path: str, said: str
) -> None:
    """A 404 or an expired signature's 403 is the same on every try: Permanent (was Retryable,
    three attempts and their backoff spent on it), and the message says what to fix."""
    with pytest.raises(PermanentTaskError) as caught:
        fetch(f"{media_server}{path}")

    assert caught.value.error_class == "Permanent"  # the attempt's errorClass in the status
    assert str(caught.value) == (
        f"could not fetch media {media_server}{path}: {said} (not retried: correct the URL, "
        "or give a fresh one if it was signed)"
    )


def test_a_rate_limit_stays_retryable(media_server: str) -> None:
    """429 may pass: retried as before."""
    with pytest.raises(TaskError) as caught:
        fetch(f"{media_server}/busy.mp4")

    assert not isinstance(caught.value, PermanentTaskError)
    assert (
        str(caught.value)
        == f"could not fetch media {media_server}/busy.mp4: HTTP 429 Too Many Requests"
    )


def test_a_server_that_does_not_listen_is_said_in_words_and_retried() -> None:
    """Nothing on the port: 'could not connect', not only the exception's class name."""
    with pytest.raises(TaskError) as caught:
        fetch("http://127.0.0.1:9/clip.mp4")

    assert not isinstance(caught.value, PermanentTaskError)
    assert str(caught.value) == (
        "could not fetch media http://127.0.0.1:9/clip.mp4: could not connect (ConnectionError)"
    )


def test_a_url_that_is_not_http_fails_at_once_before_any_request() -> None:
    """ftp:// can never be fetched: Permanent, with what to give instead."""
    with pytest.raises(PermanentTaskError) as caught:
        fetch("ftp://127.0.0.1/clip.mp4")

    assert str(caught.value) == (
        "media URL ftp://127.0.0.1/clip.mp4 is not http(s): name the file by an http:// or "
        "https:// URL"
    )
