#!/usr/bin/env bash
# Install (if needed), start, stop or restart a local Docker engine for the tests.
#   .ci/dockerd.sh install | start | stop | restart | status
# The engine logs to ${DOCKERD_LOG:-/tmp/livecluster-dockerd.log}.
set -euo pipefail

SOCK=/var/run/docker.sock
LOG=${DOCKERD_LOG:-/tmp/livecluster-dockerd.log}
PIDFILE=/var/run/docker.pid

install() {
  if command -v dockerd >/dev/null && command -v busybox >/dev/null; then
    return
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker.io busybox-static >/dev/null
}

running() {
  [ -S "$SOCK" ] && docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

start() {
  if running; then
    return
  fi
  rm -f "$PIDFILE"
  # Its own session: it outlives the shell (or test) that started it.
  setsid nohup dockerd --pidfile "$PIDFILE" >>"$LOG" 2>&1 </dev/null &
  for _ in $(seq 1 120); do
    if running; then
      return
    fi
    sleep 0.5
  done
  echo "dockerd did not come up; last lines of $LOG:" >&2
  tail -n 30 "$LOG" >&2
  exit 1
}

stop() {
  if [ -f "$PIDFILE" ]; then
    pid=$(cat "$PIDFILE")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 120); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
  fi
  rm -f "$PIDFILE"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) running && echo running || { echo stopped; exit 1; } ;;
  *) echo "usage: $0 install|start|stop|restart|status" >&2; exit 2 ;;
esac
