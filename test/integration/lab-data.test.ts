// The proxies' Lua data plane at scale (issue 10): with 2,000 apps, a targeted one-app run changes exactly that app's
// data file on each proxy (checksums of every apps/*.json) and goes live without a reload; a full run afterwards
// changes nothing; a deleted app is gone (file and route) after its targeted run; after an nginx restart and after a
// proxy "reboot" (every nginx process of its namespace killed, /run's socket directory lost, nginx started as the
// lab starts it) every route is served as before, with no run from the controller.
import test from 'ava';
import {
  PROXIES, VIPS, ensureLab, releaseLab, applyAndSync, failureLines, curlVia, spi, fqdn, sshProxy, nginxMasterPid,
  sitePlaybook, waitFor, waitVipsServing,
} from '../lab/labenv.js';

const NS = 'labd';
const N = 2000;
const hosts = Object.keys(PROXIES);
const APPS = Array.from({ length: N }, (_, i) => `d${i}`);
const gearOf = (i: number): [string, number] => [`198.51.100.${31 + (i % 9)}`, 35531 + (i % 50)];
const DIR = '/etc/nginx/rproxy/apps';

/** md5 of every apps/*.json on a proxy: file -> sum. */
function sums(host: string): Record<string, string> {
  const r = sshProxy(host, `cd ${DIR} && find . -maxdepth 1 -name '*.json' -print0 | xargs -0 -r md5sum`, 60_000);
  const out: Record<string, string> = {};
  for (const l of r.stdout.trim().split('\n').filter(Boolean)) {
    const [sum, file] = l.split(/\s+/);
    out[file!.replace('./', '')] = sum!;
  }
  return out;
}

function diff(a: Record<string, string>, b: Record<string, string>): string[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => a[k] !== b[k]).sort();
}

/**
 * Every lab app's route as the proxy serves it right now (a request per app to its own nginx on port 80): the list of
 * "host status gear", sorted, and how many answered 200. One Python process on the proxy, not 2,000 curls.
 */
function served(host: string): { lines: string[]; ok: number } {
  const names = APPS.map((a) => fqdn(a, NS));
  const py = `
import http.client, sys
out = []
for h in sys.stdin.read().split():
    for attempt in range(3):
        try:
            c = http.client.HTTPConnection('127.0.0.1', 80, timeout=5)
            c.request('GET', '/', headers={'Host': h})
            r = c.getresponse(); body = r.read().decode('utf-8', 'replace'); c.close()
            gear = body.split('\\n', 1)[0].replace('gear ', '') if body.startswith('gear ') else '-'
            out.append('%s %d %s' % (h, r.status, gear)); break
        except Exception as e:
            if attempt == 2: out.append('%s 0 %s' % (h, type(e).__name__))
print('\\n'.join(out))
`;
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const r = sshProxy(host, `echo ${b64(py)} | base64 -d > /tmp/rplab-served.py && echo ${b64(names.join(' '))} | base64 -d | python3 /tmp/rplab-served.py`, 240_000);
  // d7 has two gears after the first test: round robin answers from either, both are its route
  const d7 = new RegExp(`^(${fqdn('d7', NS).replace(/\./g, '\\.')} 200) (198\\.51\\.100\\.38:35538|198\\.51\\.100\\.39:35580)$`);
  const lines = r.stdout.trim().split('\n').filter(Boolean).map((l) => l.replace(d7, '$1 <one of its two gears>')).sort();
  return { lines, ok: lines.filter((l) => / 200 /.test(l)).length };
}

const workers = (host: string): string => sshProxy(host, 'pgrep -P "$(cat /run/nginx.pid)" | sort | tr "\\n" ,').stdout.trim();

test.before(async (t) => {
  t.timeout(900_000, 'lab bring-up and 2,000 apps');
  await ensureLab();
  const stream = APPS.map((a, i) => spi.createApp(a, NS) + spi.addEndpoint(a, NS, ...gearOf(i))).join('');
  const t0 = Date.now();
  const r = await applyAndSync(stream);
  if (r.code !== 0) throw new Error(`seeding ${N} apps failed:\n${failureLines(r)}`);
  t.log(`${N} apps applied and synced in ${Date.now() - t0} ms`);
});

test.after.always(async (t) => {
  t.timeout(600_000);
  await applyAndSync(APPS.map((a) => spi.deleteApp(a, NS)).join(''));
});

test.serial(`${N} apps: a targeted one-app run changes exactly that app's data on each proxy, live without a reload; a full run then changes nothing`, async (t) => {
  t.timeout(600_000);
  const before: Record<string, Record<string, string>> = {};
  const procs: Record<string, { master: number; workers: string }> = {};
  for (const h of hosts) {
    before[h] = sums(h);
    t.is(Object.keys(before[h]!).filter((f) => f.endsWith(`-${NS}.json`)).length, N, `${h}: one data file per app`);
    procs[h] = { master: nginxMasterPid(h), workers: workers(h) };
  }
  const t0 = Date.now();
  const r = await applyAndSync(spi.addEndpoint('d7', NS, '198.51.100.39', 35580));
  t.is(r.code, 0, failureLines(r));
  t.log(`targeted one-app run at ${N} apps: ${Date.now() - t0} ms`);
  for (const h of hosts) {
    t.deepEqual(diff(before[h]!, sums(h)), [`d7-${NS}.json`], `${h}: exactly the app's file changed`);
    t.deepEqual({ master: nginxMasterPid(h), workers: workers(h) }, procs[h], `${h}: no reload (same master, same workers)`);
    const data = JSON.parse(sshProxy(h, `cat ${DIR}/d7-${NS}.json`).stdout);
    t.deepEqual(data.backends, ['198.51.100.38:35538', '198.51.100.39:35580']);
  }
  // live on every VIP: round robin reaches the new gear
  for (const v of VIPS) {
    t.true(await waitFor(() => [0, 1, 2, 3].some(() => curlVia(v, fqdn('d7', NS)).gear === '198.51.100.39:35580'), 5000, 100), v);
  }
  const full = await sitePlaybook();
  t.is(full.code, 0, failureLines(full));
  // what changed, task by task (the line before each "changed:" names the task)
  const lines = full.stdout.split('\n');
  const changed = lines.flatMap((l, i) => (l.startsWith('changed:') ? [`${lines.slice(0, i).reverse().find((x) => x.startsWith('TASK ')) ?? '?'} ${l}`] : []));
  t.log(`full run: ${JSON.stringify(full.recap)}${changed.length ? `\n${changed.join('\n')}` : ''}`);
  for (const [host, counts] of Object.entries(full.recap)) t.is(counts.changed, 0, `${host} changed in the full run:\n${changed.join('\n')}`);
});

test.serial('a deleted app is gone after its targeted run: its file removed, 404 on every VIP, every other file untouched', async (t) => {
  t.timeout(300_000);
  const before: Record<string, Record<string, string>> = {};
  for (const h of hosts) before[h] = sums(h);
  for (const v of VIPS) t.is(curlVia(v, fqdn('d9', NS)).status, 200);
  const r = await applyAndSync(spi.deleteApp('d9', NS));
  t.is(r.code, 0, failureLines(r));
  for (const h of hosts) {
    t.deepEqual(diff(before[h]!, sums(h)), [`d9-${NS}.json`], `${h}: only the deleted app's file changed`);
    t.is(sshProxy(h, `test -e ${DIR}/d9-${NS}.json`).code, 1, `${h}: the file is gone`);
  }
  for (const v of VIPS) t.is(curlVia(v, fqdn('d9', NS)).status, 404, v);
  APPS.splice(APPS.indexOf('d9'), 1);
});

test.serial('after an nginx restart and after a proxy reboot, every route is served as before, with no controller run', async (t) => {
  t.timeout(600_000);
  const [first, second] = hosts as [string, string];
  const expected = served(first);
  t.is(expected.ok, APPS.length, `${first}: every app answers 200 before: ${expected.lines.filter((l) => !/ 200 /.test(l)).slice(0, 5).join('; ')}`);
  t.deepEqual(served(second).lines, expected.lines, 'both proxies serve the same routes');

  // an nginx restart (stop, start: a new master loads every file)
  const oldMaster = nginxMasterPid(first);
  t.is(sshProxy(first, 'service nginx restart').code, 0);
  t.true(await waitFor(() => { const p = nginxMasterPid(first); return p > 0 && p !== oldMaster; }, 20_000, 200), 'a new master');
  const afterRestart = served(first);
  t.is(afterRestart.ok, APPS.length);
  t.deepEqual(afterRestart.lines, expected.lines, `${first}: the same routes after a restart`);

  // a reboot: every nginx process of the namespace killed at once (its socket file stays behind), /run's socket
  // directory and pid file lost (a tmpfs /run), nginx started the way the lab starts it
  t.is(sshProxy(second, 'm=$(cat /run/nginx.pid) && kill -KILL $m $(pgrep -P $m); sleep 0.5; rm -rf /run/nginx-rproxy /run/nginx.pid').code, 0);
  t.is(sshProxy(second, 'service nginx start').code, 0);
  t.true(await waitFor(() => nginxMasterPid(second) > 0, 20_000, 200), 'nginx runs again');
  const afterReboot = served(second);
  t.is(afterReboot.ok, APPS.length);
  t.deepEqual(afterReboot.lines, expected.lines, `${second}: the same routes after a reboot`);
  t.is(sshProxy(second, 'stat -c %a /run/nginx-rproxy && test -S /run/nginx-rproxy/apply.sock').stdout.trim(), '700', 'the apply socket is back, root only');
  t.true(await waitVipsServing(30_000), 'the VIPs serve again');
  // and the next targeted run still applies live there
  const r = await applyAndSync(spi.addEndpoint('d11', NS, '198.51.100.39', 35579));
  t.is(r.code, 0, failureLines(r));
  t.true(await waitFor(() => [0, 1, 2, 3].some(() => curlVia(PROXIES[second]!, fqdn('d11', NS)).gear === '198.51.100.39:35579'), 5000, 100));
});

test.after.always('release the lab', () => releaseLab());
