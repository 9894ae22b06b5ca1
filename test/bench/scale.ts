// `npm run bench:scale`: speed at scale on the lab (2 proxies, every VIP), issue 10. Not a test: it prints figures
// and writes bench-results/scale.{json,svg}.
//   per size (BENCH_SIZES, default 10,1000,10000 apps): event → live through EVERY VIP for each kind of change
//     (alias add, gear add, gear remove, new app; BENCH_SAMPLES each, default 20), p50/p95/p99; nginx worker
//     and listener memory;
//   bulk:  the largest size published from empty (3 messages per app, within about 5 s): all live after the last one;
//   burst: BENCH_BURST events (default 1,000) over 100 apps at the largest size: live after the last one, and runs;
//   onboarding: a third proxy onboarded with the largest size (`paas-rproxy onboard`), BENCH_ONBOARD=0 skips it.
// Every event is published through ActiveMQ exactly as the PaaS broker does and consumed by the real listener.
// Targets (issue 10): 10 apps p50 ≤ 0.7 s, p99 ≤ 1.5 s; 10,000 apps p50 ≤ 0.9 s (new app ≤ 1.2 s); burst ≤ 5 s in
// ≤ 4 runs; bulk ≤ 15 s; onboarding ≤ 40 s; nginx worker ≤ 120 MB; listener ≤ 200 MB.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { ensureLab, releaseLab } from '../lab/labenv.js';
import {
  PrivateBroker, publisher, ListenerProc, writeListenerConfig, spi, burst, gear, percentile, sleep, waitFor, VIPS, CLIENT_NS, REPO,
  LAB, publishPaced, pool, type Publisher,
} from './latency.js';

const STOMP_PORT = Number(process.env.BENCH_STOMP_PORT ?? 61644);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 20);
const SIZES = (process.env.BENCH_SIZES ?? '10,1000,10000').split(',').map(Number).filter((n) => n > 0).sort((a, b) => a - b);
const BURST = Number(process.env.BENCH_BURST ?? 1000);
const ONBOARD = process.env.BENCH_ONBOARD !== '0';
const QUIET_MS = Number(process.env.BENCH_QUIET_MS ?? 0);
const BURST_QUIET_MS = Number(process.env.BENCH_BURST_QUIET_MS ?? 250);
const NS = 'scl';
const TAG = Date.now().toString(36).slice(-4).replace(/[^a-z0-9]/g, 'x');
const fq = (id: string) => `${id}.apps.example.com`;
const filler = (i: number) => `f${TAG}${i}`;
const fillerAlias = (i: number) => `w${i}.${filler(i)}.example.net`;

// ------------------------------------------------------------------------------------------- the prober
/** Requests from the client netns through one long-lived prober (test/lab/probe.mjs): no process per request. */
class Prober {
  private child: ChildProcess;
  private next = 1;
  private waiting = new Map<number, (r: { status: number; gear: string }) => void>();
  constructor() {
    this.child = spawn('ip', ['netns', 'exec', CLIENT_NS, process.execPath, path.join(REPO, 'test', 'lab', 'probe.mjs')], { stdio: ['pipe', 'pipe', 'inherit'] });
    readline.createInterface({ input: this.child.stdout! }).on('line', (l) => {
      const r = JSON.parse(l) as { id: number; status: number; gear: string };
      this.waiting.get(r.id)?.(r);
      this.waiting.delete(r.id);
    });
  }
  get(addr: string, host: string): Promise<{ status: number; gear: string }> {
    const id = this.next++;
    return new Promise((resolve) => { this.waiting.set(id, resolve); this.child.stdin!.write(JSON.stringify({ id, addr, host }) + '\n'); });
  }
  stop(): void { this.child.stdin!.end(); this.child.kill(); }
}

// ------------------------------------------------------------------------------------------- memory
function rssOf(pid: number): { rss: number; hwm: number } {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? 0);
    return { rss: kb('VmRSS') * 1024, hwm: kb('VmHWM') * 1024 };
  } catch { return { rss: 0, hwm: 0 }; }
}
/** nginx processes of a proxy netns: pid and role (master/worker) */
function nginxProcs(ns: string): { pid: number; role: string }[] {
  const r = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' });
  const out: { pid: number; role: string }[] = [];
  for (const p of (r.stdout ?? '').split('\n').map(Number).filter((n) => n > 0)) {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ');
      const m = /^nginx: (master|worker|cache \w+) process/.exec(cmd);
      if (m) out.push({ pid: p, role: m[1] as string });
    } catch { /* gone */ }
  }
  return out;
}
const MB = (b: number) => Math.round(b / 1048576 * 10) / 10;
function nginxMemory(): Record<string, { workers: number; max_worker_rss_mb: number; total_rss_mb: number }> {
  const out: Record<string, { workers: number; max_worker_rss_mb: number; total_rss_mb: number }> = {};
  for (const ns of ['rp1', 'rp2']) {
    const procs = nginxProcs(ns);
    const workers = procs.filter((p) => p.role === 'worker').map((p) => rssOf(p.pid).rss);
    out[ns] = { workers: workers.length, max_worker_rss_mb: MB(Math.max(0, ...workers)), total_rss_mb: MB(procs.reduce((a, p) => a + rssOf(p.pid).rss, 0)) };
  }
  return out;
}
/** total nginx RSS of rp1 sampled through a graceful reload (HUP to its master): the extra memory a reload costs */
async function reloadMemory(): Promise<{ before_mb: number; peak_mb: number; extra_mb: number }> {
  const total = () => nginxProcs('rp1').reduce((a, p) => a + rssOf(p.pid).rss, 0);
  const before = total();
  const master = nginxProcs('rp1').find((p) => p.role === 'master');
  if (!master) return { before_mb: MB(before), peak_mb: NaN, extra_mb: NaN };
  process.kill(master.pid, 'SIGHUP');
  let peak = before;
  const end = Date.now() + 4000;
  while (Date.now() < end) { peak = Math.max(peak, total()); await sleep(25); }
  return { before_mb: MB(before), peak_mb: MB(peak), extra_mb: MB(peak - before) };
}

// ------------------------------------------------------------------------------------------- measuring one change
type Kind = 'alias_add' | 'gear_add' | 'gear_remove' | 'new_app';
interface Sample { kind: Kind; firstMs: number; allMs: number }

/**
 * Publishes `bodies` (one STOMP message each) and polls every VIP until `liveFrom(answers)` names the answer from which
 * the change is live on it (-1: not yet); the time of that answer counts. A gear removal is live from the first of
 * several answers in a row that all come from the remaining gear.
 */
interface Answer { status: number; gear: string; t: number }
async function measure(pub: Publisher, prober: Prober, kind: Kind, bodies: string[], host: string,
  liveFrom: (answers: Answer[]) => number, timeoutMs = 90_000): Promise<Sample> {
  const t0 = performance.now();
  for (const b of bodies) pub.send(b);
  const answers = new Map<string, Answer[]>(VIPS.map((v) => [v, []]));
  const liveAt = new Map<string, number>();
  while (liveAt.size < VIPS.length) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`${kind}: ${host} not live on ${VIPS.filter((v) => !liveAt.has(v)).join(', ')} after ${timeoutMs} ms (last answers ${JSON.stringify([...answers].map(([v, a]) => [v, a.slice(-3)]))})`);
    const pending = VIPS.filter((v) => !liveAt.has(v));
    const res = await Promise.all(pending.map((v) => prober.get(v, host)));
    const now = performance.now() - t0;
    pending.forEach((v, k) => {
      const a = answers.get(v)!;
      a.push({ ...res[k]!, t: now });
      const i = liveFrom(a);
      if (i >= 0) liveAt.set(v, a[i]!.t);
    });
    if (liveAt.size < VIPS.length) await sleep(15);
  }
  const times = [...liveAt.values()];
  return { kind, firstMs: Math.round(Math.min(...times)), allMs: Math.round(Math.max(...times)) };
}
/** live from the last answer when it carries `gear` */
const lastIs = (gear: string) => (a: Answer[]) => (a.at(-1)!.gear === gear ? a.length - 1 : -1);
/** live from the first answer carrying `gear` */
const anyIs = (gear: string) => (a: Answer[]) => a.findIndex((x) => x.gear === gear);
/** live from the first of the last `n` answers when they all carry `gear` */
const streakOf = (gear: string, n: number) => (a: Answer[]) => (a.length >= n && a.slice(-n).every((x) => x.gear === gear) ? a.length - n : -1);

const stats = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return { n: s.length, p50: percentile(s, 50), p95: percentile(s, 95), p99: percentile(s, 99), min: s[0] ?? NaN, max: s.at(-1) ?? NaN }; };

async function kindsAt(size: number, pub: Publisher, prober: Prober, quietAfter: () => Promise<void>): Promise<Record<Kind, { first_vip_ms: ReturnType<typeof stats>; all_vips_ms: ReturnType<typeof stats> }>> {
  const samples: Sample[] = [];
  for (let k = 0; k < SAMPLES; k++) {
    // spread over the fillers: different apps, so no sample finds its app in a worker's cache by accident
    const i = Math.floor((k * 7919) % size);
    const app = filler(i);
    const base = gear(i).key;
    const other = gear(i + 1).key === base ? gear(i + 2) : gear(i + 1);
    const alias = `a${k}s${size}.${app}.example.net`;
    samples.push(await measure(pub, prober, 'alias_add', [spi.addAlias(app, NS, alias)], alias, lastIs(base)));
    await quietAfter();
    samples.push(await measure(pub, prober, 'gear_add', [spi.addEp(app, NS, other.addr, other.port)], fq(`${app}-${NS}`), anyIs(other.key)));
    await quietAfter();
    samples.push(await measure(pub, prober, 'gear_remove', [spi.rmEp(app, NS, other.addr, other.port)], fq(`${app}-${NS}`), streakOf(base, 4)));
    await quietAfter();
    const napp = `n${TAG}s${size}k${k}`;
    const g = gear(k);
    samples.push(await measure(pub, prober, 'new_app', [spi.create(napp, NS), spi.addEp(napp, NS, g.addr, g.port)], fq(`${napp}-${NS}`), lastIs(g.key)));
    await quietAfter();
    process.stdout.write(`  ${size} apps #${k}: ${samples.slice(-4).map((s) => `${s.kind} ${(s.allMs / 1000).toFixed(2)}s`).join(', ')}\n`);
  }
  const out = {} as Record<Kind, { first_vip_ms: ReturnType<typeof stats>; all_vips_ms: ReturnType<typeof stats> }>;
  for (const kind of ['alias_add', 'gear_add', 'gear_remove', 'new_app'] as Kind[]) {
    const s = samples.filter((x) => x.kind === kind);
    out[kind] = { first_vip_ms: stats(s.map((x) => x.firstMs)), all_vips_ms: stats(s.map((x) => x.allMs)) };
  }
  return out;
}

/** publishes fillers [from, to) (create, endpoint, alias: 3 messages each), paced to `spanMs` in all */
async function publishFillers(pub: Publisher, from: number, to: number, spanMs: number): Promise<{ messages: number; spanMs: number }> {
  const t0 = Date.now();
  const n = to - from;
  for (let i = from; i < to; i++) {
    const g = gear(i);
    pub.send(spi.create(filler(i), NS));
    pub.send(spi.addEp(filler(i), NS, g.addr, g.port));
    pub.send(spi.addAlias(filler(i), NS, fillerAlias(i)));
    const due = t0 + ((i - from + 1) / n) * spanMs;
    if (due - Date.now() > 2) await sleep(due - Date.now());
    else if ((i - from) % 200 === 0) await sleep(0); // let stompit flush
  }
  return { messages: n * 3, spanMs: Date.now() - t0 };
}

/** every filler in [0, n) served with its gear through every VIP (by its alias): the number that are not */
async function notLive(prober: Prober, n: number, vips: readonly string[] = VIPS): Promise<number> {
  const ids = Array.from({ length: n }, (_, i) => i);
  const res = await pool(ids, 64, async (i) => (await Promise.all(vips.map((v) => prober.get(v, fillerAlias(i))))).every((r) => r.gear === gear(i).key));
  return res.filter((x) => !x).length;
}

/**
 * Where the samples' runs spent their time (the listener's `run` lines): the whole run, the routes task on the
 * slower proxy (the action plugin, SSH and the module there; the rproxy_results callback's duration_ms), and the
 * rest, the controller's own (fork, parsing, the play, exit).
 */
function runBreakdown(runs: readonly Record<string, unknown>[]): Record<string, unknown> {
  const run: number[] = [];
  const task: number[] = [];
  for (const r of runs) {
    const d = Number(r.duration_ms);
    const slow = Array.isArray(r.per_host) ? Math.max(...(r.per_host as { slowest_ms?: number }[]).map((h) => h.slowest_ms ?? NaN)) : NaN;
    if (!Number.isFinite(d) || !Number.isFinite(slow)) continue;
    run.push(d); task.push(slow);
  }
  const p50 = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 50);
  return { runs: run.length, run_p50_ms: p50(run), task_p50_ms: p50(task), controller_p50_ms: p50(run.map((d, i) => d - (task[i] as number))) };
}

async function main(): Promise<void> {
  const t0 = Date.now();
  console.log(`bench:scale: sizes ${SIZES.join(', ')}; ${SAMPLES} samples per kind; lab up (or bringing it up) ...`);
  await ensureLab();
  const broker = new PrivateBroker(STOMP_PORT);
  const dir = mkdtempSync(path.join(tmpdir(), 'rproxy-scale-'));
  const config = path.join(dir, 'config.yml');
  const listener = new ListenerProc(config, path.join(dir, 'listener.log'));
  const prober = new Prober();
  const result: Record<string, unknown> = { machine: { cpus: cpus().length, node: process.version }, config: { quiet_ms: QUIET_MS, burst_quiet_ms: BURST_QUIET_MS, proxies: 2, vips: VIPS.length, samples: SAMPLES }, sizes: {} };
  const sizes = result.sizes as Record<string, unknown>;
  // written after every phase: a run cut short still leaves what it measured
  const save = () => {
    mkdirSync(path.join(REPO, 'bench-results'), { recursive: true });
    writeFileSync(path.join(REPO, 'bench-results', 'scale.json'), JSON.stringify(result, null, 2) + '\n');
  };
  try {
    broker.prepare({ wipe: true });
    await broker.start();
    writeListenerConfig(config, { stompPort: STOMP_PORT, quietMs: QUIET_MS, burstQuietMs: BURST_QUIET_MS });
    listener.start();
    if (!(await listener.waitEvent('broker_connected', () => true, 60_000))) throw new Error('listener did not connect');
    const idle = async () => {
      // no run in progress and none started for 150 ms
      await waitFor(() => listener.events('run_start').length === listener.events('run').length, 120_000, 20);
      await sleep(150);
      await waitFor(() => listener.events('run_start').length === listener.events('run').length, 120_000, 20);
    };
    await sleep(2000);
    await idle();
    const pub = await publisher(STOMP_PORT);
    const listenerMem = () => { const m = rssOf(listener.child!.pid!); return { rss_mb: MB(m.rss), peak_mb: MB(m.hwm) }; };

    let have = 0;
    const largest = SIZES.at(-1)!;
    for (const size of SIZES) {
      if (size === largest && largest > 1000) {
        // the bulk load: the largest size from empty
        console.log(`bench:scale: bulk, ${largest} apps (${largest * 3} messages) from empty ...`);
        for (let i = 0; i < have; i++) pub.send(spi.del(filler(i), NS));
        await waitFor(async () => (await prober.get(VIPS[0] as string, fillerAlias(have - 1))).status === 404, 120_000, 100);
        await idle();
        const span = Math.max(5000, Math.round(largest / 2));
        const pubStats = await publishFillers(pub, 0, largest, span);
        const lastPublish = Date.now();
        const lastOk = async () => (await Promise.all(VIPS.map((v) => prober.get(v, fillerAlias(largest - 1))))).every((r) => r.gear === gear(largest - 1).key);
        if (!(await waitFor(lastOk, 300_000, 50))) throw new Error('bulk: the last app never went live');
        const lastLiveMs = Date.now() - lastPublish;
        await idle();
        const settledMs = Date.now() - lastPublish;
        const missing = await notLive(prober, largest);
        result.bulk = { apps: largest, messages: pubStats.messages, publish_span_ms: pubStats.spanMs, last_app_live_after_last_publish_ms: lastLiveMs, runs_settled_after_ms: settledMs, apps_not_live_after: missing, listener: listenerMem(), target_ms: 15_000 };
        save();
        console.log(`  bulk: ${pubStats.messages} messages in ${pubStats.spanMs} ms; last app live ${lastLiveMs} ms after the last publish; ${missing} of ${largest} apps not live afterwards`);
        have = largest;
      } else if (have < size) {
        console.log(`bench:scale: growing to ${size} apps ...`);
        await publishFillers(pub, have, size, Math.max(500, (size - have) / 2));
        if (!(await waitFor(async () => (await prober.get(VIPS[0] as string, fillerAlias(size - 1))).gear === gear(size - 1).key, 300_000, 100))) throw new Error(`growing to ${size}: not live`);
        await idle();
        const missing = await notLive(prober, size);
        if (missing) throw new Error(`${missing} of ${size} fillers not live`);
        have = size;
      }
      await idle();
      console.log(`bench:scale: ${size} apps, ${SAMPLES} samples of each kind ...`);
      const runsFrom = listener.events('run').length;
      const kinds = await kindsAt(size, pub, prober, idle);
      sizes[size] = { kinds, runs: runBreakdown(listener.events('run').slice(runsFrom)), nginx: nginxMemory(), listener: listenerMem() };
      save();
      for (const [k, v] of Object.entries(kinds)) console.log(`  ${size} apps ${k}: all VIPs p50 ${v.all_vips_ms.p50} ms p95 ${v.all_vips_ms.p95} p99 ${v.all_vips_ms.p99}; first VIP p50 ${v.first_vip_ms.p50}`);
      console.log(`  ${size} apps runs: ${JSON.stringify(sizes[size] && (sizes[size] as { runs: unknown }).runs)}`);
    }

    // ------------------------------------------------------------------ burst at the largest size
    console.log(`bench:scale: burst, ${BURST} events over 100 apps at ${have} apps ...`);
    await idle();
    // at least 2 events per app: create alone gives an app without a gear, never "live"
    const { events, expected } = burst(NS, 100, Math.max(2, Math.round(BURST / 100)), `u${TAG}`);
    const runsBefore = listener.events('run').length;
    const burstStart = Date.now();
    await publishPaced(pub, events, 4500);
    const lastPublish = Date.now();
    const apps = [...expected.keys()];
    const liveAt = new Map<string, number>();
    while (liveAt.size < apps.length && Date.now() - lastPublish < 120_000) {
      const pending = apps.filter((id) => !liveAt.has(id));
      const res = await pool(pending, 32, async (id) => {
        const e = expected.get(id)!;
        const host = e.aliases.at(-1) ?? fq(id);
        return (await Promise.all(VIPS.map((v) => prober.get(v, host)))).every((r) => e.backends.includes(r.gear));
      });
      const now = Date.now();
      pending.forEach((id, k) => { if (res[k]) liveAt.set(id, now); });
      if (liveAt.size < apps.length) await sleep(30);
    }
    await idle();
    result.burst = {
      events: events.length, apps: apps.length, at_apps: have, publish_span_ms: lastPublish - burstStart,
      all_live_after_last_publish_ms: liveAt.size === apps.length ? Math.max(...liveAt.values()) - lastPublish : null,
      apps_live: liveAt.size, runs: listener.events('run').length - runsBefore, targets: { all_live_ms: 5000, runs: 4 },
    };
    save();
    console.log(`  burst: ${JSON.stringify(result.burst)}`);

    // ------------------------------------------------------------------ memory, reload
    result.memory = { nginx: nginxMemory(), listener: listenerMem(), reload_rp1: await reloadMemory(), targets: { nginx_worker_mb: 120, listener_mb: 200 } };
    save();
    console.log(`  memory: ${JSON.stringify(result.memory)}`);

    // ------------------------------------------------------------------ onboarding a third proxy
    if (ONBOARD) {
      console.log(`bench:scale: onboarding rp3 with ${have} apps ...`);
      await idle();
      const lab = (args: string[]) => spawnSync('bash', [path.join(REPO, 'test', 'lab', 'lab.sh'), ...args], { encoding: 'utf8', timeout: 300_000 });
      const h = lab(['host', 'rp3']);
      if (h.status !== 0) throw new Error(`lab.sh host rp3: ${h.stderr}`);
      const cli = (args: string[]) => spawnSync(process.execPath, [path.join(REPO, 'dist', 'cli', 'main.js'), ...args, '--config', path.join(LAB, 'config.yml')], { encoding: 'utf8', timeout: 600_000 });
      const o0 = Date.now();
      const on = cli(['onboard', 'rp3', '--address', '198.51.100.13']);
      const onboardMs = Date.now() - o0;
      const ok = on.status === 0;
      const viaRp3 = ok ? await notLive(prober, Math.min(have, 2000), ['198.51.100.13']) : null;
      result.onboarding = { apps: have, ok, duration_ms: onboardMs, fillers_checked_on_rp3: Math.min(have, 2000), not_live_on_rp3: viaRp3, target_ms: 40_000, ...(ok ? {} : { error: (on.stderr || on.stdout).slice(-2000) }) };
      save();
      console.log(`  onboarding: ${JSON.stringify(result.onboarding)}`);
      const off = cli(['offboard', 'rp3']);
      if (off.status !== 0) console.log(`  offboard rp3 failed: ${off.stderr.slice(-500)}`);
      lab(['host-del', 'rp3']);
    }

    // ------------------------------------------------------------------ clean up the bench's apps
    console.log('bench:scale: removing the bench apps ...');
    const names = new Set<string>();
    for (let i = 0; i < have; i++) names.add(filler(i));
    for (const id of apps) names.add(id.slice(0, id.lastIndexOf('-')));
    for (const s of SIZES) for (let k = 0; k < SAMPLES; k++) names.add(`n${TAG}s${s}k${k}`);
    for (const n of names) pub.send(spi.del(n, NS));
    await pub.close();
    await waitFor(async () => (await prober.get(VIPS[0] as string, fillerAlias(have - 1))).status === 404, 300_000, 200);
    await idle();
    result.took_s = Math.round((Date.now() - t0) / 1000);
    save();
    writeFileSync(path.join(REPO, 'bench-results', 'scale.svg'), chart(result));
    console.log('results: bench-results/scale.json, bench-results/scale.svg');
  } finally {
    prober.stop();
    await listener.stop('SIGTERM').catch(() => undefined);
    await broker.stop().catch(() => undefined);
    releaseLab();
  }
}

// ------------------------------------------------------------------ chart: the growth curve (hand-written SVG)
function chart(r: Record<string, unknown>): string {
  const sizes = r.sizes as Record<string, { kinds: Record<string, { all_vips_ms: { p50: number; p99: number } }> }>;
  const xs = Object.keys(sizes).map(Number).sort((a, b) => a - b);
  const kinds = ['alias_add', 'gear_add', 'gear_remove', 'new_app'];
  const colors = ['#1565c0', '#2e7d32', '#ef6c00', '#6a1b9a'];
  const W = 760, H = 420, pad = 60;
  const maxY = Math.max(1500, ...xs.flatMap((x) => kinds.map((k) => sizes[x]!.kinds[k]?.all_vips_ms.p99 ?? 0))) * 1.1;
  const lx = (n: number) => pad + (xs.length < 2 ? 0 : (Math.log10(n) - Math.log10(xs[0]!)) / (Math.log10(xs.at(-1)!) - Math.log10(xs[0]!)) * (W - 2 * pad));
  const ly = (ms: number) => H - pad - (ms / maxY) * (H - 2 * pad);
  const p: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`, `<rect width="${W}" height="${H}" fill="white"/>`];
  p.push(`<text x="${pad}" y="24" font-size="15" font-weight="bold">Event → live through every VIP, p50 (solid) and p99 (dashed), by number of apps</text>`);
  p.push(`<line x1="${pad}" y1="${H - pad}" x2="${W - pad}" y2="${H - pad}" stroke="black"/><line x1="${pad}" y1="${pad}" x2="${pad}" y2="${H - pad}" stroke="black"/>`);
  for (const x of xs) p.push(`<text x="${lx(x)}" y="${H - pad + 16}" text-anchor="middle">${x.toLocaleString('en')}</text>`);
  for (let y = 0; y <= maxY; y += 500) p.push(`<text x="${pad - 6}" y="${ly(y) + 4}" text-anchor="end">${(y / 1000).toFixed(1)} s</text>`);
  for (const [v, label] of [[700, 'target p50 (10 apps)'], [900, 'target p50 (10k apps)']] as const) p.push(`<line x1="${pad}" y1="${ly(v)}" x2="${W - pad}" y2="${ly(v)}" stroke="#c00" stroke-dasharray="3 3"/><text x="${W - pad}" y="${ly(v) - 3}" text-anchor="end" fill="#c00">${label}</text>`);
  kinds.forEach((k, i) => {
    const pts = (q: 'p50' | 'p99') => xs.map((x) => `${lx(x).toFixed(1)},${ly(sizes[x]!.kinds[k]?.all_vips_ms[q] ?? 0).toFixed(1)}`).join(' ');
    p.push(`<polyline fill="none" stroke="${colors[i]}" stroke-width="2" points="${pts('p50')}"/>`);
    p.push(`<polyline fill="none" stroke="${colors[i]}" stroke-width="1" stroke-dasharray="5 3" points="${pts('p99')}"/>`);
    p.push(`<text x="${pad + 10 + i * 150}" y="${pad - 10}" fill="${colors[i]}">${k.replace('_', ' ')}</text>`);
  });
  p.push(`<text x="${W / 2}" y="${H - 15}" text-anchor="middle">apps (log scale)</text>`, '</svg>');
  return p.join('\n') + '\n';
}

main().then(() => process.exit(0), (e: unknown) => { console.error(`bench:scale failed: ${e instanceof Error ? e.stack : String(e)}`); process.exit(1); });
