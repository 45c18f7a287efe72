#!/usr/bin/env bash
# Builds Prometheus and promtool from the Go module pinned in go.mod into a cache folder keyed by
# its version, and prints that folder. A warm cache costs nothing. The tests use them to scrape the
# operator, evaluate every dashboard query and alert expression, and check and unit-test the rules.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$(awk '$1 == "require" && $2 == "github.com/prometheus/prometheus" { print $3; exit }' "$here/go.mod")"
cache_root="${PHONEFLEET_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/phonefleet}"
bin_dir="$cache_root/prometheus/prometheus-${version}"
mkdir -p "$bin_dir"

log() { printf '[prometheus] %s\n' "$*" >&2; }

export CGO_ENABLED=0
# remove_all_sd: only static and file targets are needed, which drops every cloud's SDK from the
# build (upstream's own switch for slim builds). The web UI's assets are not embedded: the tests
# use the HTTP API only.
tags="netgo,remove_all_sd"
ldflags="-s -w"
# Module v0.MMmm.p is Prometheus M.mm.p (v0.316.0 is 3.16.0).
minor="${version#v0.}"
release="$((${minor%%.*} / 100)).$((${minor%%.*} % 100)).${minor#*.}"
for var in Version=$release Revision=$version Branch=release BuildUser=phonefleet; do
	ldflags+=" -X github.com/prometheus/common/version.$var"
done

total_start=$SECONDS
for cmd in prometheus promtool; do
	if [[ -e "$bin_dir/$cmd" ]]; then
		continue
	fi
	log "Building $cmd $version ..."
	start=$SECONDS
	(cd "$here" && go build -trimpath -tags "$tags" -ldflags "$ldflags" \
		-o "$bin_dir/$cmd.tmp" "github.com/prometheus/prometheus/cmd/$cmd")
	mv "$bin_dir/$cmd.tmp" "$bin_dir/$cmd"
	log "Built $cmd in $((SECONDS - start)) s"
done
log "Prometheus binaries ready in $bin_dir ($((SECONDS - total_start)) s)"
echo "$bin_dir"
