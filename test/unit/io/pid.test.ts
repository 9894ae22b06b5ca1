import test from 'ava';
import { spawnSync } from 'node:child_process';
import { pidAlive } from '../../../generator/src/io/pid.js';

test('pidAlive: this process yes, a process that exited no, never a process group (0, negative) or a non-integer', (t) => {
  t.true(pidAlive(process.pid));
  const gone = spawnSync(process.execPath, ['-e', '0']).pid;
  t.false(pidAlive(gone));
  for (const pid of [undefined, 0, -1, -process.pid, 1.5, Number.NaN]) t.false(pidAlive(pid), String(pid));
});
