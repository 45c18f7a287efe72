#!/usr/bin/env bash
# phonefleet end to end on a kind cluster: build both images, load them into kind (no registry),
# install manifests/default, run the Geelark simulator in the cluster, bind a phone and check what
# a cluster adds to the local test bed: the images, the Deployment under Pod Security
# "restricted", the ServiceAccount's RBAC, the webhook behind its Service, a real kubelet.
#
#   hack/kind-e2e.sh                          # simulator: phone-001 ... phone-005, token sim-token
#   GEELARK_TOKEN=... PHONEFLEET_KIND_PHONE=<id or serialName> hack/kind-e2e.sh   # real Geelark
#
# What it waits for. With the simulator the binding is Claimed, its phone runs, its ADB endpoint is
# in the Secret, the worker pod is scheduled and a duplicate binding is refused by the webhook.
# It cannot become Ready: the simulator reports ADB endpoints (127.0.0.1:40001...) with no phone
# behind them, so the worker never gets an Appium session; the script says so and stops there.
# With a real Geelark account (GEELARK_TOKEN, a phone of that account, and network access from the
# kind node to the phone's ADB address) it waits for Ready as well.
#
# Needs: a running Docker engine, kind (`go install sigs.k8s.io/kind@latest`) and kubectl on PATH,
# and network access for what is pulled, not built: kind's node image, the images' base
# (python:3.11-slim-bookworm unless PHONEFLEET_BASE_IMAGE names a local one) and the Appium image
# of the worker pod's sidecar (appium/appium, about 1.5 GB, pulled by the kind node). That is why
# it does not run in CI here.
#
# Environment:
#   PHONEFLEET_KIND_CLUSTER     cluster name (default phonefleet-e2e); an existing one is reused
#   PHONEFLEET_KIND_NODE_IMAGE  kind node image (default: kind's own)
#   PHONEFLEET_KIND_KEEP=1      keep the cluster this script created (default: delete it at exit)
#   PHONEFLEET_KIND_TIMEOUT     seconds for each wait (default 300)
#   PHONEFLEET_BASE_IMAGE       BASE_IMAGE build argument of the Dockerfiles
#   GEELARK_TOKEN, PHONEFLEET_KIND_PHONE   real Geelark mode (see above)
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cluster="${PHONEFLEET_KIND_CLUSTER:-phonefleet-e2e}"
context="kind-$cluster"
timeout="${PHONEFLEET_KIND_TIMEOUT:-300}"
system=phonefleet-system
namespace=phonefleet-e2e
binding=e2e-phone
operator_image=phonefleet/operator:dev
worker_image=phonefleet/worker:dev
simulator_image=phonefleet/geelark-sim:dev

log() { echo "[kind-e2e] $*" >&2; }
die() {
	log "FAILED: $*"
	exit 1
}
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is not on PATH ($2)"; }
k() { kubectl --context "$context" "$@"; }

# Poll "$@" until it succeeds, for at most $timeout seconds (works for objects that do not exist
# yet, unlike `kubectl wait` before --for=create).
wait_until() {
	local what=$1
	shift
	local deadline=$((SECONDS + timeout))
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || die "timed out after ${timeout}s waiting for $what"
		sleep 2
	done
	log "ok: $what"
}

# --- mode ---------------------------------------------------------------------------------------
if [[ -n ${GEELARK_TOKEN:-} ]]; then
	[[ -n ${PHONEFLEET_KIND_PHONE:-} ]] || die "GEELARK_TOKEN needs PHONEFLEET_KIND_PHONE (a phone of that account)"
	mode=geelark
	phone="$PHONEFLEET_KIND_PHONE"
	token="$GEELARK_TOKEN"
	overlay="$repo/hack/kind/base"
else
	mode=simulator
	phone="phone-001"
	token=sim-token
	overlay="$repo/hack/kind/simulator"
fi

need docker "install docker.io; hack/images/dockerd.sh starts an engine"
need kind "go install sigs.k8s.io/kind@latest"
need kubectl "hack/controlplane/build.sh prints a folder holding one"
docker info >/dev/null 2>&1 || die "no Docker engine answers (hack/images/dockerd.sh starts one)"

# --- cluster ------------------------------------------------------------------------------------
created=""
diagnose() {
	log "diagnostics:"
	k get phonebindings,phoneclaims -A -o wide >&2 || true
	k -n "$namespace" describe phonebinding "$binding" >&2 || true
	k -n "$system" get pods -o wide >&2 || true
	k -n "$system" logs deployment/phonefleet-operator --tail=80 >&2 || true
}
finish() {
	local status=$?
	((status == 0)) || diagnose
	if [[ -n $created && ${PHONEFLEET_KIND_KEEP:-0} != 1 ]]; then
		log "deleting cluster $cluster (PHONEFLEET_KIND_KEEP=1 keeps it)"
		kind delete cluster --name "$cluster" >/dev/null 2>&1 || true
	fi
	exit "$status"
}
trap finish EXIT

if kind get clusters 2>/dev/null | grep -qx "$cluster"; then
	log "reusing cluster $cluster"
else
	node_image=()
	[[ -n ${PHONEFLEET_KIND_NODE_IMAGE:-} ]] && node_image=(--image "$PHONEFLEET_KIND_NODE_IMAGE")
	log "creating cluster $cluster"
	kind create cluster --name "$cluster" "${node_image[@]}" --wait 180s
	created=1
fi

# --- images -------------------------------------------------------------------------------------
build_args=()
[[ -n ${PHONEFLEET_BASE_IMAGE:-} ]] && build_args=(--build-arg "BASE_IMAGE=$PHONEFLEET_BASE_IMAGE")
for build in operator:operator worker:worker simulator:geelark-sim; do
	log "building phonefleet/${build#*:}:dev"
	docker build "${build_args[@]}" -f "$repo/Dockerfile.${build%%:*}" -t "phonefleet/${build#*:}:dev" "$repo"
done
log "loading the images into $cluster"
kind load docker-image --name "$cluster" "$operator_image" "$worker_image" "$simulator_image"

# --- install ------------------------------------------------------------------------------------
log "installing $overlay ($mode)"
# The namespace first: the credentials Secret must exist when the operator starts.
k apply -f "$repo/manifests/manager/namespace.yaml"
# From stdin, so the token never shows in a process list.
printf '%s' "$token" |
	k -n "$system" create secret generic geelark-credentials --from-file=token=/dev/stdin \
		--dry-run=client -o yaml | k apply -f -
k apply -k "$overlay"
if [[ $mode == simulator ]]; then
	k -n "$system" rollout status deployment/geelark-sim --timeout="${timeout}s"
fi
# A re-run on a reused cluster must start the operator with the images just loaded.
k -n "$system" rollout restart deployment/phonefleet-operator
k -n "$system" rollout status deployment/phonefleet-operator --timeout="${timeout}s"
wait_until "the operator to register its webhook" \
	bash -c "kubectl --context '$context' get validatingwebhookconfiguration phonefleet.dev \
		-o jsonpath='{.webhooks[0].clientConfig.caBundle}' | grep -q ."

# --- a binding ----------------------------------------------------------------------------------
k create namespace "$namespace" --dry-run=client -o yaml | k apply -f -
# Worker pods must pass Pod Security "restricted" (kind enforces nothing by default).
k label namespace "$namespace" pod-security.kubernetes.io/enforce=restricted --overwrite
k -n "$namespace" apply -f - <<EOF
apiVersion: phonefleet.dev/v1alpha1
kind: PhoneBinding
metadata:
  name: $binding
spec:
  phoneId: "$phone"
EOF
k -n "$namespace" wait --for=condition=Claimed "phonebinding/$binding" --timeout="${timeout}s"
log "ok: $binding holds $phone"

# The webhook, called by the API server through Service phonefleet-webhook, refuses a second
# binding for the held phone and names the holder.
if refusal="$(k -n "$namespace" apply -f - 2>&1 <<EOF
apiVersion: phonefleet.dev/v1alpha1
kind: PhoneBinding
metadata:
  name: $binding-duplicate
spec:
  phoneId: "$phone"
EOF
)"; then
	die "a duplicate binding for $phone was admitted: $refusal"
fi
grep -q "already held by binding $namespace/$binding" <<<"$refusal" ||
	die "the duplicate was refused, but not by the webhook: $refusal"
log "ok: the webhook refused a duplicate: $refusal"

k -n "$namespace" wait --for=condition=PhoneReady "phonebinding/$binding" --timeout="${timeout}s"
log "ok: the phone runs and its ADB endpoint is in Secret $binding-adb"
k -n "$namespace" get secret "$binding-adb" >/dev/null
wait_until "pod $binding-worker to be scheduled" \
	k -n "$namespace" wait --for=condition=PodScheduled "pod/$binding-worker" --timeout=1s

if [[ $mode == geelark ]]; then
	k -n "$namespace" wait --for=condition=Ready "phonebinding/$binding" --timeout="${timeout}s"
	log "ok: $binding is Ready"
else
	log "the simulator's phones have no ADB behind them: $binding stays Bound (PodNotReady) by design"
fi
k -n "$namespace" get phonebindings -o wide
k -n "$namespace" delete phonebinding "$binding" --timeout="${timeout}s"
log "ok: $binding released (phone stopped, claim deleted)"
log "passed ($mode)"
