#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine (as root): installs what it needs, builds,
# runs the unit tests, then the integration tests against a real lab (network namespaces, SSH,
# ActiveMQ, nginx, keepalived). A lab that was already running is reused and left running; a lab the
# tests brought up is taken down before this script ends.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "npm test needs root: it installs Debian packages and builds its lab from network namespaces" >&2
  exit 2
fi
bash test/lab/deps.sh
npm ci --no-audit --no-fund
npm run --silent build
npx ava test/unit
lab_was_up=0
[ -e .lab/READY ] && lab_was_up=1
status=0
# One file at a time: the integration tests share one lab (RPROXY_LAB_KEEP: this script, not a
# detached reaper, takes down a lab the tests brought up).
RPROXY_LAB_KEEP=1 npx ava --serial --concurrency 1 test/integration || status=$?
if [ "$lab_was_up" = 0 ]; then bash test/lab/lab.sh down || true; fi
exit "$status"
