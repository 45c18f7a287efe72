"""Media of jobs: files fetched over HTTP and pushed with Debian's real ``adb push`` to the fake
Geelark phone (``FakeAdbd`` speaks adb's file sync protocol)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from appium_support import PASSWORD, PHONE_ID, AdbServer
from fake_adbd import FakeAdbd

from phonefleet_testbed.waiting import wait_until
from phonefleet_worker.adb import AdbClient
from phonefleet_worker.media import HttpMediaPusher
from phonefleet_worker.task_api import MediaFile, TaskError

pytestmark = pytest.mark.appium

VIDEO = bytes(range(256)) * 4096  # 1 MiB: several DATA chunks of adb's sync protocol


@pytest.fixture
def phone() -> Iterator[FakeAdbd]:
    """A fake Geelark phone, connected and logged in through the test's adb server."""
    device = FakeAdbd(props={"ro.gl.serialno": PHONE_ID}, password=PASSWORD).start()
    yield device
    device.close()


@pytest.fixture
def media_server(tmp_path: Path) -> Iterator[str]:
    """A plain HTTP server on loopback serving ``clip.mp4``."""
    (tmp_path / "clip.mp4").write_bytes(VIDEO)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def connected_client(adb_server: AdbServer, phone: FakeAdbd) -> AdbClient:
    """The worker's adb gateway, connected and logged in to the phone."""
    client = AdbClient(server_port=adb_server.port, adb_path=adb_server.adb_path, timeout=30)
    client.connect(phone.serial)
    wait_until(lambda: client.device_state(phone.serial) == "device", timeout=10, what="device")
    client.glogin(phone.serial, PASSWORD)
    return client


def test_a_tasks_media_is_fetched_and_pushed_to_the_phone(
    adb_server: AdbServer, phone: FakeAdbd, media_server: str, tmp_path: Path
) -> None:
    """URL -> path on the phone: the bytes arrive intact; the local copy is removed."""
    client = connected_client(adb_server, phone)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    pusher = HttpMediaPusher(client, folder=scratch)

    pushed = pusher(
        phone.serial, [MediaFile(f"{media_server}/clip.mp4", "/sdcard/Download/clip.mp4")]
    )

    assert pushed == {f"{media_server}/clip.mp4": "/sdcard/Download/clip.mp4"}
    assert phone.files["/sdcard/Download/clip.mp4"] == VIDEO
    assert list(scratch.iterdir()) == []


def test_a_missing_file_is_a_permanent_task_error(
    adb_server: AdbServer, phone: FakeAdbd, media_server: str
) -> None:
    """A 404 from the media server fails the attempt as Permanent (a retry would fetch the same
    nothing: the job must name another file), and nothing is pushed."""
    pusher = HttpMediaPusher(connected_client(adb_server, phone))

    with pytest.raises(TaskError, match="could not fetch media") as caught:
        pusher(phone.serial, [MediaFile(f"{media_server}/gone.mp4", "/sdcard/Download/x.mp4")])

    assert caught.value.error_class == "Permanent"
    assert phone.files == {}
