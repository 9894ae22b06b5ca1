// VRRP failover in the lab: a proxy whose nginx dies, or whose keepalived stops, hands its VIPs over
// while a bounded request loop from the client keeps succeeding.
import test from 'ava';
import {
  VIPS, PROXIES, ensureLab, releaseLab, applyAndSync, curlVia, spi, fqdn, waitFor, sleep, vipHolder, vipsOf, killNginx,
  startNginx, sshProxy, startRequestLoop, nginxMasterPid, waitVipsServing,
} from '../lab/labenv.js';

const NS = 'labf';
const APP = 'steady';
const HOST = fqdn(APP, NS);
const hosts = Object.keys(PROXIES);

/** Each VIP held by exactly one proxy. */
function vipsSettled(): boolean {
  return VIPS.every((v) => vipHolder(v) !== 'none');
}

async function watchMove(vip: string, from: string, timeoutMs: number): Promise<{ ms: number; to: string }> {
  const t0 = Date.now();
  let to = from;
  await waitFor(() => {
    to = vipHolder(vip);
    return to !== from && to !== 'none';
  }, timeoutMs, 25);
  return { ms: Date.now() - t0, to };
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
  if (!(await waitFor(vipsSettled, 20_000, 200))) throw new Error('VIPs not held');
});

test.after.always(async (t) => {
  t.timeout(300_000);
  for (const h of hosts) {
    if (!nginxMasterPid(h)) startNginx(h);
    sshProxy(h, 'service keepalived status >/dev/null 2>&1 || service keepalived start');
  }
  await waitVipsServing(20_000);
  await applyAndSync(spi.deleteApp(APP, NS));
});

test.serial("killing nginx on a VIP's master moves that VIP within 5 s while requests keep succeeding", async (t) => {
  t.timeout(180_000);
  const vip = VIPS[0];
  const master = vipHolder(vip);
  t.true(hosts.includes(master), `VIP ${vip} held by ${master}`);
  const others = VIPS.filter((v) => v !== vip).map((v) => [v, vipHolder(v)] as const);
  const loop = startRequestLoop({ vip, host: HOST, intervalMs: 50, durationMs: 20_000, timeoutMs: 1000, retries: 50, retryDelayMs: 100 });
  await sleep(1000);
  t.is(killNginx(master).code, 0);
  const moved = await watchMove(vip, master, 10_000);
  t.log(`VIP ${vip}: ${master} -> ${moved.to} in ${moved.ms} ms after nginx was killed`);
  t.not(moved.to, master);
  t.true(moved.ms <= 5000, `moved in ${moved.ms} ms`);
  await sleep(2000);
  const s = await loop.stop();
  t.log(`requests: ${s.sent} sent, ${s.ok} ok, ${s.failed} failed, ${s.attemptsFailed} attempts retried` +
    (s.firstFailureMs !== null ? ` (from ${s.firstFailureMs} to ${s.lastFailureMs} ms)` : ''));
  t.true(s.sent >= 20);
  t.is(s.failed, 0, JSON.stringify(s.failures));
  for (const [v, h] of others) t.is(vipHolder(v), h, `${v} stays where it was`);
  t.is(curlVia(vip, HOST).status, 200);

  // nginx back: the proxy is healthy again (its VIP may come back, without flapping)
  t.is(startNginx(master).code, 0);
  t.true(await waitFor(() => nginxMasterPid(master) > 0, 10_000));
  t.true(await waitVipsServing(20_000), 'the VIPs settle after the recovery');
  t.log(`after recovery: ${VIPS.map((v) => `${v} on ${vipHolder(v)}`).join(', ')}`);
  for (const v of VIPS) t.is(curlVia(v, HOST).status, 200);
});

test.serial('stopping keepalived on a proxy moves its VIPs to the other proxy', async (t) => {
  t.timeout(180_000);
  // wait for the layout to settle after the previous test (preemption may move a VIP back)
  t.true(await waitVipsServing(20_000));
  const victim = hosts.find((h) => vipsOf(h).length > 0) ?? 'rp1';
  const held = vipsOf(victim);
  t.true(held.length > 0);
  const vip = held[0]!;
  const loop = startRequestLoop({ vip, host: HOST, intervalMs: 50, durationMs: 20_000, timeoutMs: 1000, retries: 50, retryDelayMs: 100 });
  await sleep(1000);
  t.is(sshProxy(victim, 'service keepalived stop').code, 0);
  const moved = await watchMove(vip, victim, 10_000);
  t.log(`keepalived stopped on ${victim}: ${vip} -> ${moved.to} in ${moved.ms} ms`);
  t.true(moved.ms <= 5000);
  await waitFor(() => held.every((v) => vipHolder(v) !== victim && vipHolder(v) !== 'none'), 5000);
  for (const v of held) t.not(vipHolder(v), victim);
  for (const v of held) t.not(vipHolder(v), 'none');
  await sleep(1000);
  const s = await loop.stop();
  t.log(`requests: ${s.sent} sent, ${s.ok} ok, ${s.failed} failed, ${s.attemptsFailed} attempts retried`);
  t.is(s.failed, 0, JSON.stringify(s.failures));

  t.is(sshProxy(victim, 'service keepalived start').code, 0);
  t.true(await waitVipsServing(20_000), 'the VIPs settle after keepalived is back');
  t.log(`after restart: ${VIPS.map((v) => `${v} on ${vipHolder(v)}`).join(', ')}`);
  for (const v of VIPS) t.is(curlVia(v, HOST).status, 200);
});

test.after.always('release the lab', () => releaseLab());
