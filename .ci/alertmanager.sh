#!/usr/bin/env bash
# Install Debian's prometheus-alertmanager for the alert tests; they start their own
# instance on loopback, so no daemon may be left running.
#   .ci/alertmanager.sh install
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

install() {
  # The alert tests need a real Alertmanager: Debian's package. Its postinst starts
  # the service (invoke-rc.d, or deb-systemd-invoke under systemd), which would hold
  # ports 9093/9094 and fail the install where it cannot start; a policy-rc.d that
  # answers 101 ("not allowed") stops both, and any daemon that started anyway is
  # stopped after.
  if [ ! -x /usr/bin/prometheus-alertmanager ]; then
    policy=/usr/sbin/policy-rc.d
    saved_policy=
    if [ -e "$policy" ]; then
      saved_policy=$(mktemp)
      cp -p "$policy" "$saved_policy"
    fi
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    status=0
    { apt-get update -qq &&
      apt-get install -y -qq --no-install-recommends prometheus-alertmanager >/dev/null; } ||
      status=$?
    if [ -n "$saved_policy" ]; then
      mv "$saved_policy" "$policy"
    else
      rm -f "$policy"
    fi
    if [ "$status" -ne 0 ]; then
      echo "installing prometheus-alertmanager failed ($status)" >&2
      exit "$status"
    fi
    if [ -d /run/systemd/system ]; then
      systemctl stop prometheus-alertmanager.service >/dev/null 2>&1 || true
      systemctl disable prometheus-alertmanager.service >/dev/null 2>&1 || true
    fi
    pidfile=/run/prometheus/prometheus-alertmanager.pid
    if [ -f "$pidfile" ]; then
      start-stop-daemon --stop --quiet --oknodo --retry=TERM/10/KILL/5 \
        --exec /usr/bin/prometheus-alertmanager --pidfile "$pidfile" || true
      rm -f "$pidfile"
    fi
  fi
}

case "${1:-}" in
  install) install ;;
  *) echo "usage: $0 install" >&2; exit 2 ;;
esac
