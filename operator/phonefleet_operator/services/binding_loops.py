"""The reconcile loop of every PhoneBinding, its finalizer, and its release on deletion.

Fed by the operator's own watch of PhoneBindings (``handlers/binding_watch.py``), one call per
event, this supervisor keeps one asyncio task per binding uid:

* a binding without our finalizer (``phonefleet.dev/release-phone``) gets it first, by a patch
  under its resourceVersion (another controller's finalizer is never dropped); its loop starts
  once the finalizer is on, so that nothing is claimed for a binding that could go unreleased;
* the task runs the reconcile pass again and again on the latest body the watch delivered, each
  wait cut short by a wake-up (``Wakeups``); a pass that raised is logged and tried again, after
  the fault's own delay (TemporaryFault) or 5 s, as kopf's daemon did;
* a binding with a deletionTimestamp has its loop stopped after the pass in flight, then is
  released (``Runtime.release``, tried again until it succeeds: the finalizer stays while the
  phone of a ``Stop`` binding cannot be stopped), then loses our finalizer, and the bindings
  waiting for its phone are woken;
* a binding reported DELETED (our finalizer removed by hand) has its loop stopped; nothing is
  released (its claim goes with the orphan sweep).

Bindings made by older versions carry the same finalizer: they are adopted as they are, and a
release is done once, by whoever removes the finalizer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import kopf

from phonefleet_operator import constants as c
from phonefleet_operator.errors import ReplicaStopping
from phonefleet_operator.services.claims import BindingRef
from phonefleet_operator.services.coordination import Wakeups
from phonefleet_operator.waiting import event_within

__all__ = ["BindingLoops", "FinalizerWriter"]

log = logging.getLogger(__name__)

Obj = dict[str, Any]


class FinalizerWriter(Protocol):
    """Writes a binding's finalizers under a resourceVersion (k8s.finalizers.BindingFinalizers)."""

    async def set(
        self, namespace: str, name: str, resource_version: str, finalizers: Sequence[str]
    ) -> Obj | None:
        """The binding as written; None when it changed since ``resource_version`` or is gone."""
        ...


@dataclass
class _Binding:
    """What the supervisor keeps of one binding whose finalizer is ours."""

    body: Obj
    """The latest body the watch delivered, updated in place: the pass in flight sees a
    deletion that arrives while it waits for the binding's lock (as kopf's live body did)."""
    halt: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the loop must end: deletion, DELETED, or the operator stopping."""
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the release must not be tried any more: DELETED or the operator stopping."""
    deleting: bool = False
    task: asyncio.Task[None] | None = None

    async def halted(self, delay: float) -> bool:
        """Wait ``delay`` seconds or until halted; True when halted."""
        return await event_within(self.halt, delay)

    async def stopped(self, delay: float) -> bool:
        return await event_within(self.stop, delay)


def _has_ours(body: Mapping[str, Any]) -> bool:
    return c.FINALIZER in ((body.get("metadata") or {}).get("finalizers") or ())


@dataclass
class BindingLoops:
    """One task per binding: its reconcile loop, then its release; its finalizer is ours."""

    reconcile: Callable[[Obj], Awaitable[float | None]]
    """One pass on the binding's body; the seconds until the next, None when it is done."""
    release: Callable[[Obj], Awaitable[str | None]]
    """Release a deleted binding; the id of the phone it held. Raises until it is done."""
    finalizers: FinalizerWriter
    get_binding: Callable[[str, str], Awaitable[Obj | None]]
    wakeups: Wakeups
    waiters: Mapping[str, Sequence[BindingRef]]
    #: kopf's daemon backoff, and its default retry delay of a failed deletion handler.
    backoff: float = 5.0
    release_backoff: float = 60.0
    #: How long a loop may take to end on its own when the operator stops, before it is cancelled.
    stop_timeout: float = 60.0
    _bindings: dict[str, _Binding] = field(default_factory=dict)
    _adding: dict[str, Obj] = field(default_factory=dict)
    """Bindings whose finalizer is being added: the latest body of each."""
    _adders: set[asyncio.Task[None]] = field(default_factory=set)
    _released: set[str] = field(default_factory=set)
    """Bindings released whose DELETED event is still to come: a late event still showing our
    finalizer (the echo of the release's status write) must not release them again."""
    _closing: bool = False

    # ------------------------------------------------------------ events

    def saw(self, event_type: str, body: Obj) -> None:
        """One watch event of a binding (ADDED, MODIFIED or DELETED)."""
        if self._closing:
            return
        metadata = body["metadata"]
        uid = str(metadata["uid"])
        known = self._bindings.get(uid)
        if event_type == "DELETED":
            self._adding.pop(uid, None)
            self._released.discard(uid)
            if known is not None:
                known.stop.set()
                known.halt.set()
            return
        if known is not None:
            known.body.clear()
            known.body.update(body)
        ours = _has_ours(body)
        if ours:
            self._adding.pop(uid, None)
        if metadata.get("deletionTimestamp"):
            self._adding.pop(uid, None)
            if known is None and ours and uid not in self._released:
                self._start(uid, body, deleting=True)
            elif known is not None:
                # Without our finalizer (removed by hand) there is nothing left to release.
                known.deleting = known.deleting or ours
                known.halt.set()
            return
        if not ours:
            # A binding of ours lacks it (new, or removed by hand): add it, then run.
            fresh = uid not in self._adding
            self._adding[uid] = body
            if fresh:
                task = asyncio.create_task(self._add_finalizer(uid), name=f"finalizer-{uid}")
                self._adders.add(task)
                task.add_done_callback(self._adders.discard)
            return
        if known is None:
            self._start(uid, body)

    def _start(self, uid: str, body: Obj, *, deleting: bool = False) -> None:
        binding = _Binding(dict(body), deleting=deleting)
        if deleting:
            binding.halt.set()
        self._bindings[uid] = binding
        binding.task = asyncio.create_task(self._run(uid, binding), name=f"binding-{uid}")

    # ------------------------------------------------------------ the finalizer

    async def _add_finalizer(self, uid: str) -> None:
        """Add our finalizer to the latest body seen; after a 409, again if a newer body came
        meanwhile (else the event that changed it is still to come, and brings it)."""
        failures = 0
        tried = ""
        while not self._closing:
            body = self._adding.get(uid)
            if body is None:  # deleted, or the finalizer is on by now
                return
            metadata = body["metadata"]
            version = str(metadata.get("resourceVersion", ""))
            if version == tried:
                self._adding.pop(uid, None)
                return
            tried = version
            finalizers = [*(metadata.get("finalizers") or ()), c.FINALIZER]
            try:
                written = await self.finalizers.set(
                    metadata["namespace"], metadata["name"], version, finalizers
                )
            except ReplicaStopping:
                return  # lost the Lease: the next holder adds it
            except Exception as error:  # the API server failed: try again, the binding waits
                failures += 1
                tried = ""
                log.warning(
                    "Adding the finalizer to PhoneBinding %s/%s failed (%s): retrying in %.0f s",
                    metadata.get("namespace"),
                    metadata.get("name"),
                    error,
                    self.backoff,
                )
                await asyncio.sleep(self.backoff * min(failures, 6))
                continue
            if written is not None:
                # Unless its echo came first, or the binding went meanwhile: run it now.
                if self._adding.pop(uid, None) is not None and uid not in self._bindings:
                    self.saw("MODIFIED", written)
                return

    async def _drop_finalizer(self, binding: _Binding) -> bool:
        """Remove only our finalizer; False when the binding kept changing (tried again later)."""
        body = binding.body
        for _ in range(5):
            metadata = body["metadata"]
            finalizers = list(metadata.get("finalizers") or ())
            if c.FINALIZER not in finalizers:
                return True
            kept = [f for f in finalizers if f != c.FINALIZER]
            written = await self.finalizers.set(
                metadata["namespace"], metadata["name"], str(metadata["resourceVersion"]), kept
            )
            if written is not None:
                return True
            fresh = await self.get_binding(metadata["namespace"], metadata["name"])
            if fresh is None or fresh["metadata"].get("uid") != metadata.get("uid"):
                return True  # gone (or another binding by that name): nothing of ours left
            body = fresh
        return False

    # ------------------------------------------------------------ the task

    async def _run(self, uid: str, binding: _Binding) -> None:
        try:
            if not binding.deleting:
                await self._loop(uid, binding)
            if binding.deleting and not binding.stop.is_set():
                await self._finalize(uid, binding)
        finally:
            if self._bindings.get(uid) is binding:
                del self._bindings[uid]
            self.wakeups.forget(uid)  # no loop: nothing to wake (and the sweep may judge it)

    async def _loop(self, uid: str, binding: _Binding) -> None:
        """Run the binding's pass again and again, as soon as it asks or is woken."""
        if binding.halt.is_set():  # deleted before the task first ran: register nothing
            return
        self.wakeups.register(uid)
        while not binding.halt.is_set():
            try:
                # All waiters, not those of status.phone.id: the pass looks them up once it
                # knows the phone (a new binding has no id yet, a changed spec may name another).
                delay = await self.reconcile(binding.body)
            except ReplicaStopping:
                # Lost the Lease: no fault of the binding's; the next holder goes on. Parked
                # till the stop, not ended (a new event would start it again).
                await binding.halt.wait()
                return
            except kopf.TemporaryError as error:
                log.warning("Reconciling %s failed temporarily: %s", _name(binding), error)
                await binding.halted(error.delay or self.backoff)
                continue
            except kopf.PermanentError as error:
                log.error(
                    "Reconciling %s failed for good (until the operator restarts): %s",
                    _name(binding),
                    error,
                )
                await binding.halt.wait()
                return
            except Exception:
                log.exception(
                    "Reconciling %s failed: trying again in %.0f s", _name(binding), self.backoff
                )
                await binding.halted(self.backoff)
                continue
            if delay is None:
                return
            await self.wakeups.wait(uid, delay, binding.halted)

    async def _finalize(self, uid: str, binding: _Binding) -> None:
        """Release the deleted binding until it is done; then drop our finalizer."""
        while not binding.stop.is_set():
            try:
                phone_id = await self.release(binding.body)
                done = await self._drop_finalizer(binding)
            except ReplicaStopping:
                await binding.stop.wait()  # lost the Lease: the next holder releases it
                return
            except kopf.TemporaryError as error:
                # Usually the worker pod still terminating; a phone that cannot be stopped is
                # reported on the binding (status, Event) by the release itself.
                log.info("Releasing %s is not done yet: %s", _name(binding), error)
                delay = error.delay or self.backoff
            except Exception:
                log.exception(
                    "Releasing %s failed: trying again in %.0f s",
                    _name(binding),
                    self.release_backoff,
                )
                delay = self.release_backoff
            else:
                if done:
                    self._released.add(uid)
                    if phone_id:
                        for waiter in self.waiters.get(phone_id, ()):
                            self.wakeups.wake(waiter.uid)
                    return
                delay = self.backoff
            await binding.stopped(delay)

    # ------------------------------------------------------------ lifecycle

    async def close(self) -> None:
        """Stop every loop and release (the next leader resumes them): each ends after its
        pass in flight, or is cancelled after ``stop_timeout``."""
        self._closing = True
        for task in list(self._adders):
            task.cancel()
        tasks = [b.task for b in self._bindings.values() if b.task is not None]
        for binding in self._bindings.values():
            binding.stop.set()
            binding.halt.set()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.stop_timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*self._adders, return_exceptions=True)

    def __contains__(self, uid: object) -> bool:
        return uid in self._bindings

    def __len__(self) -> int:
        return len(self._bindings)


def _name(binding: _Binding) -> str:
    metadata = binding.body.get("metadata") or {}
    return f"PhoneBinding {metadata.get('namespace')}/{metadata.get('name')}"
