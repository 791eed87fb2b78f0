#!/usr/bin/env bash
# Install Debian's chromium for the browser tests of the HTML report page; they run it
# headless on local files, so nothing is started here.
#   .ci/chromium.sh install
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

install() {
  if command -v chromium >/dev/null || command -v chromium-browser >/dev/null ||
    command -v google-chrome >/dev/null; then
    return 0
  fi
  status=0
  { apt-get update -qq &&
    apt-get install -y -qq chromium >/dev/null; } || status=$?
  if [ "$status" -ne 0 ]; then
    echo "installing chromium failed ($status)" >&2
    exit "$status"
  fi
}

case "${1:-}" in
  install) install ;;
  *) echo "usage: $0 install" >&2; exit 2 ;;
esac
