#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine (as root): installs what it needs, builds, lints,
# runs the unit tests (pure: no tool but Node), the contract tests (test/contract: real nginx and Ansible), then the integration tests against a real lab (network namespaces, SSH, ActiveMQ,
# nginx, keepalived) on both lab profiles:
#   default  test/integration/*.test.ts (every integration test file)
#   prod     test/integration/prod/*.test.ts plus the end-to-end checks that matter on a real installation:
#            routing through every VIP (lab-routing) and onboarding (onboard-lab); the listener's intake is in prod/
# A lab that was already running is reused for its own profile and left running; a lab the tests brought up
# is taken down before this script ends. PAAS_RPROXY_TEST_PROFILES=default (or prod) runs one profile only.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "npm test needs root: it installs Debian packages and builds its lab from network namespaces" >&2
  exit 2
fi
t0=$(date +%s)
bash test/lab/deps.sh
npm ci --no-audit --no-fund
npm run --silent build
bash test/lint.sh
npx ava test/unit
# the contract tier: the project against the real nginx and Ansible (deps.sh installed them above); CI=true makes a
# missing tool a failure instead of a skip
npx ava test/contract
lab_was_up=0
[ -e .lab/READY ] && lab_was_up=1
status=0
profiles=${PAAS_RPROXY_TEST_PROFILES:-default prod}
for profile in $profiles; do
  case $profile in
    default) files=(test/integration/*.test.ts) ;;
    prod) files=(test/integration/prod/*.test.ts test/integration/lab-routing.test.ts test/integration/onboard-lab.test.ts) ;;
    *) echo "unknown profile $profile" >&2; exit 2 ;;
  esac
  echo "== integration tests, lab profile $profile ($(( $(date +%s) - t0 )) s so far)"
  # One file at a time: the integration tests share one lab (RPROXY_LAB_KEEP: this script, not a detached
  # reaper, takes down a lab the tests brought up).
  PAAS_RPROXY_LAB_PROFILE=$profile RPROXY_LAB_KEEP=1 npx ava --serial --concurrency 1 "${files[@]}" || status=$?
done
if [ "$lab_was_up" = 0 ]; then bash test/lab/lab.sh down || true; fi
echo "== npm test took $(( $(date +%s) - t0 )) s (exit $status)"
exit "$status"
