import test from 'ava';
import { createHmac, randomBytes } from 'node:crypto';
import {
  evaluateProbe, parseProbe, sshFailureResult, formatPreflight, failedChecks, probeScript, type PreflightReport,
} from '../../../generator/src/onboard/preflight.js';
import { SshConnectError } from '../../../generator/src/onboard/ssh.js';
import { asRoot } from '../../../generator/src/onboard/operations.js';
import { findKnownKeys, verifyHostKey, hostKeyAlgorithms, lookupName, hostPatternsMatch, fingerprint } from '../../../generator/src/onboard/knownhosts.js';
import { connectionFromVars, splitArgs, sshOptions, type Connection } from '../../../generator/src/onboard/connection.js';

const CONN: Connection = {
  host: 'rp3', address: '198.51.100.13', port: 22, user: 'root', privateKeyFile: '/k/id_ed25519',
  knownHostsFiles: ['/k/known_hosts'], hostKeyCheckingDisabled: false, become: false, python: '/usr/bin/python3',
};

const GOOD = [
  'uid=0', 'user=root', 'python=/usr/bin/python3', 'pyver=3.11.2', 'apt=/usr/bin/apt-get',
  'df /dev/vda1 264000000 100000000 150000000 40% /',
  'df /dev/vda1 264000000 100000000 150000000 40% /',
  'ss=yes',
  'ss LISTEN 0      128    198.51.100.13:22        0.0.0.0:*    users:(("sshd",pid=10,fd=3))',
].join('\n');

const byCheck = (rs: ReturnType<typeof evaluateProbe>) => Object.fromEntries(rs.map((r) => [r.check, r]));

test('a healthy bare host passes every check', (t) => {
  const rs = evaluateProbe(CONN, parseProbe(GOOD));
  t.deepEqual(rs.filter((r) => !r.ok), []);
  t.deepEqual(rs.map((r) => r.check), ['privilege', 'python3', 'disk', 'ports', 'apt']);
  t.regex(byCheck(rs).ports!.detail, /80 and 443 free/);
  t.regex(byCheck(rs).disk!.detail, /^\/ 146484 MiB free$/);
});

test('python3 missing: the check is named, with the fix', (t) => {
  const rs = byCheck(evaluateProbe(CONN, parseProbe(GOOD.replace('python=/usr/bin/python3', 'python=').replace('pyver=3.11.2', ''))));
  t.false(rs.python3!.ok);
  t.regex(rs.python3!.detail, /\/usr\/bin\/python3 is not installed/);
  t.regex(rs.python3!.fix!, /apt-get install -y python3/);
  const old = byCheck(evaluateProbe(CONN, parseProbe(GOOD.replace('pyver=3.11.2', 'pyver=2.7.18'))));
  t.false(old.python3!.ok);
  t.regex(old.python3!.detail, /Python 2\.7\.18/);
});

test('privilege: root, sudo with and without become, neither', (t) => {
  const user = GOOD.replace('uid=0', 'uid=1000').replace('user=root', 'user=deploy');
  t.regex(byCheck(evaluateProbe(CONN, parseProbe(user + '\nsudo=no'))).privilege!.fix!, /passwordless sudo.*ansible_become: true/);
  t.regex(byCheck(evaluateProbe(CONN, parseProbe(user + '\nsudo=no'))).privilege!.detail, /deploy \(uid 1000\) is not root and has no passwordless sudo/);
  const sudoNoBecome = byCheck(evaluateProbe(CONN, parseProbe(user + '\nsudo=yes'))).privilege!;
  t.false(sudoNoBecome.ok);
  t.regex(sudoNoBecome.fix!, /ansible_become: true/);
  t.true(byCheck(evaluateProbe({ ...CONN, become: true }, parseProbe(user + '\nsudo=yes'))).privilege!.ok);
});

test('disk: too little free space names the mount and the need', (t) => {
  const low = GOOD.split('\n').filter((l) => !l.startsWith('df ')).join('\n') +
    '\ndf /dev/vda1 264000000 263900000 100000 99% /\ndf /dev/vdb1 1000000 10 900000 1% /var';
  const d = byCheck(evaluateProbe(CONN, parseProbe(low), { minFreeMiB: 512 })).disk!;
  t.false(d.ok);
  t.is(d.detail, '/ 97 MiB free (need 512 MiB)');
  t.regex(d.fix!, /free space on \//);
  t.true(byCheck(evaluateProbe(CONN, parseProbe(low), { minFreeMiB: 64 })).disk!.ok);
});

test('ports: nginx already there is fine, anything else is named', (t) => {
  const nginx = GOOD + '\nss LISTEN 0 511 0.0.0.0:80 0.0.0.0:* users:(("nginx",pid=5,fd=6),("nginx",pid=6,fd=6))\nss LISTEN 0 511 [::]:443 [::]:* users:(("nginx",pid=5,fd=7))';
  const ok = byCheck(evaluateProbe(CONN, parseProbe(nginx))).ports!;
  t.true(ok.ok);
  t.regex(ok.detail, /already served by nginx/);
  const apache = GOOD + '\nss LISTEN 0 511 *:80 *:* users:(("apache2",pid=7,fd=4))';
  const bad = byCheck(evaluateProbe(CONN, parseProbe(apache))).ports!;
  t.false(bad.ok);
  t.is(bad.detail, 'port 80 in use: *:80 by apache2');
  t.regex(bad.fix!, /stop and disable that service/);
  const noSs = byCheck(evaluateProbe(CONN, parseProbe(GOOD.replace('ss=yes', 'ss=no')))).ports!;
  t.false(noSs.ok);
  t.regex(noSs.fix!, /iproute2/);
  // port 8080 is not 80
  t.true(byCheck(evaluateProbe(CONN, parseProbe(GOOD + '\nss LISTEN 0 5 0.0.0.0:8080 0.0.0.0:* users:(("java",pid=1,fd=1))'))).ports!.ok);
});

test('apt-get missing', (t) => {
  const a = byCheck(evaluateProbe(CONN, parseProbe(GOOD.replace('apt=/usr/bin/apt-get', 'apt=')))).apt!;
  t.false(a.ok);
  t.regex(a.detail, /apt-get not found/);
});

test('SSH failures become actionable messages', (t) => {
  const down = sshFailureResult(CONN, new SshConnectError('unreachable', 'x', { code: 'ECONNREFUSED' }));
  t.is(down.check, 'ssh');
  t.is(down.detail, 'sshd does not answer at 198.51.100.13:22 (ECONNREFUSED)');
  t.regex(down.fix!, /start sshd on the host/);
  const unknown = sshFailureResult(CONN, new SshConnectError('host_key_unknown', 'no host key for 198.51.100.13 in /k/known_hosts'));
  t.is(unknown.check, 'known_hosts');
  t.regex(unknown.detail, /never accepted blindly/);
  t.regex(unknown.fix!, /ssh-keyscan -p 22 -t ed25519 198\.51\.100\.13 >> \/k\/known_hosts/);
  const mismatch = sshFailureResult(CONN, new SshConnectError('host_key_mismatch', 'the host key of 198.51.100.13 (SHA256:abc) does not match known_hosts (/k/known_hosts:3)'));
  t.regex(mismatch.detail, /does not match/);
  t.regex(mismatch.fix!, /ssh-keygen -R 198\.51\.100\.13 -f \/k\/known_hosts/);
  const auth = sshFailureResult(CONN, new SshConnectError('auth', 'root@198.51.100.13 refused the key /k/id_ed25519'));
  t.regex(auth.fix!, /\/k\/id_ed25519\.pub.*authorized_keys.*--password-file/);
  t.regex(sshFailureResult(CONN, new SshConnectError('auth', 'x'), { passwordFile: '/p' }).fix!, /password in \/p was refused/);
});

test('the report lists every check, then the fixes; failedChecks names them', (t) => {
  const r: PreflightReport = {
    host: 'rp3', address: '198.51.100.13', ok: false, bootstrapped: false, durationMs: 1234,
    checks: [
      { check: 'known_hosts', ok: true, detail: 'matches' },
      { check: 'python3', ok: false, detail: 'python3 is not installed', fix: 'apt-get install -y python3' },
    ],
  };
  const text = formatPreflight(r);
  t.is(text, [
    'preflight of rp3 (198.51.100.13): FAILED in 1.2 s',
    '  ok   known_hosts matches',
    '  FAIL python3     python3 is not installed',
    'to fix:',
    '  python3: apt-get install -y python3',
    '',
  ].join('\n'));
  t.is(failedChecks(r), 'python3');
});

test('the probe script quotes the interpreter', (t) => {
  t.true(probeScript("/opt/py'thon").includes(`p='/opt/py'\\''thon'`));
});

// ------------------------------------------------------------------------------------------------ known_hosts
const KEY_A = Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), Buffer.from([0, 0, 0, 32]), randomBytes(32)]);
const KEY_B = Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), Buffer.from([0, 0, 0, 32]), randomBytes(32)]);
const hashed = (name: string) => {
  const salt = randomBytes(20);
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
};

test('known_hosts: plain, hashed, [host]:port, wildcards, negation, markers', (t) => {
  const text = [
    '# comment',
    `rp3,198.51.100.13 ssh-ed25519 ${KEY_A.toString('base64')}`,
    `${hashed('198.51.100.14')} ssh-ed25519 ${KEY_B.toString('base64')}`,
    `[198.51.100.15]:2222 ssh-ed25519 ${KEY_A.toString('base64')}`,
    `198.51.100.2?,!198.51.100.29 ssh-ed25519 ${KEY_B.toString('base64')}`,
    `@cert-authority *.example.com ssh-ed25519 ${KEY_A.toString('base64')}`,
    `@revoked 198.51.100.16 ssh-ed25519 ${KEY_B.toString('base64')}`,
    '',
  ].join('\n');
  const a = findKnownKeys(text, '198.51.100.13', 'kh');
  t.is(a.keys.length, 1);
  t.is(a.keys[0]!.where, 'kh:2');
  t.deepEqual(verifyHostKey(a, KEY_A), { ok: true, where: 'kh:2' });
  t.deepEqual(verifyHostKey(a, KEY_B), { ok: false, reason: 'mismatch' });
  t.true(verifyHostKey(findKnownKeys(text, '198.51.100.14'), KEY_B).ok);
  t.deepEqual(verifyHostKey(findKnownKeys(text, '198.51.100.15'), KEY_A), { ok: false, reason: 'unknown' }, 'port 22 does not match [h]:2222');
  t.true(verifyHostKey(findKnownKeys(text, lookupName('198.51.100.15', 2222)), KEY_A).ok);
  t.true(verifyHostKey(findKnownKeys(text, '198.51.100.21'), KEY_B).ok);
  t.deepEqual(verifyHostKey(findKnownKeys(text, '198.51.100.29'), KEY_B), { ok: false, reason: 'unknown' }, 'negated');
  t.deepEqual(findKnownKeys(text, 'www.example.com').keys, [], '@cert-authority is not a host key');
  t.deepEqual(verifyHostKey(findKnownKeys(text, '198.51.100.16'), KEY_B), { ok: false, reason: 'revoked' });
  t.false(hostPatternsMatch('rp3', 'rp33'));
  t.deepEqual(hostKeyAlgorithms(['ssh-rsa', 'ssh-ed25519']), ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa', 'ssh-ed25519']);
  t.regex(fingerprint(KEY_A), /^SHA256:[A-Za-z0-9+/]{43}$/);
});

// ------------------------------------------------------------------------------------------------ connection
test('connection settings as Ansible would use them', (t) => {
  const env = { home: '/root', user: 'root' };
  const lab = connectionFromVars('rp3', {
    ansible_host: '198.51.100.13', ansible_user: 'root', ansible_ssh_private_key_file: '/lab/ssh/id_ed25519',
    ansible_ssh_common_args: '-o UserKnownHostsFile=/lab/ssh/known_hosts -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes',
    ansible_python_interpreter: '/usr/bin/python3',
  }, env);
  t.deepEqual(lab, {
    host: 'rp3', address: '198.51.100.13', port: 22, user: 'root', privateKeyFile: '/lab/ssh/id_ed25519',
    knownHostsFiles: ['/lab/ssh/known_hosts', '/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2'],
    hostKeyCheckingDisabled: false, become: false, python: '/usr/bin/python3',
  });
  const dflt = connectionFromVars('p', {}, env);
  t.is(dflt.address, 'p');
  t.deepEqual(dflt.knownHostsFiles, ['/root/.ssh/known_hosts', '/root/.ssh/known_hosts2', '/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2']);
  t.is(dflt.privateKeyFile, null);
  t.is(dflt.python, 'python3');
  const odd = connectionFromVars('p', {
    ansible_port: 2222, ansible_become: 'yes', ansible_ssh_extra_args: `-oUserKnownHostsFile="~/a b" -i ~/k -o GlobalKnownHostsFile=none -o StrictHostKeyChecking=no`,
    ansible_python_interpreter: 'auto_silent',
  }, env);
  t.is(odd.port, 2222);
  t.true(odd.become);
  t.deepEqual(odd.knownHostsFiles, ['/root/a', 'b'], 'a quoted list of files; GlobalKnownHostsFile=none adds none');
  t.is(odd.privateKeyFile, '/root/k');
  t.true(odd.hostKeyCheckingDisabled);
  t.is(odd.python, 'python3');
  t.deepEqual(splitArgs(`-o "A=b c" 'x y' z\\ w`), ['-o', 'A=b c', 'x y', 'z w']);
  t.is(sshOptions(['-o', 'UserKnownHostsFile=/a', '-o', 'UserKnownHostsFile=/b']).options.get('userknownhostsfile'), '/a', 'first value wins');
});

test('offboarding runs its root commands through sudo when Ansible connects as another user', (t) => {
  t.is(asRoot({ user: 'root' }, 'service keepalived stop'), 'service keepalived stop');
  t.is(asRoot({ user: 'rpadmin' }, "echo 'x'; service keepalived stop"), `sudo -n sh -c 'echo '\\''x'\\''; service keepalived stop'`);
});
