#!/usr/bin/env bash
# Installs the Appium server and Appium's fake driver (versions pinned by package-lock.json beside
# this script) with npm into a cache folder outside the repository, and prints that folder: use it
# as APPIUM_HOME and run "$APPIUM_HOME/node_modules/.bin/appium". A warm cache costs nothing; a
# changed lock file installs into a new folder. Needs Node.js 20.19+ and npm on PATH.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { printf '[appium] %s\n' "$*" >&2; }

for tool in node npm sha256sum; do
	command -v "$tool" >/dev/null || { log "Missing $tool on PATH: install Node.js 20.19+ with npm"; exit 1; }
done
# Appium 3 wants Node ^20.19 || ^22.12 || >=24; Debian bookworm's own nodejs (18) is too old.
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number);
	process.exit(a >= 24 || (a === 22 && b >= 12) || (a === 20 && b >= 19) ? 0 : 1);'; then
	log "Node.js $(node --version) is too old for Appium 3: install Node.js 20.19+ (e.g. NodeSource's nodejs 20)"
	exit 1
fi

pinned_version() { # package name -> the version package.json pins
	node -e 'const p = require(process.argv[1]); process.stdout.write(p.dependencies[process.argv[2]]);' \
		"$here/package.json" "$1"
}

appium_version="$(pinned_version appium)"
fake_version="$(pinned_version @appium/fake-driver)"
lock_digest="$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -c1-12)"
cache_root="${PHONEFLEET_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/phonefleet}"
appium_home="$cache_root/appium-${appium_version}_fake-driver-${fake_version}_${lock_digest}"
done_marker="$appium_home/.installed"

if [[ ! -f "$done_marker" ]]; then
	log "Installing appium $appium_version and @appium/fake-driver $fake_version into $appium_home ..."
	start=$SECONDS
	mkdir -p "$cache_root"
	# Install beside the final folder, then rename: an interrupted install never looks finished.
	staging="$(mktemp -d "$cache_root/.appium-staging.XXXXXX")"
	trap 'rm -rf "$staging"' EXIT
	cp "$here/package.json" "$here/package-lock.json" "$staging/"
	# --ignore-scripts: appium's only install script auto-installs drivers named in the environment,
	# and the fake driver is found as a plain dependency in APPIUM_HOME without it.
	(cd "$staging" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
	APPIUM_HOME="$staging" "$staging/node_modules/.bin/appium" --version >/dev/null
	touch "$staging/.installed"
	rm -rf "$appium_home"
	mv "$staging" "$appium_home"
	trap - EXIT
	log "Installed in $((SECONDS - start)) s"
fi

printf '%s\n' "$appium_home"
