"""The job endpoint: where the operator delivers PhoneJob attempts and collects their outcomes.

Every request carries ``Authorization: Bearer <token>``; the token is the binding's, read from
the file ``jobToken`` of the mounted Secret at each request (so a rotated Secret takes effect
without a restart) and compared in constant time. Without the file the endpoint answers 503:
the worker then takes no jobs. Bodies are read tolerantly: fields this worker does not know (a
later operator's) are ignored and their names logged at debug, so an operator upgrade does not
break the workers already built. The token is never logged. Routes (JSON bodies, docs/jobs.md)::

    GET  /v1/tasks                  the registered tasks: description, deadline, params schema
    POST /v1/validate               {task, params} -> {ok, message, features}
    POST /v1/attempts               deliver an attempt (AttemptRequest): 202, 200, 409 or 422
    GET  /v1/attempts/{id}          the attempt's record (renews its lease); 404 when unknown
    POST /v1/attempts/{id}/cancel   cancel it (queued: never starts; running: stopped); with
                                    {reason: superseded} (its pod is gone) the worker stops
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from phonefleet_worker.http_thread import ThreadedHttpServer
from phonefleet_worker.job_desk import FEATURES, AttemptRequest, JobDesk
from phonefleet_worker.registry import describe_validation_error

__all__ = ["MAX_BODY", "JobApi", "JobServer", "serve_request", "token_from_file"]

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20
"""Largest request body accepted (1 MiB): params are small; media travel by URL."""


def token_from_file(path: Path) -> Callable[[], str | None]:
    """A reader of the job token in ``path``: its stripped content, or None while it is absent."""

    def read() -> str | None:
        try:
            token = path.read_text().strip()
        except OSError:
            return None
        return token or None

    return read


class JobApi:
    """The job endpoint's routes for one desk and token, without the socket (shared by the
    server below and by stand-ins that serve many desks on one port)."""

    def __init__(self, desk: JobDesk, token: Callable[[], str | None]) -> None:
        self.desk = desk
        self._token = token

    def handle(
        self, method: str, path: str, authorization: str, body: bytes
    ) -> tuple[int, dict[str, Any]]:
        """Answer one request: (HTTP status, JSON body)."""
        refused = self._refusal(authorization)
        if refused is not None:
            return refused
        self.desk.heard()  # the operator, with the binding's token: it still runs this pod
        parts = [part for part in path.split("?", 1)[0].split("/") if part]
        if parts[:1] != ["v1"]:
            return HTTPStatus.NOT_FOUND, {"message": "not found"}
        if method == "GET":
            return self._get(parts[1:])
        try:
            parsed = _parse_body(body)
        except ValueError as exc:
            return HTTPStatus.BAD_REQUEST, {"message": str(exc)}
        return self._post(parts[1:], parsed)

    def _refusal(self, authorization: str) -> tuple[int, dict[str, Any]] | None:
        expected = self._token()
        if expected is None:
            return HTTPStatus.SERVICE_UNAVAILABLE, {"message": "no job token in the Secret yet"}
        if not hmac.compare_digest(authorization.encode(), f"Bearer {expected}".encode()):
            return HTTPStatus.UNAUTHORIZED, {"message": "missing or wrong job token"}
        return None

    def _get(self, route: list[str]) -> tuple[int, dict[str, Any]]:
        if route == ["tasks"]:
            return HTTPStatus.OK, self.desk.registry.catalog()
        if len(route) == 2 and route[0] == "attempts":
            record = self.desk.lookup(route[1], renew=True)
            if record is None:
                return HTTPStatus.NOT_FOUND, {"message": f"no attempt {route[1]} on this worker"}
            return HTTPStatus.OK, record
        return HTTPStatus.NOT_FOUND, {"message": "not found"}

    def _post(self, route: list[str], body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if route == ["validate"]:
            params = body.get("params") or {}
            problem = self.desk.registry.problem(str(body.get("task", "")), params)
            answer = {"ok": problem is None, "message": problem or "", "features": list(FEATURES)}
            return HTTPStatus.OK, answer
        if route == ["attempts"]:
            unknown = AttemptRequest.unknown_fields(body)
            if unknown:  # names only: a value could be anything the operator sends
                log.debug("Ignored fields of a delivery this worker does not know: %s", unknown)
            try:
                attempt = AttemptRequest.model_validate(body)
            except ValidationError as exc:
                return HTTPStatus.BAD_REQUEST, {"message": describe_validation_error(exc)}
            return self.desk.offer(attempt)
        if len(route) == 3 and route[0] == "attempts" and route[2] == "cancel":
            record = self.desk.cancel(route[1], superseded=body.get("reason") == "superseded")
            if record is None:
                return HTTPStatus.NOT_FOUND, {"message": f"no attempt {route[1]} on this worker"}
            return HTTPStatus.ACCEPTED, record
        return HTTPStatus.NOT_FOUND, {"message": "not found"}


def _parse_body(data: bytes) -> dict[str, Any]:
    try:
        body = json.loads(data or b"{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"body is not JSON: {exc.msg}") from None
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    return body


def serve_request(request: BaseHTTPRequestHandler, method: str, api: JobApi, path: str) -> None:
    """Read one request's body, let ``api`` answer it and write the JSON reply."""
    status: int
    body: dict[str, Any]
    length = _content_length(request.headers.get("Content-Length"))
    if length is None:  # a negative length would read to the end of the stream, unbounded
        status, body = HTTPStatus.BAD_REQUEST, {"message": "Content-Length is not a length"}
        request.close_connection = True
    elif length > MAX_BODY:
        status, body = HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"message": "body too large"}
    else:
        try:
            data = request.rfile.read(length) if length else b""
        except TimeoutError:  # the client went silent (the server's request timeout)
            request.close_connection = True
            return
        status, body = api.handle(method, path, request.headers.get("Authorization", ""), data)
    reply = json.dumps(body).encode()
    request.send_response(status)
    request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", str(len(reply)))
    request.end_headers()
    request.wfile.write(reply)


def _content_length(text: str | None) -> int | None:
    """The header's length (0 when absent); None when it is no length."""
    if not text:
        return 0
    try:
        length = int(text)
    except ValueError:
        return None
    return length if length >= 0 else None


class JobServer(ThreadedHttpServer):
    """Serves the job endpoint on ``host:port`` until ``close()``."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        desk: JobDesk,
        token: Callable[[], str | None],
        request_timeout: float = 30.0,
    ) -> None:
        api = JobApi(desk, token)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                serve_request(self, "GET", api, self.path)

            def do_POST(self) -> None:
                serve_request(self, "POST", api, self.path)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("Job endpoint %s", format % args)

        super().__init__(
            host=host,
            port=port,
            handler=Handler,
            name="worker-jobs",
            request_timeout=request_timeout,
        )

    def start(self) -> None:
        """Start serving in the background."""
        super().start()
        log.info("Serving the job endpoint on port %d", self.port)
