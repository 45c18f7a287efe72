"""Specifications of the PhoneBinding models: spec validation, camelCase round trips, status."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from phonefleet_operator.models import (
    AdbConnection,
    Condition,
    Phase,
    PhoneBinding,
    PhoneBindingSpec,
    PhoneBindingStatus,
    PhoneClaim,
    PhoneClaimSpec,
)


def make_spec_body(**overrides: Any) -> dict[str, Any]:
    """A valid spec as a person writes it (camelCase), with ``overrides`` applied."""
    return {"phoneId": "checkout-01", **overrides}


def make_body(**overrides: Any) -> dict[str, Any]:
    """A PhoneBinding body as the API server returns it, with top-level ``overrides`` applied."""
    return {
        "apiVersion": "phonefleet.dev/v1alpha1",
        "kind": "PhoneBinding",
        "metadata": {
            "name": "checkout-phone",
            "namespace": "team-a",
            "uid": "7f9c6a8e-0d2b-4a51-9d8e-3c1f2b4a5d6e",
            "generation": 3,
            "creationTimestamp": "2024-05-01T10:00:00Z",
            "resourceVersion": "4711",
            "finalizers": ["phonefleet.dev/release-phone"],
            "managedFields": [{"manager": "kubectl"}],
        },
        "spec": make_spec_body(suspend=False, releasePolicy="Stop"),
        **overrides,
    }


class FrozenMapping(Mapping[str, Any]):
    """A read-only Mapping that is no dict, like the views kopf hands to handlers."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = {k: FrozenMapping(v) if isinstance(v, Mapping) else v for k, v in data.items()}

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


FULL_SPEC = make_spec_body(
    suspend=True,
    releasePolicy="Keep",
    worker={
        "image": "registry.example/worker:1.2",
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        "args": ["--verbose"],
        "env": [{"name": "TZ", "value": "UTC"}],
    },
    appium={"args": ["--log-level", "debug"], "env": [], "image": "appium/appium:custom"},
)


def test_spec_round_trips_through_camel_case() -> None:
    """A full spec read from camelCase writes back the same camelCase keys and values."""
    spec = PhoneBindingSpec.model_validate(FULL_SPEC)

    dumped = spec.to_dict()

    assert PhoneBindingSpec.model_validate(dumped) == spec
    assert dumped["releasePolicy"] == "Keep"
    assert dumped["worker"]["resources"]["requests"] == {"cpu": "100m", "memory": "256Mi"}
    assert dumped["appium"]["args"] == ["--log-level", "debug"]


def test_spec_accepts_python_names_too() -> None:
    """Code may build a spec with snake_case names; it serialises with camelCase ones."""
    spec = PhoneBindingSpec(phone_id="123", release_policy="Keep")

    assert spec.to_dict()["phoneId"] == "123"
    assert spec.to_dict()["releasePolicy"] == "Keep"


def test_spec_defaults_match_the_crd_defaults() -> None:
    """An omitted suspend is false, releasePolicy is Stop, and both containers have no overrides."""
    spec = PhoneBindingSpec.model_validate(make_spec_body())

    assert spec.suspend is False
    assert spec.release_policy == "Stop"
    assert spec.worker.image is None
    assert spec.worker.resources is None
    assert spec.appium.args == []
    assert spec.appium.env == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({}, "phoneId", id="phoneId-missing"),
        pytest.param(make_spec_body(phoneId=""), "phoneId", id="phoneId-empty"),
        pytest.param(make_spec_body(phoneId="x" * 129), "phoneId", id="phoneId-too-long"),
        pytest.param(make_spec_body(phoneId="team a"), "phoneId", id="phoneId-space"),
        pytest.param(make_spec_body(phoneId=" a"), "phoneId", id="phoneId-leading-space"),
        pytest.param(make_spec_body(phoneId="a\t"), "phoneId", id="phoneId-tab"),
        pytest.param(make_spec_body(phoneId="a\u00a0b"), "phoneId", id="phoneId-no-break-space"),
        pytest.param(make_spec_body(phoneId=526209711930868736), "phoneId", id="phoneId-number"),
        pytest.param(make_spec_body(phoneID="x"), "phoneID", id="misspelt-field"),
        pytest.param(make_spec_body(replicas=2), "replicas", id="unknown-field"),
        pytest.param(make_spec_body(releasePolicy="Delete"), "releasePolicy", id="bad-policy"),
        pytest.param(make_spec_body(suspend="sometimes"), "suspend", id="bad-suspend"),
        pytest.param(make_spec_body(worker={"img": "x"}), "img", id="unknown-override"),
        pytest.param(make_spec_body(worker={"image": ""}), "image", id="empty-image"),
        pytest.param(
            make_spec_body(appium={"resources": {"requests": {"cpu": "lots"}}}),
            "cpu",
            id="bad-quantity",
        ),
        pytest.param(
            make_spec_body(worker={"env": [{"name": "A", "value": "1"}, {"name": "A"}]}),
            "env",
            id="duplicate-env",
        ),
        pytest.param(make_spec_body(worker={"env": [{"name": "1A"}]}), "name", id="bad-env-name"),
    ],
)
def test_spec_rejects_bad_input(body: dict[str, Any], field: str) -> None:
    """A spec with a missing, empty, too long, spaced, unknown or ill-typed field fails."""
    with pytest.raises(ValidationError) as caught:
        PhoneBindingSpec.model_validate(body)

    assert field in str(caught.value)


def _is_white_space(char: str) -> bool:
    # What the CRD's CEL rule [\s\v\x{85}\p{Z}] matches in RE2: ASCII \s, \v, U+0085, category Z*.
    return char in "\t\n\v\f\r \x85" or unicodedata.category(char) in {"Zs", "Zl", "Zp"}


def test_phone_id_rejects_exactly_what_the_crd_cel_rule_rejects() -> None:
    """Over the whole BMP, the model refuses a phoneId character iff the CRD's CEL rule does."""
    disagreements = []
    for code in range(0x10000):
        if 0xD800 <= code <= 0xDFFF:
            continue  # lone surrogates cannot come from JSON
        char = chr(code)
        try:
            PhoneBindingSpec(phone_id=f"a{char}b")
            rejected = False
        except ValidationError:
            rejected = True
        if rejected != _is_white_space(char):
            disagreements.append(f"U+{code:04X}")

    assert disagreements == []


def test_quantities_may_be_integers_and_are_kept_as_strings() -> None:
    """``cpu: 2`` (an integer in YAML) is a valid quantity and reads back as the string "2"."""
    spec = PhoneBindingSpec.model_validate(
        make_spec_body(worker={"resources": {"requests": {"cpu": 2}, "limits": {"memory": "1Gi"}}})
    )

    assert spec.worker.resources is not None
    assert spec.worker.resources.requests == {"cpu": "2"}


def test_binding_parses_a_kopf_body_and_ignores_what_it_does_not_read() -> None:
    """from_body reads a nested read-only Mapping and ignores resourceVersion, managedFields..."""
    binding = PhoneBinding.from_body(FrozenMapping(make_body()))

    assert binding.name == "checkout-phone"
    assert binding.namespace == "team-a"
    assert binding.uid == "7f9c6a8e-0d2b-4a51-9d8e-3c1f2b4a5d6e"
    assert binding.metadata.generation == 3
    assert binding.metadata.creation_timestamp is not None
    assert binding.metadata.creation_timestamp.isoformat() == "2024-05-01T10:00:00+00:00"
    assert binding.namespaced_name == "team-a/checkout-phone"
    assert binding.spec.phone_id == "checkout-01"
    assert binding.status == PhoneBindingStatus()


@pytest.mark.parametrize("status", [None, {}], ids=["null", "empty"])
def test_binding_without_status_gets_an_empty_status(status: dict[str, Any] | None) -> None:
    """A new binding (status missing, null or empty) parses with an empty status."""
    assert PhoneBinding.from_body(make_body(status=status)).status == PhoneBindingStatus()


def test_binding_rejects_an_invalid_spec() -> None:
    """from_body raises on a spec the model forbids, so a handler can report it."""
    with pytest.raises(ValidationError):
        PhoneBinding.from_body(make_body(spec={"phoneId": "two words"}))


def test_partial_status_parses_and_ignores_unknown_keys() -> None:
    """A status with only some fields, plus keys from elsewhere (kopf), parses."""
    status = PhoneBindingStatus.model_validate(
        {"phase": "Conflict", "conflictWith": "team-b/other", "kopf": {"progress": {}}}
    )

    assert status.phase is Phase.CONFLICT
    assert status.conflict_with == "team-b/other"
    assert status.phone is None
    assert status.conditions == []


def test_status_round_trips_through_camel_case() -> None:
    """A full status writes camelCase keys, leaves out unset fields and reads back equal."""
    status = PhoneBindingStatus.model_validate(
        {
            "phase": "Running",
            "phone": {
                "id": "526209711930868736",
                "serialName": "checkout-01",
                "status": "Running",
                "liveViewUrl": "https://geelark.example/live/1",
            },
            "podName": "checkout-phone-worker",
            "observedGeneration": 3,
            "message": "Worker pod ready",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "WorkerReady",
                    "message": "",
                    "lastTransitionTime": "2024-05-01T10:00:00Z",
                    "observedGeneration": 3,
                }
            ],
        }
    )

    dumped = status.to_dict()

    assert PhoneBindingStatus.model_validate(dumped) == status
    assert "conflictWith" not in dumped
    assert dumped["phone"]["liveViewUrl"] == "https://geelark.example/live/1"
    assert dumped["conditions"][0]["lastTransitionTime"] == "2024-05-01T10:00:00Z"


def test_claim_spec_requires_every_field_and_rejects_unknown_ones() -> None:
    """A PhoneClaim spec needs phoneId, serialName and a full holder, and nothing else; an
    unrecorded releasePolicy (a claim made before it was recorded) reads as Stop."""
    valid = {
        "phoneId": "526209711930868736",
        "serialName": "checkout-01",
        "holder": {"namespace": "team-a", "name": "checkout-phone", "uid": "u-1"},
    }
    assert PhoneClaimSpec.model_validate(valid).to_dict() == {**valid, "releasePolicy": "Stop"}
    for missing in ("phoneId", "serialName", "holder"):
        with pytest.raises(ValidationError):
            PhoneClaimSpec.model_validate({k: v for k, v in valid.items() if k != missing})
    with pytest.raises(ValidationError):
        PhoneClaimSpec.model_validate({**valid, "holder": {"namespace": "team-a", "name": "x"}})
    with pytest.raises(ValidationError):
        PhoneClaimSpec.model_validate({**valid, "force": True})


def test_claim_parses_a_body() -> None:
    """PhoneClaim.from_body reads a cluster-scoped claim and its holder."""
    claim = PhoneClaim.from_body(
        {
            "apiVersion": "phonefleet.dev/v1alpha1",
            "kind": "PhoneClaim",
            "metadata": {"name": "526209711930868736", "uid": "c-1", "generation": 1},
            "spec": {
                "phoneId": "526209711930868736",
                "serialName": "checkout-01",
                "holder": {"namespace": "team-a", "name": "checkout-phone", "uid": "u-1"},
            },
        }
    )

    assert claim.spec.holder.namespaced_name == "team-a/checkout-phone"
    assert claim.metadata.name == "526209711930868736"


def test_adb_connection_never_shows_its_password() -> None:
    """repr, str and JSON of an AdbConnection hide the password; the value stays readable."""
    conn = AdbConnection(ip="10.0.0.7", port=31001, password="s3cr3t-pw", phone_id="1")

    assert "s3cr3t-pw" not in repr(conn)
    assert "s3cr3t-pw" not in str(conn)
    assert "s3cr3t-pw" not in conn.model_dump_json()
    assert conn.password.get_secret_value() == "s3cr3t-pw"
    assert conn.port == "31001"
    assert conn.udid == "10.0.0.7:31001"


def _models() -> list[type[BaseModel]]:
    seen: list[type[BaseModel]] = []
    pending: list[type[BaseModel]] = [PhoneBinding, PhoneClaim, AdbConnection, Condition]
    while pending:
        model = pending.pop()
        if model in seen:
            continue
        seen.append(model)
        for field in model.model_fields.values():
            for arg in _type_leaves(field.annotation):
                if isinstance(arg, type) and issubclass(arg, BaseModel):
                    pending.append(arg)
    return seen


def _type_leaves(annotation: Any) -> Iterator[Any]:
    yield annotation
    for arg in getattr(annotation, "__args__", ()):
        yield from _type_leaves(arg)


@pytest.mark.parametrize("model", _models(), ids=lambda model: model.__name__)
def test_every_model_and_field_is_documented(model: type[BaseModel]) -> None:
    """Every model has a docstring and every field a description (kubectl explain shows them)."""
    assert model.__doc__
    undocumented = [name for name, field in model.model_fields.items() if not field.description]
    assert undocumented == []
