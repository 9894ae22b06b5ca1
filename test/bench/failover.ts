// `npm run bench:failover`: what a failure costs the clients, on the lab (2 proxies, 2 VIPs). Not a test: it prints
// figures and writes bench-results/failover.{json,svg}.
//
// A client in the client netns starts a request every 10 ms through VIP .201 (new connection each, timeout 0.2 s,
// one retry after 0.2 s: test/lab/timeline.mjs). Around each event the VIP's additions and removals are followed
// as the kernel reports them (`ip monitor address` in every proxy netns). Per case and run:
//   moveMs        event -> the VIP is up on another proxy (the event's time is taken on the host where it happens)
//   longestGapMs  longest time without a successful answer (first attempts and retries)
//   failedFirst   requests whose first attempt failed (a client that does not retry)
//   failedRetry   requests that failed after one retry
// Cases: nginx SIGKILLed (master and workers), nginx frozen (SIGSTOP: alive, not answering), keepalived SIGKILLed,
// the master's link down (bridge side) and back without a missed change, a stale return (the master cut off for
// 20 s while an alias is added; wrong answers = the alias not served), and 60 s with every core saturated on the
// controller and the proxies plus bursts of routing runs (VIP moves, advert gaps against the 3 x advert_int + skew
// master-down interval, the health watcher's verdicts).
// Knobs: BENCH_FAILOVER_RUNS (5 per case), BENCH_FAILOVER_STALE_RUNS (2), BENCH_FAILOVER_LOAD_S (60),
// BENCH_FAILOVER_COMPARE_RT=1 (the load once more with keepalived on normal scheduling, for the comparison).
// Targets (issue 11): nginx death moves the VIP within 0.3 s, host loss within 0.5 s, 0 failures with one retry,
// 0 VIP moves under load, a stale proxy re-masters only after it serves the current routes.
import { spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  ensureLab, releaseLab, applyAndSync, spi, fqdn, curlVia, vipHolder, sshProxy, startNginx, sleep, waitFor, cutLink, restoreLink,
  watchVips, waitVipsServing, proxyAddress, run, nginxMasterPid, holdFile, startKeepalived, sitePlaybook, VIPS, CLIENT_NS, REPO, LAB, LAB_DIR, type VipEvent,
} from '../lab/labenv.js';

const RUNS = Number(process.env.BENCH_FAILOVER_RUNS ?? 5);
const STALE_RUNS = Number(process.env.BENCH_FAILOVER_STALE_RUNS ?? 2);
const LOAD_S = Number(process.env.BENCH_FAILOVER_LOAD_S ?? 60);
const NS = 'fob';
const APP = 'bench';
const HOST = fqdn(APP, NS);
const VIP = VIPS[0] as string;
const PROXIES = ['rp1', 'rp2'];

type Req = [number, number, number, number | null, number | null];
interface Timeline { startedAt: number; interval: number; timeout: number; retryDelay: number; requests: Req[] }

/** The open-loop client in the client netns; resolves with its timeline when it ends. */
function timeline(host: string, durationMs: number): { done: Promise<Timeline>; stop: () => void } {
  const child = spawn('ip', ['netns', 'exec', CLIENT_NS, 'node', path.join(LAB_DIR, 'timeline.mjs'), '--url', `http://${host}/`,
    '--connect', VIP, '--interval-ms', '10', '--timeout-ms', '200', '--retry-delay-ms', '200', '--duration-ms', String(durationMs)],
  { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<Timeline>((resolve, reject) => child.on('close', () => {
    try { resolve(JSON.parse(out) as Timeline); } catch { reject(new Error(`timeline gave no result: ${out.slice(0, 200)}`)); }
  }));
  return { done, stop: () => child.kill('SIGTERM') };
}

const ok = (s: number | null) => s !== null && s >= 200 && s < 300;

interface Stats { requests: number; failedFirst: number; failedRetry: number; longestGapMs: number; gapStartMs: number }

/** Figures of a timeline, times relative to `t0` (epoch ms). */
function stats(tl: Timeline, t0: number, from = -Infinity, to = Infinity): Stats {
  const reqs = tl.requests.filter((r) => tl.startedAt + r[0] - t0 >= from && tl.startedAt + r[0] - t0 <= to);
  const done: number[] = [];
  for (const r of reqs) {
    const at = tl.startedAt + r[0] - t0;
    if (ok(r[1])) done.push(at + r[2]);
    else if (ok(r[3])) done.push(at + r[2] + tl.retryDelay + (r[4] ?? 0));
  }
  done.sort((a, b) => a - b);
  let gap = 0, gapStart = 0;
  for (let i = 1; i < done.length; i++) if ((done[i] as number) - (done[i - 1] as number) > gap) { gap = (done[i] as number) - (done[i - 1] as number); gapStart = done[i - 1] as number; }
  return {
    requests: reqs.length, failedFirst: reqs.filter((r) => !ok(r[1])).length, failedRetry: reqs.filter((r) => !ok(r[1]) && !ok(r[3])).length,
    longestGapMs: Math.round(gap), gapStartMs: Math.round(gapStart),
  };
}

/** Runs a shell command on a proxy and returns the proxy's clock (epoch ms) right before it. */
function atOnProxy(host: string, cmd: string): number {
  const r = sshProxy(host, `t=$(date +%s%3N); ${cmd}; echo "AT $t"`);
  const m = /AT (\d+)/.exec(r.stdout);
  if (!m) throw new Error(`${host}: ${cmd}: ${r.stderr}`);
  return Number(m[1]);
}

interface EventRun { run: number; victim: string; to: string; moveMs: number | null; backMs: number | null; stats: Stats; samples: Array<[number, number]>; vipEvents: Array<{ t: number; host: string; added: boolean }> }

/** requests of a timeline as [t relative to t0, class 0 ok / 1 ok after retry / 2 failed], for the chart */
function samples(tl: Timeline, t0: number, from: number, to: number): Array<[number, number]> {
  return tl.requests.map((r) => [Math.round(tl.startedAt + r[0] - t0), ok(r[1]) ? 0 : ok(r[3]) ? 1 : 2] as [number, number])
    .filter(([t]) => t >= from && t <= to);
}

async function settle(): Promise<void> {
  for (const h of PROXIES) {
    if (!nginxMasterPid(h)) startNginx(h);
    await startKeepalived(h);
  }
  if (!(await waitVipsServing(30_000))) throw new Error(`VIPs do not settle: ${VIPS.map((v) => `${v}@${vipHolder(v)}`).join(' ')}`);
  // back on the planned masters (rp1 .201, rp2 .202): preemption after a repair
  await waitFor(() => vipHolder(VIP) === 'rp1' && vipHolder(VIPS[1] as string) === 'rp2', 30_000, 100);
  await sleep(1000);
}

/** One failure event on the holder of .201: `act` returns the event's epoch ms; `repair` undoes it. */
async function eventRun(i: number, act: (victim: string) => number, repair: (victim: string) => Promise<void>, afterMs = 2500): Promise<EventRun> {
  await settle();
  const victim = vipHolder(VIP);
  const w = watchVips(PROXIES);
  const tl = timeline(HOST, 60_000);
  await sleep(1000);
  const t0 = act(victim);
  await waitFor(() => w.events.some((e) => e.added && e.vip === VIP && e.host !== victim), 10_000, 5);
  await sleep(afterMs);
  const tRepair = Date.now();
  await repair(victim);
  await waitFor(() => w.events.some((e) => e.added && e.vip === VIP && e.host === victim && e.t >= tRepair), 30_000, 20);
  await sleep(1500);
  tl.stop();
  const res = await tl.done;
  w.stop();
  const moved = w.events.find((e: VipEvent) => e.added && e.vip === VIP && e.host !== victim && e.t >= t0);
  const back = w.events.find((e: VipEvent) => e.added && e.vip === VIP && e.host === victim && e.t >= tRepair);
  const st = stats(res, t0, -1000, Infinity);
  return {
    run: i, victim, to: moved?.host ?? 'none', moveMs: moved ? moved.t - t0 : null, backMs: back ? back.t - tRepair : null, stats: st,
    samples: samples(res, t0, -500, 2500),
    vipEvents: w.events.filter((e) => e.vip === VIP).map((e) => ({ t: e.t - t0, host: e.host, added: e.added })),
  };
}

function summary(runs: EventRun[]): Record<string, number | null> {
  const vals = (f: (r: EventRun) => number | null) => runs.map(f).filter((v): v is number => v !== null).sort((a, b) => a - b);
  const med = (a: number[]) => (a.length ? (a[Math.floor((a.length - 1) / 2)] as number) : null);
  const move = vals((r) => r.moveMs);
  const gap = vals((r) => r.stats.longestGapMs);
  return {
    runs: runs.length, moveMsMedian: med(move), moveMsMax: move.at(-1) ?? null, longestGapMsMedian: med(gap), longestGapMsMax: gap.at(-1) ?? null,
    failedFirstTotal: runs.reduce((a, r) => a + r.stats.failedFirst, 0), failedRetryTotal: runs.reduce((a, r) => a + r.stats.failedRetry, 0),
    requestsTotal: runs.reduce((a, r) => a + r.stats.requests, 0),
  };
}

// ------------------------------------------------------------------------------------------------ stale return
interface StaleRun {
  run: number; victim: string; cutS: number; applyMs: number; applyExit: number; holdWritten: boolean; backAfterReturnMs: number | null;
  servedBeforeRemaster: boolean; wrongFirst: number; wrongRetry: number; requests: number; longestGapMs: number; samples: Array<[number, number]>;
}

async function staleRun(i: number): Promise<StaleRun> {
  await settle();
  const victim = vipHolder(VIP);
  const peer = PROXIES.find((h) => h !== victim) as string;
  const alias = `stale${i}-${Date.now().toString(36)}.example.org`;
  const w = watchVips(PROXIES);
  const tCut = Date.now();
  cutLink(victim);
  await waitFor(() => vipHolder(VIP) === peer, 10_000, 20);
  await sleep(1000);
  const ta = Date.now();
  const applied = await applyAndSync(spi.addAlias(APP, NS, alias));
  const applyMs = Date.now() - ta;
  const holdWritten = holdFile(peer) === '1';
  await waitFor(() => curlVia(VIP, alias).status === 200, 10_000, 100);
  await waitFor(() => Date.now() - tCut >= 20_000, 30_000, 100);
  // the client asks for the new alias through the VIP from before the return until the master has it back
  const tl = timeline(alias, 120_000);
  await sleep(1000);
  const tRet = Date.now();
  restoreLink(victim);
  // poll: does the returning proxy serve the alias (direct), who holds the VIP
  const obs: Array<{ t: number; serves: boolean; holder: string }> = [];
  while (Date.now() - tRet < 90_000) {
    const serves = curlVia(proxyAddress(victim), alias, '/', { timeoutS: 1 }).status === 200;
    const holder = vipHolder(VIP);
    obs.push({ t: Date.now() - tRet, serves, holder });
    if (holder === victim && obs.filter((o) => o.holder === victim).length >= 3) break;
    await sleep(50);
  }
  await sleep(1500);
  tl.stop();
  const res = await tl.done;
  w.stop();
  const back = w.events.find((e) => e.added && e.vip === VIP && e.host === victim && e.t >= tRet);
  const firstHeld = obs.find((o) => o.holder === victim);
  const servedFirst = obs.find((o) => o.serves);
  const st = stats(res, tRet, -1000, Infinity);
  await applyAndSync(spi.removeAlias(APP, NS, alias));
  return {
    run: i, victim, cutS: Math.round((tRet - tCut) / 100) / 10, applyMs, applyExit: applied.code, holdWritten,
    backAfterReturnMs: back ? back.t - tRet : null,
    servedBeforeRemaster: !!firstHeld && !!servedFirst && servedFirst.t <= firstHeld.t,
    wrongFirst: st.failedFirst, wrongRetry: st.failedRetry, requests: st.requests, longestGapMs: st.longestGapMs,
    samples: samples(res, tRet, -1000, (back ? back.t - tRet : 20_000) + 1500),
  };
}

// ------------------------------------------------------------------------------------------------ load
interface LoadRun {
  seconds: number; hogs: number; routingRuns: number; routingFailures: number; vipMoves: number; nginxDownVerdicts: number;
  adverts: Array<{ src: string; vrid: number; adverts: number; max_gap_ms: number | null; p99_gap_ms: number | null; median_gap_ms: number | null }>;
  masterDownMs: number; maxAdvertGapMs: number | null; keepalivedSched: string[]; loadavg: string;
  /** per proxy, the watcher's probes during the load: count, failures, slowest good answer vs the probe timeout */
  probes: Array<{ host: string } & ProbeStats>;
  /** keepalived's real-time priority during this run (0 = normal scheduling: the comparison) */
  rtPriority: number;
}

type ProbeStats = { probes: number; failed: number; max_ms: number; timeout_ms: number };

/**
 * The watcher's probe statistics since `fromLine` of its log (it logs them every 60 s, and on SIGUSR1 at once):
 * SIGUSR1 first, so the last window is in; returns the log's line count as the next start.
 */
function probeStats(host: string, fromLine: number): { stats: ProbeStats; lines: number } {
  const r = sshProxy(host, 'kill -USR1 $(cat /run/rproxy-health-watcher.pid) && sleep 0.5 && cat /var/log/rproxy-health-watcher.log');
  const lines = r.stdout.split('\n').filter((l) => l.trim() !== '');
  const stats: ProbeStats = { probes: 0, failed: 0, max_ms: 0, timeout_ms: 0 };
  for (const l of lines.slice(fromLine)) {
    try {
      const j = JSON.parse(l) as { event?: string } & Partial<ProbeStats>;
      if (j.event !== 'probe_stats') continue;
      stats.probes += j.probes ?? 0;
      stats.failed += j.failed ?? 0;
      stats.max_ms = Math.max(stats.max_ms, j.max_ms ?? 0);
      stats.timeout_ms = j.timeout_ms ?? stats.timeout_ms;
    } catch { /* not JSON */ }
  }
  return { stats, lines: lines.length };
}

async function loadRun(rtPriority: number): Promise<LoadRun> {
  await settle();
  const n = cpus().length;
  const w = watchVips(PROXIES);
  const logLines = (h: string) => Number(sshProxy(h, 'grep -c nginx_down /var/log/rproxy-health-watcher.log 2>/dev/null || true').stdout.trim() || 0);
  const downBefore = PROXIES.map(logLines);
  const logStart = PROXIES.map((h) => probeStats(h, 1e9).lines); // everything logged before the load is left out
  const cap = spawn('python3', [path.join(LAB_DIR, 'vrrpcap.py'), '--duration-s', String(LOAD_S + 5)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let capOut = '';
  cap.stdout.on('data', (d: Buffer) => (capOut += d.toString()));
  const capDone = new Promise<void>((r) => cap.on('close', () => r()));
  // every core busy in the controller's namespace and in every proxy's (all share this machine's cores)
  const hogs = ['', ...PROXIES].flatMap((ns) => Array.from({ length: n }, () => spawn(
    ns ? 'ip' : 'timeout', ns ? ['netns', 'exec', ns, 'timeout', String(LOAD_S), 'sh', '-c', 'while :; do :; done'] : [String(LOAD_S), 'sh', '-c', 'while :; do :; done'],
    { stdio: 'ignore' })));
  const t0 = Date.now();
  let runs = 0, failures = 0, k = 0;
  while (Date.now() - t0 < LOAD_S * 1000 - 3000) {
    // a burst of routing changes, made live by a targeted run on both proxies
    const stream = Array.from({ length: 20 }, (_, j) => spi.addAlias(APP, NS, `load${k}-${j}.example.org`)).join('');
    const r = await applyAndSync(stream);
    runs += 1;
    if (r.code !== 0) failures += 1;
    const rm = Array.from({ length: 20 }, (_, j) => spi.removeAlias(APP, NS, `load${k}-${j}.example.org`)).join('');
    const r2 = await applyAndSync(rm);
    runs += 1;
    if (r2.code !== 0) failures += 1;
    k += 1;
  }
  const loadavg = run('cat', ['/proc/loadavg']).stdout.trim();
  const probes = PROXIES.map((h, i) => ({ host: h, ...probeStats(h, logStart[i] ?? 0).stats }));
  const sched = PROXIES.map((h) => `${h}: ${sshProxy(h, 'ps -o cls=,rtprio=,args= -p $(pgrep -d, keepalived)').stdout.trim().replace(/\n/g, ' | ')}`);
  await Promise.all(hogs.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.on('close', r)))));
  cap.kill('SIGTERM');
  await capDone;
  w.stop();
  const adverts = (JSON.parse(capOut || '{"flows":[]}') as { flows: LoadRun['adverts'] }).flows.filter((f) => f.adverts > 10);
  const gaps = adverts.map((f) => f.max_gap_ms).filter((g): g is number => g !== null);
  const downAfter = PROXIES.map(logLines);
  return {
    seconds: LOAD_S, hogs: hogs.length, routingRuns: runs, routingFailures: failures, vipMoves: w.events.length,
    nginxDownVerdicts: downAfter.reduce((a, v, i) => a + v - (downBefore[i] ?? 0), 0),
    adverts, masterDownMs: Math.round(3 * 100 + ((256 - 200) / 256) * 100), maxAdvertGapMs: gaps.length ? Math.max(...gaps) : null,
    keepalivedSched: sched, loadavg, probes, rtPriority,
  };
}

/** keepalived_vrrp with extra -e settings on both proxies, keepalived restarted so scheduling settings apply */
async function reconfigure(extra: string[]): Promise<void> {
  const r = await sitePlaybook(['--tags', 'keepalived_vrrp', '--limit', 'proxies', ...extra]);
  if (r.code !== 0) throw new Error(`keepalived_vrrp run failed: ${r.stdout.slice(-2000)}`);
  for (const h of PROXIES) {
    sshProxy(h, 'service keepalived restart');
    await settle();
  }
}

// ------------------------------------------------------------------------------------------------ chart
function chart(cases: Array<{ title: string; run: { samples: Array<[number, number]>; marks: Array<[number, string, string]> }; from: number; to: number }>): string {
  const W = 960, rowH = 92, left = 200, right = 20, top = 40;
  const H = top + cases.length * rowH + 40;
  const p: string[] = [];
  p.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`);
  p.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  p.push(`<text x="${W / 2}" y="20" text-anchor="middle" font-size="15">Requests through ${VIP} around each event (one every 10 ms, timeout 0.2 s, one retry after 0.2 s)</text>`);
  p.push(`<text x="${left}" y="${H - 12}" fill="#2a2">■ first attempt ok</text><text x="${left + 150}" y="${H - 12}" fill="#e90">■ ok after one retry</text><text x="${left + 300}" y="${H - 12}" fill="#d22">■ failed after one retry</text><text x="${left + 470}" y="${H - 12}">| event   </text><text x="${left + 540}" y="${H - 12}" fill="#27c">| VIP up on another proxy / back</text>`);
  cases.forEach((c, i) => {
    const y0 = top + i * rowH;
    const x = (t: number) => left + ((t - c.from) / (c.to - c.from)) * (W - left - right);
    p.push(`<text x="8" y="${y0 + 40}">${c.title}</text>`);
    p.push(`<rect x="${left}" y="${y0 + 10}" width="${W - left - right}" height="50" fill="#f6f6f6"/>`);
    for (const [t, cls] of c.run.samples) {
      const color = cls === 0 ? '#2a2' : cls === 1 ? '#e90' : '#d22';
      p.push(`<rect x="${x(t).toFixed(1)}" y="${y0 + 14 + cls * 14}" width="1.5" height="12" fill="${color}"/>`);
    }
    c.run.marks.forEach(([t, color, label], k) => {
      p.push(`<line x1="${x(t).toFixed(1)}" y1="${y0 + 6}" x2="${x(t).toFixed(1)}" y2="${y0 + 64}" stroke="${color}" stroke-width="1.5"/>`);
      // the first label above the band, the second below it: close marks must not overwrite each other
      p.push(`<text x="${(x(t) + 3).toFixed(1)}" y="${k === 0 ? y0 + 4 : y0 + 76}" fill="${color}" font-size="10">${label}</text>`);
    });
    const step = c.to - c.from > 5000 ? 2000 : 500;
    for (let t = Math.ceil(c.from / step) * step; t <= c.to; t += step) {
      p.push(`<text x="${x(t).toFixed(1)}" y="${y0 + 88}" text-anchor="middle" font-size="9" fill="#666">${(t / 1000).toFixed(1)} s</text>`);
    }
  });
  p.push('</svg>');
  return p.join('\n');
}

// ------------------------------------------------------------------------------------------------ main
async function main(): Promise<void> {
  const t0 = Date.now();
  console.log('bench:failover: lab up (or bringing it up) ...');
  await ensureLab();
  try {
    const r = await applyAndSync(spi.createApp(APP, NS) + spi.addEndpoint(APP, NS, '198.51.100.35', 35551) + spi.addEndpoint(APP, NS, '198.51.100.36', 35551));
    if (r.code !== 0) throw new Error(`setup: ${r.stdout}${r.stderr}`);
    const cfg = sshProxy('rp1', 'grep -E "advert_int|vrrp_rt_priority|vrrp_no_swap" /etc/keepalived/keepalived.conf | sort -u').stdout.trim().split('\n').map((l) => l.trim());
    console.log(`bench:failover: keepalived settings on rp1: ${cfg.join('; ')}`);
    const killNginxAt = (h: string) => atOnProxy(h, 'm=$(cat /run/nginx.pid) && kill -KILL $m $(pgrep -P $m)');
    const cases: Record<string, EventRun[]> = { nginx_kill: [], nginx_hang: [], keepalived_kill: [], link_down: [] };
    for (let i = 0; i < RUNS; i++) {
      console.log(`bench:failover: run ${i + 1}/${RUNS}: nginx SIGKILL, nginx SIGSTOP, keepalived SIGKILL, link down ...`);
      cases.nginx_kill!.push(await eventRun(i, killNginxAt, async (h) => { startNginx(h); }));
      cases.nginx_hang!.push(await eventRun(i, (h) => atOnProxy(h, 'm=$(cat /run/nginx.pid) && kill -STOP $m $(pgrep -P $m)'),
        async (h) => { sshProxy(h, 'm=$(cat /run/nginx.pid) && kill -CONT $m $(pgrep -P $m)'); }, 3000));
      cases.keepalived_kill!.push(await eventRun(i, (h) => atOnProxy(h, 'p=$(cat /run/keepalived.pid) && kill -KILL $p $(pgrep -P $p)'),
        async (h) => { await startKeepalived(h); }));
      cases.link_down!.push(await eventRun(i, (h) => { const t = Date.now(); cutLink(h); return t; }, async (h) => { restoreLink(h); }));
    }
    const stale: StaleRun[] = [];
    for (let i = 0; i < STALE_RUNS; i++) {
      console.log(`bench:failover: stale return ${i + 1}/${STALE_RUNS} (cut 20 s, alias added meanwhile) ...`);
      stale.push(await staleRun(i));
    }
    console.log(`bench:failover: ${LOAD_S} s of saturated cores and routing bursts ...`);
    const rt = Number(/vrrp_rt_priority (\d+)/.exec(cfg.join(' '))?.[1] ?? 0);
    const load = await loadRun(rt);
    // BENCH_FAILOVER_COMPARE_RT=1: the same load with keepalived on normal scheduling, for the comparison
    let loadWithoutRt: LoadRun | null = null;
    if (process.env.BENCH_FAILOVER_COMPARE_RT === '1') {
      console.log(`bench:failover: the same ${LOAD_S} s with keepalived on normal scheduling (vrrp_rt_priority and vrrp_no_swap off) ...`);
      await reconfigure(['-e', 'keepalived_vrrp_rt_priority=0', '-e', 'keepalived_vrrp_no_swap=false']);
      try { loadWithoutRt = await loadRun(0); } finally { await reconfigure([]); }
    }

    const result = {
      date: new Date().toISOString(), host: { cpus: cpus().length }, keepalived: cfg, client: { intervalMs: 10, timeoutMs: 200, retryDelayMs: 200 },
      summary: Object.fromEntries(Object.entries(cases).map(([k, v]) => [k, summary(v)])),
      stale: {
        runs: stale.length, backAfterReturnMs: stale.map((s) => s.backAfterReturnMs), servedBeforeRemaster: stale.every((s) => s.servedBeforeRemaster),
        wrongFirstTotal: stale.reduce((a, s) => a + s.wrongFirst, 0), wrongRetryTotal: stale.reduce((a, s) => a + s.wrongRetry, 0),
        details: stale.map(({ samples: _s, ...rest }) => rest),
      },
      load, loadWithoutRt,
      runs: Object.fromEntries(Object.entries(cases).map(([k, v]) => [k, v.map(({ samples: _s, ...rest }) => rest)])),
      durationS: Math.round((Date.now() - t0) / 1000),
    };
    mkdirSync(path.join(REPO, 'bench-results'), { recursive: true });
    writeFileSync(path.join(REPO, 'bench-results', 'failover.json'), JSON.stringify(result, null, 1) + '\n');
    const medianRun = (runs: EventRun[]) => [...runs].sort((a, b) => (a.moveMs ?? 1e9) - (b.moveMs ?? 1e9))[Math.floor((runs.length - 1) / 2)] as EventRun;
    const titles: Record<string, string> = { nginx_kill: 'nginx SIGKILL', nginx_hang: 'nginx SIGSTOP (hung)', keepalived_kill: 'keepalived SIGKILL', link_down: 'link down' };
    const rows = Object.entries(cases).map(([k, runs]) => {
      const m = medianRun(runs);
      return {
        title: `${titles[k]} (median run)`, from: -500, to: 2500,
        run: { samples: m.samples, marks: [[0, '#000', 'event'], ...(m.moveMs !== null ? [[m.moveMs, '#27c', `VIP up on ${m.to} +${m.moveMs} ms`]] : [])] as Array<[number, string, string]> },
      };
    });
    const s0 = stale[0];
    if (s0) {
      rows.push({
        title: 'stale return (alias)', from: -1000, to: (s0.backAfterReturnMs ?? 20_000) + 1500,
        run: { samples: s0.samples, marks: [[0, '#000', 'link back'], ...(s0.backAfterReturnMs !== null ? [[s0.backAfterReturnMs, '#27c', `VIP back +${s0.backAfterReturnMs} ms`]] : [])] as Array<[number, string, string]> },
      });
    }
    writeFileSync(path.join(REPO, 'bench-results', 'failover.svg'), chart(rows));

    console.log('\ncase               runs  move median/max (ms)  longest gap median/max (ms)  failed: no retry / one retry (of requests)');
    for (const [k, v] of Object.entries(result.summary)) {
      console.log(`${k.padEnd(18)} ${String(v.runs).padStart(4)}  ${`${v.moveMsMedian} / ${v.moveMsMax}`.padStart(20)}  ${`${v.longestGapMsMedian} / ${v.longestGapMsMax}`.padStart(27)}  ${v.failedFirstTotal} / ${v.failedRetryTotal} (of ${v.requestsTotal})`);
    }
    for (const s of stale) {
      console.log(`stale return ${s.run + 1}: cut ${s.cutS} s, alias apply ${s.applyMs} ms (exit ${s.applyExit}), hold written ${s.holdWritten}; VIP back on ${s.victim} ${s.backAfterReturnMs} ms after the link returned; served the alias before re-mastering: ${s.servedBeforeRemaster}; wrong answers no retry / one retry: ${s.wrongFirst} / ${s.wrongRetry} of ${s.requests}; longest gap ${s.longestGapMs} ms`);
    }
    for (const l of [load, loadWithoutRt]) {
      if (!l) continue;
      console.log(`load (keepalived ${l.rtPriority ? `SCHED_RR ${l.rtPriority}` : 'normal scheduling'}): ${l.seconds} s, ${l.hogs} busy loops (loadavg ${l.loadavg}), ${l.routingRuns} routing runs (${l.routingFailures} failed): VIP moves ${l.vipMoves}, nginx-down verdicts ${l.nginxDownVerdicts}, largest advert gap ${l.maxAdvertGapMs} ms vs master-down interval ${l.masterDownMs} ms`);
      console.log(`  health probes: ${l.probes.map((p) => `${p.host} ${p.probes} probes, ${p.failed} failed, slowest ${p.max_ms} ms (timeout ${p.timeout_ms} ms)`).join('; ')}`);
    }
    console.log(`  keepalived scheduling: ${load.keepalivedSched.join(' ; ')}`);
    console.log(`results: bench-results/failover.json, bench-results/failover.svg (${result.durationS} s)`);
    void LAB;
  } finally {
    await settle().catch(() => undefined);
    await applyAndSync(spi.deleteApp(APP, NS)).catch(() => undefined);
    releaseLab();
  }
}

main().then(() => process.exit(0), (e: unknown) => { console.error(e); process.exit(1); });
