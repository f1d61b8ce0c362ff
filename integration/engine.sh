#!/usr/bin/env bash
# Start or stop the Docker Engine the integration suite runs against.
#
#   integration/engine.sh start    install docker.io if dockerd is missing, start
#                                  dockerd without a bridge network, wait for it
#   integration/engine.sh stop     stop the dockerd that `start` started, by its PID
#   integration/engine.sh status   say whether an engine answers, and whose it is
#
# An engine that already answers is used as it is and never stopped: only a
# dockerd this script started (its PID is in $STATE_DIR/dockerd.pid) is.
# dockerd runs with --bridge=none and without iptables, so no container gets a
# private-range address: the tests build with --network host and run
# containers with network_mode "host" or "none".
set -euo pipefail

STATE_DIR=${PYINIT_ENGINE_STATE:-/run/pyinit-engine}
PIDFILE=$STATE_DIR/dockerd.pid
LOGFILE=$STATE_DIR/dockerd.log
SOCKET=/var/run/docker.sock
START_TIMEOUT=${PYINIT_ENGINE_START_TIMEOUT:-90}
STOP_TIMEOUT=30

say() { printf 'engine: %s\n' "$*" >&2; }

answers() {
    # Whether the engine that the tests' docker SDK would reach (DOCKER_HOST or
    # the default socket) answers; the docker CLI asks when the SDK is missing.
    local python=${PYTHON:-python3}
    if "$python" -c 'import docker' 2>/dev/null; then
        "$python" -c 'import docker; docker.from_env(timeout=5).ping()' >/dev/null 2>&1
    elif command -v docker >/dev/null; then
        timeout 10 docker version >/dev/null 2>&1
    else
        return 1
    fi
}

our_pid() {
    # The PID we recorded, if that process is still a dockerd.
    [[ -s $PIDFILE ]] || return 1
    local pid cmdline
    pid=$(cat "$PIDFILE")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ $cmdline == dockerd* || $cmdline == */dockerd* ]] || return 1
    echo "$pid"
}

install_engine() {
    say "dockerd not found: installing Debian's docker.io"
    export DEBIAN_FRONTEND=noninteractive
    # Keep the package's own service scripts from starting a default engine
    # (one with a bridge network) during the install.
    local guard=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        guard=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' >"$guard"
        chmod +x "$guard"
    fi
    apt-get update -q
    apt-get install -y -q docker.io || { [[ -n $guard ]] && rm -f "$guard"; exit 1; }
    [[ -n $guard ]] && rm -f "$guard"
    return 0
}

start() {
    if pid=$(our_pid); then
        if answers; then
            say "already running (pid $pid, started by this script)"
            return 0
        fi
        say "dockerd pid $pid from an earlier start does not answer: stopping it"
        stop
    fi
    if answers; then
        say "an engine is already running (not ours): using it, and it will not be stopped"
        return 0
    fi
    command -v dockerd >/dev/null || install_engine
    command -v docker-init >/dev/null || say "warning: docker-init is missing: the 'docker run --init' test will fail"
    mkdir -p "$STATE_DIR"
    rm -f "$PIDFILE"
    say "starting dockerd (log: $LOGFILE)"
    # setsid: the daemon must outlive this script and its caller's process group.
    setsid dockerd \
        --bridge=none --iptables=false --ip6tables=false --ip-masq=false \
        --host "unix://$SOCKET" --pidfile "$PIDFILE" \
        </dev/null >"$LOGFILE" 2>&1 &
    local launched=$! pid
    local deadline=$((SECONDS + START_TIMEOUT))
    until answers; do
        if ! kill -0 "$launched" 2>/dev/null && ! our_pid >/dev/null; then
            say "dockerd exited during start; its log ends:"
            tail -n 30 "$LOGFILE" >&2
            exit 1
        fi
        if ((SECONDS >= deadline)); then
            say "dockerd did not answer within ${START_TIMEOUT}s; its log ends:"
            tail -n 30 "$LOGFILE" >&2
            kill -TERM "$launched" 2>/dev/null || true
            exit 1
        fi
        sleep 0.5
    done
    # dockerd writes its own PID to the pidfile: that is the one `stop` ends.
    if ! pid=$(our_pid); then
        pid=$launched
        echo "$pid" >"$PIDFILE"
    fi
    say "dockerd answers (pid $pid)"
}

stop() {
    local pid
    if ! pid=$(our_pid); then
        say "no dockerd started by this script is running: nothing to stop"
        rm -f "$PIDFILE"
        return 0
    fi
    say "stopping dockerd pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            say "dockerd pid $pid still running after ${STOP_TIMEOUT}s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    rm -f "$PIDFILE"
    say "stopped"
}

status() {
    if pid=$(our_pid); then
        say "dockerd pid $pid, started by this script"
    fi
    if answers; then say "an engine answers"; else say "no engine answers"; return 1; fi
}

case ${1:-} in
start) start ;;
stop) stop ;;
status) status ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
