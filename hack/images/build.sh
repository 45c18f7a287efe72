#!/usr/bin/env bash
# Builds phonefleet/operator:dev, phonefleet/worker:dev and phonefleet/geelark-sim:dev (the
# simulator, from the test bed) on the local base image (no registry), then prints each build's
# time and the images' sizes. Run dockerd.sh and base-image.sh first.
#
# Environment: PHONEFLEET_BASE_IMAGE (default phonefleet/base:bookworm), PHONEFLEET_IMAGE_TAG
# (default dev), PHONEFLEET_NO_CACHE=1 for a cold build (docker build --no-cache).
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
base="${PHONEFLEET_BASE_IMAGE:-phonefleet/base:bookworm}"
tag="${PHONEFLEET_IMAGE_TAG:-dev}"
# Every image this script builds carries this label, so it can prune its own replaced builds.
label="dev.phonefleet.built-by=hack/images/build.sh"
extra=()
[[ ${PHONEFLEET_NO_CACHE:-0} == 1 ]] && extra+=(--no-cache)

if ! docker image inspect "$base" >/dev/null 2>&1; then
	echo "[build] The base image $base is missing: run hack/images/base-image.sh first" >&2
	exit 1
fi

for build in operator:operator worker:worker simulator:geelark-sim; do
	component="${build%%:*}"
	image="phonefleet/${build#*:}:$tag"
	log="$(mktemp "/tmp/phonefleet-build-$component.XXXXXX.log")"
	began=$SECONDS
	# --network host: pip reaches the package index the way the machine does (no bridge needed).
	if ! docker build --network host --build-arg BASE_IMAGE="$base" --label "$label" "${extra[@]}" \
		--file "$repo/Dockerfile.$component" --tag "$image" "$repo" >"$log" 2>&1; then
		echo "[build] Building $image failed; the end of $log:" >&2
		tail -n 40 "$log" >&2
		exit 1
	fi
	echo "[build] Built $image in $((SECONDS - began))s" >&2
	rm -f "$log"
done
# The images these builds replaced (now untagged) and their layers; other images stay.
docker image prune --force --filter "label=$label" >/dev/null
docker image ls --format 'table {{.Repository}}:{{.Tag}}\t{{.ID}}\t{{.Size}}' \
	--filter "reference=phonefleet/*" >&2
