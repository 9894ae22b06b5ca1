// A configuration nginx rejects never goes live; site.yml is idempotent. (Route data goes live through the Lua apply
// socket with no `nginx -t`; an app with a TLS alias brings its own :443 server, which goes through `nginx -t` on
// the whole configuration: that is what a broken file elsewhere makes fail.)
import test from 'ava';
import {
  VIPS, PROXIES, ensureLab, releaseLab, applyAndSync as applyRaw, failureLines, syncAll, curlVia, spi, fqdn, waitFor, sshProxy, nginxMasterPid, sitePlaybook,
  selfSigned,
} from '../lab/labenv.js';

const NS = 'labs';
const PLANTED = '/etc/nginx/conf.d/zz-rplab-broken.conf';
const hosts = Object.keys(PROXIES);
const created = new Set<string>();

async function applyAndSync(stream: string) {
  const r = await applyRaw(stream);
  if (r.code !== 0) console.error(`apply/sync exit ${r.code}:\n${failureLines(r)}`);
  return r;
}

/** Checksums of every file under /etc/nginx except the planted one. */
function nginxFiles(host: string): string {
  return sshProxy(host, `cd /etc/nginx && find . -type f ! -path ./conf.d/zz-rplab-broken.conf -print0 | sort -z | xargs -0 md5sum`).stdout;
}

test.before(async (t) => {
  t.timeout(900_000, 'lab bring-up');
  await ensureLab();
});

test.after.always(async (t) => {
  t.timeout(300_000);
  for (const h of hosts) sshProxy(h, `rm -f ${PLANTED}`);
  if (created.size) {
    await applyAndSync([...created].map((id) => spi.deleteApp(...(id.split('/') as [string, string]))).join(''));
  }
});

test.serial('a configuration nginx rejects never goes live: previous files and the running nginx stay', async (t) => {
  t.timeout(600_000);
  // a live application before
  created.add(`base/${NS}`);
  t.is((await applyAndSync(spi.createApp('base', NS) + spi.addEndpoint('base', NS, '198.51.100.31', 35545))).code, 0);
  t.true(await waitFor(() => VIPS.every((v) => curlVia(v, fqdn('base', NS)).gear === '198.51.100.31:35545'), 10_000, 200));

  // plant a file nginx cannot parse in a directory the main configuration includes (as a careless
  // operator or a broken package would); the running nginx has not loaded it
  const before: Record<string, { files: string; pid: number }> = {};
  for (const h of hosts) {
    t.is(sshProxy(h, `echo 'rplab_no_such_directive on;' > ${PLANTED}`).code, 0);
    before[h] = { files: nginxFiles(h), pid: nginxMasterPid(h) };
    t.true(before[h]!.pid > 0);
  }

  created.add(`broken/${NS}`);
  // a TLS alias: the app's :443 server needs `nginx -t`, which the planted file makes fail
  const alias = 'broken-labs.example.org';
  const { cert, key } = selfSigned(alias);
  const r = await applyAndSync(spi.createApp('broken', NS) + spi.addEndpoint('broken', NS, '198.51.100.32', 35545) +
    spi.addAlias('broken', NS, alias) + spi.addSsl('broken', NS, alias, cert, key));
  t.log(`exit ${r.code}; ${(r.stdout + r.stderr).split('\n').filter((l) => /nginx|fatal|FAILED|error/i.test(l)).slice(0, 8).join('\n')}`);
  t.not(r.code, 0, 'the run fails');
  t.regex(r.stdout + r.stderr, /rplab_no_such_directive|unknown directive/, "the failure carries nginx's message");

  for (const h of hosts) {
    t.is(nginxFiles(h), before[h]!.files, `${h}: the previous files are back, byte for byte`);
    t.is(nginxMasterPid(h), before[h]!.pid, `${h}: nginx still runs (same master)`);
  }
  for (const v of VIPS) {
    t.is(curlVia(v, fqdn('broken', NS)).status, 404, `${v}: the new application is not live`);
    t.is(curlVia(v, fqdn('base', NS)).gear, '198.51.100.31:35545', `${v}: the old routes still serve`);
  }

  // the operator removes the bad file; the next sync brings the proxies up to date
  for (const h of hosts) sshProxy(h, `rm -f ${PLANTED}`);
  const s = await syncAll();
  t.is(s.code, 0, failureLines(s));
  t.true(await waitFor(() => VIPS.every((v) => curlVia(v, fqdn('broken', NS)).gear === '198.51.100.32:35545'), 10_000, 200));
});

test.serial('a base configuration nginx rejects is restored on disk and never reloaded', async (t) => {
  t.timeout(600_000);
  const before: Record<string, { files: string; pid: number }> = {};
  for (const h of hosts) before[h] = { files: nginxFiles(h), pid: nginxMasterPid(h) };
  const r = await sitePlaybook(['--limit', hosts.join(','), '--tags', 'nginx_rproxy', '-e', '{"nginx_rproxy_extra_http_config": "rplab_no_such_directive on;"}']);
  t.not(r.code, 0, 'the run fails');
  t.regex(r.stdout, /previous files were restored[^\n]*rplab_no_such_directive/, "the failure carries nginx's message");
  for (const h of hosts) {
    t.is(nginxFiles(h), before[h]!.files, `${h}: the previous files are back byte for byte, no backup left behind`);
    t.is(nginxMasterPid(h), before[h]!.pid, `${h}: nginx still runs (same master)`);
  }
  for (const v of VIPS) t.is(curlVia(v, fqdn('base', NS)).gear, '198.51.100.31:35545', `${v}: the routes still serve`);
});

test.serial('site.yml is idempotent: a second run changes nothing', async (t) => {
  t.timeout(900_000);
  const first = await sitePlaybook();
  t.is(first.code, 0, failureLines(first));
  const second = await sitePlaybook();
  t.is(second.code, 0, failureLines(second));
  t.log(JSON.stringify(second.recap));
  t.true(Object.keys(second.recap).length >= hosts.length);
  for (const [host, counts] of Object.entries(second.recap)) {
    t.is(counts.changed, 0, `${host} changed on the second run:\n${second.stdout.split('\n').filter((l) => l.startsWith('changed:')).join('\n')}`);
    t.is(counts.failed, 0);
    t.is(counts.unreachable, 0);
  }
});

test.after.always('release the lab', () => releaseLab());
