#!/usr/bin/env bash
# Installs the tools some tests use beyond the build itself (idempotent), and prints the path of the
# headless browser that renders the HTML report: Debian's `chromium` package.
# Exit status 0 with the browser's path on stdout, or 1 when it is absent and cannot be installed.
set -euo pipefail

find_browser() {
  for b in chromium chromium-browser google-chrome; do
    if command -v "$b" >/dev/null 2>&1; then command -v "$b"; return 0; fi
  done
  return 1
}

if find_browser; then exit 0; fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "setup-test-tools: chromium is missing and installing it needs root" >&2; exit 1
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-test-tools: chromium is missing and there is no apt-get to install it" >&2; exit 1
fi
echo "setup-test-tools: installing chromium" >&2
# A lock file keeps concurrent test processes from running apt at the same time.
exec 9>/tmp/agentopt-setup-test-tools.lock
flock 9
if find_browser; then exit 0; fi
{ $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium; } >&2 || {
  echo "setup-test-tools: could not install chromium" >&2; exit 1; }
find_browser
