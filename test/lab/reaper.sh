#!/usr/bin/env bash
# Started (detached) by the integration tests' lab helper when the tests brought the lab up:
# waits until the test runner process PID exits, then takes the lab down, but only if it is still the
# same lab instance (.lab/started-at == STARTED_AT), so a lab someone started since is never removed.
#   reaper.sh PID STARTED_AT
set -u
pid=$1 started=$2
dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
lab="$(cd "$dir/../.." && pwd)/.lab"
while kill -0 "$pid" 2>/dev/null; do sleep 1; done
# wait for any lab test file still running (of another test run that reused this lab), then check again
exec 8>/tmp/paas-rproxy-lab-tests.lock
flock -x 8
if [ "$(cat "$lab/started-at" 2>/dev/null)" = "$started" ]; then
  bash "$dir/lab.sh" down 8>&-
fi
