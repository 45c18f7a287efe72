"""Media of jobs: fetch each file a task asks for and push it to the phone over adb.

A task names files as URL -> path on the phone (``JobTask.media``). The worker downloads each
into its private temporary folder (the pod's emptyDir), pushes it with ``adb push`` through the
shared adb server, and deletes the local copy. Downloads are capped in size and time.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import requests

from phonefleet_worker.task_api import MediaFile, TaskError

__all__ = ["FilePusher", "HttpMediaPusher"]

log = logging.getLogger(__name__)

_CHUNK = 1 << 16


class FilePusher(Protocol):
    """The one adb operation media needs."""

    def push(self, serial: str, local: str, remote: str) -> None:
        """Copy ``local`` to ``remote`` on the device."""
        ...


class HttpMediaPusher:
    """Downloads files over HTTP(S) and pushes them to the device (a ``MediaPusher``)."""

    def __init__(
        self,
        adb: FilePusher,
        *,
        max_bytes: int = 512 << 20,
        timeout: float = 60.0,
        folder: Path | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self._adb = adb
        self._max = max_bytes
        self._timeout = timeout
        self._folder = folder
        self._http = session or requests.Session()

    def __call__(self, serial: str, files: Sequence[MediaFile]) -> Mapping[str, str]:
        """Fetch and push every file; raise TaskError (retryable) when one cannot be."""
        pushed: dict[str, str] = {}
        with tempfile.TemporaryDirectory(prefix="phonefleet-media-", dir=self._folder) as tmp:
            for index, item in enumerate(files):
                local = Path(tmp) / f"{index}-{Path(item.path).name or 'file'}"
                self._download(item.url, local)
                self._adb.push(serial, str(local), item.path)
                local.unlink()
                pushed[item.url] = item.path
        return pushed

    def _download(self, url: str, local: Path) -> None:
        if not url.startswith(("http://", "https://")):
            raise TaskError(f"media URL {url!r} is not http(s)")
        try:
            with self._http.get(url, stream=True, timeout=self._timeout) as answer:
                answer.raise_for_status()
                size = 0
                with local.open("wb") as out:
                    for chunk in answer.iter_content(_CHUNK):
                        size += len(chunk)
                        if size > self._max:
                            raise TaskError(f"media {url} is larger than {self._max} bytes")
                        out.write(chunk)
        except requests.RequestException as exc:
            raise TaskError(f"could not fetch media {url}: {exc}") from None
        log.info("Fetched media %s (%d bytes)", url, size)
