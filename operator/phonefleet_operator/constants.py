"""Names shared by the operator, its manifests and its tests: API group, kinds, labels, keys, paths.

Every string here is part of a contract with something outside this process (the CRDs in ``crds/``,
label selectors people type, the worker image's command line), so it is spelled once, here.
"""

from __future__ import annotations

from typing import Final

# The API of our custom resources (crds/*.yaml spell the same names).
GROUP: Final = "phonefleet.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"

BINDING_KIND: Final = "PhoneBinding"
BINDING_PLURAL: Final = "phonebindings"
BINDING_SINGULAR: Final = "phonebinding"
BINDING_SHORT_NAMES: Final = ("pb",)

JOB_KIND: Final = "PhoneJob"
JOB_PLURAL: Final = "phonejobs"

CLAIM_KIND: Final = "PhoneClaim"
CLAIM_PLURAL: Final = "phoneclaims"
CLAIM_SINGULAR: Final = "phoneclaim"

POOL_KIND: Final = "PhonePool"
POOL_PLURAL: Final = "phonepools"
POOL_SINGULAR: Final = "phonepool"
POOL_SHORT_NAMES: Final = ("pp",)

#: ``kubectl get phonefleet`` lists every kind.
CATEGORY: Final = "phonefleet"

#: Held by every binding until its pod is gone, its phone released and its claim deleted.
FINALIZER: Final = "phonefleet.dev/release-phone"

#: Held by every PhoneClaim until no worker pod of its holder is left: a claim deleted by hand
#: then frees the phone only once the old worker is gone (docs/safety.md).
CLAIM_FINALIZER: Final = "phonefleet.dev/worker-gone"

#: Held by a PhoneJob from its first attempt's start until it finished, or, deleted, until no
#: attempt of it can still run: the gate of its binding's replacement pod reads the job while it
#: waits for that attempt to be fenced (docs/jobs.md, "A deleted job's attempt").
JOB_FINALIZER: Final = "phonefleet.dev/attempt-fenced"

# Labels: the recommended app.kubernetes.io set, plus our own for selecting by phone and binding.
LABEL_NAME: Final = "app.kubernetes.io/name"
LABEL_INSTANCE: Final = "app.kubernetes.io/instance"
LABEL_COMPONENT: Final = "app.kubernetes.io/component"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
LABEL_PART_OF: Final = "app.kubernetes.io/part-of"
LABEL_PHONE_ID: Final = "phonefleet.dev/phone-id"
LABEL_BINDING: Final = "phonefleet.dev/binding"
#: Only on cluster-scoped claims: pods and Secrets live in their binding's namespace already.
LABEL_BINDING_NAMESPACE: Final = "phonefleet.dev/binding-namespace"
#: On claims: the Geelark account (PHONEFLEET_ACCOUNT) whose operator made the claim and alone
#: may release it, so that operators of several accounts share one cluster (docs/accounts.md).
LABEL_ACCOUNT: Final = "phonefleet.dev/account"
#: The account of an operator without PHONEFLEET_ACCOUNT (one account in the cluster).
DEFAULT_ACCOUNT: Final = "default"

APP_NAME: Final = "phonefleet"
MANAGED_BY: Final = "phonefleet"
PART_OF: Final = "phonefleet"
COMPONENT_WORKER: Final = "worker"
COMPONENT_ADB: Final = "adb-secret"
COMPONENT_CLAIM: Final = "phone-claim"

#: Hash of the rendered pod; a different value on the live pod means "replace it".
ANNOTATION_SPEC_HASH: Final = "phonefleet.dev/spec-hash"
#: On a PhoneBinding being deleted: "true" lets its finalizer go even though its phone could not
#: be stopped (a person gives up on purpose; the phone may keep running and be billed).
ANNOTATION_ABANDON_PHONE: Final = "phonefleet.dev/abandon-phone"
#: On the ADB Secret: when the operator last fetched the endpoint (RFC 3339), to re-fetch it at
#: most once per threshold while a worker cannot connect.

# Keys of the per-binding ADB Secret; the worker reads them as files under ADB_MOUNT_PATH.
ADB_KEY_IP: Final = "ip"
ADB_KEY_PORT: Final = "port"
ADB_KEY_PASSWORD: Final = "password"  # noqa: S105 - the name of a key, not a password
ADB_KEY_PHONE_ID: Final = "phoneId"
ADB_KEY_UDID: Final = "udid"

#: Key of the same Secret holding the binding's job token (the worker reads it as a file).
JOB_TOKEN_KEY: Final = "jobToken"  # noqa: S105 - the name of a key, not a token

ADB_MOUNT_PATH: Final = "/var/run/phonefleet/adb"

CONTAINER_APPIUM: Final = "appium"
CONTAINER_WORKER: Final = "worker"
