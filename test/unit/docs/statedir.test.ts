// One module owns every path under the state directory (generator/src/io/statedir.ts): no other source names a
// state file, and docs/ARCHITECTURE.md lists every one of them.
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { STATE_DIR_LAYOUT } from '../../../generator/src/io/statedir.js';
import { REPO } from '../../fixtures/helpers.js';
import { SRC } from '../../fixtures/layers.js';

/** The file names of the layout that only a state file would carry ("status.json", "warm-ansible-"). */
const NAMES = [...new Set(STATE_DIR_LAYOUT.map((f) => f.path.split('/').at(-1)!.split('<')[0]!).filter((n) => /[.-]/.test(n)))];

/** Where a source spells a state file's name in a string: 'status.json', "dns.lock", `warm-ansible-${pid}`. */
export function namedIn(text: string, names: readonly string[]): string[] {
  return names.filter((n) => new RegExp(`['"\`]${n.replace(/[.]/g, '\\.')}`).test(text));
}

test('the check finds a state file named in a string', (t) => {
  t.deepEqual(namedIn("const f = path.join(dir, 'status.json');", NAMES), ['status.json']);
  t.deepEqual(namedIn('const s = `warm-ansible-${pid}.sock`;', NAMES), ['warm-ansible-']);
  t.deepEqual(namedIn('// <state_dir>/status.json, read by status', NAMES), []);
  t.true(NAMES.includes('playbook.lock') && NAMES.includes('onboarding.json') && NAMES.includes('applied-messages.log'));
});

/** Same name, other directory: the 0.1 layout's group_vars/<proxies>/rproxy_routes.json in the inventory. */
const ELSEWHERE = new Set(['vars/paths.ts: rproxy_routes.json']);

test('no source but io/statedir.ts names a file of the state directory', (t) => {
  const files = (readdirSync(SRC, { recursive: true }) as string[]).map((f) => f.split(path.sep).join('/')).filter((f) => f.endsWith('.ts') && f !== 'io/statedir.ts');
  const found = files.flatMap((f) => namedIn(readFileSync(path.join(SRC, f), 'utf8'), NAMES).map((n) => `${f}: ${n}`)).filter((x) => !ELSEWHERE.has(x));
  t.deepEqual(found, []);
});

test('docs/ARCHITECTURE.md lists every file of the state directory with its owner', (t) => {
  const doc = readFileSync(path.join(REPO, 'docs', 'ARCHITECTURE.md'), 'utf8');
  for (const f of STATE_DIR_LAYOUT) {
    t.true(doc.includes(`\`${f.path}\``), `${f.path} is listed`);
    t.true(doc.includes(`\`${f.owner}\``), `${f.owner} is named`);
  }
});
