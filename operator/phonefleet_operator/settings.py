"""The operator's settings: pydantic-settings classes read once at start-up from PHONEFLEET_*.

Load them with :func:`load_settings`: a refusal is an :class:`InvalidSettings` whose message
names each bad variable and what is wrong with it, and never quotes a value (the Geelark token
and API key are among them). The classes also hide inputs from their own validation errors.
"""

from __future__ import annotations

import re
from typing import Any, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as UnparsableSetting

from .constants import DEFAULT_ACCOUNT, GROUP
from .models import Resources

__all__ = [
    "LEASE_STOP_MARGIN_SECONDS",
    "GeelarkSettings",
    "InvalidSettings",
    "JobSettings",
    "OperatorSettings",
    "geelark_credentials_given",
    "load_settings",
]

S = TypeVar("S", bound=BaseSettings)

_TOKEN = "PHONEFLEET_GEELARK_TOKEN"  # noqa: S105 - the variable's name, not a token
_APP_ID = "PHONEFLEET_GEELARK_APP_ID"
_API_KEY = "PHONEFLEET_GEELARK_API_KEY"
_UNPARSABLE_FIELD = re.compile(r'field "([^"]+)"')

#: The least time between the renew deadline and the lease's expiry: the replica that lost the
#: Lease stops within it (``leadership.py``).
LEASE_STOP_MARGIN_SECONDS = 2.0


class InvalidSettings(ValueError):
    """PHONEFLEET_* settings that cannot be used; the message names variables, never values."""


def load_settings(kind: type[S], **overrides: Any) -> S:
    """``kind`` read from the environment (``overrides`` win over it).

    Raises InvalidSettings with one "VARIABLE: problem" per fault and no exception chained: the
    pydantic error it replaces quotes the input, which may be a credential.
    """
    try:
        return kind(**overrides)
    except ValidationError as error:
        problems = [
            _describe(kind, tuple(e["loc"]), e["msg"])
            for e in error.errors(include_url=False, include_context=False, include_input=False)
        ]
    except UnparsableSetting as error:
        found = _UNPARSABLE_FIELD.search(str(error))
        field = found.group(1) if found else "?"
        problems = [f"{_variable(kind, field)}: could not be parsed (JSON expected)"]
    raise InvalidSettings("; ".join(problems))


def geelark_credentials_given() -> bool:
    """Whether any of the Geelark credential variables is set (their values are not kept)."""
    given = _CredentialVariables()
    return any(v is not None for v in (given.token, given.app_id, given.api_key))


def _describe(kind: type[BaseSettings], loc: tuple[int | str, ...], msg: str) -> str:
    msg = msg.removeprefix("Value error, ")
    if not loc:
        return msg
    where = _variable(kind, str(loc[0])) + "".join(f".{part}" for part in loc[1:])
    return f"{where}: {msg}"


def _variable(kind: type[BaseSettings], field: str) -> str:
    """The environment variable a field is read from."""
    info = kind.model_fields.get(field)
    if info is not None and isinstance(info.validation_alias, str):
        return info.validation_alias
    if info is None:
        return field.upper()  # pydantic reported the alias itself
    return (str(kind.model_config.get("env_prefix", "")) + field).upper()


class _CredentialVariables(BaseSettings):
    """Which Geelark credential variables are set, with no rule about them."""

    model_config = SettingsConfigDict(
        env_prefix="PHONEFLEET_GEELARK_", extra="ignore", hide_input_in_errors=True
    )

    token: SecretStr | None = None
    app_id: SecretStr | None = None
    api_key: SecretStr | None = None


class GeelarkSettings(BaseSettings):
    """How to reach and authenticate to the Geelark Open API."""

    model_config = SettingsConfigDict(
        env_prefix="PHONEFLEET_GEELARK_", extra="ignore", hide_input_in_errors=True
    )

    url: str = Field("https://openapi.geelark.com", description="Base URL of the Open API.")
    token: SecretStr | None = Field(None, description="Bearer token (token mode).")
    app_id: str | None = Field(None, description="App id (key mode, with api_key).")
    api_key: SecretStr | None = Field(None, description="API key (key mode, with app_id).")
    credentials_secret: str = Field(
        "phonefleet-system/geelark-credentials",
        description="namespace/name of the Secret holding the credentials (named in errors).",
    )
    timeout_seconds: float = Field(15.0, gt=0, description="Deadline of one HTTP call.")
    requests_per_minute: int = Field(
        125,
        gt=0,
        description=(
            "The operator's pace: at most this many Geelark calls in any 60 s, all its calls "
            "together (ten a second at most), and never more than account_requests_per_minute. "
            "The default leaves 75 of Geelark's 200 to whatever else uses the account; an "
            "operator that owns its account can set 190 (docs/operations.md)."
        ),
    )
    account_requests_per_minute: int = Field(
        200,
        gt=0,
        description=(
            "Geelark's limit for the account (200 a minute, documented): no 60 s sees more "
            "calls than this, whatever requests_per_minute is."
        ),
    )
    max_attempts: int = Field(5, ge=1, description="Tries of a retryable call before giving up.")
    batch_window_seconds: float = Field(
        0.5,
        ge=0,
        description=(
            "How long a batched call waits for more ids after the last one joined (a lone caller "
            "waits this long once; make bench, 1,000 bindings: 0.2 s cost 115 calls, 0.5 s 73)."
        ),
    )
    inventory_refresh_seconds: float = Field(
        300.0, gt=0, description="Longest age of the cached phone list before a full refresh."
    )
    inventory_miss_refresh_seconds: float = Field(
        15.0, gt=0, description="Shortest gap between two refreshes caused by a lookup miss."
    )
    live_view_in_status: bool = Field(
        False,
        description=(
            "Hand the phone's live-view link from Geelark's start reply on to the binding's "
            "status.phone.liveViewUrl. Off by default: the link opens the phone in a browser, so "
            "anyone who may read PhoneBindings could watch and control the phone (docs/secrets.md)."
            " Off, the link is only logged at debug level."
        ),
    )

    @property
    def auth_mode(self) -> Literal["token", "key"]:
        """Which of Geelark's two authentication modes the credentials select."""
        return "token" if self.token is not None else "key"

    @model_validator(mode="after")
    def _one_auth_mode(self) -> GeelarkSettings:
        if self.token is not None:
            return self
        if self.api_key is not None and self.app_id is None:
            raise ValueError(f"{_API_KEY} is set but {_APP_ID} is not: key mode needs both")
        if self.app_id is not None and self.api_key is None:
            raise ValueError(f"{_APP_ID} is set but {_API_KEY} is not: key mode needs both")
        if self.app_id is None:
            raise ValueError(
                f"Geelark credentials are missing: set {_TOKEN}, or both {_APP_ID} and {_API_KEY} "
                f"(in a cluster they come from the Secret {self.credentials_secret} (key token, "
                "or keys appId and apiKey): does it exist in the operator's namespace?)"
            )
        return self


class OperatorSettings(BaseSettings):
    """Everything the operator needs besides Geelark: images, timings, kopf tuning."""

    model_config = SettingsConfigDict(
        env_prefix="PHONEFLEET_", extra="ignore", hide_input_in_errors=True
    )

    worker_image: str = Field(
        "ghcr.io/phonefleet/worker:0.1.0",
        min_length=1,
        description=(
            "Image of the worker container unless a binding overrides it. Its entrypoint must be "
            "the phonefleet-worker CLI (the pod passes only arguments) and it must work as "
            "run_as_user with a read-only root filesystem (HOME is set to the writable /tmp)."
        ),
    )
    worker_image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        "IfNotPresent", description="imagePullPolicy of the worker container."
    )
    worker_resources: Resources = Field(
        default_factory=lambda: Resources(
            requests={"cpu": "50m", "memory": "128Mi"}, limits={"memory": "256Mi"}
        ),
        description=(
            "Default resources of the worker container (JSON in the environment). No CPU limit: "
            "throttling only slows a worker down, while a memory limit protects the node."
        ),
    )
    appium_image: str = Field(
        "appium/appium:v3.1.0-p0",
        min_length=1,
        description=(
            "Image of the Appium server sidecar unless a binding overrides it. The default is the "
            "official image (github.com/appium/appium-docker-android; tags are vX.Y.Z-pN): Appium "
            "3.1.0 with the UiAutomator2 driver installed and the Android platform tools (adb), "
            "so the pod needs nothing built by us to drive a phone."
        ),
    )
    appium_image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        "IfNotPresent", description="imagePullPolicy of the Appium container."
    )
    appium_resources: Resources = Field(
        default_factory=lambda: Resources(
            requests={"cpu": "200m", "memory": "512Mi"}, limits={"memory": "1Gi"}
        ),
        description=(
            "Default resources of the Appium container (JSON in the environment). No CPU limit, "
            "for the same reason as the worker's; Node.js and adb need the memory."
        ),
    )
    appium_command: list[str] = Field(
        default_factory=lambda: ["appium"],
        min_length=1,
        description=(
            "Command that starts the Appium server in the Appium image (the pod adds address, "
            "port and log arguments). The official image's own start script runs sudo and writes "
            "to /var/log, which a restricted pod with a read-only root filesystem forbids."
        ),
    )
    appium_home: str = Field(
        "/home/androidusr",
        pattern=r"^/",
        description=(
            "HOME of the Appium container: the official image keeps its drivers under "
            "HOME/.appium (read-only is fine); HOME/.android gets a writable emptyDir because "
            "adb creates its key there and exits if it cannot."
        ),
    )
    appium_run_as_user: int = Field(
        1300,
        ge=1,
        description=(
            "Numeric uid of the Appium container: the official image's user (androidusr, "
            "1300), who owns HOME and the installed drivers."
        ),
    )
    appium_run_as_group: int = Field(
        1301, ge=1, description="Numeric gid of the Appium container (the official image's 1301)."
    )
    appium_port: int = Field(
        4723,
        ge=1,
        le=65535,
        description="Port of the Appium server; the worker reaches it at 127.0.0.1 in its pod.",
    )
    appium_system_port: int = Field(
        8200,
        ge=1,
        le=65535,
        description=(
            "UiAutomator2 systemPort passed to the worker: Appium forwards it to the phone; one "
            "fixed value never collides, as every pod has its own network namespace."
        ),
    )
    worker_probe_port: int = Field(
        8080,
        ge=1,
        le=65535,
        description="Port of the worker's /livez and /readyz endpoints.",
    )
    worker_job_port: int = Field(
        8090,
        ge=1,
        le=65535,
        description="Port of the worker's job endpoint, where the operator delivers PhoneJobs.",
    )
    run_as_user: int = Field(
        1000,
        ge=1,
        description=(
            "Numeric non-root uid of the pod and its worker container (numeric, so the kubelet can "
            "check runAsNonRoot). The worker image must be built to run as this uid."
        ),
    )
    run_as_group: int = Field(
        1000,
        ge=1,
        description=(
            "Numeric gid of the worker container; also the pod's fsGroup, which may read the ADB "
            "Secret."
        ),
    )
    termination_grace_seconds: int = Field(
        30,
        ge=0,
        description="Seconds a worker pod gets to end its Appium session before it is killed.",
    )

    # How often a binding's reconcile pass runs again, by what it waits for.
    boot_poll_seconds: float = Field(
        2.0, gt=0, description="Next look while a phone boots or its ADB comes up."
    )
    pod_poll_seconds: float = Field(
        10.0,
        gt=0,
        description="Next look while the worker pod starts or is replaced (a change of the pod "
        "wakes the binding at once; this is the fallback).",
    )
    conflict_recheck_seconds: float = Field(
        5.0, gt=0, description="Next look while another binding holds the phone (also woken early)."
    )
    not_found_recheck_seconds: float = Field(
        30.0, gt=0, description="Next look for a phone Geelark does not have (yet)."
    )
    running_recheck_seconds: float = Field(
        60.0,
        gt=0,
        description="Periodic check of a running binding (phone status is batched across them).",
    )
    error_recheck_seconds: float = Field(
        300.0, gt=0, description="Next look at a binding in Error (a spec change wakes it at once)."
    )
    geelark_retry_seconds: float = Field(
        10.0, gt=0, description="Shortest wait before retrying after Geelark could not be asked."
    )
    adb_enable_timeout_seconds: float = Field(
        30.0, gt=0, description="ADB still off this long after enabling it: ask Geelark again."
    )
    worker_unready_threshold_seconds: float = Field(
        120.0,
        gt=0,
        description="A worker pod not Ready this long gets its ADB data fetched again (once per "
        "period).",
    )
    event_hold_seconds: float = Field(
        300.0,
        gt=0,
        description="The longest a binding on its way to Running holds its Normal Events to post "
        "them as one with the Running one; not Running by then, they are posted (its status "
        "says each step at once, and Warnings are never held).",
    )
    orphan_sweep_seconds: float = Field(
        60.0, gt=0, description="How often claims whose holder no longer exists are released."
    )
    require_pools: bool = Field(
        False,
        description=(
            "Tenancy: a phone in no PhonePool cannot be bound (without it, such phones are free "
            "for all; with no PhonePool at all tenancy is off). See docs/tenancy.md."
        ),
    )

    # Several Geelark accounts in one cluster, one operator each (docs/accounts.md).
    account: str = Field(
        DEFAULT_ACCOUNT,
        pattern=r"^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$",
        description=(
            "Name of the Geelark account this operator serves (a DNS label of at most 32 "
            "characters; a name people choose, never a credential). Stamped on every PhoneClaim "
            "it creates (label phonefleet.dev/account): it releases, watches and stops only its "
            "own account's claims. Operators of different accounts need different names and "
            "disjoint --namespace sets."
        ),
    )

    # The admission webhook (off unless enabled: it needs an address the API server can reach).
    operator_namespace: str = Field(
        "phonefleet-system",
        description="Namespace the operator runs in (its own Secrets live here).",
    )
    webhook_enabled: bool = Field(False, description="Serve the validating admission webhook.")
    webhook_addr: str = Field("0.0.0.0", description="Address the webhook server listens on.")  # noqa: S104 - in a pod, the Service routes to it
    webhook_port: int = Field(
        9443, gt=0, lt=65536, description="Port the webhook server listens on."
    )
    webhook_service: str | None = Field(
        "phonefleet-webhook",
        description="Service (in operator_namespace) the API server calls; empty: webhook_host.",
    )
    webhook_host: str | None = Field(
        None, description="Host name or IP the API server calls when no Service is used (tests)."
    )
    webhook_ca_secret: str = Field(
        "phonefleet-webhook-ca",
        description="Secret (in operator_namespace) keeping the webhook's CA.",
    )
    webhook_configuration: str | None = Field(
        None,
        description=(
            "Name of the ValidatingWebhookConfiguration the operator keeps; unset: "
            "phonefleet.dev for the account default, <account>.phonefleet.dev for any other, so "
            "that two accounts' operators never overwrite each other's."
        ),
    )
    webhook_cert_dir: str | None = Field(
        None,
        description=(
            "Use tls.crt, tls.key and ca.crt from this folder (e.g. mounted by cert-manager) "
            "instead of the operator's own CA; the server reloads them when they change."
        ),
    )

    # Monitoring (docs/operations.md).
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Serve Prometheus metrics at /metrics on this port and check for phones "
        "billed with no binding; unset (the default outside manifests/default): neither.",
    )
    metrics_addr: str = Field("0.0.0.0", description="Address the metrics server listens on.")  # noqa: S104 - scraped through the pod IP
    billing_check_seconds: float = Field(
        300.0,
        gt=0,
        description="How often the phone list is read to find phones billed with no binding "
        "(ceil(phones/100) Geelark calls each time).",
    )

    # Active and standby replicas (phonefleet_operator/leadership.py).
    leader_election: bool = Field(
        False,
        description="Work only while holding the Lease lease_name in operator_namespace, so that "
        "several replicas can run, one active (manifests/default: on, 2 replicas).",
    )
    lease_name: str = Field("phonefleet-operator", description="Name of the leader Lease.")
    lease_duration_seconds: float = Field(
        15.0, ge=1, description="A Lease not renewed for this long may be taken over."
    )
    lease_renew_deadline_seconds: float = Field(
        10.0,
        gt=0,
        description=(
            "The active replica stops if it could not renew for this long: its writes and "
            "Geelark changes are refused from then on, and what is left of "
            "lease_duration_seconds is the time its stop gets (leadership.py)."
        ),
    )
    lease_retry_seconds: float = Field(
        2.0, gt=0, description="How often the Lease is renewed, or tried by a standby."
    )

    # kopf and the Kubernetes client, tuned for many bindings.
    kubeconfig: str | None = Field(
        None,
        validation_alias="KUBECONFIG",
        description="Kubeconfig to use outside a cluster (the standard KUBECONFIG variable).",
    )
    kube_api_workers: int = Field(
        6,
        ge=1,
        description=(
            "Threads (and pooled connections) for Kubernetes API calls. The client holds the GIL "
            "while it encodes and decodes, so more threads add contention and memory, not speed "
            "(make bench, 1,000 bindings: 16 threads peaked at 300-370 MiB, 6 at about 255)."
        ),
    )
    watch_server_timeout_seconds: int = Field(
        300, gt=0, description="Watches are re-established this often so none can silently stall."
    )

    @property
    def webhook_configuration_name(self) -> str:
        """The ValidatingWebhookConfiguration of this operator's account."""
        if self.webhook_configuration:
            return self.webhook_configuration
        return GROUP if self.account == DEFAULT_ACCOUNT else f"{self.account}.{GROUP}"

    @model_validator(mode="after")
    def _ports_differ(self) -> OperatorSettings:
        # All containers share the pod's network namespace; 5037 is the adb server's port there.
        ports = {
            "appium_port": self.appium_port,
            "appium_system_port": self.appium_system_port,
            "worker_probe_port": self.worker_probe_port,
            "worker_job_port": self.worker_job_port,
            "adb server": 5037,
        }
        if len(set(ports.values())) != len(ports):
            raise ValueError(f"the pod's ports must all differ: {ports}")
        return self

    @model_validator(mode="after")
    def _lease_timings_hold(self) -> OperatorSettings:
        # As client-go's leader election requires: a renew deadline as long as the lease would
        # let a standby take over while the active replica still works (both would reconcile),
        # and one within 1.2 retry periods leaves no second renewal before it. Between the two,
        # the replica that lost the Lease stops (half of it) or is cancelled (the other half):
        # a margin under a second or two would be eaten by an event loop busy with a fleet.
        duration, deadline = self.lease_duration_seconds, self.lease_renew_deadline_seconds
        if duration - deadline < LEASE_STOP_MARGIN_SECONDS:
            raise ValueError(
                f"lease_renew_deadline_seconds ({deadline:g}) must be shorter than "
                f"lease_duration_seconds ({duration:g}) by {LEASE_STOP_MARGIN_SECONDS:g} s at "
                "least: the replica that lost the Lease stops in that time"
            )
        if deadline <= 1.2 * self.lease_retry_seconds:
            raise ValueError(
                f"lease_renew_deadline_seconds ({deadline:g}) must be longer than 1.2 times "
                f"lease_retry_seconds ({self.lease_retry_seconds:g})"
            )
        return self


class JobSettings(BaseSettings):
    """How the operator runs PhoneJobs (``PHONEFLEET_JOBS_*``); see docs/jobs.md."""

    model_config = SettingsConfigDict(env_prefix="PHONEFLEET_JOBS_", extra="ignore")

    token_key: SecretStr | None = Field(
        None,
        description=(
            "Key the per-binding job tokens are derived from (32+ random bytes, hex). Unset: the "
            "operator keeps one in the Secret named by key_secret, made at its first start."
        ),
    )
    key_secret: str = Field(
        "phonefleet-job-key", description="Secret (in operator_namespace) keeping the job key."
    )
    poll_seconds: float = Field(
        2.0, gt=0, description="How often a running attempt is asked for its outcome."
    )
    idle_seconds: float = Field(
        60.0, gt=0, description="Longest wait of a binding's job loop when nothing is due."
    )
    grace_seconds: float = Field(
        30.0,
        ge=0,
        description=(
            "Past an attempt's deadline, how long a silent worker is given before the attempt "
            "counts as TimedOut (covers clock skew and the delivery's own timeout)."
        ),
    )
    lease_seconds: float = Field(
        60.0,
        gt=0,
        description=(
            "An attempt's lease: its worker stops it when the operator has not asked about it "
            "for this long (its pod force-deleted, its node cut off), and the operator counts an "
            "attempt whose pod vanished and whose worker cannot be reached over this long (plus "
            "grace_seconds) after it last heard of it. Longer than any pause of the operator "
            "(a restart, a leader hand-over), or running attempts are stopped."
        ),
    )
    request_timeout_seconds: float = Field(
        10.0, gt=0, description="Timeout of one call to a worker's job endpoint."
    )
    endpoint_overrides: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "TEST ONLY: namespace/binding -> base URL of its job endpoint, instead of the pod's "
            "IP. The control-plane tests run real worker job servers on loopback because KWOK "
            "pods do not run; never set this in a cluster."
        ),
    )
