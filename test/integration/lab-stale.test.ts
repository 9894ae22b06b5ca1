// A proxy that comes back stale: cut off while an alias is added, it must not re-master its VIP before the runner
// has caught it up (the runner holds its VIPs on the up-to-date proxy: runner/vrrphold.ts), and the VIP then comes
// back without a failed request. The hold lives on the proxies and in the state directory, so it survives a
// restart of the listener.
import test from 'ava';
import {
  VIPS, ensureLab, releaseLab, applyAndSync, curlVia, spi, waitFor, sleep, vipHolder, vipsOf, startRequestLoop,
  waitVipsServing, cutLink, restoreLink, holdFile, proxyAddress, restartListener, cli, type LoopSummary,
} from '../lab/labenv.js';

const NS = 'labs';
const APP = 'stale';
const VIP = VIPS[0];

interface Observation { t: number; holder: string; serves: boolean }

/**
 * Restores `victim`'s link while a client asks for `alias` through the VIP (one retry after 0.2 s), and watches, every
 * 50 ms, who holds the VIP and whether `victim` itself (its own address) serves the alias, until `victim` holds the
 * VIP again. `catchUp` runs after the return (the runner's retry or an operator's sync may be what catches it up).
 */
async function returnAndWatch(victim: string, alias: string, catchUp: () => Promise<void>): Promise<{ obs: Observation[]; loop: LoopSummary }> {
  const loop = startRequestLoop({ vip: VIP, host: alias, intervalMs: 20, durationMs: 170_000, timeoutMs: 1000, retries: 1, retryDelayMs: 200 });
  await sleep(1000);
  const t0 = Date.now();
  restoreLink(victim);
  const obs: Observation[] = [];
  const watch = (async () => {
    while (Date.now() - t0 < 150_000) {
      const holder = vipHolder(VIP);
      const serves = curlVia(proxyAddress(victim), alias, '/', { timeoutS: 1 }).status === 200;
      obs.push({ t: Date.now() - t0, holder, serves });
      if (holder === victim && obs.filter((o) => o.holder === victim).length >= 3) return;
      await sleep(50);
    }
  })();
  await catchUp();
  await watch;
  await sleep(1000);
  return { obs, loop: await loop.stop() };
}

function check(t: import('ava').ExecutionContext, victim: string, peer: string, r: { obs: Observation[]; loop: LoopSummary }): void {
  const firstHeld = r.obs.find((o) => o.holder === victim);
  const firstServed = r.obs.find((o) => o.serves);
  t.log(`back on ${victim} ${firstHeld?.t ?? '-'} ms after the return; it served the alias from ${firstServed?.t ?? '-'} ms; ` +
    `requests: ${r.loop.sent} sent, ${r.loop.failed} failed after one retry, ${r.loop.attemptsFailed} first attempts failed`);
  t.truthy(firstHeld, `${victim} got its VIP back`);
  t.truthy(firstServed);
  t.true(firstServed!.t <= firstHeld!.t, `${victim} served the current routes before it took its VIP back`);
  t.true(r.obs.filter((o) => o.holder === victim).every((o) => o.serves), 'never held the VIP with stale routes');
  t.is(r.loop.failed, 0, `no failed request (a 404 for the new alias is one): ${JSON.stringify(r.loop.failures)}`);
  t.true(r.loop.sent >= 50);
  t.true(vipsOf(peer).every((v) => v !== VIP));
}

test.before(async (t) => {
  t.timeout(900_000, 'lab bring-up');
  await ensureLab();
  const r = await applyAndSync(spi.createApp(APP, NS) + spi.addEndpoint(APP, NS, '198.51.100.37', 35547));
  if (r.code !== 0) throw new Error(r.stdout + r.stderr);
  await waitFor(() => vipHolder(VIPS[0]) === 'rp1' && vipHolder(VIPS[1]) === 'rp2', 30_000, 100);
  if (!(await waitVipsServing(30_000))) throw new Error('VIPs not serving');
});

test.after.always(async (t) => {
  t.timeout(300_000);
  restoreLink('rp1');
  restoreLink('rp2');
  await cli(['sync']);
  await applyAndSync(spi.deleteApp(APP, NS));
});

/**
 * Cuts off the holder of the VIP and adds `alias` meanwhile: the run cannot reach it (exit 4, the proxy named),
 * and the runner holds its VIPs on the peer. Returns the stale proxy and its peer.
 */
async function missAChange(t: import('ava').ExecutionContext, alias: string): Promise<{ victim: string; peer: string }> {
  const victim = vipHolder(VIP);
  const peer = victim === 'rp1' ? 'rp2' : 'rp1';
  t.is(cutLink(victim).code, 0);
  t.true(await waitFor(() => vipsOf(peer).includes(VIP), 10_000, 20), `${VIP} moved to ${peer}`);
  const r = await applyAndSync(spi.addAlias(APP, NS, alias));
  t.is(r.code, 4, 'the run reports the unreachable proxy');
  t.regex(r.stdout + r.stderr, new RegExp(`${victim}: unreachable`));
  t.is(holdFile(peer), '1', `${peer} holds the VIPs while ${victim} is stale`);
  t.is(curlVia(VIP, alias).status, 200, 'the alias is live through the VIP (on the peer)');
  return { victim, peer };
}

test.serial('a proxy that missed a change re-masters its VIP only after it was caught up, without a failed request', async (t) => {
  t.timeout(400_000);
  const alias = 'missed.example.org';
  const { victim, peer } = await missAChange(t, alias);
  const res = await returnAndWatch(victim, alias, async () => {
    // the listener's retry (with backoff) catches the proxy up by itself; an operator's sync does the same sooner
    await sleep(5000);
    if (vipHolder(VIP) !== victim) await cli(['sync']);
  });
  check(t, victim, peer, res);
  t.true(await waitFor(() => holdFile(peer) === '0', 30_000, 500), 'the hold is lifted');
});

test.serial('the hold survives a restart of the listener, which lifts it once the proxy was caught up', async (t) => {
  t.timeout(400_000);
  const alias = 'missed-again.example.org';
  const { victim, peer } = await missAChange(t, alias);
  const { before, after } = await restartListener();
  t.log(`listener restarted: pid ${before} -> ${after}`);
  t.is(holdFile(peer), '1', 'still held after the restart');
  // the restarted listener alone (startup catch-up, retries) catches the proxy up and lifts the hold
  const res = await returnAndWatch(victim, alias, async () => undefined);
  check(t, victim, peer, res);
  t.is(holdFile(peer), '0');
});

test.after.always('release the lab', () => releaseLab());
