#!/usr/bin/env bash
# Builds phonefleet/appium-fake:dev, the Appium sidecar of the test bed's real node: the Appium
# server and fake driver that hack/appium/install.sh installs from npm, with this machine's
# Node.js, on the local base image (no registry). Skips the build when the image already holds
# the same Appium folder. Run dockerd.sh and base-image.sh first.
#
# Environment: PHONEFLEET_BASE_IMAGE (default phonefleet/base:bookworm), PHONEFLEET_APPIUM_IMAGE
# (default phonefleet/appium-fake:dev).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
base="${PHONEFLEET_BASE_IMAGE:-phonefleet/base:bookworm}"
image="${PHONEFLEET_APPIUM_IMAGE:-phonefleet/appium-fake:dev}"
label="dev.phonefleet.built-by=hack/images/appium-image.sh"

appium_home="$("$repo/hack/appium/install.sh")"
# The folder's name carries the Appium and driver versions and the lock file's digest.
source="$(basename "$appium_home")_$(sha256sum "$here/Dockerfile.appium-fake" | cut -c1-12)"
source_label="dev.phonefleet.appium-source=$source"
if [[ "$(docker image inspect --format '{{ index .Config.Labels "dev.phonefleet.appium-source" }}' "$image" 2>/dev/null)" == "$source" ]]; then
	echo "[appium-image] $image is up to date" >&2
	exit 0
fi

context="$(mktemp -d /tmp/phonefleet-appium-image.XXXXXX)"
trap 'rm -rf "$context"' EXIT
cp "$(command -v node)" "$context/node"
cp -a "$appium_home" "$context/appium"
# The extension manifest records the drivers' install path on this machine; in the image it is
# /opt/appium. Rewritten, not regenerated: Appium would then also want to write a package hash.
sed -i "s#$appium_home#/opt/appium#g" "$context/appium/node_modules/.cache/appium/extensions.yaml"
cp "$repo/tests/appium/fixtures/fake_app.xml" "$here/Dockerfile.appium-fake" "$context/"
began=$SECONDS
log="$context/build.log"
if ! docker build --network host --build-arg BASE_IMAGE="$base" --label "$label" --label "$source_label" \
	--file "$context/Dockerfile.appium-fake" --tag "$image" "$context" >"$log" 2>&1; then
	echo "[appium-image] Building $image failed:" >&2
	tail -n 40 "$log" >&2
	exit 1
fi
docker image prune --force --filter "label=$label" >/dev/null
echo "[appium-image] Built $image in $((SECONDS - began))s" >&2
