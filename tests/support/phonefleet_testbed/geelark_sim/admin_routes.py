"""The admin API under /_sim/ (JSON, no authentication) and the live-view pages.

    GET    /_sim/health                 {"ok": true}
    GET    /_sim/phones                 {"phones": [phone, ...]}
    POST   /_sim/phones                 create {serialName, id?, osVersion?, status?, remark?,
                                        groupName?, tags?} -> phone (201; 409 if the id exists)
    GET    /_sim/phones/{id}            phone
    PATCH  /_sim/phones/{id}            change {serialName?, status?, osVersion?, remark?,
                                        groupName?, tags?} -> phone
    DELETE /_sim/phones/{id}            204
    GET    /_sim/running                {"ids": [...]}: phones that are on (starting or running)
    GET    /_sim/power-log[?after=N]    {"entries": [{seq, id, on}, ...]}: every power change
                                        numbered above N, in the simulator's order
    GET    /_sim/calls[?after=N]        {"entries": [{seq, at, endpoint, ids}, ...]}: every Open
                                        API call served, numbered above N (see CallLog)
    GET    /_sim/faults                 {endpoint: rule}
    PUT    /_sim/faults                 set {endpoint?="*", outage?, httpStatus?, code?,
                                        latencyMs?, times?, reply?: {data}}
    DELETE /_sim/faults[?endpoint=E]    lift one rule or all
    GET    /_sim/counters               counts (see RequestCounters.to_json)
    POST   /_sim/counters/reset         {rateLimits?: true}: zero the counts (and the budget)
    GET    /_sim/settings               runtime settings
    PATCH  /_sim/settings               change {bootSeconds?, adbEnableSeconds?, latencyMs?,
                                        adbSwitchTakenWhenOff?, rateLimitPerMinute?,
                                        rateLimitPerHour?}
    GET    /_sim/live/{id}              an HTML page standing in for Geelark's live view

Endpoints in fault rules may be full paths or short names such as "phone/list". Bad input
answers 400 with {"error": "..."}, unknown phones 404.
"""

from __future__ import annotations

import html
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from .endpoints import normalize_endpoint
from .engine import ENGINE_KEY, SimulatorEngine
from .faults import ALL_ENDPOINTS, FaultRule
from .state import DEFAULT_GROUP, DEFAULT_OS_VERSION, Phone, PhoneExistsError, PhoneStatus

ADMIN_PREFIX = "/_sim"
LIVE_VIEW_PREFIX = f"{ADMIN_PREFIX}/live/"

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BadRequest(Exception):
    """The admin request is malformed; answered with HTTP 400."""


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the admin routes and the live-view page."""
    routes: list[tuple[str, str, Handler]] = [
        ("GET", "/health", health),
        ("GET", "/phones", list_phones),
        ("POST", "/phones", create_phone),
        ("GET", "/phones/{id}", get_phone),
        ("PATCH", "/phones/{id}", update_phone),
        ("DELETE", "/phones/{id}", delete_phone),
        ("GET", "/power-log", power_log),
        ("GET", "/running", running_phones),
        ("GET", "/calls", served_calls),
        ("GET", "/faults", get_faults),
        ("PUT", "/faults", set_faults),
        ("DELETE", "/faults", clear_faults),
        ("GET", "/counters", get_counters),
        ("POST", "/counters/reset", reset_counters),
        ("GET", "/settings", get_settings),
        ("PATCH", "/settings", update_settings),
        ("GET", "/live/{id}", live_view),
    ]
    for method, path, handler in routes:
        router.add_route(method, ADMIN_PREFIX + path, _guarded(handler))


def _guarded(handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except (BadRequest, ValueError, TypeError) as error:
            return web.json_response({"error": str(error)}, status=400)

    return guarded


async def health(request: web.Request) -> web.StreamResponse:
    """Whether the simulator is up."""
    return web.json_response({"ok": True})


async def list_phones(request: web.Request) -> web.StreamResponse:
    """Every phone with its simulator-internal state."""
    engine = _engine(request)
    now = engine.now()
    return web.json_response({"phones": [phone.to_admin_view(now) for phone in engine.fleet]})


async def create_phone(request: web.Request) -> web.StreamResponse:
    """Add a phone, optionally with a chosen id, Android version and status."""
    engine = _engine(request)
    body = await _json_body(request)
    _reject_unknown(
        body, {"serialName", "id", "osVersion", "status", "remark", "groupName", "tags"}
    )
    phone_id = _optional(body, "id", str)
    if phone_id is not None and not (phone_id.isdigit() and phone_id.isascii()):
        raise BadRequest("id must be a string of digits")
    try:
        phone = engine.fleet.create(
            serial_name=_required(body, "serialName", str),
            phone_id=phone_id,
            os_version=_optional(body, "osVersion", str) or DEFAULT_OS_VERSION,
            remark=_optional(body, "remark", str) or "",
            group_name=_optional(body, "groupName", str) or DEFAULT_GROUP,
            tags=_tags(body),
        )
    except PhoneExistsError:
        return web.json_response({"error": f"phone {phone_id} exists"}, status=409)
    status = _optional(body, "status", int)
    if status is not None:
        engine.force_status(phone, PhoneStatus(status))
    return web.json_response(phone.to_admin_view(engine.now()), status=201)


async def get_phone(request: web.Request) -> web.StreamResponse:
    """One phone with its simulator-internal state."""
    engine = _engine(request)
    phone = _phone(request)
    if phone is None:
        return _not_found(request)
    return web.json_response(phone.to_admin_view(engine.now()))


async def update_phone(request: web.Request) -> web.StreamResponse:
    """Rename a phone or change its status, Android version, remark, group or tags."""
    engine = _engine(request)
    phone = _phone(request)
    if phone is None:
        return _not_found(request)
    body = await _json_body(request)
    _reject_unknown(body, {"serialName", "status", "osVersion", "remark", "groupName", "tags"})
    status = _optional(body, "status", int)
    checked_status = None if status is None else PhoneStatus(status)
    phone.serial_name = _optional(body, "serialName", str) or phone.serial_name
    phone.os_version = _optional(body, "osVersion", str) or phone.os_version
    phone.group_name = _optional(body, "groupName", str) or phone.group_name
    remark = _optional(body, "remark", str)
    phone.remark = phone.remark if remark is None else remark
    if "tags" in body:
        phone.tags = _tags(body)
    if checked_status is not None:
        engine.force_status(phone, checked_status)
    return web.json_response(phone.to_admin_view(engine.now()))


async def delete_phone(request: web.Request) -> web.StreamResponse:
    """Remove a phone from the account (Geelark then answers 42001 for it)."""
    if not _engine(request).fleet.delete(request.match_info["id"]):
        return _not_found(request)
    return web.Response(status=204)


async def running_phones(request: web.Request) -> web.StreamResponse:
    """Ids of the phones that are on: what the account is being billed for."""
    return web.json_response({"ids": _engine(request).fleet.running_ids()})


async def power_log(request: web.Request) -> web.StreamResponse:
    """The power changes numbered above ``after`` (see ``PowerJournal``)."""
    after = _after(request)
    return web.json_response({"entries": _engine(request).fleet.journal.since(after)})


async def served_calls(request: web.Request) -> web.StreamResponse:
    """The Open API calls served, numbered above ``after`` (see ``CallLog``)."""
    return web.json_response({"entries": _engine(request).calls.since(_after(request))})


def _after(request: web.Request) -> int:
    """The ``after`` query parameter of a numbered log (0 when absent)."""
    try:
        return int(request.query.get("after", "0"))
    except ValueError:
        raise BadRequest("after must be an integer") from None


async def get_faults(request: web.Request) -> web.StreamResponse:
    """The fault rules in force."""
    return web.json_response(_engine(request).faults.to_json())


async def set_faults(request: web.Request) -> web.StreamResponse:
    """Put a fault rule in force for one endpoint or for all ("*")."""
    engine = _engine(request)
    body = await _json_body(request)
    endpoint = _fault_endpoint(_optional(body, "endpoint", str) or ALL_ENDPOINTS)
    engine.faults.set(endpoint, FaultRule.from_json(body))
    return web.json_response(engine.faults.to_json())


async def clear_faults(request: web.Request) -> web.StreamResponse:
    """Lift the rule of the `endpoint` query parameter, or every rule."""
    engine = _engine(request)
    endpoint = request.query.get("endpoint")
    engine.faults.clear(None if endpoint is None else _fault_endpoint(endpoint))
    return web.json_response(engine.faults.to_json())


async def get_counters(request: web.Request) -> web.StreamResponse:
    """Calls per endpoint, replies per code, and the busiest rolling minute."""
    return web.json_response(_engine(request).counters.to_json())


async def reset_counters(request: web.Request) -> web.StreamResponse:
    """Zero the counts and, unless told `rateLimits: false`, give the account a fresh budget."""
    engine = _engine(request)
    body = await _json_body(request, allow_empty=True)
    engine.counters.reset()
    if _optional(body, "rateLimits", bool) is not False:
        engine.limiter.reset()
    return web.json_response(engine.counters.to_json())


async def get_settings(request: web.Request) -> web.StreamResponse:
    """The settings the admin API can change."""
    return web.json_response(_engine(request).settings.to_json())


async def update_settings(request: web.Request) -> web.StreamResponse:
    """Change boot and ADB delays, base latency or rate limits while running."""
    settings = _engine(request).settings
    body = await _json_body(request)
    _reject_unknown(body, set(settings.to_json()))
    if "bootSeconds" in body:
        settings.boot_seconds = _non_negative(body, "bootSeconds")
    if "adbEnableSeconds" in body:
        settings.adb_enable_seconds = _non_negative(body, "adbEnableSeconds")
    if "latencyMs" in body:
        settings.latency_ms = _non_negative(body, "latencyMs")
    if "adbSwitchTakenWhenOff" in body:
        settings.adb_switch_taken_when_off = _required(body, "adbSwitchTakenWhenOff", bool)
    if "rateLimitPerMinute" in body:
        settings.rate_limit_per_minute = _optional(body, "rateLimitPerMinute", int)
    if "rateLimitPerHour" in body:
        settings.rate_limit_per_hour = _optional(body, "rateLimitPerHour", int)
    return web.json_response(settings.to_json())


async def live_view(request: web.Request) -> web.StreamResponse:
    """A stand-in for Geelark's browser live view of a phone."""
    engine = _engine(request)
    phone = _phone(request)
    if phone is None:
        return _not_found(request)
    name = html.escape(phone.serial_name)
    status = phone.status(engine.now()).name.lower()
    page = (
        f"<!doctype html><title>{name}</title>"
        f"<h1>{name}</h1><p>Simulated Geelark phone {phone.id}: {status}.</p>"
    )
    return web.Response(text=page, content_type="text/html")


def _engine(request: web.Request) -> SimulatorEngine:
    return request.app[ENGINE_KEY]


def _phone(request: web.Request) -> Phone | None:
    return _engine(request).fleet.get(request.match_info["id"])


def _not_found(request: web.Request) -> web.Response:
    return web.json_response({"error": f"phone {request.match_info['id']} not found"}, status=404)


def _fault_endpoint(name: str) -> str:
    return name if name == ALL_ENDPOINTS else normalize_endpoint(name)


async def _json_body(request: web.Request, *, allow_empty: bool = False) -> dict[str, Any]:
    raw = await request.read()
    if allow_empty and not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as error:
        raise BadRequest("the body must be a JSON object") from error
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _reject_unknown(body: dict[str, Any], known: set[str]) -> None:
    unknown = set(body) - known
    if unknown:
        raise BadRequest(f"unknown fields: {sorted(unknown)}")


def _optional(body: dict[str, Any], name: str, kind: type[T]) -> T | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BadRequest(f"{name} must be of type {kind.__name__}")
    return value


def _required(body: dict[str, Any], name: str, kind: type[T]) -> T:
    value = _optional(body, name, kind)
    if value is None:
        raise BadRequest(f"{name} is required")
    return value


def _non_negative(body: dict[str, Any], name: str) -> float:
    value = body.get(name)
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise BadRequest(f"{name} must be a non-negative number")
    return float(value)


def _tags(body: dict[str, Any]) -> list[str]:
    tags = body.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise BadRequest("tags must be a list of strings")
    return tags
