"""Specifications of reading, checking and writing PhoneBinding manifests (offline)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from phonefleet_operator.cli.manifests import (
    binding_name,
    check_document,
    find_manifest_files,
    generate_bindings,
    is_name_prefix,
    parse_phone_list,
    read_bindings,
)
from phonefleet_operator.models import PhoneBindingSpec


def make_document(**overrides: Any) -> dict[str, Any]:
    """A valid PhoneBinding document as committed to a repository, with top-level overrides."""
    return {
        "apiVersion": "phonefleet.dev/v1alpha1",
        "kind": "PhoneBinding",
        "metadata": {"name": "alpha", "namespace": "team-a"},
        "spec": {"phoneId": "phone-001"},
        **overrides,
    }


def problems_of(**overrides: Any) -> list[str]:
    """The schema problems of a document with these top-level overrides."""
    return list(check_document(make_document(**overrides), "a.yaml", 0).problems)


# ----------------------------------------------------------------------------- reading


def test_a_valid_document_has_no_problems_and_keeps_its_spec() -> None:
    """A valid binding passes with its spec parsed and its source named path:line (ns/name)."""
    manifest = check_document(make_document(), "a.yaml", 2)

    assert manifest.problems == ()
    assert manifest.spec == PhoneBindingSpec(phone_id="phone-001")
    assert manifest.source == "a.yaml:2 (team-a/alpha)"


def test_a_source_without_namespace_names_the_binding_alone() -> None:
    """A binding without metadata.namespace (set at apply time) is named by its name only."""
    manifest = check_document(make_document(metadata={"name": "alpha"}), "a.yaml", 0)

    assert manifest.source == "a.yaml:0 (alpha)"
    assert manifest.assignment() is not None


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"spec": {}}, "spec.phoneId: Field required"),
        ({"spec": {"phoneId": ""}}, "spec.phoneId: String should have at least 1 character"),
        ({"spec": {"phoneId": "two words"}}, "spec.phoneId: String should match pattern"),
        ({"spec": {"phoneId": 600000000000000001}}, 'quote it, phoneId: "600000000000000001"'),
        ({"spec": {"phoneId": "x", "colour": "red"}}, 'unknown field "spec.colour"'),
        ({"spec": {"phoneId": "x", "releasePolicy": "Sometimes"}}, "spec.releasePolicy: Input"),
        (
            {"spec": {"phoneId": "x", "worker": {"env": [{"name": "1bad"}]}}},
            "spec.worker.env[0].name: String should match pattern",
        ),
        ({"spec": None}, "spec: Required value"),
        ({"spec": ["phoneId"]}, "spec: Invalid value: list: spec must be an object"),
        ({"metadata": {"namespace": "x"}}, "metadata.name: Required value"),
        ({"metadata": {"name": "Alpha_1"}}, "metadata.name: Invalid value: 'Alpha_1'"),
        ({"metadata": {"name": "a", "namespace": "Team.A"}}, "metadata.namespace: Invalid value"),
        ({"apiVersion": "phonefleet.dev/v1"}, "apiVersion: Unsupported value: 'phonefleet.dev/v1'"),
        ({"sepc": {"phoneId": "x"}}, 'unknown field "sepc"'),
        (
            {"spec": {"phoneId": "x", "worker": {"args": ["--phone-id=other"]}}},
            "spec.worker.args must not set --phone-id",
        ),
    ],
    ids=[
        "no-phone",
        "empty-phone",
        "whitespace",
        "unquoted-digits",
        "unknown-spec-field",
        "bad-policy",
        "nested-env",
        "no-spec",
        "spec-not-object",
        "no-name",
        "bad-name",
        "bad-namespace",
        "other-version",
        "unknown-top-field",
        "webhook-rule",
    ],
)
def test_schema_problems_name_the_field_as_the_api_server_does(
    overrides: dict[str, Any], expected: str
) -> None:
    """Each schema problem is one line that starts with the field path and says what is wrong."""
    found = problems_of(**overrides)

    assert any(expected in line for line in found), found


def test_an_invalid_spec_assigns_no_phone() -> None:
    """A binding whose spec fails the schema takes no part in the duplicate checks."""
    manifest = check_document(make_document(spec={"phoneId": ""}), "a.yaml", 0)

    assert manifest.assignment() is None


def test_a_spec_the_webhook_refuses_still_assigns_its_phone() -> None:
    """A spec valid for the schema but refused by the webhook is reported and still checked."""
    document = make_document(
        spec={"phoneId": "x", "worker": {"env": [{"name": "PHONEFLEET_WORKER_PHONE_ID"}]}}
    )

    manifest = check_document(document, "a.yaml", 0)

    assert manifest.problems == (
        "spec.worker.env must not set PHONEFLEET_WORKER_PHONE_ID: "
        "the operator sets it from the claimed phone",
    )
    assert manifest.assignment() is not None


def test_only_phone_bindings_of_our_group_are_read() -> None:
    """Other kinds, another group's PhoneBinding and empty documents are ignored."""
    text = yaml.safe_dump_all(
        [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}},
            make_document(),
            None,
            {**make_document(), "apiVersion": "example.com/v1"},
            make_document(metadata={"name": "bravo"}),
        ]
    )

    found, problems = read_bindings(text, "a.yaml")

    assert problems == []
    assert [(m.line, m.name) for m in found] == [(6, "alpha"), (23, "bravo")]
    assert [text.splitlines()[m.line - 1] for m in found] == [
        "apiVersion: phonefleet.dev/v1alpha1"
    ] * 2


def test_a_phone_binding_without_api_version_is_ours_and_wrong() -> None:
    """A PhoneBinding document missing apiVersion is read and reported, not skipped."""
    document = make_document()
    del document["apiVersion"]

    found, _ = read_bindings(yaml.safe_dump(document), "a.yaml")

    assert "apiVersion: Unsupported value: None" in found[0].problems[0]


def test_a_file_that_is_not_yaml_is_one_problem() -> None:
    """Unparsable YAML gives one single-line problem naming the file."""
    found, problems = read_bindings("kind: [unclosed\n", "broken.yaml")

    assert found == []
    assert len(problems) == 1
    assert str(problems[0]).startswith("broken.yaml: not valid YAML: ")
    assert "\n" not in str(problems[0])


def test_directories_are_searched_for_yaml_files_in_sorted_order(tmp_path: Path) -> None:
    """Below a directory every *.yaml and *.yml counts, sorted; named files count as named."""
    for name in ["b/two.yml", "a/one.yaml", "a/notes.txt", "c.json"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    named = tmp_path / "c.json"

    found = find_manifest_files([tmp_path, named, tmp_path / "a" / "one.yaml"])

    assert found == [tmp_path / "a" / "one.yaml", tmp_path / "b" / "two.yml", named]


# ----------------------------------------------------------------------------- writing


def test_a_phone_list_is_split_on_commas_and_trimmed() -> None:
    """`--phones` is split on commas; blanks around refs and empty items are dropped."""
    assert parse_phone_list(" phone-001, 600000000000000002,,") == [
        "phone-001",
        "600000000000000002",
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "No phones assigned to bindings. Use --phones phone1,phone2,..."),
        (" , ", "No phones assigned to bindings. Use --phones phone1,phone2,..."),
        ("b,a,b,a", "Duplicate phone assignments: {'a', 'b'}"),
        ("x" * 129, "cannot be a phoneId: String should have at most 128 characters"),
    ],
    ids=["empty", "blank", "duplicates", "too-long"],
)
def test_a_bad_phone_list_is_refused_in_the_seeds_words(value: str, message: str) -> None:
    """An empty list, duplicates and impossible refs are refused with the seed's wording."""
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_phone_list(value)


@pytest.mark.parametrize(
    ("ref", "prefix", "name"),
    [
        ("phone-001", None, "phone-001"),
        ("600000000000000002", None, "600000000000000002"),
        ("phone-001", "insta", "insta-phone-001"),
        ("Insta_42", None, "insta-42-a1fcbe85"),
        ("insta-42", None, "insta-42"),
    ],
)
def test_binding_names_come_from_the_ref(ref: str, prefix: str | None, name: str) -> None:
    """A binding is named after its ref (prefixed when asked); lossy cleaning adds a digest."""
    assert binding_name(ref, prefix) == name


def test_names_of_any_ref_are_valid_and_distinct_labels() -> None:
    """Refs that clean to the same text, or are too long, still get distinct RFC 1123 labels."""
    refs = ["Phone_1", "phone-1", "PHONE.1", "x" * 128, "x" * 127 + "y", "___"]

    names = [binding_name(ref) for ref in refs]

    assert len(set(names)) == len(refs)
    for name in names:
        assert len(name) <= 63
        assert name == name.lower()
        assert name[0].isalnum()
        assert name[-1].isalnum()
        assert set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")


@pytest.mark.parametrize(
    ("prefix", "valid"),
    [("insta", True), ("team-a", True), ("Insta", False), ("-a", False), ("a" * 54, False)],
)
def test_a_name_prefix_must_leave_room_for_a_valid_name(prefix: str, valid: bool) -> None:
    """A prefix is a lowercase label short enough to take a ref and a digest after it."""
    assert is_name_prefix(prefix) is valid


def test_generated_bindings_are_valid_manifests_with_quoted_ids() -> None:
    """Generated YAML reads back as valid bindings, ids as strings, namespace as given."""
    text = generate_bindings(["phone-001", "600000000000000002"], namespace="fleet")

    found, problems = read_bindings(text, "gen.yaml")

    assert problems == []
    assert [m.problems for m in found] == [(), ()]
    assert [m.source for m in found] == [
        "gen.yaml:2 (fleet/phone-001)",
        "gen.yaml:10 (fleet/600000000000000002)",
    ]
    assert "phoneId: '600000000000000002'" in text
    assert text.startswith("---\napiVersion: phonefleet.dev/v1alpha1\nkind: PhoneBinding\n")


def test_generated_bindings_leave_the_namespace_out_unless_given() -> None:
    """Without --namespace the manifests name none, so kubectl or Argo CD chooses it."""
    (document,) = yaml.safe_load_all(generate_bindings(["phone-001"], name_prefix="w"))

    assert document["metadata"] == {"name": "w-phone-001"}
    assert document["spec"] == {"phoneId": "phone-001"}
