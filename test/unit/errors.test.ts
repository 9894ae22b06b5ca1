// The one error family: every code has an exit code, the README's table says the same, the subclasses are members.
import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { EXIT, EXIT_BY_CODE, exitCodeFor, RproxyError, type ErrorCode } from '../../generator/src/errors.js';
import { VrrpLayoutError } from '../../generator/src/layout/vrrp.js';
import { SshConnectError } from '../../generator/src/onboard/ssh.js';
import { REPO } from '../fixtures/helpers.js';

/** README rows "| exit | codes | what to do |": code (or ERR_X_* prefix) -> exit. */
function readmeTable(): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of readFileSync(path.join(REPO, 'README.md'), 'utf8').matchAll(/^\| (\d) \| (.+?) \| .+ \|$/gm)) {
    for (const c of m[2]!.matchAll(/`(ERR_[A-Z_]+\*?)`/g)) out.set(c[1]!, Number(m[1]));
  }
  return out;
}

test('every error code has an exit code, and the README table lists each with that exit code', (t) => {
  const table = readmeTable();
  for (const [code, exit] of Object.entries(EXIT_BY_CODE) as Array<[ErrorCode, number]>) {
    const listed = table.get(code) ?? [...table].find(([k]) => k.endsWith('*') && code.startsWith(k.slice(0, -1)))?.[1];
    t.is(listed, exit, `${code}: README says ${listed}, errors.ts ${exit}`);
    t.is(exitCodeFor(new RproxyError(code, 'x')), exit);
  }
  for (const k of table.keys()) t.true(k.endsWith('*') || k in EXIT_BY_CODE, `README lists ${k}, which errors.ts does not know`);
});

test('exit codes: operational outcomes of onboarding are not "unexpected"; codes the tests and scripts know keep theirs', (t) => {
  t.is(exitCodeFor(new RproxyError('ERR_VIPS_NOT_SETTLED', 'x')), EXIT.NOT_SETTLED);
  t.is(exitCodeFor(new RproxyError('ERR_VERIFY_FAILED', 'x')), EXIT.PLAYBOOK);
  t.is(exitCodeFor(new RproxyError('ERR_HOST_COMMAND_FAILED', 'x')), EXIT.PLAYBOOK);
  t.is(exitCodeFor(new RproxyError('ERR_HOST_UNREACHABLE', 'x')), EXIT.USAGE);
  t.is(exitCodeFor(new RproxyError('ERR_PREFLIGHT_FAILED', 'x')), EXIT.USAGE);
  t.is(exitCodeFor(new RproxyError('ERR_INTERNAL', 'x')), EXIT.UNEXPECTED);
  t.is(exitCodeFor(new Error('x')), EXIT.UNEXPECTED);
  t.is(new Set(Object.values(EXIT)).size, Object.keys(EXIT).length, 'exit codes are distinct');
});

test('VrrpLayoutError and SshConnectError are RproxyErrors with their stable codes', (t) => {
  const v = new VrrpLayoutError('ERR_VRRP_BAD_VIP', 'VIP "x" is not an IP address');
  t.true(v instanceof RproxyError);
  t.is(v.name, 'VrrpLayoutError');
  t.is(v.code, 'ERR_VRRP_BAD_VIP');
  t.is(exitCodeFor(v), EXIT.USAGE);
  const s = new SshConnectError('unreachable', 'x');
  t.true(s instanceof RproxyError);
  t.is(s.code, 'ERR_SSH_CONNECT');
});
