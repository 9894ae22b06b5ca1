// `paas-rproxy dns` through the built binary: formats, flags, stdin settings, exit codes. No network: the VIPs are
// given, and --check-aliases runs on a state without aliases.
import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../../fixtures/helpers.js';

const BIN = join(REPO, 'dist/cli/main.js');
test.before(() => {
  if (!existsSync(BIN)) execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: REPO, stdio: 'inherit' });
});

interface Run { code: number; stdout: string; stderr: string }
async function dns(args: string[], input = ''): Promise<Run & { dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'rproxy-dnscli-'));
  await writeFile(join(dir, 'config.yml'), 'cloud_domain: paas.example.net\ninventory_dir: ./inventory\nstate_dir: ./var\n');
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, '--config', join(dir, 'config.yml'), 'dns', ...args], { env: { ...process.env, PAAS_RPROXY_CONFIG: '' } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr, dir }));
    p.stdin.end(input);
  });
}

test('zone: the config\'s cloud domain, flags for VIPs and name servers; the serial is recorded in the state dir', async (t) => {
  const r = await dns(['--vip', '192.0.2.201/24', '--vip', '2001:db8::201', '--ns', 'ns1.paas.example.net=192.0.2.53', '--ttl', '120']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^\$ORIGIN paas\.example\.net\.$/m);
  t.regex(r.stdout, /^\*\tIN\tA\t192\.0\.2\.201$/m);
  t.regex(r.stdout, /^\*\tIN\tAAAA\t2001:db8::201$/m);
  t.regex(r.stdout, /^@\tIN\tSOA\tns1\.paas\.example\.net\. hostmaster\.paas\.example\.net\. \($/m);
  const serial = /^\t\t(\d+)\t; serial/m.exec(r.stdout)?.[1];
  const kept = JSON.parse(await readFile(join(r.dir, 'var', 'dns.json'), 'utf8')) as { zones: Record<string, { serial: number }> };
  t.is(String(kept.zones["paas.example.net"]?.serial), String(serial));
});

test('--stdin settings (what the role passes); flags win over them; unknown keys are refused', async (t) => {
  const settings = JSON.stringify({ vips: ['192.0.2.201/24', { address: '192.0.2.202', router_id: 61 }], nameservers: [{ name: 'ns.example.com' }], soa: { email: 'dns@example.com', retry: 600 } });
  const r = await dns(['--stdin', '--serial', '42', '--vip', '192.0.2.203'], settings);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(r.stdout.split('\n').filter((l) => l.startsWith('*')), ['*\tIN\tA\t192.0.2.203']);
  t.regex(r.stdout, /^\t\t42\t; serial/m);
  t.regex(r.stdout, /^\t\t600\t; retry$/m);
  t.regex(r.stdout, /dns\.example\.com\. \($/m);
  t.false(existsSync(join(r.dir, 'var', 'dns.json')), '--serial leaves the state alone');
  const bad = await dns(['--stdin'], JSON.stringify({ vips: ['192.0.2.1'], ttl: 5 }));
  t.is(bad.code, 2);
  t.regex(bad.stderr, /stdin: unknown key "ttl"/);
});

test('nsupdate: the batch; --if-changed needs --server', async (t) => {
  const r = await dns(['--format', 'nsupdate', '--vip', '192.0.2.201', '--server', '192.0.2.53', '--zone', 'example.net']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^server 192\.0\.2\.53 53\nzone example\.net\.\nupdate delete \*\.paas\.example\.net\. A\nupdate delete \*\.paas\.example\.net\. AAAA\nupdate add \*\.paas\.example\.net\. 300 A 192\.0\.2\.201\nsend\n$/m);
  const noServer = await dns(['--format', 'nsupdate', '--vip', '192.0.2.201', '--if-changed']);
  t.is(noServer.code, 2);
  t.regex(noServer.stderr, /--if-changed needs --server/);
  // a server that does not answer (nothing listens on loopback port 9): exit 5, nothing printed
  const silent = await dns(['--format', 'nsupdate', '--vip', '192.0.2.201', '--if-changed', '--server', '127.0.0.1', '--port', '9', '--timeout-ms', '300']);
  t.is(silent.code, 5, silent.stderr);
  t.is(silent.stdout, '');
  t.regex(silent.stderr, /cannot ask 127\.0\.0\.1:9 for \*\.paas\.example\.net/);
});

test('bad settings exit 2 naming the value, and print nothing', async (t) => {
  for (const [args, re] of [
    [['--vip', '192.0.2.201'], /at least one name server/],
    [['--vip', '192.0.2.999', '--ns', 'ns.example.com'], /VIP "192\.0\.2\.999" is not an IP address/],
    [['--vip', '192.0.2.1', '--ns', 'ns.example.com', '--ttl', '0'], /ttl must be an integer/],
    [['--vip', '192.0.2.1', '--ns', 'ns1.paas.example.net'], /give its address/],
    [['--vip', '192.0.2.1', '--ns', 'ns.example.com', '--soa-email', 'x'], /mailbox/],
    [['--format', 'nsupdate', '--vip', '192.0.2.1', '--zone', 'example.org'], /does not contain/],
  ] as const) {
    const r = await dns([...args]);
    t.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    t.is(r.stdout, '');
    t.regex(r.stderr, re);
  }
});

test('--check-aliases on a state without aliases: nothing to report, exit 0', async (t) => {
  const r = await dns(['--check-aliases', '--vip', '192.0.2.201', '--resolver', '127.0.0.1:9']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^checked 0 alias\(es\) against the VIPs 192\.0\.2\.201 \(resolver: 127\.0\.0\.1:9\)\n0 ok, 0 partial, 0 elsewhere, 0 unresolved, 0 error\n$/);
});
