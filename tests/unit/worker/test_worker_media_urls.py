"""A media URL may carry credentials (a presigned URL's signature in its query string, a user and
password before its host): the worker's logs and its errors (which become the PhoneJob's status)
name the file by scheme, host and path only.

A real HTTP server on loopback serves the files; the adb push is an in-memory recorder. Logs are
read at DEBUG, where urllib3 logs each request, with the worker's filter on urllib3's logger
(``phonefleet-worker`` installs it at start-up).
"""

from __future__ import annotations

import http.server
import logging
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from phonefleet_worker.media import HttpMediaPusher, hide_query_strings
from phonefleet_worker.task_api import MediaFile, TaskError

SECRET = "X-Amz-Signature=0123456789abcdef"
QUERY = f"?X-Amz-Credential=AKIDEXAMPLE&{SECRET}"


class Pushes:
    """Records ``adb push`` calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def push(self, serial: str, local: str, remote: str) -> None:
        self.calls.append((serial, local, remote))


@pytest.fixture(autouse=True)
def urllib3_filtered() -> Iterator[None]:
    """urllib3's logger with the filter the worker's command line installs."""
    hidden = hide_query_strings()
    yield
    logging.getLogger("urllib3.connectionpool").removeFilter(hidden)


@pytest.fixture
def media_server(tmp_path: Path) -> Iterator[str]:
    """A plain HTTP server on loopback serving ``clip.mp4`` (1 KiB)."""
    (tmp_path / "clip.mp4").write_bytes(b"v" * 1024)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(10)


def test_a_fetched_files_log_line_names_it_without_its_query_string(
    media_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    pushes = Pushes()
    url = f"{media_server}/clip.mp4{QUERY}"

    pushed = HttpMediaPusher(pushes)("phone-1", [MediaFile(url, "/sdcard/clip.mp4")])

    assert pushed == {url: "/sdcard/clip.mp4"}  # the task still looks its file up by its URL
    assert f"Fetched media {media_server}/clip.mp4 (1024 bytes)" in caplog.messages
    assert SECRET not in caplog.text


@pytest.mark.parametrize(
    ("path", "max_bytes", "message"),
    [
        ("/gone.mp4", 1 << 20, "could not fetch media"),  # 404: requests names the URL
        ("/clip.mp4", 100, "is larger than 100 bytes"),
    ],
)
def test_a_failed_fetch_names_the_file_without_its_query_string(
    media_server: str, caplog: pytest.LogCaptureFixture, path: str, max_bytes: int, message: str
) -> None:
    caplog.set_level(logging.DEBUG)
    pusher = HttpMediaPusher(Pushes(), max_bytes=max_bytes)

    with pytest.raises(TaskError, match=message) as caught:
        pusher("phone-1", [MediaFile(f"{media_server}{path}{QUERY}", "/sdcard/x.mp4")])

    assert f"{media_server}{path}" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert SECRET not in caplog.text


@pytest.mark.parametrize(
    "url",
    [
        "http://user:hunter2@127.0.0.1:9/clip.mp4",  # nothing listens on port 9
        f"ftp://user:hunter2@example.invalid/clip.mp4{QUERY}",
    ],
)
def test_a_urls_user_and_password_stay_out_of_the_error(url: str) -> None:
    with pytest.raises(TaskError) as caught:
        HttpMediaPusher(Pushes(), timeout=5)("phone-1", [MediaFile(url, "/sdcard/x.mp4")])

    assert "hunter2" not in str(caught.value)
    assert SECRET not in str(caught.value)
