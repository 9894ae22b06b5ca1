// DNS of the cloud domain in the lab: the lab's BIND (root netns, 198.51.100.1:53, test/lab/dns.sh) serves
// apps.example.com as site.yml's rproxy_dns role provisioned it (bind mode); the client netns resolves through it.
// Real named, named-checkzone, nsupdate with TSIG, the real CLI and ansible-playbook.
import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  VIPS, CLOUD_DOMAIN, CLIENT_NS, CONFIG, LAB, LAB_DIR, REPO, ensureLab, releaseLab, applyAndSync, spi, fqdn, waitFor,
  run, cli, sitePlaybook, failureLines, type Run,
} from '../lab/labenv.js';

const NS = 'labdns';
const APP = 'named';
const HOST = fqdn(APP, NS);
const DNS_SH = path.join(LAB_DIR, 'dns.sh');
const DNS_IP = '198.51.100.1';
const BIN = path.join(REPO, 'dist', 'cli', 'main.js');
const RPROXY_KEY = path.join(LAB, 'dns', 'rproxy-lab.key');
const tmp = mkdtempSync(path.join(tmpdir(), 'rplab-dns-'));

/** A name's IPv4 addresses as the client netns resolves it (glibc, /etc/netns/rpclient/resolv.conf). */
function clientResolves(name: string): string[] {
  const r = run('ip', ['netns', 'exec', CLIENT_NS, 'getent', 'ahostsv4', name], { timeoutMs: 10_000 });
  return [...new Set(r.stdout.split('\n').map((l) => l.split(/\s+/)[0]).filter((a): a is string => !!a))].sort();
}

/** A request by name from the client: no --resolve, the name goes through the lab DNS. */
function clientGet(url: string): { status: number; gear: string; ip: string } {
  const r = run('ip', ['netns', 'exec', CLIENT_NS, 'curl', '-s', '-m', '5', '-D', '-', '-o', '/dev/null', '-w', '%{http_code} %{remote_ip}', url], { timeoutMs: 10_000 });
  const [status, ip] = (r.stdout.split('\n').pop() ?? '').split(' ');
  return { status: Number(status), gear: /^x-gear: (\S+)/im.exec(r.stdout)?.[1] ?? '', ip: ip ?? '' };
}

/** The lab CLI from inside the client netns (it resolves like the client does). */
function clientCli(args: string[]): Run {
  return run('ip', ['netns', 'exec', CLIENT_NS, 'node', BIN, '--config', CONFIG, ...args], { timeoutMs: 60_000 });
}

/** An nsupdate batch on the application owners' zones (example.org/.com), signed with their lab key. */
function owners(lines: string[]): Run {
  const f = path.join(tmp, `owners-${Date.now()}.txt`);
  writeFileSync(f, [`server ${DNS_IP}`, ...lines, 'send', ''].join('\n'));
  return run('bash', [DNS_SH, 'owners', f], { timeoutMs: 20_000 });
}

/** What the lab's BIND answers for a name (for the test log when a check fails). */
function dig(name: string): string {
  return run('dig', ['+time=2', '+tries=1', `@${DNS_IP}`, name, 'A'], { timeoutMs: 10_000 }).stdout;
}

const sameSet = (a: string[], b: readonly string[]) => a.length === b.length && [...b].sort().every((x, i) => a[i] === x);

test.before(async (t) => {
  t.timeout(900_000, 'lab bring-up');
  await ensureLab();
  const r = await applyAndSync(spi.createApp(APP, NS) + spi.addEndpoint(APP, NS, '198.51.100.36', 35551));
  if (r.code !== 0) throw new Error(`apply/sync failed:\n${failureLines(r)}`);
});

test.after.always(async (t) => {
  t.timeout(300_000);
  owners(['update delete good.example.org', 'update delete bad.example.org']);
  await applyAndSync(spi.deleteApp(APP, NS));
  releaseLab();
});

test.serial('the client resolves app names through the lab DNS to every VIP and reaches the gear by name', (t) => {
  t.deepEqual(clientResolves(HOST), [...VIPS].sort(), 'every VIP (active/active)');
  t.deepEqual(clientResolves(`whatever-else.${CLOUD_DOMAIN}`), [...VIPS].sort(), 'the wildcard covers every app');
  const seen = new Set<string>();
  for (let i = 0; i < 6; i++) {
    const r = clientGet(`http://${HOST}/`);
    t.is(r.status, 200);
    t.is(r.gear, '198.51.100.36:35551');
    seen.add(r.ip);
  }
  t.true([...seen].every((ip) => (VIPS as readonly string[]).includes(ip)), `connected to VIPs only: ${[...seen].join(' ')}`);
  t.log(`6 requests by name went to ${[...seen].join(' and ')}`);
  // an alias whose owner points it at the app (the demo's www.example.com is a CNAME to shop-acme)
  t.deepEqual(clientResolves('www.example.com'), [...VIPS].sort());
});

test.serial('dns output is loaded by named-checkzone; the serial moves only when the records do', async (t) => {
  const domain = 'zonecheck.example.net';
  const zone = async (extra: string[]) => {
    const r = await cli(['dns', '--domain', domain, '--ns', `ns1.${domain}=${DNS_IP}`, '--ns', 'ns.example.com', ...extra]);
    t.is(r.code, 0, r.stderr);
    return r.stdout;
  };
  const check = (text: string, name: string) => {
    const f = path.join(tmp, name);
    writeFileSync(f, text);
    const r = run('named-checkzone', [domain, f]);
    t.is(r.code, 0, r.stdout + r.stderr);
    return Number(/loaded serial (\d+)/.exec(r.stdout)?.[1]);
  };
  // VIPs from the inventory (ansible-inventory on the lab's inventory), SOA/NS from flags
  const first = await zone([]);
  t.deepEqual(first.split('\n').filter((l) => l.startsWith('*')), VIPS.map((v) => `*\tIN\tA\t${v}`));
  const s1 = check(first, 'a.zone');
  t.true(s1 >= 2000000000, `YYYYMMDDnn serial, got ${s1}`);
  t.is(await zone([]), first, 'same records: byte-identical, same serial');
  const s2 = check(await zone(['--ttl', '120']), 'b.zone');
  t.true(s2 > s1, `a changed TTL raises the serial (${s1} -> ${s2})`);
  // IPv6 and IPv4 VIPs together: A and AAAA records
  const mixed = await zone(['--vip', '198.51.100.201/24', '--vip', '2001:db8:100::201/64', '--ttl', '120']);
  t.regex(mixed, /^\*\tIN\tAAAA\t2001:db8:100::201$/m);
  const s3 = check(mixed, 'c.zone');
  t.true(s3 > s2);
  // a bad VIP is refused with its value named, nothing printed (exit 2)
  const bad = await cli(['dns', '--domain', domain, '--ns', 'ns.example.com', '--vip', '198.51.100.201;rm']);
  t.is(bad.code, 2);
  t.is(bad.stdout, '');
  t.regex(bad.stderr, /VIP "198\.51\.100\.201;rm" is not an IP address/);
});

test.serial('bind mode: site.yml puts a VIP change live on the broker\'s BIND, a second run changes nothing', async (t) => {
  t.timeout(600_000);
  const again = await sitePlaybook(['--tags', 'rproxy_dns']);
  t.is(again.code, 0, failureLines(again));
  t.is(again.recap.broker?.changed, 0, 'idempotent: the provisioned zone is unchanged');
  try {
    const one = await sitePlaybook(['--tags', 'rproxy_dns', '-e', JSON.stringify({ rproxy_dns_vips: [VIPS[0]] })]);
    t.is(one.code, 0, failureLines(one));
    t.true((one.recap.broker?.changed ?? 0) > 0);
    t.deepEqual(clientResolves(HOST), [VIPS[0]], 'the role verified BIND serves it before it returned');
  } finally {
    const back = await sitePlaybook(['--tags', 'rproxy_dns']);
    t.is(back.code, 0, failureLines(back));
  }
  t.deepEqual(clientResolves(HOST), [...VIPS].sort());
});

test.serial('nsupdate mode: TSIG-signed updates to the operator\'s server only when its answers differ; a batch changes what the client resolves', async (t) => {
  t.timeout(600_000);
  try {
    t.is(run('bash', [DNS_SH, 'mode', 'dynamic']).code, 0, 'the lab BIND plays the operator\'s server (empty dynamic zone)');
    t.deepEqual(clientResolves(HOST), [], 'nothing published yet');
    const first = await sitePlaybook(['--tags', 'rproxy_dns', '-e', 'rproxy_dns_mode=nsupdate']);
    t.is(first.code, 0, failureLines(first));
    t.is(first.recap.broker?.changed, 1, 'one update sent');
    t.false(first.stdout.includes((/secret "([^"]+)"/.exec(run('cat', [RPROXY_KEY]).stdout) ?? [])[1] ?? 'no-key'), 'the TSIG secret never shows');
    t.deepEqual(clientResolves(HOST), [...VIPS].sort());
    const second = await sitePlaybook(['--tags', 'rproxy_dns', '-e', 'rproxy_dns_mode=nsupdate']);
    t.is(second.code, 0, failureLines(second));
    t.is(second.recap.broker?.changed, 0, 'the server already answers the records: nothing sent');

    // the CLI's batch, applied with nsupdate and the TSIG key, changes what the client resolves
    const batch = await cli(['dns', '--format', 'nsupdate', '--server', DNS_IP, '--vip', VIPS[1]]);
    t.is(batch.code, 0, batch.stderr);
    const unsigned = run('nsupdate', ['-v'], { input: batch.stdout, timeoutMs: 20_000 });
    t.not(unsigned.code, 0, 'an unsigned update is refused');
    t.deepEqual(clientResolves(HOST), [...VIPS].sort(), 'and changes nothing');
    const outside = run('nsupdate', ['-v', '-k', RPROXY_KEY], {
      input: `server ${DNS_IP}\nzone ${CLOUD_DOMAIN}.\nupdate add evil.${CLOUD_DOMAIN}. 60 A 198.51.100.77\nsend\n`, timeoutMs: 20_000,
    });
    t.not(outside.code, 0, 'the key may change the wildcard\'s records only (update-policy of the lab\'s server)');
    const signed = run('nsupdate', ['-v', '-k', RPROXY_KEY], { input: batch.stdout, timeoutMs: 20_000 });
    t.is(signed.code, 0, signed.stderr);
    t.deepEqual(clientResolves(HOST), [VIPS[1]]);
    const r = clientGet(`http://${HOST}/`);
    t.is(r.status, 200);
    t.is(r.ip, VIPS[1]);
    // --if-changed sees the difference; the role puts the records back
    const differs = await cli(['dns', '--format', 'nsupdate', '--server', DNS_IP, '--if-changed']);
    t.regex(differs.stdout, /^update add \*\.apps\.example\.com\. 300 A 198\.51\.100\.201$/m);
    const back = await sitePlaybook(['--tags', 'rproxy_dns', '-e', 'rproxy_dns_mode=nsupdate']);
    t.is(back.code, 0, failureLines(back));
    t.is(back.recap.broker?.changed, 1);
    t.deepEqual(clientResolves(HOST), [...VIPS].sort());
  } finally {
    const toBind = run('bash', [DNS_SH, 'mode', 'bind']);
    const bind = await sitePlaybook(['--tags', 'rproxy_dns']);
    t.is(toBind.code, 0, toBind.stderr);
    t.is(bind.code, 0, failureLines(bind));
  }
  t.deepEqual(await waitFor(() => { const a = clientResolves(HOST); return sameSet(a, VIPS) ? a : false; }, 10_000), [...VIPS].sort(), 'bind mode again');
});

test.serial('--check-aliases reports a misconfigured alias (exit 5) and clears once its owner fixes it', async (t) => {
  t.timeout(300_000);
  const a = await applyAndSync(spi.addAlias(APP, NS, 'good.example.org') + spi.addAlias(APP, NS, 'bad.example.org'));
  t.is(a.code, 0, failureLines(a));
  t.is(owners([`update add good.example.org 60 CNAME ${HOST}.`, 'update add bad.example.org 60 A 198.51.100.77']).code, 0);
  const good = clientGet('http://good.example.org/');
  if (good.status !== 200) t.log(`good.example.org: client resolves ${clientResolves('good.example.org').join(' ') || 'nothing'}\n${dig('good.example.org')}\n${dig(HOST)}`);
  t.is(good.status, 200, 'an alias pointed at the app name is served by name');
  t.is(good.gear, '198.51.100.36:35551');

  const mine = (r: Run) => {
    const j = JSON.parse(r.stdout) as { aliases: Array<{ alias: string; status: string; foreign: string[] }> };
    return Object.fromEntries(j.aliases.filter((x) => x.alias.endsWith('.example.org') && /^(good|bad)\./.test(x.alias)).map((x) => [x.alias, x]));
  };
  const text = clientCli(['dns', '--check-aliases']);
  t.is(text.code, 5, text.stderr);
  t.regex(text.stdout, /^ELSEWHERE +bad\.example\.org \(app named-labdns\): 198\.51\.100\.77: not VIPs: 198\.51\.100\.77$/m);
  t.notRegex(text.stdout, /good\.example\.org/, 'a good alias is not listed');
  t.regex(text.stderr, /bad\.example\.org \(elsewhere\)/);
  // the same from the root namespace, asking the lab DNS explicitly
  const viaFlag = await cli(['dns', '--check-aliases', '--json', '--resolver', DNS_IP]);
  t.is(viaFlag.code, 5);
  t.deepEqual(Object.fromEntries(Object.entries(mine(viaFlag)).map(([k, v]) => [k, v.status])), { 'bad.example.org': 'elsewhere', 'good.example.org': 'ok' });

  t.is(owners(['update delete bad.example.org A', `update add bad.example.org 60 CNAME ${HOST}.`]).code, 0);
  const fixed = clientCli(['dns', '--check-aliases', '--json']);
  const statuses = mine(fixed);
  t.is(statuses['bad.example.org']?.status, 'ok');
  const problems = (JSON.parse(fixed.stdout) as { ok: boolean }).ok;
  t.is(fixed.code, problems ? 0 : 5, 'exit 0 exactly when no alias is a problem');

  const d = await applyAndSync(spi.removeAlias(APP, NS, 'good.example.org') + spi.removeAlias(APP, NS, 'bad.example.org'));
  t.is(d.code, 0);
});
