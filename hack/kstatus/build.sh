#!/usr/bin/env bash
# Builds the kstatus command (main.go) against the cli-utils release pinned in go.mod into a cache
# folder keyed by that version and a hash of main.go, and prints the binary's path.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
module=sigs.k8s.io/cli-utils
version="$(awk -v m="$module" '$1 == m || $1 == "require" && $2 == m { print $NF; exit }' "$here/go.mod")"
source_hash="$(cat "$here/main.go" "$here/go.sum" | sha256sum | cut -c1-12)"
cache_root="${PHONEFLEET_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/phonefleet}"
bin_dir="$cache_root/kstatus/cli-utils-${version}_${source_hash}"
mkdir -p "$bin_dir"

if [[ ! -e "$bin_dir/kstatus" ]]; then
	printf '[kstatus] Building kstatus with cli-utils %s ...\n' "$version" >&2
	start=$SECONDS
	(cd "$here" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin_dir/kstatus.tmp" .)
	mv "$bin_dir/kstatus.tmp" "$bin_dir/kstatus"
	printf '[kstatus] Built kstatus in %d s\n' "$((SECONDS - start))" >&2
fi
echo "$bin_dir/kstatus"
