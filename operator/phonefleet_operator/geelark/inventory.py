"""The operator's one cache of the Geelark phone list, looked up by id and by exact serialName.

Costs, for an account of N phones:

* a full refresh pages through ``/phone/list`` 100 at a time (ceil(N/100) calls, at most one
  more when the last page is full and the reply's ``total`` is unreliable); it happens on first
  use and then at most once per ``settings.inventory_refresh_seconds``, shared by every caller;
* a lookup that misses (or finds a serialName twice) triggers one *targeted* refresh unless
  Geelark was asked about that very ref (or listed in full) within
  ``settings.inventory_miss_refresh_seconds``. It asks about the refs that missed meanwhile: one
  ``ids=[...]`` call per 100 id-like refs plus one ``serialName=`` query per name, or a full
  refresh when that would be cheaper. Concurrent misses share the refresh in flight.

PhoneNotFound is only ever the answer of a successful check that covered the ref: a complete
listing, or a query naming it. A listing that is incomplete or odd (a short page while ``total``
says more, code 0 without a page) and a check that failed are GeelarkUnavailable ("could not
check"), never "not found"; after a failed check, misses wait out the interval before asking again.

So resolving 1,000 bindings costs ceil(1000/100) list calls plus a small constant, never a listing
per binding. Lookups by id keep working after a rename; a serialName shared by several phones
raises AmbiguousPhone and never picks one.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, Final, Protocol

from phonefleet_operator.errors import (
    AmbiguousPhone,
    GeelarkUnavailable,
    PhoneNotFound,
    TemporaryFault,
)
from phonefleet_operator.geelark.client import MAX_IDS_PER_CALL, MAX_PAGE_SIZE
from phonefleet_operator.geelark.models import Phone, PhonePage
from phonefleet_operator.settings import GeelarkSettings

__all__ = ["PhoneInventory", "PhoneLister", "looks_like_phone_id"]

logger = logging.getLogger(__name__)

#: Geelark ids are 18-digit strings; a ref that looks like one is asked for by id.
_PHONE_ID = re.compile(r"\d{15,20}")
#: A runaway guard: no account pages this far.
_MAX_PAGES: Final = 10_000
_UNAVAILABLE_DELAY_SECONDS: Final = 30.0
#: Refreshes one miss may wait through before it gives up as "could not check yet".
_MISS_ROUNDS: Final = 3


def looks_like_phone_id(ref: str) -> bool:
    """Whether ``ref`` has the shape of a Geelark phone id (a long string of digits)."""
    return _PHONE_ID.fullmatch(ref) is not None


class PhoneLister(Protocol):
    """The listing call of :class:`~.client.GeelarkClient` that the inventory needs."""

    async def list_phones(
        self,
        page: int = 1,
        page_size: int = MAX_PAGE_SIZE,
        *,
        ids: Sequence[str] | None = None,
        serial_name: str | None = None,
    ) -> PhonePage: ...


class PhoneInventory:
    """The cached phone list of the account; share one instance across the operator."""

    def __init__(
        self,
        lister: PhoneLister,
        settings: GeelarkSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Cache what ``lister`` reports, on the intervals of ``settings``, timed by ``clock``."""
        self._lister = lister
        self._refresh_seconds = settings.inventory_refresh_seconds
        self._miss_refresh_seconds = settings.inventory_miss_refresh_seconds
        self._clock = clock
        self._by_id: dict[str, Phone] = {}
        self._by_name: dict[str, list[Phone]] = {}
        self._refreshed_at: float | None = None
        self._full_refresh: asyncio.Future[None] | None = None
        self._full_failed_at: float | None = None
        self._full_failure: TemporaryFault | None = None
        # When the last complete listing started: it answers every ref for a while.
        self._complete_at: float | None = None
        # When a successful targeted query last named each ref (pruned after the interval).
        self._asked_at: dict[str, float] = {}
        self._missed_ids: set[str] = set()
        self._missed_names: set[str] = set()
        self._miss_refresh: asyncio.Future[None] | None = None
        self._miss_failed_at: float | None = None
        self._miss_failure: TemporaryFault | None = None

    # ----------------------------------------------------------------------------- lookups

    async def resolve(self, ref: str) -> Phone:
        """The phone whose id is ``ref``, else the one whose serialName is exactly ``ref``.

        Raises PhoneNotFound when Geelark has neither, AmbiguousPhone when several phones carry
        that serialName, GeelarkUnavailable when Geelark could not be asked.
        """
        await self._ensure_fresh()
        phone = self._lookup(ref, raise_ambiguous=False)
        if phone is not None:
            return phone
        await self._refresh_after_miss(ref, by_id=looks_like_phone_id(ref))
        phone = self._lookup(ref, raise_ambiguous=True)
        if phone is None:
            raise PhoneNotFound(f"Geelark has no phone with id or serialName {ref!r}")
        return phone

    async def get(self, phone_id: str) -> Phone:
        """The phone with this id (never a serialName match): for bindings already resolved."""
        await self._ensure_fresh()
        phone = self._by_id.get(phone_id)
        if phone is None:
            await self._refresh_after_miss(phone_id, by_id=True)
            phone = self._by_id.get(phone_id)
        if phone is None:
            raise PhoneNotFound(f"Geelark has no phone with id {phone_id!r}")
        return phone

    def forget(self, phone_id: str) -> None:
        """Drop a phone Geelark said it no longer has, until a refresh brings it back."""
        if self._by_id.pop(phone_id, None) is not None:
            self._reindex()

    def cached(self) -> Mapping[str, Phone]:
        """The phones cached now, by id (no Geelark call)."""
        return dict(self._by_id)

    def _lookup(self, ref: str, *, raise_ambiguous: bool) -> Phone | None:
        phone = self._by_id.get(ref)
        if phone is not None:
            return phone
        named = self._by_name.get(ref, [])
        if len(named) == 1:
            return named[0]
        if len(named) > 1:
            if not raise_ambiguous:
                return None  # confirm with Geelark first: one of them may have been renamed
            ids = ", ".join(sorted(p.id for p in named))
            raise AmbiguousPhone(
                f"serialName {ref!r} matches {len(named)} phones ({ids}); name the phone by its id"
            )
        return None

    # ----------------------------------------------------------------------------- full refresh

    async def refresh(self) -> None:
        """Reload the whole phone list now (joins a refresh already in flight)."""
        if self._full_refresh is None:
            self._full_refresh = _start(self._run_full_refresh())
        future = self._full_refresh
        await asyncio.shield(future)

    async def _ensure_fresh(self) -> None:
        now = self._clock()
        if self._refreshed_at is not None and now - self._refreshed_at < self._refresh_seconds:
            return
        if (
            self._full_refresh is None
            and self._full_failed_at is not None
            and now - self._full_failed_at < self._miss_refresh_seconds
        ):
            # Geelark just failed us: serve what we have rather than hammer it.
            if self._refreshed_at is None:
                raise GeelarkUnavailable(
                    f"Could not list the Geelark phones: {self._full_failure}",
                    delay=_UNAVAILABLE_DELAY_SECONDS,
                )
            return
        try:
            await self.refresh()
        except TemporaryFault as exc:
            if self._refreshed_at is None:
                raise
            logger.warning("Serving the cached phone list: refreshing it failed: %s", exc)

    async def _run_full_refresh(self) -> None:
        started = self._clock()
        try:
            phones = await self._list_all()
        except TemporaryFault as exc:
            self._full_failed_at = started
            self._full_failure = exc
            raise
        finally:
            self._full_refresh = None
        self._full_failed_at = None
        self._full_failure = None
        self._by_id = {phone.id: phone for phone in phones}
        self._reindex()
        self._refreshed_at = started
        # A complete listing answers every miss as well as a targeted refresh would.
        self._complete_at = started
        logger.info("Refreshed the phone inventory: %d phones", len(self._by_id))

    async def _list_all(self, serial_name: str | None = None) -> list[Phone]:
        """Every page of the listing; GeelarkUnavailable unless it ends where ``total`` says."""
        phones: list[Phone] = []
        for page in range(1, _MAX_PAGES + 1):
            reply = await self._lister.list_phones(page, MAX_PAGE_SIZE, serial_name=serial_name)
            phones.extend(reply.items)
            if reply.total and len(phones) >= reply.total:
                return phones
            if len(reply.items) < MAX_PAGE_SIZE:
                if reply.total > len(phones):
                    raise GeelarkUnavailable(
                        f"Geelark's phone list ended after {len(phones)} phones on page {page} "
                        f"although it reported {reply.total}: the listing is incomplete",
                        delay=_UNAVAILABLE_DELAY_SECONDS,
                    )
                return phones
        raise GeelarkUnavailable(
            f"Geelark's phone list did not end within {_MAX_PAGES} pages",
            delay=_UNAVAILABLE_DELAY_SECONDS,
        )

    # ----------------------------------------------------------------------------- miss refresh

    async def _refresh_after_miss(self, ref: str, *, by_id: bool) -> None:
        """Return once a successful check covered ``ref`` within the miss interval.

        Joins the refresh in flight, or starts one. A refresh that had already sent its query
        when ``ref`` joined did not ask about it: then the next round does. Raises
        GeelarkUnavailable when the check failed, or failed recently for another ref.
        """
        for _ in range(_MISS_ROUNDS):
            now = self._clock()
            if self._asked_recently(ref, now):
                return
            if self._miss_refresh is None:
                if (
                    self._miss_failed_at is not None
                    and now - self._miss_failed_at < self._miss_refresh_seconds
                ):
                    raise GeelarkUnavailable(
                        f"Could not check whether Geelark has phone {ref!r}: {self._miss_failure}",
                        delay=_UNAVAILABLE_DELAY_SECONDS,
                    )
                self._miss_refresh = _start(self._run_miss_refresh())
            # Joins the refresh in flight, which asks about this ref if it has not sent yet.
            (self._missed_ids if by_id else self._missed_names).add(ref)
            await asyncio.shield(self._miss_refresh)
        raise GeelarkUnavailable(
            f"Could not check yet whether Geelark has phone {ref!r}: too many lookups at once",
            delay=_UNAVAILABLE_DELAY_SECONDS,
        )

    def _asked_recently(self, ref: str, now: float) -> bool:
        """Whether a successful check covering ``ref`` started within the miss interval."""
        return any(
            at is not None and now - at < self._miss_refresh_seconds
            for at in (self._complete_at, self._asked_at.get(ref))
        )

    async def _run_miss_refresh(self) -> None:
        await asyncio.sleep(0)  # let the misses of this loop iteration join before sending
        ids, self._missed_ids = sorted(self._missed_ids), set()
        names, self._missed_names = sorted(self._missed_names), set()
        started = self._clock()
        try:
            await self._refresh_refs(ids, names)
        except TemporaryFault as exc:
            self._miss_failed_at = started
            self._miss_failure = exc
            raise
        finally:
            self._miss_refresh = None
        self._miss_failed_at = None
        self._miss_failure = None
        self._asked_at = {
            ref: at
            for ref, at in self._asked_at.items()
            if started - at < self._miss_refresh_seconds
        }
        self._asked_at.update(dict.fromkeys((*ids, *names), started))

    async def _refresh_refs(self, ids: Sequence[str], names: Sequence[str]) -> None:
        targeted_calls = math.ceil(len(ids) / MAX_IDS_PER_CALL) + len(names)
        full_calls = max(1, math.ceil(len(self._by_id) / MAX_PAGE_SIZE))
        if targeted_calls >= full_calls:
            logger.debug("Refreshing the whole inventory for %d missed refs", len(ids) + len(names))
            await self.refresh()
            return
        found: list[Phone] = []
        for start in range(0, len(ids), MAX_IDS_PER_CALL):
            chunk = ids[start : start + MAX_IDS_PER_CALL]
            found.extend((await self._lister.list_phones(1, MAX_PAGE_SIZE, ids=chunk)).items)
        stale: set[str] = set()
        for name in names:
            # The filter may be fuzzy: every phone it returns is fresh data, exact names decide.
            matches = await self._list_all(serial_name=name)
            found.extend(matches)
            current = {p.id for p in matches if p.serial_name == name}
            stale.update(p.id for p in self._by_name.get(name, []) if p.id not in current)
        for phone_id in stale:
            # Renamed since the last listing; its new name is unknown until it is asked for.
            self._by_id.pop(phone_id, None)
        for phone in found:
            self._by_id[phone.id] = phone
        self._reindex()
        logger.debug(
            "Refreshed %d missed refs: %d phones found, %d renamed away",
            len(ids) + len(names),
            len(found),
            len(stale),
        )

    def _reindex(self) -> None:
        by_name: dict[str, list[Phone]] = {}
        for phone in self._by_id.values():
            by_name.setdefault(phone.serial_name, []).append(phone)
        self._by_name = by_name


def _start(coroutine: Coroutine[Any, Any, None]) -> asyncio.Future[None]:
    """Run a refresh as a task whose failure is not reported as "never retrieved"."""
    task = asyncio.ensure_future(coroutine)
    task.add_done_callback(_retrieve)
    return task


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()
