// status.json carries no copy of onboarding.json: `paas-rproxy status` reads onboarding.json through its owner
// (onboard/records.ts: onboardingStatus), and a copy left by an earlier version is dropped at the next write.
import test from 'ava';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { OpTracker, onboardingStatus } from '../../../generator/src/onboard/records.js';
import { readStatus, updateStatus, emptyStatus } from '../../../generator/src/status/file.js';

const dir = () => mkdtempSync(path.join(tmpdir(), 'status-'));
const statusFile = (d: string) => path.join(d, 'status.json');

test('no onboarding.json: status shows none (null)', async (t) => {
  t.is(await onboardingStatus(dir()), null);
});

test('onboarding is read from onboarding.json: in progress, then the last 5 finished; status.json is not written', async (t) => {
  const d = dir();
  const tr = new OpTracker(d, 'onboard', 'rp3', '10.0.0.3', 'cli');
  await tr.begin();
  await tr.start('preflight');
  const during = await onboardingStatus(d);
  t.is(during?.current.length, 1);
  t.is(during?.current[0]?.step, 'preflight');
  t.deepEqual(during?.last, []);
  await tr.end(true, 'ok');
  await tr.finish(true);
  for (let i = 0; i < 6; i++) { const x = new OpTracker(d, 'offboard', `rp${i}`, null, 'cli'); await x.begin(); await x.finish(true); }
  const after = await onboardingStatus(d);
  t.deepEqual(after?.current, []);
  t.deepEqual(after?.last.map((o) => o.host), ['rp1', 'rp2', 'rp3', 'rp4', 'rp5']);
  t.false(existsSync(statusFile(d)), 'onboarding records write no status.json');
});

test('a copy of onboarding.json left in status.json by an earlier version is dropped at the next write', async (t) => {
  const d = dir();
  mkdirSync(d, { recursive: true });
  writeFileSync(statusFile(d), JSON.stringify({ ...emptyStatus(), onboarding: { current: [], last: [] } }));
  await updateStatus(d, (s) => { s.pendingEvents = 3; });
  const raw = JSON.parse(readFileSync(statusFile(d), 'utf8')) as Record<string, unknown>;
  t.false('onboarding' in raw);
  t.is((await readStatus(d))?.pendingEvents, 3);
});
