// Routing through the lab's VIPs, from the client netns, with the real CLI, real ansible and real proxies.
// Runs on both lab profiles (the prod profile: 3 VIPs, paas.example.net with a wildcard certificate).
import test from 'ava';
import {
  VIPS, CLOUD_DOMAIN, ensureLab, releaseLab, applyAndSync, curlVia, certSubject, selfSigned, spi, fqdn, waitFor, sleep,
  WsClient, sshProxy, nginxMasterPid, vipHolder, failureLines, PROFILE, LAB_CA,
} from '../lab/labenv.js';

const NS = 'labt';
const created = new Set<string>();

async function apply(t: { log: (...a: unknown[]) => void }, stream: string) {
  const r = await applyAndSync(stream);
  if (r.code !== 0) t.log(`apply/sync exit ${r.code}:\n${failureLines(r)}`);
  return r;
}

/** Waits until HOST answers STATUS through every VIP. */
async function liveEverywhere(host: string, status: number, opts: { https?: boolean; cacert?: string } = {}, timeoutMs = 10_000) {
  return waitFor(() => VIPS.every((v) => curlVia(v, host, '/', opts).status === status), timeoutMs, 200);
}

test.before(async (t) => {
  t.timeout(900_000, 'lab bring-up');
  await ensureLab();
});

test.after.always(async (t) => {
  t.timeout(300_000);
  if (created.size === 0) return;
  const stream = [...created].map((id) => {
    const [app, ns] = id.split('/') as [string, string];
    return spi.deleteApp(app, ns);
  });
  await applyAndSync(stream.join(''));
});

test.serial('unknown host answers 404 through every VIP', (t) => {
  for (const v of VIPS) {
    const r = curlVia(v, `nobody-nowhere.${CLOUD_DOMAIN}`);
    t.is(r.status, 404, `${v}: ${r.error}`);
    t.is(r.gear, '');
  }
});

test.serial('a route appears through every VIP, carries the forwarding headers, and disappears', async (t) => {
  t.timeout(300_000);
  const app = 'appear';
  created.add(`${app}/${NS}`);
  const t0 = Date.now();
  const r = await apply(t, spi.createApp(app, NS) + spi.addEndpoint(app, NS, '198.51.100.37', 35541));
  const applied = Date.now() - t0;
  t.is(r.code, 0);
  const host = fqdn(app, NS);
  t.true(await liveEverywhere(host, 200), 'route live through every VIP');
  t.log(`apply + targeted run: ${applied} ms; live through every VIP ${Date.now() - t0} ms after the start`);
  for (const v of VIPS) {
    const res = curlVia(v, host, '/some/path?x=1');
    t.is(res.status, 200);
    t.is(res.gear, '198.51.100.37:35541');
    t.regex(res.body, new RegExp(`^host: ${host.replace(/\./g, '\\.')}$`, 'm'));
    t.regex(res.body, /^path: \/some\/path\?x=1$/m);
    t.regex(res.body, /^x-forwarded-for: 198\.51\.100\.100$/m);
    t.regex(res.body, /^x-real-ip: 198\.51\.100\.100$/m);
    t.regex(res.body, /^x-forwarded-proto: http$/m);
  }
  const d = await apply(t, spi.deleteApp(app, NS));
  t.is(d.code, 0);
  t.true(await liveEverywhere(host, 404), 'route gone from every VIP');
  created.delete(`${app}/${NS}`);
});

test.serial(`the platform name under the cloud domain over TLS: ${PROFILE === 'prod' ? 'the wildcard certificate, verified, through every VIP' : 'no wildcard certificate configured, the handshake is refused'}`, async (t) => {
  t.timeout(300_000);
  const app = 'wild';
  created.add(`${app}/${NS}`);
  t.is((await apply(t, spi.createApp(app, NS) + spi.addEndpoint(app, NS, '198.51.100.35', 35546))).code, 0);
  const host = fqdn(app, NS);
  t.true(host.endsWith(`.${CLOUD_DOMAIN}`));
  t.true(await liveEverywhere(host, 200), 'over HTTP through every VIP');
  for (const v of VIPS) {
    const r = curlVia(v, host, '/w', PROFILE === 'prod' ? { https: true, cacert: LAB_CA } : { https: true });
    if (PROFILE === 'prod') {
      t.is(r.status, 200, `${v}: ${r.error}`);
      t.is(r.gear, '198.51.100.35:35546');
      t.regex(r.body, /^x-forwarded-proto: https$/m);
      t.regex(certSubject(v, host), new RegExp(`CN ?= ?\\*\\.${CLOUD_DOMAIN.replace(/\./g, '\\.')}`));
    } else {
      t.is(r.status, 0, `${v}: no certificate for the platform names without a wildcard certificate`);
      t.regex(r.error, /unrecognized name|alert/i, `${v}: refused by the :443 default server (ssl_reject_handshake): ${r.error}`);
    }
  }
});

test.serial('an application without gears answers 503', async (t) => {
  t.timeout(300_000);
  const app = 'nogears';
  created.add(`${app}/${NS}`);
  t.is((await apply(t, spi.createApp(app, NS))).code, 0);
  t.true(await liveEverywhere(fqdn(app, NS), 503));
  // its last gear removed -> back to 503
  t.is((await apply(t, spi.addEndpoint(app, NS, '198.51.100.38', 35541))).code, 0);
  t.true(await liveEverywhere(fqdn(app, NS), 200));
  t.is((await apply(t, spi.removeEndpoint(app, NS, '198.51.100.38', 35541))).code, 0);
  t.true(await liveEverywhere(fqdn(app, NS), 503));
});

test.serial('requests spread over all gears; load_balancer and database endpoints are never routed', async (t) => {
  t.timeout(300_000);
  const app = 'spread';
  created.add(`${app}/${NS}`);
  const stream =
    spi.createApp(app, NS) +
    spi.addEndpoint(app, NS, '198.51.100.31', 35542) +
    spi.addEndpoint(app, NS, '198.51.100.32', 35542) +
    spi.addEndpoint(app, NS, '198.51.100.33', 35542) +
    spi.addEndpoint(app, NS, '198.51.100.34', 35542, { types: ['load_balancer'], portName: 'haproxy' }) +
    spi.addEndpoint(app, NS, '198.51.100.35', 35542, { types: ['database'], protocols: ['mysql'], portName: 'mysql', mappings: [] });
  t.is((await apply(t, stream)).code, 0);
  const host = fqdn(app, NS);
  t.true(await liveEverywhere(host, 200));
  for (const v of VIPS) {
    const seen = new Map<string, number>();
    for (let i = 0; i < 30; i++) {
      const r = curlVia(v, host);
      t.is(r.status, 200);
      seen.set(r.gear, (seen.get(r.gear) ?? 0) + 1);
    }
    t.log(`${v}: ${[...seen].map(([g, n]) => `${g} x${n}`).join(', ')}`);
    t.deepEqual([...seen.keys()].sort(), ['198.51.100.31:35542', '198.51.100.32:35542', '198.51.100.33:35542']);
  }
});

test.serial('an alias routes to its application through every VIP, and stops when removed', async (t) => {
  t.timeout(300_000);
  const app = 'aliased';
  const alias = 'www.aliased-lab.example.net';
  created.add(`${app}/${NS}`);
  t.is((await apply(t, spi.createApp(app, NS) + spi.addEndpoint(app, NS, '198.51.100.36', 35543) + spi.addAlias(app, NS, alias))).code, 0);
  t.true(await liveEverywhere(alias, 200));
  for (const v of VIPS) t.is(curlVia(v, alias).gear, '198.51.100.36:35543');
  t.is((await apply(t, spi.removeAlias(app, NS, alias))).code, 0);
  t.true(await liveEverywhere(alias, 404));
  t.is(curlVia(VIPS[0], fqdn(app, NS)).status, 200);
});

test.serial('a TLS alias is served on 443 with its own certificate (SNI)', async (t) => {
  t.timeout(300_000);
  const app = 'secure';
  const alias = 'secure-lab.example.net';
  created.add(`${app}/${NS}`);
  const { cert, key, certFile } = selfSigned(alias);
  const r = await apply(
    t,
    spi.createApp(app, NS) + spi.addEndpoint(app, NS, '198.51.100.39', 35543) + spi.addAlias(app, NS, alias) + spi.addSsl(app, NS, alias, cert, key),
  );
  t.is(r.code, 0);
  t.true(await liveEverywhere(alias, 200, { https: true, cacert: certFile }), 'https through every VIP, verified');
  for (const v of VIPS) {
    const subject = certSubject(v, alias);
    t.regex(subject, new RegExp(`CN ?= ?${alias.replace(/\./g, '\\.')}`), `${v}: ${subject}`);
    const res = curlVia(v, alias, '/tls', { https: true, cacert: certFile });
    t.is(res.status, 200);
    t.is(res.gear, '198.51.100.39:35543');
    t.regex(res.body, /^x-forwarded-proto: https$/m);
    t.is(curlVia(v, alias).status, 200, 'the alias on :80 too');
  }
});

test.serial('websocket upgrade passes, and an open websocket survives a reload', async (t) => {
  t.timeout(300_000);
  const app = 'chat';
  created.add(`${app}/${NS}`);
  t.is((await apply(t, spi.createApp(app, NS) + spi.addEndpoint(app, NS, '198.51.100.38', 35544, { protocols: ['http', 'ws'] }))).code, 0);
  const host = fqdn(app, NS);
  t.true(await liveEverywhere(host, 200));
  const vip = VIPS[0];
  const holder = vipHolder(vip);
  const ws = new WsClient({ vip, host, path: '/chat' });
  try {
    t.is(await ws.next(), 'open');
    t.regex((await ws.next()) ?? '', /^gear 198\.51\.100\.38:35544 ws \/chat/);
    ws.send('one');
    t.is(await ws.next(), 'echo one');
    // a routing change on every proxy (live through the Lua apply socket) ...
    const pidBefore = nginxMasterPid(holder);
    created.add(`chatpeer/${NS}`);
    t.is((await apply(t, spi.createApp('chatpeer', NS) + spi.addEndpoint('chatpeer', NS, '198.51.100.39', 35544))).code, 0);
    t.true(await liveEverywhere(fqdn('chatpeer', NS), 200));
    // ... and an explicit graceful reload on the proxy that carries the websocket
    t.is(sshProxy(holder, 'service nginx reload').code, 0);
    await sleep(500);
    t.is(nginxMasterPid(holder), pidBefore, 'graceful reload keeps the master');
    ws.send('two');
    t.is(await ws.next(), 'echo two', 'the websocket opened before the reloads still works');
  } finally {
    ws.close();
  }
});

test.after.always('release the lab', () => releaseLab());
