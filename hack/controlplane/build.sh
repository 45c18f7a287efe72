#!/usr/bin/env bash
# Builds the test control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# kubectl, kwok) from Go modules into a cache folder keyed by their versions, and prints that
# folder. A warm cache costs nothing; a cold one rebuilds what is missing.
#
# `build.sh node` builds the real node's binaries instead (kubelet and kube-proxy from the same
# Kubernetes module, containerd with its shim and ctr, the sandbox's pause program) into a folder
# keyed by the Kubernetes and containerd versions, and prints that folder.
set -euo pipefail

target="${1:-controlplane}"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
module_version() { awk -v m="$1" '$1 == m || $1 == "require" && $2 == m { print $NF; exit }' "$2"; }

kube_version="$(module_version k8s.io/kubernetes "$here/kube/go.mod")"
etcd_version="$(module_version go.etcd.io/etcd/server/v3 "$here/etcd/go.mod")"
kwok_version="$(cat "$here/kwok.version")"
node_dir="$here/../node"
containerd_version="$(module_version github.com/containerd/containerd/v2 "$node_dir/containerd/go.mod")"
cache_root="${PHONEFLEET_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/phonefleet}"
case "$target" in
controlplane) bin_dir="$cache_root/controlplane/kube-${kube_version}_etcd-${etcd_version}_kwok-${kwok_version}" ;;
node) bin_dir="$cache_root/node/kube-${kube_version}_containerd-${containerd_version}" ;;
*)
	echo "usage: $0 [controlplane|node]" >&2
	exit 2
	;;
esac
mkdir -p "$bin_dir"

log() { printf '[controlplane] %s\n' "$*" >&2; }

export CGO_ENABLED=0
build_flags=(-trimpath -tags=notest)

kube_ldflags() {
	local minor="${kube_version#v1.}"
	minor="${minor%%.*}"
	local date
	date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	local flags="-s -w"
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		flags+=" -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
		flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date -X $pkg.gitCommit=$kube_version"
	done
	printf '%s' "$flags"
}

timed_build() { # name, then the command that builds it
	local name="$1"
	shift
	if [[ -e "$bin_dir/$name" ]]; then
		return
	fi
	log "Building $name ..."
	local start=$SECONDS ticker
	# A cold build takes minutes of silence: a line every 30 s shows it is alive.
	# Its stdout is not ours: a caller reading the printed folder must not wait for its sleep.
	(while sleep 30; do log "Still building $name ($((SECONDS - start)) s)"; done) >/dev/null &
	ticker=$!
	# shellcheck disable=SC2064 # the ticker's pid is known now, and must die with a failed build
	trap "kill $ticker 2>/dev/null" EXIT
	"$@"
	kill "$ticker" 2>/dev/null || true
	trap - EXIT
	log "Built $name in $((SECONDS - start)) s"
}

build_kube() {
	(cd "$here/kube" && go build "${build_flags[@]}" -ldflags "$(kube_ldflags)" \
		-o "$bin_dir/$1.tmp" "k8s.io/kubernetes/cmd/$1") && mv "$bin_dir/$1.tmp" "$bin_dir/$1"
}
build_etcd() {
	(cd "$here/etcd" && go build "${build_flags[@]}" -ldflags "-s -w" \
		-o "$bin_dir/etcd.tmp" go.etcd.io/etcd/server/v3) && mv "$bin_dir/etcd.tmp" "$bin_dir/etcd"
}
build_kwok() {
	local gobin
	gobin="$(mktemp -d)"
	GOBIN="$gobin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$kwok_version"
	mv "$gobin/kwok" "$bin_dir/kwok"
	rmdir "$gobin"
}

copy_kwok_stages() {
	# KWOK exits with "no stages found" unless given stage files; they ship in its module.
	local src tmp
	src="$(go mod download -json "sigs.k8s.io/kwok@$kwok_version" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
	tmp="$bin_dir/kwok-stages.tmp"
	rm -rf "$tmp" && mkdir -p "$tmp"
	for stage in node/fast node/heartbeat-with-lease pod/fast; do
		for file in "$src/kustomize/stage/$stage"/*.yaml; do
			if grep -q "^kind: Stage" "$file"; then cp "$file" "$tmp/"; fi
		done
	done
	chmod -R u+w "$tmp"
	mv "$tmp" "$bin_dir/kwok-stages"
}

build_containerd() {
	(cd "$node_dir/containerd" && go build -trimpath -tags no_btrfs \
		-ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$containerd_version" \
		-o "$bin_dir/$1.tmp" "github.com/containerd/containerd/v2/cmd/$1") && mv "$bin_dir/$1.tmp" "$bin_dir/$1"
}
build_pause() {
	(cd "$node_dir/pause" && go build -trimpath -ldflags "-s -w" -o "$bin_dir/pause.tmp" .) &&
		mv "$bin_dir/pause.tmp" "$bin_dir/pause"
}

total_start=$SECONDS
if [[ $target == node ]]; then
	for cmd in kubelet kube-proxy; do
		timed_build "$cmd" build_kube "$cmd"
	done
	for cmd in containerd containerd-shim-runc-v2 ctr; do
		timed_build "$cmd" build_containerd "$cmd"
	done
	timed_build pause build_pause
	log "Node binaries ready in $bin_dir ($((SECONDS - total_start)) s)"
	echo "$bin_dir"
	exit 0
fi
timed_build etcd build_etcd
for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
	timed_build "$cmd" build_kube "$cmd"
done
timed_build kwok build_kwok
timed_build kwok-stages copy_kwok_stages
log "Control plane binaries ready in $bin_dir ($((SECONDS - total_start)) s)"
echo "$bin_dir"
