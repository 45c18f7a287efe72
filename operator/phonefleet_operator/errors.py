"""The operator's exception tree: every fault a handler can see, mapped onto kopf's retry semantics.

    PhonefleetError
    ├── TemporaryFault (kopf.TemporaryError: retried after ``delay`` seconds)
    │   ├── GeelarkUnavailable      Geelark unreachable, timing out, 5xx, 50000
    │   │   └── GeelarkRateLimited  40007 / 40017 / 40014: back off, never hammer
    │   ├── KubernetesUnavailable   the API server failed or timed out
    │   ├── KubernetesRefused       the API server refused the request (403, 422)
    │   ├── PhoneBusy               Geelark says the phone is in use (43005, 43006, 43007)
    │   └── PhoneNotReady           the phone is starting; check again shortly
    └── PermanentFault (kopf.PermanentError: the user must change something)
        ├── GeelarkAuthError        bad credentials or permissions (40003, 40013, 40015, 40016)
        ├── GeelarkRequestError     Geelark rejected a request as malformed (40004, 40008, ...)
        ├── PhoneNotFound           no phone has that id or serialName
        ├── AmbiguousPhone          a serialName matches several phones: ask for the id
        └── InvalidSpec             a spec the CRD schema cannot catch

    ReplicaStopping                 this replica lost the Lease: the call was refused (fence.py)

Only ``geelark/`` and ``k8s/`` raise the transport faults; services raise the rest.
``ReplicaStopping`` is no PhonefleetError on purpose: it is no fault of the binding, job or pool
at hand, so no pass reports it on them (they could not write it anyway); a loop that meets it
ends quietly, as the cancellation that follows would end it.
"""

from __future__ import annotations

import kopf

__all__ = [
    "AmbiguousPhone",
    "GeelarkAuthError",
    "GeelarkRateLimited",
    "GeelarkRequestError",
    "GeelarkUnavailable",
    "InvalidSpec",
    "KubernetesRefused",
    "KubernetesUnavailable",
    "PermanentFault",
    "PhoneBusy",
    "PhoneNotFound",
    "PhoneNotReady",
    "PhonefleetError",
    "ReplicaStopping",
    "TemporaryFault",
]


class PhonefleetError(Exception):
    """Base of every error phonefleet raises on purpose."""

    #: A short CamelCase word for condition reasons and Events.
    reason: str = "Error"


class TemporaryFault(PhonefleetError, kopf.TemporaryError):
    """A fault that goes away by itself: kopf retries the handler after ``delay`` seconds."""

    reason = "Retrying"

    def __init__(self, message: str, *, delay: float = 10.0) -> None:
        super().__init__(message, delay=delay)


class PermanentFault(PhonefleetError, kopf.PermanentError):
    """A fault only the user can fix: retrying would give the same answer."""


class GeelarkUnavailable(TemporaryFault):
    """Geelark could not be asked: network error, timeout, HTTP 5xx or code 50000."""

    reason = "GeelarkUnavailable"


class GeelarkRateLimited(GeelarkUnavailable):
    """Geelark answered with a rate-limit code (40007, 40017, 40014)."""

    def __init__(self, message: str, *, code: int, delay: float = 60.0) -> None:
        super().__init__(message, delay=delay)
        self.code = code


class KubernetesUnavailable(TemporaryFault):
    """The Kubernetes API server failed or timed out."""

    reason = "KubernetesUnavailable"


class KubernetesRefused(TemporaryFault):
    """The API server answered, and refused: 403 (RBAC, an admission policy) or 422 (the
    CRD's validation). Usually someone must apply other manifests (this version's CRDs and
    manifests/rbac), yet it is retried, and never given up for good: right after its restart
    an API server answers 403 for a few seconds (RBAC not loaded yet), and a binding's
    deletion must not end with its phone still running. ``status`` is the HTTP status, the
    message the API server's own."""

    reason = "KubernetesRefused"

    def __init__(self, message: str, *, status: int, delay: float = 10.0) -> None:
        super().__init__(message, delay=delay)
        self.status = status


class PhoneBusy(TemporaryFault):
    """Geelark refused because the phone is in use (43005, 43006, 43007); try again later."""

    reason = "PhoneBusy"


class PhoneNotReady(TemporaryFault):
    """The phone is starting or its ADB endpoint is not up yet.

    ``code`` is Geelark's own when it said which (42002 not running, 49001 ADB not enabled,
    43009/43010 already starting): the ADB step acts differently on each.
    """

    reason = "PhoneStarting"

    def __init__(self, message: str, *, delay: float = 10.0, code: int | None = None) -> None:
        super().__init__(message, delay=delay)
        self.code = code


class GeelarkAuthError(PermanentFault):
    """Geelark refused the credentials (40003, 40013, 40015, 40016)."""

    reason = "GeelarkAuthFailed"

    def __init__(self, message: str, *, code: int) -> None:
        super().__init__(message)
        self.code = code


class GeelarkRequestError(PermanentFault):
    """Geelark rejected a request as malformed or refused it for good."""

    reason = "GeelarkRejected"

    def __init__(self, message: str, *, code: int) -> None:
        super().__init__(message)
        self.code = code


class PhoneNotFound(PermanentFault):
    """No phone in the Geelark account has this id or serialName."""

    reason = "PhoneNotFound"


class AmbiguousPhone(PermanentFault):
    """A serialName matches several phones; the binding must name the id."""

    reason = "AmbiguousPhone"


class InvalidSpec(PermanentFault):
    """A spec the CRD schema cannot reject by itself."""

    reason = "InvalidSpec"


class ReplicaStopping(Exception):
    """A call this replica refused to make because it lost the Lease and is stopping: another
    replica may hold the Lease by now (``fence.py``, ``leadership.py``)."""
