"""The operator's client of the workers' job endpoint, against real HTTP servers on loopback.

A worker pod runs its tenant's image: what it answers is not to be trusted. A redirect must not
send the operator's request (the attempt, the binding's job token) to an address of the worker's
choosing, inside the cluster or out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import REGISTRY

from phonefleet_operator.errors import ReplicaStopping
from phonefleet_operator.fence import Fence
from phonefleet_operator.workers import WorkerClient, WorkerUnreachable
from phonefleet_operator.workers.client import MAX_ANSWER_BYTES
from phonefleet_testbed.processes import free_port


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[web.Application], TestServer]]:
    """Start aiohttp servers on loopback for the test; all closed after it."""
    servers: list[TestServer] = []

    def start(app: web.Application) -> TestServer:
        server = TestServer(app, host="127.0.0.1")
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


async def test_a_redirect_from_a_worker_is_not_followed(
    serve: Callable[[web.Application], TestServer],
) -> None:
    elsewhere_hits: list[str] = []

    async def elsewhere(request: web.Request) -> web.Response:
        elsewhere_hits.append(request.headers.get("Authorization", ""))
        return web.json_response({"ok": True, "message": "from elsewhere"})

    other_app = web.Application()
    other_app.router.add_route("*", "/{tail:.*}", elsewhere)
    other = serve(other_app)
    await other.start_server()

    async def redirect(_: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(str(other.make_url("/v1/validate")))

    worker_app = web.Application()
    worker_app.router.add_post("/v1/validate", redirect)
    worker = serve(worker_app)
    await worker.start_server()

    client = WorkerClient(timeout_seconds=10)
    try:
        answer = await client.validate(str(worker.make_url("")), "job-token", "heartbeat", {})
    finally:
        await client.close()
    assert answer.status == 307
    assert answer.body.get("message") != "from elsewhere"
    assert elsewhere_hits == []


async def test_an_answer_larger_than_the_limit_is_not_read_whole(
    serve: Callable[[web.Application], TestServer],
) -> None:
    """A worker (its tenant's image) that answers without end must not fill the operator's
    memory: the answer counts as no answer once it passes MAX_ANSWER_BYTES."""
    sent: list[int] = []

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"ok": true, "message": "')
        chunk = b"x" * 65536
        try:
            for _ in range(1024):  # 64 MiB at most: a bound for the test, not a pause
                await response.write(chunk)
                sent.append(len(chunk))
        except (ConnectionResetError, RuntimeError):  # the client hung up, as it should
            pass
        return response

    app = web.Application()
    app.router.add_get("/v1/tasks", endless)
    worker = serve(app)
    await worker.start_server()

    client = WorkerClient(timeout_seconds=10)
    try:
        with pytest.raises(WorkerUnreachable, match="more than"):
            await client.tasks(str(worker.make_url("")), "job-token")
    finally:
        await client.close()
    assert sum(sent) < 64 * MAX_ANSWER_BYTES


async def test_a_closed_fence_stops_deliveries_and_cancels_but_not_questions(
    serve: Callable[[web.Application], TestServer],
) -> None:
    """The replica lost the Lease (fence.py): its job loops neither hand over nor cancel an
    attempt any more (the next holder decides), while a PhoneJob review may still ask a worker
    whether a task exists."""
    hits: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        hits.append(f"{request.method} {request.path}")
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    worker = serve(app)
    await worker.start_server()
    base = str(worker.make_url(""))
    fence = Fence()
    client = WorkerClient(timeout_seconds=10, fence=fence)
    try:
        fence.close("this replica lost Lease x/y and is stopping")
        with pytest.raises(ReplicaStopping, match="POST /v1/attempts"):
            await client.deliver(base, "job-token", {"id": "a-1"})
        with pytest.raises(ReplicaStopping, match="cancel"):
            await client.cancel(base, "job-token", "a-1")
        assert (await client.validate(base, "job-token", "heartbeat", {})).status == 200
        assert (await client.attempt(base, "job-token", "a-1")).status == 200
    finally:
        await client.close()
    assert hits == ["POST /v1/validate", "GET /v1/attempts/a-1"]


async def test_a_request_counts_in_the_metric_even_when_nothing_answers() -> None:
    """``phonefleet_worker_requests_total`` counts a call before its connection is tried: the
    dev environment's test reads it as "the operator tried no worker", which must not hide a
    try that failed (a closed loopback port here)."""
    port = free_port()  # closed again once returned: nothing listens there
    client = WorkerClient(timeout_seconds=10)
    before = REGISTRY.get_sample_value("phonefleet_worker_requests_total")
    try:
        with pytest.raises(WorkerUnreachable):
            await client.validate(f"http://127.0.0.1:{port}", "t", "probe-post", {})
    finally:
        await client.close()
    assert before is not None
    assert REGISTRY.get_sample_value("phonefleet_worker_requests_total") == before + 1
