// No false failover: with every core saturated on the controller and on the proxies, and bursts of routing runs
// reloading nginx, no VIP moves and the health watcher never declares nginx down. (The benchmark runs the same for
// 60 s and reports the margin: the largest gap between adverts against the master-down interval.)
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { cpus } from 'node:os';
import {
  VIPS, ensureLab, releaseLab, applyAndSync, spi, fqdn, waitFor, vipHolder, watchVips, sshProxy, nginxHealthFile,
  waitVipsServing, curlVia,
} from '../lab/labenv.js';

const NS = 'labl';
const APP = 'busy';
const HOST = fqdn(APP, NS);
const PROXIES = ['rp1', 'rp2'];
const LOAD_S = 25;

test.before(async (t) => {
  t.timeout(900_000, 'lab bring-up');
  await ensureLab();
  const r = await applyAndSync(spi.createApp(APP, NS) + spi.addEndpoint(APP, NS, '198.51.100.38', 35548));
  if (r.code !== 0) throw new Error(r.stdout + r.stderr);
  await waitFor(() => vipHolder(VIPS[0]) === 'rp1' && vipHolder(VIPS[1]) === 'rp2', 30_000, 100);
  if (!(await waitVipsServing(30_000))) throw new Error('VIPs not serving');
});

test.after.always(async (t) => {
  t.timeout(120_000);
  await applyAndSync(spi.deleteApp(APP, NS));
});

test.serial(`${LOAD_S} s with every core saturated everywhere and routing runs in a loop: no VIP moves`, async (t) => {
  t.timeout(300_000);
  const downs = () => PROXIES.map((h) => Number(sshProxy(h, 'grep -c nginx_down /var/log/rproxy-health-watcher.log || true').stdout.trim() || 0));
  const downBefore = downs();
  const w = watchVips(PROXIES);
  const n = cpus().length;
  const busy = (ns: string): ChildProcess => spawn(
    ns ? 'ip' : 'timeout',
    ns ? ['netns', 'exec', ns, 'timeout', String(LOAD_S), 'sh', '-c', 'while :; do :; done'] : [String(LOAD_S), 'sh', '-c', 'while :; do :; done'],
    { stdio: 'ignore' },
  );
  const hogs = ['', ...PROXIES].flatMap((ns) => Array.from({ length: n }, () => busy(ns)));
  const t0 = Date.now();
  let runs = 0;
  let failed = 0;
  try {
    for (let k = 0; Date.now() - t0 < (LOAD_S - 5) * 1000; k++) {
      const aliases = Array.from({ length: 10 }, (_, j) => `l${k}x${j}.example.org`);
      const add = await applyAndSync(aliases.map((a) => spi.addAlias(APP, NS, a)).join(''));
      const rm = await applyAndSync(aliases.map((a) => spi.removeAlias(APP, NS, a)).join(''));
      runs += 2;
      failed += (add.code === 0 ? 0 : 1) + (rm.code === 0 ? 0 : 1);
    }
  } finally {
    await Promise.all(hogs.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.on('close', r)))));
    w.stop();
  }
  const downAfter = downs();
  t.log(`${hogs.length} busy loops for ${LOAD_S} s, ${runs} routing runs (${failed} failed); VIP events: ${JSON.stringify(w.events)}`);
  t.true(runs >= 2, 'routing runs happened under load');
  t.is(failed, 0);
  t.deepEqual(w.events, [], 'no VIP was added or removed anywhere');
  t.deepEqual(downAfter, downBefore, 'the watcher never declared nginx down');
  for (const h of PROXIES) t.is(nginxHealthFile(h), '1');
  t.is(vipHolder(VIPS[0]), 'rp1');
  t.is(vipHolder(VIPS[1]), 'rp2');
  for (const v of VIPS) t.is(curlVia(v, HOST).status, 200);
});

test.after.always('release the lab', () => releaseLab());
