// VRRP failover in the lab: nginx dead or hung on a VIP's master, keepalived killed or stopped, the master's link
// down. Each time the VIP moves to the other proxy, and a client that retries once after 0.2 s loses no request.
// Outcomes only: how fast it happens is measured by `npm run bench:failover`.
import test from 'ava';
import {
  VIPS, PROXIES, ensureLab, releaseLab, applyAndSync, curlVia, spi, fqdn, waitFor, sleep, vipHolder, vipsOf, killNginx,
  startNginx, sshProxy, startRequestLoop, nginxMasterPid, waitVipsServing, cutLink, restoreLink, killKeepalived, watchVips,
  nginxHealthFile, holdFile, startKeepalived, type LoopSummary,
} from '../lab/labenv.js';

const NS = 'labf';
const APP = 'steady';
const HOST = fqdn(APP, NS);
const hosts = Object.keys(PROXIES);

/** One request every 20 ms through `vip`, each retried once after 0.2 s. */
function oneRetryLoop(vip: string) {
  return startRequestLoop({ vip, host: HOST, intervalMs: 20, durationMs: 60_000, timeoutMs: 1000, retries: 1, retryDelayMs: 200 });
}

function describe(s: LoopSummary): string {
  return `requests: ${s.sent} sent, ${s.ok} ok, ${s.failed} failed after one retry, ${s.attemptsFailed} first attempts failed`;
}

async function planned(): Promise<void> {
  for (const h of hosts) {
    if (!nginxMasterPid(h)) startNginx(h);
    await startKeepalived(h);
  }
  // after a repair the planned masters take their VIPs back (preemption): rp1 .201, rp2 .202
  await waitFor(() => vipHolder(VIPS[0]) === 'rp1' && vipHolder(VIPS[1]) === 'rp2', 30_000, 100);
  if (!(await waitVipsServing(30_000))) throw new Error(`VIPs not serving: ${VIPS.map((v) => `${v}@${vipHolder(v)}`).join(' ')}`);
}

test.before(async (t) => {
  t.timeout(900_000, 'lab bring-up');
  await ensureLab();
  const r = await applyAndSync(
    spi.createApp(APP, NS) + spi.addEndpoint(APP, NS, '198.51.100.33', 35546) + spi.addEndpoint(APP, NS, '198.51.100.34', 35546),
  );
  if (r.code !== 0) throw new Error(r.stdout + r.stderr);
  const ok = await waitFor(() => VIPS.every((v) => curlVia(v, HOST).status === 200), 10_000, 200);
  if (!ok) throw new Error(`${HOST} not live through the VIPs`);
  await planned();
});

test.after.always(async (t) => {
  t.timeout(300_000);
  for (const h of hosts) restoreLink(h);
  await planned().catch(() => undefined);
  await applyAndSync(spi.deleteApp(APP, NS));
});

test.serial('every proxy runs the health watcher, and keepalived with real-time priority', (t) => {
  for (const h of hosts) {
    t.is(nginxHealthFile(h), '1', `${h}: the watcher reports nginx healthy`);
    t.is(holdFile(h), '0', `${h}: no proxy is stale`);
    t.is(sshProxy(h, 'service rproxy-health-watcher status').code, 0, `${h}: watcher running`);
    const sched = sshProxy(h, 'ps -o cls=,args= -p $(pgrep -d, keepalived)').stdout;
    t.regex(sched, /^\s*RR\s/m, `${h}: keepalived's VRRP process is SCHED_RR: ${sched}`);
  }
});

test.serial("nginx SIGKILLed on a VIP's master: the VIP moves, and no request fails with one retry", async (t) => {
  t.timeout(180_000);
  await planned();
  const vip = VIPS[0];
  const master = vipHolder(vip);
  const other = VIPS[1];
  const loop = oneRetryLoop(vip);
  await sleep(1000);
  t.is(killNginx(master).code, 0);
  t.true(await waitFor(() => ![master, 'none'].includes(vipHolder(vip)), 10_000, 20), `${vip} moved off ${master}`);
  t.is(nginxHealthFile(master), '0', 'the watcher saw nginx die');
  await sleep(1500);
  const s = await loop.stop();
  t.log(describe(s));
  t.true(s.sent >= 50);
  t.is(s.failed, 0, JSON.stringify(s.failures));
  t.is(vipHolder(other), 'rp2', 'the other VIP stays where it was');

  // nginx back: the planned master takes its VIP back (after the watcher's rise count), without a failed request
  const back = oneRetryLoop(vip);
  await sleep(500);
  t.is(startNginx(master).code, 0);
  t.true(await waitFor(() => vipHolder(vip) === master, 20_000, 50), 'the VIP returns to its planned master');
  await sleep(1000);
  const b = await back.stop();
  t.log(`return: ${describe(b)}`);
  t.is(b.failed, 0, JSON.stringify(b.failures));
});

test.serial('nginx alive but not answering (frozen): the VIP moves, and comes back when nginx answers again', async (t) => {
  t.timeout(180_000);
  await planned();
  const vip = VIPS[0];
  const master = vipHolder(vip);
  const loop = oneRetryLoop(vip);
  await sleep(1000);
  t.is(sshProxy(master, 'm=$(cat /run/nginx.pid) && kill -STOP $m $(pgrep -P $m)').code, 0);
  try {
    t.true(await waitFor(() => ![master, 'none'].includes(vipHolder(vip)), 15_000, 20), `${vip} moved off the frozen nginx on ${master}`);
    t.true(nginxMasterPid(master) > 0, 'nginx is still alive: only the HTTP probe can see this');
    await sleep(1500);
  } finally {
    sshProxy(master, 'm=$(cat /run/nginx.pid) && kill -CONT $m $(pgrep -P $m)');
  }
  t.true(await waitFor(() => vipHolder(vip) === master, 20_000, 50), 'back on its master once nginx answers');
  await sleep(1000);
  const s = await loop.stop();
  t.log(describe(s));
  // requests accepted by the frozen nginx before the VIP moved hang until it thaws: they are the client's timeout
  t.is(s.failed, 0, JSON.stringify(s.failures));
});

test.serial('keepalived SIGKILLed on a master (no goodbye advert): the VIP moves, no request fails with one retry', async (t) => {
  t.timeout(180_000);
  await planned();
  const vip = VIPS[0];
  const master = vipHolder(vip);
  const w = watchVips();
  const loop = oneRetryLoop(vip);
  await sleep(1000);
  t.is(killKeepalived(master).code, 0);
  t.true(await waitFor(() => w.events.some((e) => e.added && e.vip === vip && e.host !== master), 10_000, 20), `${vip} up on another proxy`);
  await sleep(1500);
  const s = await loop.stop();
  w.stop();
  t.log(describe(s));
  t.is(s.failed, 0, JSON.stringify(s.failures));
  t.true(await startKeepalived(master));
  t.true(await waitFor(() => vipHolder(vip) === master && !vipsOf('rp2').includes(vip), 30_000, 100), 'back on its master, held once');
});

test.serial("the master's link goes down: the VIP moves; when it returns without a missed change it takes the VIP back at once", async (t) => {
  t.timeout(180_000);
  await planned();
  const vip = VIPS[0];
  const master = vipHolder(vip);
  const peer = hosts.find((h) => h !== master)!;
  const loop = oneRetryLoop(vip);
  await sleep(1000);
  t.is(cutLink(master).code, 0);
  try {
    t.true(await waitFor(() => vipsOf(peer).includes(vip), 10_000, 20), `${vip} up on ${peer}`);
    await sleep(3000);
  } finally {
    restoreLink(master);
  }
  // nothing changed meanwhile: no run failed, so no hold, and the proxy is not stale
  t.true(await waitFor(() => vipsOf(master).includes(vip) && !vipsOf(peer).includes(vip), 20_000, 50), 'back on its master');
  t.is(holdFile(peer), '0');
  await sleep(1000);
  const s = await loop.stop();
  t.log(describe(s));
  t.is(s.failed, 0, JSON.stringify(s.failures));
});

test.serial('stopping keepalived on a proxy moves its VIPs to the other proxy', async (t) => {
  t.timeout(180_000);
  await planned();
  const victim = hosts.find((h) => vipsOf(h).length > 0) ?? 'rp1';
  const held = vipsOf(victim);
  t.true(held.length > 0);
  const vip = held[0]!;
  const loop = oneRetryLoop(vip);
  await sleep(1000);
  t.is(sshProxy(victim, 'service keepalived stop').code, 0);
  t.true(await waitFor(() => held.every((v) => vipHolder(v) !== victim && vipHolder(v) !== 'none'), 10_000, 20));
  await sleep(1000);
  const s = await loop.stop();
  t.log(describe(s));
  t.is(s.failed, 0, JSON.stringify(s.failures));
  t.is(sshProxy(victim, 'service keepalived start').code, 0);
  await planned();
  for (const v of VIPS) t.is(curlVia(v, HOST).status, 200);
});

test.after.always('release the lab', () => releaseLab());
