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

from phonefleet_operator.workers import WorkerClient


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
