// A corrupt fleet.json is an error that stops automatic onboarding (never "no record: adopt the group as it is").
import test from 'ava';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defaultConfig } from '../../../generator/src/config.js';
import { exitCodeFor, isRproxyError } from '../../../generator/src/errors.js';
import { fleetProxies, parseFleet, readFleet, writeFleet } from '../../../generator/src/status/fleet.js';
import { fleetFile as fleetPath } from '../../../generator/src/io/statedir.js';
import { checkInventory } from '../../../generator/src/onboard/watcher.js';

function tmp() {
  const dir = mkdtempSync(path.join(tmpdir(), 'onb-fleet-'));
  mkdirSync(path.join(dir, 'inv'));
  writeFileSync(path.join(dir, 'inv', 'hosts.yml'), 'all:\n  children:\n    proxies:\n      hosts:\n        rp1:\n          ansible_host: 10.0.0.1\n        rp3:\n          ansible_host: 10.0.0.3\n');
  return { ...defaultConfig(), inventory_dir: path.join(dir, 'inv'), state_dir: path.join(dir, 'var') };
}

test('readFleet: none yet is null; a record reads back; anything else is ERR_STATE_CORRUPT naming the file and the way out', async (t) => {
  const c = tmp();
  t.is(await readFleet(c.state_dir), null);
  await writeFleet(c.state_dir, [{ name: 'rp1', address: '10.0.0.1' }, { name: 'rp2', address: null }], 'k');
  t.like(await readFleet(c.state_dir), { schema: 1, proxies: [{ name: 'rp1', address: '10.0.0.1' }, { name: 'rp2', address: null }], vrrpKey: 'k' });
  for (const [text, why] of [['{"proxies": [', 'not JSON'], ['', 'not JSON'], ['null', 'no "proxies" list'], ['{"proxies": {}}', 'no "proxies" list'], ['{"proxies": [{"name": 1, "address": null}]}', 'no "proxies" list'], ['{"proxies": [{"name": "rp1"}]}', 'no "proxies" list']] as const) {
    writeFileSync(fleetPath(c.state_dir), text);
    const e = await t.throwsAsync(readFleet(c.state_dir));
    t.true(isRproxyError(e, 'ERR_STATE_CORRUPT'), text);
    t.is(exitCodeFor(e), 1);
    t.true(e!.message.startsWith(`${fleetPath(c.state_dir)} is not a fleet record (${why}`), e!.message);
    t.regex(e!.message, /automatic onboarding and offboarding stop until it is fixed\. Restore it from a backup; or, .* remove it/);
  }
  t.notThrows(() => parseFleet('{"schema":1,"proxies":[]}', 'f'));
});

test('the watcher with a corrupt fleet.json: an error for the listener to log, never an adoption (the added host is not skipped)', async (t) => {
  const c = tmp();
  await writeFleet(c.state_dir, [{ name: 'rp1', address: '10.0.0.1' }]);
  t.deepEqual((await checkInventory(c)).actions.map((a) => a.kind), ['onboard'], 'rp3 was added: onboard it');
  writeFileSync(fleetPath(c.state_dir), '{"proxies": [{"name": "rp1", "addr');
  const e = await t.throwsAsync(checkInventory(c));
  t.true(isRproxyError(e, 'ERR_STATE_CORRUPT'));
  t.is(readFileSync(fleetPath(c.state_dir), 'utf8'), '{"proxies": [{"name": "rp1", "addr', 'left for the operator to fix');
});

test('a corrupt fleet.json stops onboarding, never routing: the runner keeps every proxy of the group', async (t) => {
  const c = tmp();
  mkdirSync(c.state_dir, { recursive: true });
  writeFileSync(fleetPath(c.state_dir), 'not json');
  t.deepEqual(await fleetProxies(c, ['rp1', 'rp3']), ['rp1', 'rp3']);
  await writeFleet(c.state_dir, [{ name: 'rp1', address: null }]);
  t.deepEqual(await fleetProxies(c, ['rp1', 'rp3']), ['rp1']);
});
