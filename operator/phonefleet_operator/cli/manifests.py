"""PhoneBinding manifests as files: finding and reading them, checking their schema, writing them.

Everything here is pure except :func:`find_manifest_files`, which lists directories: a file's
text goes in, bindings and problems come out; refs go in, YAML comes out.

A document is "ours" when its kind is PhoneBinding and its apiVersion is ``phonefleet.dev/...``
(or missing); every other document (Deployments, kustomizations, another group's PhoneBinding)
is ignored. Ours are checked against the pydantic model of the spec, which the CRD schema is kept
in step with, plus the rules Kubernetes itself applies that the model does not hold (apiVersion,
object names, unknown top-level fields) and the admission webhook's own spec rules.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import ValidationError

from phonefleet_operator.constants import API_VERSION, BINDING_KIND, GROUP
from phonefleet_operator.models import PhoneBindingSpec
from phonefleet_operator.services.admission import spec_problems
from phonefleet_operator.services.assignments import Assignment, Problem, format_refs

__all__ = [
    "MANIFEST_SUFFIXES",
    "BindingManifest",
    "binding_name",
    "check_document",
    "find_manifest_files",
    "generate_bindings",
    "is_name_prefix",
    "is_namespace",
    "parse_phone_list",
    "read_bindings",
]

MANIFEST_SUFFIXES: Final = (".yaml", ".yml")

_TOP_LEVEL_FIELDS: Final = frozenset({"apiVersion", "kind", "metadata", "spec", "status"})
_MAX_NAME: Final = 253  # DNS-1123 subdomain: object names
_MAX_LABEL: Final = 63  # DNS-1123 label: namespaces, and the names generate writes
_SUBDOMAIN: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DIGEST_LENGTH: Final = 8


@dataclass(frozen=True)
class BindingManifest:
    """One PhoneBinding document of a file, with where it is and what was wrong with it."""

    path: str
    """The file, as the user named it (``-`` for standard input)."""
    line: int
    """Line (from 1) where the document's content starts, so ``path:line`` opens it in editors."""
    name: str | None
    """metadata.name, when it is a string."""
    namespace: str | None
    """metadata.namespace, when given (GitOps tools often set it at apply time instead)."""
    spec: PhoneBindingSpec | None
    """The spec, when it passed the schema."""
    problems: tuple[str, ...] = ()
    """Schema problems, each a field path and what is wrong with it."""

    @property
    def source(self) -> str:
        """``path:line (namespace/name)``: how a problem names this binding."""
        where = f"{self.path}:{self.line}"
        if self.name is None:
            return where
        who = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{where} ({who})"

    def assignment(self) -> Assignment | None:
        """The phone this binding asks for, once its spec is valid."""
        return Assignment(self.source, self.spec.phone_id) if self.spec else None


# ----------------------------------------------------------------------------- reading


def find_manifest_files(paths: Iterable[Path]) -> list[Path]:
    """The files to read: each file as named, and every ``*.yaml``/``*.yml`` below a directory.

    Files below a directory come in sorted order, so output and duplicate reports are stable.
    """
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(p for p in path.rglob("*") if p.suffix in MANIFEST_SUFFIXES and p.is_file())
            )
        else:
            found.append(path)
    return list(dict.fromkeys(found))


def read_bindings(text: str, path: str) -> tuple[list[BindingManifest], list[Problem]]:
    """The PhoneBinding documents of one file; a file that is not YAML is one problem."""
    try:
        documents = list(_documents_with_lines(text))
    except yaml.YAMLError as error:
        return [], [Problem(path, f"not valid YAML: {_one_line(str(error))}")]
    bindings = [
        check_document(document, path, line)
        for line, document in documents
        if _is_phone_binding(document)
    ]
    return bindings, []


def _documents_with_lines(text: str) -> Iterator[tuple[int, Any]]:
    """Each document of ``text`` with the line (from 1) where its content starts."""
    loader = yaml.SafeLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:  # check_node() said there is one
                yield node.start_mark.line + 1, loader.construct_document(node)
    finally:
        loader.dispose()


def _is_phone_binding(document: object) -> bool:
    if not isinstance(document, Mapping) or document.get("kind") != BINDING_KIND:
        return False
    api_version = document.get("apiVersion")
    return api_version is None or str(api_version).split("/")[0] == GROUP


def check_document(document: Mapping[str, Any], path: str, line: int) -> BindingManifest:
    """Check one PhoneBinding document as the API server would, and keep its spec if valid."""
    problems: list[str] = []
    if document.get("apiVersion") != API_VERSION:
        problems.append(
            f"apiVersion: Unsupported value: {document.get('apiVersion')!r}: "
            f"supported value: {API_VERSION!r}"
        )
    problems.extend(
        f'unknown field "{key}"' for key in document if str(key) not in _TOP_LEVEL_FIELDS
    )
    metadata = document.get("metadata")
    name = namespace = None
    if not isinstance(metadata, Mapping):
        problems.append("metadata.name: Required value: name is required")
    else:
        raw_name, raw_namespace = metadata.get("name"), metadata.get("namespace")
        name = raw_name if isinstance(raw_name, str) else None
        namespace = raw_namespace if isinstance(raw_namespace, str) else None
        problems.extend(_name_problems(raw_name, raw_namespace))
    spec: PhoneBindingSpec | None = None
    raw_spec = document.get("spec")
    if raw_spec is None:
        problems.append("spec: Required value")
    else:
        try:
            spec = PhoneBindingSpec.model_validate(raw_spec)
        except ValidationError as error:
            problems.extend(_spec_problems(error, raw_spec))
        else:
            problems.extend(spec_problems(spec))  # what the admission webhook refuses too
    return BindingManifest(path, line, name, namespace, spec, tuple(problems))


def _name_problems(name: object, namespace: object) -> Iterator[str]:
    if name is None:
        yield "metadata.name: Required value: name is required"
    elif not isinstance(name, str) or len(name) > _MAX_NAME or not _SUBDOMAIN.match(name):
        yield (
            f"metadata.name: Invalid value: {name!r}: a lowercase RFC 1123 subdomain must "
            "consist of lower case alphanumeric characters, '-' or '.', and must start and end "
            f"with an alphanumeric character (at most {_MAX_NAME} characters)"
        )
    if namespace is not None and (
        not isinstance(namespace, str) or len(namespace) > _MAX_LABEL or not _LABEL.match(namespace)
    ):
        yield (
            f"metadata.namespace: Invalid value: {namespace!r}: a lowercase RFC 1123 label must "
            "consist of lower case alphanumeric characters or '-', and must start and end with "
            f"an alphanumeric character (at most {_MAX_LABEL} characters)"
        )


def _spec_problems(error: ValidationError, raw_spec: object) -> Iterator[str]:
    if not isinstance(raw_spec, Mapping):
        yield f"spec: Invalid value: {type(raw_spec).__name__}: spec must be an object"
        return
    for item in error.errors():
        field = _field_path(("spec", *item["loc"]))
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = f'unknown field "{field}"'
            yield message
            continue
        phone_id = raw_spec.get("phoneId")
        if field == "spec.phoneId" and isinstance(phone_id, int) and not isinstance(phone_id, bool):
            message += f' (quote it, phoneId: "{phone_id}": unquoted digits are a number in YAML)'
        yield f"{field}: {message}"


def _field_path(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _one_line(text: str) -> str:
    return " ".join(text.split())


# ----------------------------------------------------------------------------- writing


def parse_phone_list(value: str) -> list[str]:
    """The refs of ``--phones a,b,c``: split on commas, blanks around them and empty items dropped.

    Raises ValueError in the seed's words when nothing is left or a ref comes twice, and with the
    model's words when a ref cannot be a phoneId.
    """
    refs = [ref.strip() for ref in value.split(",") if ref.strip()]
    if not refs:
        raise ValueError("No phones assigned to bindings. Use --phones phone1,phone2,...")
    duplicates = [ref for ref in refs if refs.count(ref) > 1]
    if duplicates:
        raise ValueError(f"Duplicate phone assignments: {format_refs(duplicates)}")
    for ref in refs:
        try:
            PhoneBindingSpec(phone_id=ref)
        except ValidationError as error:
            reason = "; ".join(item["msg"] for item in error.errors())
            raise ValueError(f"{ref!r} cannot be a phoneId: {reason}") from None
    return refs


def binding_name(ref: str, prefix: str | None = None) -> str:
    """The name ``generate`` gives the binding of ``ref``: ``ref`` itself, or ``prefix-ref``.

    Names are RFC 1123 labels (at most 63 characters) so they fit everywhere a name goes. A ref
    that is not one already (upper case, ``_``, too long) is lowered and cleaned, and gets a digest
    of the original, so two refs never share a name (``Phone_1`` and ``phone-1`` stay apart).
    """
    wanted = f"{prefix}-{ref}" if prefix else ref
    if len(wanted) <= _MAX_LABEL and _LABEL.match(wanted):
        return wanted
    digest = hashlib.sha256(ref.encode()).hexdigest()[:_DIGEST_LENGTH]
    cleaned = re.sub(r"[^a-z0-9-]+", "-", wanted.lower())
    cleaned = cleaned[: _MAX_LABEL - _DIGEST_LENGTH - 1].strip("-")
    return f"{cleaned}-{digest}" if cleaned else digest


def is_name_prefix(prefix: str) -> bool:
    """Whether ``prefix-<anything valid>`` is a valid name: an RFC 1123 label, short enough."""
    return len(prefix) <= _MAX_LABEL - _DIGEST_LENGTH - 2 and _LABEL.match(prefix) is not None


def generate_bindings(
    refs: Sequence[str], *, namespace: str | None = None, name_prefix: str | None = None
) -> str:
    """Multi-document YAML of one PhoneBinding per ref, ready to commit (phoneIds quoted)."""
    documents: list[dict[str, Any]] = []
    for ref in refs:
        metadata: dict[str, str] = {"name": binding_name(ref, name_prefix)}
        if namespace:
            metadata["namespace"] = namespace
        documents.append(
            {
                "apiVersion": API_VERSION,
                "kind": BINDING_KIND,
                "metadata": metadata,
                "spec": PhoneBindingSpec(phone_id=ref).model_dump(
                    by_alias=True, include={"phone_id"}
                ),
            }
        )
    return yaml.safe_dump_all(documents, sort_keys=False, explicit_start=True)


def is_namespace(value: str) -> bool:
    """Whether ``value`` can name a namespace (an RFC 1123 label)."""
    return len(value) <= _MAX_LABEL and _LABEL.match(value) is not None
