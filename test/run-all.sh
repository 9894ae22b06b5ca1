#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine (as root): installs what it needs, builds,
# runs the unit tests, then the integration tests against a real lab they bring up and tear down.
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/lab/deps.sh
npm ci --no-audit --no-fund
npm run --silent build
npx ava test/unit
if [ "$(id -u)" = 0 ]; then
  npx ava --serial test/integration
else
  echo "integration tests need root (network namespaces); skipped" >&2
  exit 1
fi
