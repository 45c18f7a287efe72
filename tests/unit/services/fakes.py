"""In-memory fakes of our own gateways (Kubernetes objects, the phone directory, phone power)."""

from __future__ import annotations

import copy
import itertools
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from phonefleet_operator.errors import (
    KubernetesRefused,
    PhonefleetError,
    PhoneNotFound,
)
from phonefleet_operator.geelark import (
    ADB_NOT_ENABLED,
    PHONE_NOT_RUNNING,
    AdbEndpoint,
    ItemFailure,
    Phone,
    PhoneStatus,
    StartResult,
    item_fault,
)

Obj = dict[str, Any]
_uids = itertools.count(1)

#: What the API server says when it refuses a claim patch, by status (its messages' form).
REFUSALS = {
    403: (
        'phoneclaims.phonefleet.dev "{}" is forbidden: ValidatingAdmissionPolicy '
        "'phonefleet-operator-scope' with binding 'phonefleet-operator-scope' denied request: "
        "the operator may not change a PhoneClaim"
    ),
    422: (
        'PhoneClaim.phonefleet.dev "{}" is invalid: spec: Invalid value: "object": '
        "spec is immutable: delete the PhoneClaim to release the phone"
    ),
}


@dataclass
class FakeKube:
    """Bindings, claims, pods and secrets kept in dicts, with the API server's create semantics."""

    bindings: dict[tuple[str, str], Obj] = field(default_factory=dict)
    claims: dict[str, Obj] = field(default_factory=dict)
    pods: dict[tuple[str, str], Obj] = field(default_factory=dict)
    secrets: dict[tuple[str, str], Obj] = field(default_factory=dict)
    statuses: list[tuple[str, str, Mapping[str, Any]]] = field(default_factory=list)
    reads: Counter[str] = field(default_factory=Counter)
    creates: Counter[str] = field(default_factory=Counter)  # attempts, refused ones included
    events: Counter[str] = field(default_factory=Counter)
    #: The status with which the API server refuses every claim patch but the finalizer's:
    #: 422 from an older CRD (its spec wholly immutable), 403 from an older scope policy; 0 none.
    refuse_claim_patches: int = 0
    #: RBAC without ``patch`` on PhoneClaims (manifests/rbac older than the claim finalizer):
    #: the finalizer's removal is refused (403).
    refuse_finalizer_drops: bool = False
    #: The API server refuses worker pods (403: the scope policy); False: it takes them.
    refuse_pods: bool = False
    #: What a binding's status patch raises while set (KubernetesUnavailable: the API server is
    #: restarting), the status left as it was; None: patches are applied.
    status_write_error: PhonefleetError | None = None

    async def get_binding(self, namespace: str, name: str) -> Obj | None:
        self.reads["binding"] += 1
        return copy.deepcopy(self.bindings.get((namespace, name)))  # a read is a snapshot

    async def list_bindings(self) -> list[Obj]:
        self.reads["bindings"] += 1
        return copy.deepcopy(list(self.bindings.values()))

    async def patch_binding_status(
        self, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        if self.status_write_error is not None:
            raise self.status_write_error
        self.statuses.append((namespace, name, status))
        stored = self.bindings.get((namespace, name))
        if stored is not None:  # a merge patch, as the API server applies it
            stored["status"] = _merged(stored.get("status") or {}, status)

    def post_event(
        self, binding: Mapping[str, Any], *, warning: bool, reason: str, message: str
    ) -> None:
        self.events[reason] += 1

    async def get_claim(self, phone_id: str) -> Obj | None:
        self.reads["claim"] += 1
        return copy.deepcopy(self.claims.get(phone_id))  # a read is a snapshot

    async def create_claim(self, claim: Obj) -> bool:
        self.creates["claim"] += 1
        name = claim["metadata"]["name"]
        if name in self.claims:
            return False
        self.claims[name] = {
            **claim,
            "metadata": {
                **claim["metadata"],
                "uid": f"claim-{next(_uids)}",
                "resourceVersion": str(next(_uids)),
            },
        }
        return True

    async def delete_claim(self, phone_id: str, uid: str) -> bool:
        """As the API server: a claim with finalizers only gets a deletionTimestamp."""
        claim = self.claims.get(phone_id)
        if claim is None or claim["metadata"]["uid"] != uid:
            return False
        if claim["metadata"].get("finalizers"):
            self.delete_claim_by_hand(phone_id)
        else:
            del self.claims[phone_id]
        return True

    def delete_claim_by_hand(self, phone_id: str) -> None:
        """``kubectl delete phoneclaim``: with finalizers, a deletionTimestamp (and a new
        resourceVersion) replaces the stored object; without, it goes."""
        claim = self.claims[phone_id]
        metadata = {**claim["metadata"], "resourceVersion": str(next(_uids))}
        if not metadata.get("finalizers"):
            del self.claims[phone_id]
            return
        metadata.setdefault("deletionTimestamp", "2026-01-01T00:00:00Z")
        self.claims[phone_id] = {**claim, "metadata": metadata}

    async def drop_claim_finalizer(self, claim: Mapping[str, Any]) -> bool:
        """As a merge patch with a resourceVersion: refused (409) when the claim changed; the
        last finalizer of a deleted claim going deletes it."""
        phone_id = claim["metadata"]["name"]
        if self.refuse_finalizer_drops:
            raise KubernetesRefused(
                f"Kubernetes refused to patch phoneclaims {phone_id}: 403 "
                f'phoneclaims.phonefleet.dev "{phone_id}" is forbidden: '
                'User "system:serviceaccount:phonefleet-system:'
                'phonefleet-operator" cannot patch resource "phoneclaims" in API group '
                '"phonefleet.dev" at the cluster scope',
                status=403,
            )
        stored = self.claims.get(phone_id)
        if stored is None or (
            stored["metadata"]["resourceVersion"] != claim["metadata"]["resourceVersion"]
        ):
            return False
        kept = [
            f
            for f in stored["metadata"].get("finalizers") or ()
            if f != "phonefleet.dev/worker-gone"
        ]
        if not kept and stored["metadata"].get("deletionTimestamp"):
            del self.claims[phone_id]
            return True
        self.claims[phone_id] = {
            **stored,
            "metadata": {
                **stored["metadata"],
                "finalizers": kept,
                "resourceVersion": str(next(_uids)),
            },
        }
        return True

    async def list_claims(self, label_selector: str | None = None) -> list[Obj]:
        """Every claim, or those matching a selector of ``key=value`` and ``!key`` terms."""
        self.reads["claim list"] += 1
        return copy.deepcopy(
            [c for c in self.claims.values() if _selected(c, label_selector or "")]
        )

    async def patch_claim(self, claim: Mapping[str, Any], changes: Mapping[str, Any]) -> bool:
        """A merge patch of labels or spec with a uid and resourceVersion: refused (409) when
        the claim changed; spec fields other than releasePolicy are immutable (the CRD); an
        older CRD or policy (``refuse_claim_patches``) refuses it whole."""
        phone_id = claim["metadata"]["name"]
        stored = self.claims.get(phone_id)
        if self.refuse_claim_patches:
            # As the real gateway raises it (k8s/api.py), with the API server's own words.
            raise KubernetesRefused(
                f"Kubernetes refused to patch phoneclaims {phone_id}: {self.refuse_claim_patches} "
                f"{REFUSALS[self.refuse_claim_patches].format(phone_id)}",
                status=self.refuse_claim_patches,
            )
        if stored is None or any(
            stored["metadata"].get(key) != claim["metadata"].get(key)
            for key in ("uid", "resourceVersion")
        ):
            return False
        assert set(changes.get("spec") or {}) <= {"releasePolicy"}, "spec is immutable"
        labels = {
            **(stored["metadata"].get("labels") or {}),
            **((changes.get("metadata") or {}).get("labels") or {}),
        }
        self.claims[phone_id] = {
            **stored,
            "metadata": {
                **stored["metadata"],
                "labels": labels,
                "resourceVersion": str(next(_uids)),
            },
            "spec": {**stored["spec"], **(changes.get("spec") or {})},
        }
        return True

    async def list_pods(self, label_selector: str) -> list[Obj]:
        wanted = dict(term.split("=", 1) for term in label_selector.split(","))
        return copy.deepcopy(
            [
                pod
                for pod in self.pods.values()
                if wanted.items() <= (pod["metadata"].get("labels") or {}).items()
            ]
        )

    async def get_pod(self, namespace: str, name: str) -> Obj | None:
        self.reads["pod"] += 1
        return copy.deepcopy(self.pods.get((namespace, name)))  # a read is a snapshot

    async def create_pod(self, pod: Obj) -> bool:
        self.creates["pod"] += 1
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        if self.refuse_pods:
            raise KubernetesRefused(
                f"Kubernetes refused to create pods {key[0]}/{key[1]}: "
                f'403 pods "{key[1]}" is forbidden: '
                "ValidatingAdmissionPolicy 'phonefleet-operator-scope' with binding "
                "'phonefleet-operator-scope' denied request: a worker pod mounts only emptyDirs "
                "and its binding's ADB Secret",
                status=403,
            )
        if key in self.pods:
            return False
        self.pods[key] = {
            **pod,
            "metadata": {
                **pod["metadata"],
                "uid": f"pod-{next(_uids)}",
                "creationTimestamp": "2026-01-01T00:00:00Z",
            },
        }
        return True

    async def delete_pod(self, namespace: str, name: str, uid: str | None = None) -> bool:
        """As the API server: a uid precondition that names another pod is refused (409), a
        missing pod is 404; both are False. Pods here have no node, so they go at once."""
        pod = self.pods.get((namespace, name))
        if pod is None or (uid is not None and pod["metadata"]["uid"] != uid):
            return False
        del self.pods[(namespace, name)]
        return True

    async def put_secret(self, secret: Obj) -> None:
        self.secrets[(secret["metadata"]["namespace"], secret["metadata"]["name"])] = secret

    async def delete_secret(self, namespace: str, name: str) -> None:
        self.secrets.pop((namespace, name), None)


@dataclass
class FakePhones:
    """A phone directory and power switch: phones by id, with status and ADB switches."""

    phones: dict[str, Phone] = field(default_factory=dict)
    power: dict[str, PhoneStatus] = field(default_factory=dict)
    adb_on: set[str] = field(default_factory=set)
    calls: list[tuple[str, str]] = field(default_factory=list)
    polls_per_second: float = 50.0

    def add(
        self, phone_id: str, serial_name: str, status: PhoneStatus = PhoneStatus.SHUT_DOWN
    ) -> None:
        self.phones[phone_id] = Phone(id=phone_id, serial_name=serial_name)
        self.power[phone_id] = status

    async def resolve(self, reference: str) -> Phone:
        self.calls.append(("resolve", reference))
        if reference in self.phones:
            return self.phones[reference]
        for phone in self.phones.values():
            if phone.serial_name == reference:
                return phone
        raise PhoneNotFound(f"Phone '{reference}' not found in Geelark")

    def poll_interval(self, phones: int) -> float:
        return phones / self.polls_per_second

    async def status(self, phone_id: str) -> PhoneStatus:
        self.calls.append(("status", phone_id))
        return self.power[phone_id]

    async def start(self, phone_id: str) -> StartResult:
        self.calls.append(("start", phone_id))
        self.power[phone_id] = PhoneStatus.STARTING
        return StartResult(id=phone_id, url=f"https://live.example/{phone_id}")

    async def stop(self, phone_id: str) -> None:
        self.calls.append(("stop", phone_id))
        self.power[phone_id] = PhoneStatus.SHUT_DOWN
        self.adb_on.discard(phone_id)

    async def enable_adb(self, phone_id: str) -> None:
        """Geelark's (and the simulator's) reading: a phone that does not run is refused."""
        self.calls.append(("enable_adb", phone_id))
        if self.power.get(phone_id) is not PhoneStatus.RUNNING:
            raise item_fault("enable ADB", ItemFailure(id=phone_id, code=PHONE_NOT_RUNNING))

    async def adb_endpoint(self, phone_id: str) -> AdbEndpoint:
        """The gateway's faults for Geelark's item codes: 42002 not running, 49001 ADB off."""
        self.calls.append(("adb_endpoint", phone_id))
        if self.power.get(phone_id) is not PhoneStatus.RUNNING:
            raise item_fault("read ADB data", ItemFailure(id=phone_id, code=PHONE_NOT_RUNNING))
        if phone_id not in self.adb_on:
            raise item_fault("read ADB data", ItemFailure(id=phone_id, code=ADB_NOT_ENABLED))
        return AdbEndpoint(id=phone_id, ip="10.1.2.3", port=5555, pwd=SecretStr("pw-123456"))

    def count(self, operation: str) -> int:
        """How many calls of one operation were made."""
        return sum(1 for op, _ in self.calls if op == operation)


@dataclass
class FailingPhones(FakePhones):
    """Phones whose stop call fails with ``stop_error`` while it is set (as Geelark's would)."""

    stop_error: PhonefleetError | None = None

    async def stop(self, phone_id: str) -> None:
        if self.stop_error is not None:
            self.calls.append(("stop-failed", phone_id))
            raise self.stop_error
        await super().stop(phone_id)


def _merged(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``target`` with a JSON merge patch (RFC 7386) applied."""
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping):
            result[key] = _merged(result.get(key) or {}, value)
        else:
            result[key] = value
    return result


def _selected(obj: Mapping[str, Any], selector: str) -> bool:
    """Whether ``obj``'s labels match ``selector`` (``key=value`` and ``!key`` terms)."""
    labels = obj["metadata"].get("labels") or {}
    for term in filter(None, selector.split(",")):
        if term.startswith("!"):
            if term[1:] in labels:
                return False
        else:
            key, value = term.split("=", 1)
            if labels.get(key) != value:
                return False
    return True
