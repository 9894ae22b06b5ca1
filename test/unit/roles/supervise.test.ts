// The rproxy_listener supervisor (files/supervise.sh, for hosts without systemd): its log and pid files are not
// readable by other local users (the log names every application, alias and rejected document).
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../../fixtures/helpers.js';

const SUPERVISE = join(REPO, 'roles/rproxy_listener/files/supervise.sh');

test('supervise.sh writes its log and run directory for its own user only, whatever the caller\'s umask', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rproxy-supervise-'));
  const run = join(dir, 'run');
  const log = join(dir, 'log', 'listener.log');
  const sup = (...a: string[]) => spawnSync('sh', ['-c', 'umask 022; exec "$@"', 'sh', SUPERVISE, ...a], { encoding: 'utf8', env: { ...process.env, STOP_TIMEOUT: '10' } });
  try {
    const start = sup('start', 'probe', run, log, '--', 'sleep', '30');
    t.is(start.status, 0, start.stderr);
    t.is(statSync(log).mode & 0o777, 0o640);
    t.is(statSync(join(dir, 'log')).mode & 0o777, 0o750);
    t.is(statSync(run).mode & 0o777, 0o750);
    t.is(statSync(join(run, 'probe.supervisor.pid')).mode & 0o777, 0o640);
    t.is(sup('stop', 'probe', run, log).status, 0);
    chmodSync(log, 0o644); // as an earlier version left it
    t.is(sup('start', 'probe', run, log, '--', 'sleep', '30').status, 0);
    t.is(statSync(log).mode & 0o777, 0o640, 'an old world-readable log is closed');
  } finally {
    t.is(sup('stop', 'probe', run, log).status, 0);
  }
});
