"""The HTTP server: Open API routes behind Geelark's gates, admin routes, and its lifecycle.

Every `/open/v1/...` call passes, in order: the call is counted; latency (configured plus any
fault rule's) is waited out; a fault rule may drop the connection (outage) or answer a non-200
status; then authentication (40002, 40003), the account's rate limit (40007, 40014), an injected
envelope code (e.g. 50000) or canned reply, body parsing (40004) and finally the operation
itself. Replies are HTTP 200 with `{traceId, code, msg, data}`; `traceId` echoes the request's.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiohttp import web

from . import admin_routes
from .auth import check_auth
from .codes import Code, message_for
from .config import SimulatorConfig
from .engine import ENGINE_KEY, SimulatorEngine
from .faults import FaultRule
from .operations import OPERATIONS, ApiError, CallContext

LISTEN_BACKLOG = 2048
"""Room for a benchmark's 1000 simultaneous connections (the default of 128 would drop SYNs)."""

SHUTDOWN_TIMEOUT = 1.0
"""Seconds stop() waits for calls in flight (an injected latency can hold them)."""


def build_app(engine: SimulatorEngine) -> web.Application:
    """The aiohttp application serving one simulated account."""
    app = web.Application()
    app[ENGINE_KEY] = engine
    for path in OPERATIONS:
        app.router.add_post(path, handle_open_api)
    admin_routes.add_routes(app.router)
    return app


async def handle_open_api(request: web.Request) -> web.StreamResponse:
    """Answer one Open API call the way Geelark would."""
    engine = request.app[ENGINE_KEY]
    endpoint = request.path
    engine.counters.record_call(endpoint, engine.now())
    fault = engine.faults.take(endpoint)
    latency_ms = engine.settings.latency_ms + (fault.latency_ms if fault else 0.0)
    if latency_ms > 0:
        await engine.config.sleep(latency_ms / 1000)
    if fault is not None and (fault.outage or fault.http_status is not None):
        return _transport_fault(request, engine, fault)

    trace_id = request.headers.get("traceId") or uuid.uuid4().hex.upper()
    code = check_auth(request.headers, engine.config)
    now = engine.now()
    if code is Code.OK:
        settings = engine.settings
        code = engine.limiter.admit(
            now, settings.rate_limit_per_minute, settings.rate_limit_per_hour
        )
    if code is Code.OK and fault is not None and fault.code is not None:
        return _envelope(engine, endpoint, trace_id, fault.code)
    if code is Code.OK and fault is not None and fault.reply is not None:
        return _envelope(engine, endpoint, trace_id, Code.OK, fault.reply["data"])
    if code is not Code.OK:
        return _envelope(engine, endpoint, trace_id, code)

    try:
        body = _parse_body(await request.read())
        ids = body.get("ids")
        if isinstance(ids, list):
            engine.counters.record_ids(endpoint, len(ids))
        engine.calls.record(endpoint, now, [str(i) for i in ids] if isinstance(ids, list) else [])
        context = CallContext(
            engine=engine,
            now=now,
            live_view_base=f"{request.scheme}://{request.host}{admin_routes.LIVE_VIEW_PREFIX}",
        )
        data = OPERATIONS[endpoint](context, body)
    except ApiError as error:
        return _envelope(engine, endpoint, trace_id, error.code, detail=error.detail)
    return _envelope(engine, endpoint, trace_id, Code.OK, data)


def _transport_fault(
    request: web.Request, engine: SimulatorEngine, fault: FaultRule
) -> web.StreamResponse:
    if fault.outage:
        engine.counters.record_drop()
        transport = request.transport
        request.protocol.force_close()
        if transport is not None:
            transport.close()
        return web.Response()  # never sent: the connection is already closed
    status = fault.http_status or 500
    engine.counters.record_http_status(status)
    return web.Response(status=status, text=f"simulated HTTP {status}")


def _parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError as error:
        raise ApiError(Code.BAD_PARAMETERS, "the body must be a JSON object") from error
    if not isinstance(body, dict):
        raise ApiError(Code.BAD_PARAMETERS, "the body must be a JSON object")
    return body


def _envelope(
    engine: SimulatorEngine,
    endpoint: str,
    trace_id: str,
    code: int,
    data: Any = None,
    *,
    detail: str = "",
) -> web.Response:
    engine.counters.record_code(endpoint, code)
    msg = message_for(code) + (f": {detail}" if detail else "")
    return web.json_response({"traceId": trace_id, "code": int(code), "msg": msg, "data": data})


class SimulatorServer:
    """One simulator served on the running event loop: `await start()`, then `await stop()`."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.engine = SimulatorEngine(config)
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self) -> str:
        """Bind and serve; return the base URL, e.g. http://127.0.0.1:41234."""
        runner = web.AppRunner(
            build_app(self.engine), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT
        )
        await runner.setup()
        site = web.TCPSite(runner, self.config.host, self.config.port, backlog=LISTEN_BACKLOG)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self.base_url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        return self.base_url

    async def stop(self) -> None:
        """Stop serving and close every connection."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
