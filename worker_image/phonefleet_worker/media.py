"""Media of jobs: fetch each file a task asks for and push it to the phone over adb.

A task names files as URL -> path on the phone (``JobTask.media``). The worker downloads each
into its private temporary folder (the pod's emptyDir), pushes it with ``adb push`` through the
shared adb server, and deletes the local copy. Downloads are capped in size and time.

A media URL may carry credentials: a presigned URL's signature in its query string, a user and
password before its host. Logs and errors (an error becomes the PhoneJob's status) name a file by
``shown(url)``: scheme, host, port and path only; and urllib3, which logs every request's path
and query at DEBUG, gets a filter that cuts query strings off (``hide_query_strings``).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import requests

from phonefleet_worker.task_api import MediaFile, PermanentTaskError, TaskError

__all__ = ["FilePusher", "HttpMediaPusher", "hide_query_strings", "shown"]

log = logging.getLogger(__name__)

_CHUNK = 1 << 16
#: Client errors worth another try: a request timeout, a rate limit.
_RETRY_4XX = frozenset({408, 429})


def shown(url: str) -> str:
    """``url`` as logs and errors may show it: without user, password, query and fragment."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:  # not a URL one can split (a bad port): show nothing of it
        return "(an unreadable URL)"
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


def _without_query_strings(record: logging.LogRecord) -> bool:
    if isinstance(record.args, tuple):
        record.args = tuple(
            arg.split("?", 1)[0] if isinstance(arg, str) else arg for arg in record.args
        )
    return True


def hide_query_strings(logger: str = "urllib3.connectionpool") -> Callable[..., bool]:
    """Cut the query strings off the arguments of ``logger``'s records (urllib3 logs each
    request's path with its query at DEBUG); the filter, for ``removeFilter``."""
    logging.getLogger(logger).addFilter(_without_query_strings)
    return _without_query_strings


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
        """Fetch and push every file; raise TaskError (retryable) when one cannot be, or
        PermanentTaskError when another try cannot help (not http(s), a client error)."""
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
        name = shown(url)
        if not url.startswith(("http://", "https://")):
            raise PermanentTaskError(
                f"media URL {name} is not http(s): name the file by an http:// or https:// URL"
            )
        try:
            with self._http.get(url, stream=True, timeout=self._timeout) as answer:
                answer.raise_for_status()
                size = 0
                with local.open("wb") as out:
                    for chunk in answer.iter_content(_CHUNK):
                        size += len(chunk)
                        if size > self._max:
                            raise TaskError(f"media {name} is larger than {self._max} bytes")
                        out.write(chunk)
        except requests.RequestException as exc:
            # requests' messages quote the whole URL (query string included): not shown.
            status = exc.response.status_code if exc.response is not None else None
            if status is not None and 400 <= status < 500 and status not in _RETRY_4XX:
                # The same URL draws the same answer: retrying it only spends attempts.
                raise PermanentTaskError(
                    f"could not fetch media {name}: {_describe(exc, self._timeout)} (not "
                    "retried: correct the URL, or give a fresh one if it was signed)"
                ) from None
            raise TaskError(
                f"could not fetch media {name}: {_describe(exc, self._timeout)}"
            ) from None
        log.info("Fetched media %s (%d bytes)", name, size)


def _describe(error: requests.RequestException, timeout: float) -> str:
    """The failure without the URL (requests' own text quotes it whole): the HTTP status, or
    what went wrong in words."""
    answer = error.response
    if isinstance(error, requests.HTTPError) and answer is not None:
        return f"HTTP {answer.status_code} {answer.reason}"
    if isinstance(error, requests.Timeout):
        return f"no answer within {timeout:g} s"
    if isinstance(error, requests.ConnectionError):
        return "could not connect (ConnectionError)"
    return type(error).__name__
