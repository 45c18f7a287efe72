#!/usr/bin/env bash
# Makes a Docker engine answer on this machine: does nothing when `docker info` already works,
# otherwise installs Debian's docker.io if dockerd is missing and starts dockerd in the background
# (it outlives this script; its log goes to $PHONEFLEET_DOCKERD_LOG). Idempotent.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
log="${PHONEFLEET_DOCKERD_LOG:-/tmp/phonefleet-dockerd.log}"
deadline_seconds="${PHONEFLEET_DOCKERD_TIMEOUT:-60}"
pidfile=/var/run/docker.pid

# /proc rather than kill -0: it also sees root's dockerd from an unprivileged user.
is_alive() { [[ -n $1 && -d /proc/$1 ]]; }
pidfile_alive() { [[ -s $pidfile ]] && is_alive "$(cat "$pidfile")"; }

if docker info >/dev/null 2>&1; then
	exit 0
fi

sudo_cmd=()
[[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)

if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
	"$here/../install-system-deps.sh"
fi

# A dockerd that is still starting owns the pid file: wait for it instead of starting another.
running=""
if pidfile_alive; then
	running="$(cat "$pidfile")"
	echo "[dockerd] dockerd (pid $running) is running; waiting for it to answer" >&2
else
	echo "[dockerd] Starting dockerd; log: $log" >&2
	"${sudo_cmd[@]}" setsid nohup dockerd --pidfile "$pidfile" >>"$log" 2>&1 </dev/null &
	running=$!
fi

began=$SECONDS
until docker info >/dev/null 2>&1; do
	if ((SECONDS - began >= deadline_seconds)); then
		echo "[dockerd] Docker did not answer within ${deadline_seconds}s; the end of $log:" >&2
		tail -n 30 "$log" >&2 || true
		exit 1
	fi
	if ! is_alive "$running" && ! pidfile_alive; then
		echo "[dockerd] dockerd exited; the end of $log:" >&2
		tail -n 30 "$log" >&2 || true
		exit 1
	fi
	sleep 0.5
done
echo "[dockerd] Docker answered after $((SECONDS - began))s" >&2
