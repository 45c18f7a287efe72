"""The Open API operations: each turns a parsed request body into reply `data` or an ApiError.

They are plain functions over the engine, with no HTTP in sight; `server.py` handles the
transport, authentication, limits and faults around them. Batch operations answer code 0 and
report each phone in `successDetails` / `failDetails` (or, for `adb/getData`, `items`), with
`totalAmount`, `successAmount` and `failAmount` as Geelark's documentation shows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import endpoints
from .codes import Code, message_for
from .engine import SimulatorEngine
from .state import CHARGING_METHOD, Phone, PhoneStatus

JsonObject = dict[str, Any]

MAX_LIST_IDS = 100
MAX_STATUS_IDS = 100
MAX_BATCH_IDS = 200
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 10


class ApiError(Exception):
    """The whole call fails with this envelope code."""

    def __init__(self, code: Code, detail: str = "") -> None:
        super().__init__(f"{int(code)} {detail}".strip())
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class CallContext:
    """What an operation may use besides the request body."""

    engine: SimulatorEngine
    now: float
    live_view_base: str
    """URL prefix of live-view pages; a phone's page is this plus its id."""


Operation = Callable[[CallContext, JsonObject], JsonObject]


def phone_list(ctx: CallContext, body: JsonObject) -> JsonObject:
    """`phone/list`: one page of phones, or exactly the phones named by `ids` (paging ignored)."""
    ids = _ids(body, MAX_LIST_IDS, required=False)
    page = _int(body, "page", 1)
    page_size = _int(body, "pageSize", DEFAULT_PAGE_SIZE)
    fleet = ctx.engine.fleet
    if ids:
        candidates = [phone for phone in map(fleet.get, ids) if phone is not None]
    else:
        if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ApiError(Code.PAGING_OUT_OF_RANGE)
        candidates = list(fleet)
    matches = list(filter(_list_filter(body), candidates))
    shown = matches if ids else matches[(page - 1) * page_size : page * page_size]
    return {
        "total": len(matches),
        "page": page,
        "pageSize": page_size,
        "items": [phone.to_item(ctx.now) for phone in shown],
    }


def phone_status(ctx: CallContext, body: JsonObject) -> JsonObject:
    """`phone/status`: the status of each named phone."""
    return _each_phone(ctx, body, MAX_STATUS_IDS, lambda phone: _status_detail(phone, ctx.now))


def phone_start(ctx: CallContext, body: JsonObject) -> JsonObject:
    """`phone/start`: power on each named phone (a phone already on stays as it is)."""
    _optional_choice(body, "energySavingMode", (0, 1))

    def start(phone: Phone) -> JsonObject | Code:
        if phone.expired:
            return Code.PHONE_EXPIRED
        if phone.power_on(ctx.now, ctx.engine.settings.boot_seconds):
            phone.start_count += 1
        return {
            "id": phone.id,
            "url": ctx.live_view_base + phone.id,
            "chargingMethod": CHARGING_METHOD,
        }

    return _each_phone(ctx, body, MAX_BATCH_IDS, start)


def phone_stop(ctx: CallContext, body: JsonObject) -> JsonObject:
    """`phone/stop`: shut down each named phone; stopping a stopped phone is harmless."""

    def stop(phone: Phone) -> JsonObject:
        if phone.power_off():
            phone.stop_count += 1
        return _status_detail(phone, ctx.now)

    return _each_phone(ctx, body, MAX_BATCH_IDS, stop)


def adb_set_status(ctx: CallContext, body: JsonObject) -> JsonObject:
    """`adb/setStatus`: switch ADB on or off on each named running phone.

    Models without ADB are skipped silently, as Geelark documents ("unsupported models will be
    automatically filtered"): their getData says 49002. A phone that does not run is refused
    with 42002, or, with `adb_switch_taken_when_off`, taken and left as it is."""
    open_ = body.get("open")
    if not isinstance(open_, bool):
        raise ApiError(Code.BAD_PARAMETERS, "open must be true or false")
    settings = ctx.engine.settings

    def switch(phone: Phone) -> JsonObject | Code:
        if not phone.supports_adb():
            return {"id": phone.id}
        if phone.status(ctx.now) is not PhoneStatus.RUNNING:
            if settings.adb_switch_taken_when_off:
                return {"id": phone.id}
            return Code.PHONE_NOT_RUNNING
        phone.set_adb(ctx.now, open_, settings.adb_enable_seconds)
        return {"id": phone.id}

    return _each_phone(ctx, body, MAX_BATCH_IDS, switch)


def adb_get_data(ctx: CallContext, body: JsonObject) -> JsonObject:
    """`adb/getData`: ADB address and glogin password of each named phone, or why there is none."""
    items: list[JsonObject] = []
    for phone_id in _ids(body, MAX_BATCH_IDS):
        phone = ctx.engine.fleet.get(phone_id)
        code = Code.PHONE_NOT_FOUND if phone is None else _adb_data_code(phone, ctx.now)
        if phone is None or code is not Code.OK:
            items.append({"code": int(code), "id": phone_id, "ip": "", "port": "", "pwd": ""})
            continue
        items.append(
            {
                "code": int(Code.OK),
                "id": phone.id,
                "ip": ctx.engine.config.adb_host,
                "port": str(phone.adb_port),
                "pwd": phone.adb_password,
            }
        )
    return {"items": items}


OPERATIONS: dict[str, Operation] = {
    endpoints.PHONE_LIST: phone_list,
    endpoints.PHONE_STATUS: phone_status,
    endpoints.PHONE_START: phone_start,
    endpoints.PHONE_STOP: phone_stop,
    endpoints.ADB_SET_STATUS: adb_set_status,
    endpoints.ADB_GET_DATA: adb_get_data,
}


def _adb_refusal(phone: Phone, now: float) -> Code | None:
    """Why ADB cannot be switched on this phone right now (None if it can)."""
    if not phone.supports_adb():
        return Code.ADB_UNSUPPORTED
    if phone.status(now) is not PhoneStatus.RUNNING:
        return Code.PHONE_NOT_RUNNING
    return None


def _adb_data_code(phone: Phone, now: float) -> Code:
    """The item code `adb/getData` reports for a phone."""
    refusal = _adb_refusal(phone, now)
    if refusal is not None:
        return refusal
    return Code.OK if phone.is_adb_enabled(now) else Code.ADB_NOT_ENABLED


def _list_filter(body: JsonObject) -> Callable[[Phone], bool]:
    """The predicate the list filters in `body` describe (empty filters are ignored)."""
    serial_name = _str(body, "serialName")
    remark = _str(body, "remark")
    group_name = _str(body, "groupName")
    tags = set(_str_list(body, "tags"))
    serial_nos = set(_str_list(body, "serialNos"))
    charge_mode = _optional_choice(body, "chargeMode", (0, 1))
    open_status = _optional_choice(body, "openStatus", (0, 1))

    def matches(phone: Phone) -> bool:
        return (
            (not serial_name or phone.serial_name == serial_name)
            and (not remark or phone.remark == remark)
            and (not group_name or phone.group_name == group_name)
            and (not tags or not tags.isdisjoint(phone.tags))
            and (not serial_nos or phone.serial_no in serial_nos)
            # every simulated phone is billed per minute (chargeMode 0)
            and charge_mode != 1
            and (open_status is None or (open_status == 1) == phone.is_on())
        )

    return matches


def _status_detail(phone: Phone, now: float) -> JsonObject:
    return {"id": phone.id, "serialName": phone.serial_name, "status": int(phone.status(now))}


def _fail(code: Code, phone_id: str) -> JsonObject:
    return {"code": int(code), "id": phone_id, "msg": message_for(code)}


def _each_phone(
    ctx: CallContext,
    body: JsonObject,
    limit: int,
    act: Callable[[Phone], JsonObject | Code],
) -> JsonObject:
    """A batch reply: ``act`` on each named phone, in order, gives its success detail or the
    code it failed with; a phone the account does not have fails with 42001."""
    success: list[JsonObject] = []
    fail: list[JsonObject] = []
    for phone_id in _ids(body, limit):
        phone = ctx.engine.fleet.get(phone_id)
        outcome = Code.PHONE_NOT_FOUND if phone is None else act(phone)
        if isinstance(outcome, Code):
            fail.append(_fail(outcome, phone_id))
        else:
            success.append(outcome)
    return _batch(success, fail)


def _batch(success: list[JsonObject], fail: list[JsonObject]) -> JsonObject:
    return {
        "totalAmount": len(success) + len(fail),
        "successAmount": len(success),
        "failAmount": len(fail),
        "successDetails": success,
        "failDetails": fail,
    }


def _ids(body: JsonObject, limit: int, *, required: bool = True) -> list[str]:
    """The `ids` of a request, de-duplicated in order; 40004 when missing, malformed or too many."""
    ids = _str_list(body, "ids")
    if required and not ids:
        raise ApiError(Code.BAD_PARAMETERS, "ids is required")
    if len(ids) > limit:
        raise ApiError(Code.BAD_PARAMETERS, f"at most {limit} ids")
    return list(dict.fromkeys(ids))


def _str_list(body: JsonObject, name: str) -> list[str]:
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ApiError(Code.BAD_PARAMETERS, f"{name} must be a list of strings")
    return value


def _str(body: JsonObject, name: str) -> str:
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ApiError(Code.BAD_PARAMETERS, f"{name} must be a string")
    return value


def _int(body: JsonObject, name: str, default: int) -> int:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool):
        raise ApiError(Code.BAD_PARAMETERS, f"{name} must be an integer")
    return value


def _optional_choice(body: JsonObject, name: str, choices: tuple[int, ...]) -> int | None:
    if body.get(name) is None:
        return None
    value = _int(body, name, 0)
    if value not in choices:
        raise ApiError(Code.BAD_PARAMETERS, f"{name} must be one of {choices}")
    return value
