// The production-like lab profile (PAAS_RPROXY_LAB_PROFILE=prod): what a real installation looks like, checked
// end to end. The listener installed in /opt/paas-rproxy runs as paas-rproxy and consumes over STOMP+TLS with
// vaulted credentials; the proxies are reached as rpadmin with sudo; 3 VIPs on ens4 (unicast VRRP);
// paas.example.net with a wildcard certificate. Serial; needs root.
import test from 'ava';
import { readFileSync, statSync, readdirSync } from 'node:fs';
import path from 'node:path';
import stompit from 'stompit';
import {
  PROFILE, VIPS, PROXIES, CLOUD_DOMAIN, LAB, LAB_CA, INVENTORY, STATE_DIR, CONFIG, LISTENER_USER, CLIENT_NS,
  ensureLab, releaseLab, cli, run, curlVia, certSubject, sshProxy, sitePlaybook, spi, fqdn, waitFor, failureLines, applyAndSync,
  selfSigned, REPO,
} from '../../lab/labenv.js';

if (PROFILE !== 'prod') throw new Error('test/integration/prod/ runs on the prod lab profile: PAAS_RPROXY_LAB_PROFILE=prod');

const NS = 'prodt';
const created = new Set<string>();
const secrets = (): Record<string, string> => Object.fromEntries(readFileSync(path.join(LAB, 'stomp.env'), 'utf8').trim().split('\n')
  .map((l) => l.split('=') as [string, string]));

/** STOMP CONNECT (+ optional SEND or SUBSCRIBE) on the lab's broker; resolves with the broker's verdict. */
function stomp(o: { host?: string; port?: number; login?: string; passcode?: string; send?: string; subscribe?: string }): Promise<{ connected: boolean; error: string }> {
  return new Promise((resolve) => {
    const headers: Record<string, string> = { host: '/', 'heart-beat': '0,0' };
    if (o.login !== undefined) headers.login = o.login;
    if (o.passcode !== undefined) headers.passcode = o.passcode;
    let connected = false;
    let done = false;
    const finish = (error: string, client?: { destroy(): void }) => {
      if (done) return;
      done = true;
      try { client?.destroy(); } catch { /* gone */ }
      resolve({ connected, error });
    };
    const client = stompit.connect({ host: o.host ?? '127.0.0.1', port: o.port ?? 61613, connectHeaders: headers } as never, (err: Error | null) => {
      if (err) { finish(err.message, client); return; }
      connected = true;
      if (o.send) {
        // a receipt makes the broker answer the SEND: an authorization failure comes back as an ERROR frame
        const f = client.send({ destination: o.send, receipt: 'r1' } as never, { onReceipt: () => finish('', client) } as never);
        f.write(spi.createApp('intruder', 'nowhere'));
        f.end();
      } else if (o.subscribe) {
        client.subscribe({ destination: o.subscribe, ack: 'client-individual', receipt: 'r2' } as never, (e: Error | null) => { if (e) finish(e.message, client); });
        setTimeout(() => finish('', client), 3000);
      } else finish('', client);
    }) as unknown as { on(ev: string, fn: (e: Error) => void): void; send: any; subscribe: any; destroy(): void };
    client.on('error', (e: Error) => finish(e.message, client));
    setTimeout(() => finish('timeout', client), 10_000);
  });
}

function opensslProto(vip: string, host: string, proto: '-tls1_1' | '-tls1_2'): string {
  // OpenSSL 3 refuses TLS 1.1 at its default security level: lower it, so the refusal measured is nginx's
  return run('ip', ['netns', 'exec', CLIENT_NS, 'sh', '-c',
    `openssl s_client ${proto} -cipher 'DEFAULT:@SECLEVEL=0' -connect ${vip}:443 -servername ${host} -CAfile ${LAB_CA} </dev/null 2>&1`], { timeoutMs: 15_000 }).stdout;
}

test.before(async (t) => {
  t.timeout(900_000, 'lab bring-up');
  await ensureLab();
});

test.after.always(async (t) => {
  t.timeout(300_000);
  if (created.size) await applyAndSync([...created].map((id) => spi.deleteApp(...(id.split('/') as [string, string]))).join(''));
  releaseLab();
});

test.serial('the listener\'s SSH key (root on every proxy through sudo) is accepted from the broker only', (t) => {
  const key = path.join(STATE_DIR, '.ssh', 'id_ed25519');
  const ssh = (prefix: string[]) => run(prefix[0]!, [...prefix.slice(1), 'ssh', '-i', key, '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes',
    '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'ConnectTimeout=5', `rpadmin@${Object.values(PROXIES)[0]!}`, 'sudo', '-n', 'id', '-u'], { timeoutMs: 20_000 });
  const stolen = ssh(['ip', 'netns', 'exec', CLIENT_NS]);
  t.not(stolen.code, 0, 'a copy of the key used from another address');
  t.regex(stolen.stderr, /Permission denied/);
  const broker = ssh(['env']);
  t.is(broker.code, 0, broker.stderr);
  t.is(broker.stdout.trim(), '0');
});

test.serial('the listener runs as its unprivileged user, from /opt/paas-rproxy, with no capabilities', (t) => {
  const pid = Number(readFileSync('/run/paas-rproxy/paas-rproxy-listener.pid', 'utf8').trim());
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
  t.not(uid, 0, 'not root');
  t.is(run('id', ['-u', LISTENER_USER]).stdout.trim(), String(uid));
  t.regex(status, /^CapEff:\s+0+$/m);
  t.regex(status, /^NoNewPrivs:\s+1$/m);
  t.regex(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '), /\/opt\/paas-rproxy\/dist\/cli\/main\.js listen/);
  // its state and SSH key are its own; its config is root's, readable by its group only
  for (const p of [STATE_DIR, path.join(STATE_DIR, '.ssh/id_ed25519')]) t.is(statSync(p).uid, uid, p);
  t.is(statSync(path.join(STATE_DIR, '.ssh/id_ed25519')).mode & 0o777, 0o600);
  t.is(statSync(CONFIG).uid, 0);
  t.is(statSync(CONFIG).mode & 0o777, 0o640);
});

test.serial('production dependencies only: no dev package in /opt/paas-rproxy/node_modules', (t) => {
  const mods = readdirSync('/opt/paas-rproxy/node_modules');
  for (const dev of ['ava', 'typescript', 'tsx', '@types']) t.false(mods.includes(dev), dev);
  for (const prod of ['stompit', 'js-yaml', 'yargs']) t.true(mods.includes(prod), prod);
});

test.serial('the listener consumes over STOMP+TLS (CA verified): an SPI event published as the broker does is live by name under paas.example.net, HTTP and TLS, through every VIP', async (t) => {
  t.timeout(300_000);
  const st = await cli(['status', '--json']);
  const s = JSON.parse(st.stdout) as { healthy: boolean; problems: string[]; listener: { connected: boolean; broker: string } };
  t.true(s.listener.connected, st.stdout);
  t.is(s.listener.broker, '198.51.100.1:61614', 'the stomp+ssl connector');
  t.is(st.code, 0, `status is healthy: ${s.problems.join('; ')}`);
  const app = 'intake';
  created.add(`${app}/${NS}`);
  const pub = run('node', [path.join(REPO, 'test', 'lab', 'publish.mjs'), '--host', '127.0.0.1', '--passcode', secrets().STOMP_PASSCODE!, '-'],
    { input: spi.createApp(app, NS) + spi.addEndpoint(app, NS, '198.51.100.36', 35547) });
  t.is(pub.code, 0, pub.stderr);
  const host = fqdn(app, NS);
  t.true(host.endsWith('.paas.example.net'));
  t.true(await waitFor(() => VIPS.every((v) => curlVia(v, host).gear === '198.51.100.36:35547'), 30_000, 250), 'HTTP through every VIP');
  for (const v of VIPS) {
    const r = curlVia(v, host, '/', { https: true, cacert: LAB_CA });
    t.is(r.gear, '198.51.100.36:35547', `${v} over TLS: ${r.error}`);
  }
});

test.serial('ActiveMQ: no anonymous access; the listener\'s user cannot publish routes; the publisher cannot read the listener\'s queue', async (t) => {
  t.timeout(120_000);
  const anon = await stomp({});
  t.false(anon.connected, 'anonymous CONNECT refused');
  t.regex(anon.error, /not (?:authorized|authenticated)|User name \[null\]|Security|password/i);
  const wrong = await stomp({ login: 'routinginfo', passcode: 'routinginfopasswd' });
  t.false(wrong.connected, 'the public default password is refused');
  const { LISTENER_STOMP_PASSCODE, STOMP_PASSCODE } = secrets();
  const asListener = await stomp({ login: 'paas-rproxy', passcode: LISTENER_STOMP_PASSCODE!, send: '/topic/routinginfo' });
  t.true(asListener.connected);
  t.regex(asListener.error, /not authorized to write/i);
  const peek = await stomp({ login: 'routinginfo', passcode: STOMP_PASSCODE!, subscribe: '/queue/paas-rproxy.routinginfo' });
  t.true(peek.connected);
  t.regex(peek.error, /not authorized to read/i);
  // nor the topic itself: its password is public on many installations and add_ssl events carry private keys
  const sniff = await stomp({ login: 'routinginfo', passcode: STOMP_PASSCODE!, subscribe: '/topic/routinginfo' });
  t.true(sniff.connected);
  t.regex(sniff.error, /not authorized to read from: topic:\/\/routinginfo/i);
  // and the publisher's own publish works (control; the listener creates the app it carries)
  created.add('intruder/nowhere');
  const ok = await stomp({ login: 'routinginfo', passcode: STOMP_PASSCODE!, send: '/topic/routinginfo' });
  t.deepEqual(ok, { connected: true, error: '' });
  // plain STOMP listens on loopback only; the bridge has only the TLS connector
  t.not(run('bash', ['-c', 'echo > /dev/tcp/198.51.100.1/61613']).code, 0);
});

test.serial('hardened proxies: TLS 1.1 refused, TLS 1.2 with a modern cipher, no version in Server, health and status on loopback only', (t) => {
  const host = fqdn('intake', NS);
  for (const v of VIPS) {
    const old = opensslProto(v, host, '-tls1_1');
    t.regex(old, /alert protocol version/, `${v}: TLS 1.1 handshake refused by the server`);
    t.regex(old, /Cipher is \(NONE\)/, `${v}: no TLS 1.1 session`);
    const ok = opensslProto(v, host, '-tls1_2');
    t.regex(ok, /Protocol\s*: TLSv1\.2/, `${v}: TLS 1.2`);
    t.regex(ok, /Cipher\s*: ECDHE-(?:RSA|ECDSA)-(?:AES\d+-GCM-SHA\d+|CHACHA20-POLY1305)/);
    t.regex(ok, /Verify return code: 0 \(ok\)/);
    t.is(curlVia(v, host).headers.server, 'nginx', 'server_tokens off');
  }
  for (const [h, addr] of Object.entries(PROXIES)) {
    const outside = run('ip', ['netns', 'exec', CLIENT_NS, 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '-m', '3', `http://${addr}:8081/healthz`]);
    t.is(outside.stdout, '000', `${h}: the health endpoint is not reachable from outside`);
    const inside = sshProxy(h, 'curl -s -m 3 http://127.0.0.1:8081/healthz; curl -s -m 3 -o /dev/null -w " %{http_code}" http://127.0.0.1:8081/nginx_status');
    t.is(inside.stdout, 'ok\n 200', `${h}: on loopback`);
  }
});

test.serial('after apply, nothing generated is under the operator\'s inventory; the secrets there are vaulted', async (t) => {
  t.timeout(300_000);
  const files = () => run('find', [INVENTORY, '-type', 'f']).stdout.trim().split('\n').map((f) => path.relative(INVENTORY, f)).sort();
  const before = files();
  created.add(`gen/${NS}`);
  const { cert, key } = selfSigned('gen-prod.example.org');
  const r = await applyAndSync(spi.createApp('gen', NS) + spi.addEndpoint('gen', NS, '198.51.100.37', 35547) + spi.addAlias('gen', NS, 'gen-prod.example.org')
    + spi.addSsl('gen', NS, 'gen-prod.example.org', cert, key));
  t.is(r.code, 0, failureLines(r));
  t.deepEqual(files(), before, 'the inventory holds only what the operator wrote');
  t.deepEqual(before.filter((f) => !f.startsWith('tls/')), ['group_vars/brokers/rproxy_dns.yml', 'group_vars/brokers/vault.yml', 'hosts.yml']);
  t.true(readFileSync(path.join(INVENTORY, 'group_vars/brokers/vault.yml'), 'utf8').startsWith('$ANSIBLE_VAULT;1.1;AES256'));
  // the DNS settings (test/lab/dns.sh): the TSIG secret inline-vaulted
  t.regex(readFileSync(path.join(INVENTORY, 'group_vars/brokers/rproxy_dns.yml'), 'utf8'), /^rproxy_dns_tsig_key_secret: !vault \|\n\s+\$ANSIBLE_VAULT;1\.1;AES256$/m);
  t.is(run('stat', ['-c', '%U', path.join(STATE_DIR, 'routes')]).stdout.trim(), LISTENER_USER);
  const keyFile = path.join(STATE_DIR, 'routes/tls/gen-prodt/gen-prod.example.org.key');
  t.is(statSync(keyFile).mode & 0o777, 0o600);
  t.is(run('stat', ['-c', '%U', keyFile]).stdout.trim(), LISTENER_USER);
  t.false(readFileSync(CONFIG, 'utf8').includes('routinginfopasswd'));
});

test.serial('check mode: site.yml --check --diff reports changed=0; a hand-edited file shows up with its diff', async (t) => {
  t.timeout(900_000);
  const clean = await sitePlaybook(['--check', '--diff']);
  t.is(clean.code, 0, failureLines(clean));
  t.true(Object.keys(clean.recap).length >= Object.keys(PROXIES).length + 1);
  for (const [h, c] of Object.entries(clean.recap)) t.is(c.changed, 0, `${h} changed in check mode:\n${clean.stdout.split('\n').filter((l) => l.startsWith('changed:')).join('\n')}`);
  // drift: an operator edits a managed file by hand on rp2
  t.is(sshProxy('rp2', "sed -i 's/^ssl_session_timeout 1d;/ssl_session_timeout 2d;/' /etc/nginx/rproxy/rproxy.conf").code, 0);
  try {
    const drift = await sitePlaybook(['--check', '--diff', '--limit', 'rp2']);
    t.is(drift.code, 0, failureLines(drift));
    // the hand-edited file, and the reload its fix would trigger
    t.true((drift.recap.rp2?.changed ?? 0) >= 1, drift.stdout.slice(-3000));
    t.regex(drift.stdout, /^changed: \[rp2\] => \(item=\/etc\/nginx\/rproxy\/rproxy\.conf\)$/m);
    t.regex(drift.stdout, /^-ssl_session_timeout 2d;$/m, 'the diff shows the hand edit');
    t.regex(drift.stdout, /^\+ssl_session_timeout 1d;$/m);
    t.regex(sshProxy('rp2', 'grep ^ssl_session_timeout /etc/nginx/rproxy/rproxy.conf').stdout, /2d/, 'check mode changed nothing');
  } finally {
    const fix = await sitePlaybook(['--limit', 'rp2', '--tags', 'nginx_rproxy']);
    t.is(fix.code, 0, failureLines(fix));
  }
  t.regex(sshProxy('rp2', 'grep ^ssl_session_timeout /etc/nginx/rproxy/rproxy.conf').stdout, /1d/);
  t.regex(certSubject(VIPS[0], fqdn('intake', NS)), new RegExp(`\\*\\.${CLOUD_DOMAIN.replace(/\./g, '\\.')}`));
});
