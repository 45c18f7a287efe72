#!/usr/bin/env bash
# Installs the Debian packages the test suite runs for real (adb; Docker and debootstrap for the
# image tests; runc, the CNI plugins, iproute2 and iptables for the real node).
# Idempotent: packages already present cost nothing and apt is not touched.
set -euo pipefail

wanted=(adb docker.io debootstrap runc containernetworking-plugins iproute2 iptables)
missing=()
for package in "${wanted[@]}"; do
	dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
	echo "[system-deps] Installing ${missing[*]}" >&2
	sudo_cmd=()
	[[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
	"${sudo_cmd[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
