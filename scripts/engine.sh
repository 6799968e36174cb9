#!/bin/sh
# A running container engine for `make image-test`, from a fresh machine:
#   1. nothing to do when `docker info` answers;
#   2. no `dockerd` installed: Debian's docker.io (and debootstrap, for the stand-in base of
#      scripts/base-image.sh), which needs root;
#   3. dockerd not running: started in the background (CI machines have no systemd), its log
#      in $STATE/dockerd.log and its process id in $STATE/dockerd.pid, waited for until its
#      socket answers.
#
#   sh scripts/engine.sh start   # the engine, running
#   sh scripts/engine.sh stop    # stops the dockerd this script started, and only that one
set -eu

STATE=${IMAGE_TEST_STATE:-.image-test}
SOCKET_WAIT=60

say() { echo "engine: $*"; }

answers() { docker info > /dev/null 2>&1; }

install_engine() {
    if [ "$(id -u)" != 0 ]; then
        say "no dockerd on this machine, and installing Debian's docker.io needs root:" \
            "install Docker (or run as root) and try again" >&2
        exit 1
    fi
    say "installing Debian's docker.io and debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        docker.io debootstrap ca-certificates > "$STATE/apt.log" 2>&1 \
        || { say "apt-get install failed; its output is in $STATE/apt.log" >&2; exit 1; }
}

start() {
    mkdir -p "$STATE"
    if answers; then
        say "docker answers ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"
        return
    fi
    command -v dockerd > /dev/null 2>&1 || install_engine
    if [ "$(id -u)" != 0 ]; then
        say "dockerd is installed but not running, and starting it needs root" >&2
        exit 1
    fi
    say "starting dockerd (log: $STATE/dockerd.log)"
    # setsid: the engine outlives this make run; `stop` ends it by the id kept here.
    setsid dockerd > "$STATE/dockerd.log" 2>&1 < /dev/null &
    echo $! > "$STATE/dockerd.pid"
    waited=0
    until answers; do
        if ! kill -0 "$(cat "$STATE/dockerd.pid")" 2> /dev/null; then
            say "dockerd exited; the end of its log:" >&2
            tail -n 20 "$STATE/dockerd.log" >&2
            exit 1
        fi
        if [ "$waited" -ge "$SOCKET_WAIT" ]; then
            say "dockerd did not answer within ${SOCKET_WAIT} s (log: $STATE/dockerd.log)" >&2
            exit 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
    say "dockerd answers after ${waited} s"
}

stop() {
    if [ ! -f "$STATE/dockerd.pid" ]; then
        say "no dockerd started by this script"
        return
    fi
    pid=$(cat "$STATE/dockerd.pid")
    # A process id left by a run that died may since name another process: end only dockerd.
    if [ "$(cat "/proc/$pid/comm" 2> /dev/null)" = dockerd ] && kill "$pid" 2> /dev/null; then
        # dockerd stops its containers first: give it the time it takes.
        waited=0
        while kill -0 "$pid" 2> /dev/null && [ "$waited" -lt 30 ]; do
            sleep 1
            waited=$((waited + 1))
        done
        say "stopped dockerd ($pid)"
    fi
    rm -f "$STATE/dockerd.pid"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: sh scripts/engine.sh start|stop" >&2; exit 2 ;;
esac
