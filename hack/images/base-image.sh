#!/usr/bin/env bash
# Builds the local base image phonefleet/base:bookworm (Debian bookworm with python3, venv, pip and
# this machine's CA certificates) without any registry: debootstrap a minimal root filesystem from
# the machine's own Debian mirror, then `docker import` it. Skips everything when the image exists.
#
# Why: CI machines have no registry access (`FROM python:...` cannot be pulled), and pip inside the
# build must trust the same CA certificates as the machine (a TLS-inspecting proxy otherwise fails
# with CERTIFICATE_VERIFY_FAILED). The Dockerfiles take this image through --build-arg BASE_IMAGE.
#
# Environment: PHONEFLEET_BASE_IMAGE (default phonefleet/base:bookworm), PHONEFLEET_DEBIAN_MIRROR
# (default: the machine's apt source for bookworm), PHONEFLEET_REBUILD_BASE=1 to rebuild anyway.
set -euo pipefail

image="${PHONEFLEET_BASE_IMAGE:-phonefleet/base:bookworm}"
suite=bookworm
packages=python3,python3-venv,python3-pip,ca-certificates

if [[ ${PHONEFLEET_REBUILD_BASE:-0} != 1 ]] && docker image inspect "$image" >/dev/null 2>&1; then
	echo "[base-image] $image exists; nothing to do" >&2
	exit 0
fi

sudo_cmd=()
[[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
command -v debootstrap >/dev/null 2>&1 || "$(dirname "$0")/../install-system-deps.sh"

# The mirror this machine's apt already uses for the suite (works behind the same proxy/snapshot).
mirror="${PHONEFLEET_DEBIAN_MIRROR:-}"
if [[ -z $mirror ]]; then
	# shellcheck disable=SC2016 # $(REPO_URI) and $(RELEASE) are apt's placeholders, not the shell's
	mirror="$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null |
		awk -v suite="$suite" '$2 == suite { print $1; exit }')"
fi
mirror="${mirror:-http://deb.debian.org/debian/}"

began=$SECONDS
workdir="$(mktemp -d /tmp/phonefleet-base.XXXXXX)"
rootfs="$workdir/rootfs"
cleanup() { "${sudo_cmd[@]}" rm -rf "$workdir"; }
trap cleanup EXIT

echo "[base-image] debootstrap $suite from $mirror" >&2
"${sudo_cmd[@]}" debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" \
	>"$workdir/debootstrap.log" 2>&1 || {
	tail -n 30 "$workdir/debootstrap.log" >&2
	exit 1
}
debootstrapped=$SECONDS

# Trust the machine's extra CA certificates inside the image, as the machine itself does.
shopt -s nullglob
extra_cas=(/usr/local/share/ca-certificates/*)
shopt -u nullglob
if ((${#extra_cas[@]})); then
	"${sudo_cmd[@]}" cp -r "${extra_cas[@]}" "$rootfs/usr/local/share/ca-certificates/"
fi
"${sudo_cmd[@]}" chroot "$rootfs" update-ca-certificates >/dev/null

# Keep the image small: no downloaded packages, no apt lists (a Dockerfile runs apt-get update).
"${sudo_cmd[@]}" rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
	"$rootfs"/var/log/* "$rootfs"/tmp/*

"${sudo_cmd[@]}" tar -C "$rootfs" --numeric-owner -c . |
	docker import --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' \
		--message "debootstrap $suite ($packages) from $mirror" - "$image" >/dev/null

echo "[base-image] Built $image in $((SECONDS - began))s (debootstrap $((debootstrapped - began))s)" >&2
docker image ls "$image" >&2
