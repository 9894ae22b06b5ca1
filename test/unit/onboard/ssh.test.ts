// The SSH layer without a server: how a failed connect becomes an operator message (sshFailure, and connectSsh's own
// checks before any packet: known_hosts, the key file, a refused port on loopback), SshConnectError as a member of
// the one error family, and the Ansible-side argument building (connection.ts) beyond the preflight tests.
import test from 'ava';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { exitCodeFor, isRproxyError, RproxyError } from '../../../generator/src/errors.js';
import { connectSsh, shq, sshFailure, SshConnectError, type HandshakeFailure } from '../../../generator/src/onboard/ssh.js';
import { ansibleInventoryCommand, connectionFromVars, sshOptions, withOverlay, type Connection } from '../../../generator/src/onboard/connection.js';
import { fingerprint } from '../../../generator/src/onboard/knownhosts.js';
import { defaultConfig } from '../../../generator/src/config.js';

const KEY = Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), Buffer.from([0, 0, 0, 32]), randomBytes(32)]);
const CONN = { user: 'root', address: '198.51.100.13', port: 22 };
const base: HandshakeFailure = { conn: CONN, name: '198.51.100.13', knownWhere: ['/k/known_hosts:3'], verdict: null, presented: null, password: false, keyFile: '/k/id_ed25519' };
const err = (message: string, extra: { code?: string; level?: string } = {}) => Object.assign(new Error(message), extra);

test('SshConnectError is an RproxyError: code ERR_SSH_CONNECT (exit 2), its kind and detail kept', (t) => {
  const e = new SshConnectError('auth', 'refused', { keyFile: '/k' });
  t.true(e instanceof RproxyError);
  t.true(isRproxyError(e, 'ERR_SSH_CONNECT'));
  t.is(exitCodeFor(e), 2);
  t.is(e.name, 'SshConnectError');
  t.deepEqual([e.kind, e.detail], ['auth', { keyFile: '/k' }]);
});

test('sshFailure: host key verdicts first, with the presented key\'s fingerprint and where known_hosts lists the host', (t) => {
  const mismatch = sshFailure(err('Handshake failed'), { ...base, verdict: { ok: false, reason: 'mismatch' }, presented: KEY });
  t.is(mismatch.kind, 'host_key_mismatch');
  t.is(mismatch.message, `the host key of 198.51.100.13 (${fingerprint(KEY)}) does not match known_hosts (/k/known_hosts:3)`);
  t.deepEqual(mismatch.detail, { fingerprint: fingerprint(KEY), name: '198.51.100.13' });
  const revoked = sshFailure(err('x', { level: 'client-authentication' }), { ...base, verdict: { ok: false, reason: 'revoked' }, presented: KEY });
  t.is(revoked.kind, 'host_key_revoked', 'a bad host key wins over what followed');
  t.is(revoked.message, `the host key of 198.51.100.13 (${fingerprint(KEY)}) is revoked in known_hosts (/k/known_hosts:3)`);
  const unknown = sshFailure(err('x'), { ...base, verdict: { ok: false, reason: 'unknown' } });
  t.is(unknown.kind, 'host_key_unknown');
  t.regex(unknown.message, /\(\?\)/, 'no key presented: no fingerprint');
  // an accepted host key says nothing about the failure
  t.is(sshFailure(err('x', { code: 'ECONNRESET' }), { ...base, verdict: { ok: true, where: '/k:1' } }).kind, 'unreachable');
});

test('sshFailure: refused login (key or password), unreachable hosts, anything else', (t) => {
  const key = sshFailure(err('All configured authentication methods failed', { level: 'client-authentication' }), base);
  t.deepEqual([key.kind, key.message, key.detail], ['auth', 'root@198.51.100.13 refused the key /k/id_ed25519', { keyFile: '/k/id_ed25519' }]);
  t.is(sshFailure(err('x', { level: 'client-authentication' }), { ...base, password: true, keyFile: null }).message, 'root@198.51.100.13 refused the password');
  for (const code of ['ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN']) {
    const u = sshFailure(err(`connect ${code}`, { code }), base);
    t.deepEqual([u.kind, u.message, u.detail], ['unreachable', `198.51.100.13:22: ${code}`, { code }], code);
  }
  const slow = sshFailure(err('Timed out while waiting for handshake'), { ...base, conn: { ...CONN, port: 2222 } });
  t.deepEqual([slow.kind, slow.message], ['unreachable', '198.51.100.13:2222: Timed out while waiting for handshake']);
  const other = sshFailure(err('Cannot parse privateKey: Unsupported key format'), base);
  t.deepEqual([other.kind, other.message], ['other', 'Cannot parse privateKey: Unsupported key format']);
});

// ------------------------------------------------------------------------------------------------ connectSsh
function conn(dir: string, over: Partial<Connection> = {}): Connection {
  return {
    host: 'rp3', address: '127.0.0.1', port: 22, user: 'root', privateKeyFile: path.join(dir, 'id'), knownHostsFiles: [path.join(dir, 'known_hosts')],
    hostKeyCheckingDisabled: false, become: false, python: 'python3', ...over,
  };
}

async function connectError(c: Connection, opts = {}): Promise<SshConnectError> {
  const e = await connectSsh(c, { readyTimeoutMs: 3000, ...opts }).then((s) => { s.dispose(); return null; }, (x: unknown) => x);
  if (!(e instanceof SshConnectError)) throw new Error(`expected an SshConnectError, got ${String(e)}`);
  return e;
}

test('connectSsh: no known_hosts file, no key for the host, no readable key: refused before any connection', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'onb-ssh-'));
  const missing = await connectError(conn(dir));
  t.is(missing.kind, 'known_hosts_missing');
  t.regex(missing.message, /no known_hosts file exists \(.*known_hosts\)/);
  writeFileSync(path.join(dir, 'known_hosts'), `198.51.100.99 ssh-ed25519 ${KEY.toString('base64')}\n`);
  const unknown = await connectError(conn(dir));
  t.is(unknown.kind, 'host_key_unknown');
  t.is(unknown.message, `no host key for 127.0.0.1 in ${path.join(dir, 'known_hosts')}`);
  writeFileSync(path.join(dir, 'known_hosts'), `[127.0.0.1]:2222 ssh-ed25519 ${KEY.toString('base64')}\n`);
  t.is((await connectError(conn(dir))).kind, 'host_key_unknown', 'the port is part of the name');
  const noKey = await connectError(conn(dir, { port: 2222 }));
  t.is(noKey.kind, 'key_file');
  t.regex(noKey.message, /cannot read the private key .*\/id: ENOENT/);
});

test('connectSsh: a refused port is "unreachable" (loopback, nothing listening)', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'onb-ssh-'));
  // a port that was free a moment ago: listen, note it, close
  const port = await new Promise<number>((resolve) => { const s = createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); }); });
  writeFileSync(path.join(dir, 'known_hosts'), `[127.0.0.1]:${port} ssh-ed25519 ${KEY.toString('base64')}\n`);
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  writeFileSync(path.join(dir, 'id'), privateKey, { mode: 0o600 });
  const e = await connectError(conn(dir, { port }));
  t.is(e.kind, 'unreachable');
  t.is(e.message, `127.0.0.1:${port}: ECONNREFUSED`);
});

// ------------------------------------------------------------------------------------------------ argument building
test('connection: legacy variable names, -p and IdentityFile from the ssh args, explicit variables winning', (t) => {
  const env = { home: '/home/op', user: 'op' };
  const legacy = connectionFromVars('rp4', { ansible_ssh_host: '198.51.100.14', ansible_ssh_user: 'admin', ansible_ssh_port: '2200', ansible_private_key_file: '~/.ssh/rp' }, env);
  t.like(legacy, { address: '198.51.100.14', user: 'admin', port: 2200, privateKeyFile: '/home/op/.ssh/rp' });
  const args = connectionFromVars('rp4', { ansible_ssh_common_args: '-p 2022 -o IdentityFile=/keys/a -o UserKnownHostsFile /kh' }, env);
  t.like(args, { address: 'rp4', user: 'op', port: 2022, privateKeyFile: '/keys/a' });
  t.deepEqual(args.knownHostsFiles, ['/kh', '/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2'], '"-o Key Value" form');
  const wins = connectionFromVars('rp4', { ansible_port: 22, ansible_ssh_private_key_file: '/keys/b', ansible_ssh_extra_args: '-p 2022 -i /keys/c' }, env);
  t.like(wins, { port: 22, privateKeyFile: '/keys/b' });
  t.true(connectionFromVars('rp4', { ansible_host_key_checking: false }, env).hostKeyCheckingDisabled);
  t.false(connectionFromVars('rp4', { ansible_become: 'no' }, env).become);
  t.deepEqual(sshOptions(['-i/keys/d', '-oPort=1']), { options: new Map([['port', '1']]), identity: '/keys/d', port: null });
  t.is(shq("it's"), `'it'\\''s'`);
});

test('connection: ansible-inventory beside ansible-playbook; the overlay source is hidden, private and always removed', async (t) => {
  t.is(ansibleInventoryCommand({ ...defaultConfig(), ansible: { ...defaultConfig().ansible, command: '/opt/venv/bin/ansible-playbook' } }), '/opt/venv/bin/ansible-inventory');
  t.is(ansibleInventoryCommand({ ...defaultConfig(), ansible: { ...defaultConfig().ansible, command: 'ansible-playbook' } }), 'ansible-inventory');
  const dir = mkdtempSync(path.join(tmpdir(), 'onb-overlay-'));
  const seen = await withOverlay(dir, 'all: {}\n', async (f) => {
    t.is(path.dirname(f), dir);
    t.regex(path.basename(f), /^\.paas-rproxy-overlay-\d+-[0-9a-f]{8}\.yml$/, 'a dot file: Ansible skips it when it reads the directory');
    t.is(statSync(f).mode & 0o777, 0o600);
    return f;
  });
  t.deepEqual(readdirSync(dir), [], `${seen} removed`);
  await t.throwsAsync(withOverlay(dir, 'x', async () => { throw new Error('run failed'); }), { message: 'run failed' });
  t.deepEqual(readdirSync(dir), [], 'removed after a failure too');
});
