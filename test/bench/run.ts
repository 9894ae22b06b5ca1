// `npm run bench`: the listener's event-to-live latency and burst behaviour on the lab (2 proxies, 2 VIPs).
// Not a test: it prints figures and writes bench-results/listener-bench.{json,svg}.
//   latency: >= 50 single events (each a new app's first endpoint), from the publish to the first response
//            through a VIP that carries the new gear's identity; p50/p95/p99.
//   burst:   1,000 events over 100 apps published within 5 s; time from the last publish until all are live,
//            and the number of playbook runs.
// Targets (issue 4): p50 <= 2.0 s, p95 <= 3.5 s; burst all live <= 8 s after the last event with <= 6 runs.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ensureLab, releaseLab } from '../lab/labenv.js';
import {
  PrivateBroker, publisher, ListenerProc, writeListenerConfig, routesJson, spi, burst, gear, percentile, sleep, waitFor, VIPS,
  CLIENT_NS, REPO, publishPaced, pool, type LogLine,
} from './latency.js';

const STOMP_PORT = Number(process.env.BENCH_STOMP_PORT ?? 61643);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 60);
const NS = 'lsnb';
// fresh app names on every run (a crashed run may leave apps behind: they must not count as instantly live)
const TAG = Date.now().toString(36).slice(-5).replace(/[^a-z0-9]/g, 'x');

/** async curl from the client netns: the gear answering HOST via ADDRESS, '' if none */
function gearAsync(address: string, host: string, timeoutS = 2): Promise<string> {
  return new Promise((resolve) => {
    const c = spawn('ip', ['netns', 'exec', CLIENT_NS, 'curl', '-s', '-m', String(timeoutS), '--resolve', `${host}:80:${address}`, `http://${host}/`], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.on('close', () => resolve(/^gear (\S+)/.exec(out)?.[1] ?? ''));
    c.on('error', () => resolve(''));
  });
}

const fq = (id: string) => `${id}.apps.example.com`;
const ms = (a: string, b: string) => Date.parse(b) - Date.parse(a);

async function main(): Promise<void> {
  const t0 = Date.now();
  console.log('bench: lab up (or bringing it up) ...');
  await ensureLab();
  const broker = new PrivateBroker(STOMP_PORT);
  const dir = mkdtempSync(path.join(tmpdir(), 'rproxy-bench-'));
  const config = path.join(dir, 'config.yml');
  const listener = new ListenerProc(config, path.join(dir, 'listener.log'));
  try {
    console.log(`bench: private ActiveMQ on 127.0.0.1:${STOMP_PORT} (patched by roles/activemq_routinginfo) ...`);
    broker.prepare({ wipe: true });
    await broker.start();
    writeListenerConfig(config, { stompPort: STOMP_PORT });
    listener.start();
    if (!(await listener.waitEvent('broker_connected', () => true, 60_000))) throw new Error('listener did not connect');
    // let a startup catch-up run (if any) finish
    await sleep(3000);
    await waitFor(() => listener.events('run_start').length === listener.events('run').length, 60_000, 100);
    const pub = await publisher(STOMP_PORT);

    // ------------------------------------------------------------------ latency
    console.log(`bench: latency, ${SAMPLES} single events ...`);
    const latency: { i: number; ms: number; vip: string; allVipsMs: number }[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const app = `l${TAG}${i}`;
      const g = gear(i);
      const host = fq(`${app}-${NS}`);
      if ((await gearAsync(VIPS[0] as string, host)) !== '') throw new Error(`${host} is already live before its event`);
      const start = performance.now();
      pub.send(spi.addEp(app, NS, g.addr, g.port));
      let first = 0, firstVip = '';
      const seen = new Set<string>();
      while (performance.now() - start < 30_000 && seen.size < VIPS.length) {
        const res = await Promise.all(VIPS.map((v) => gearAsync(v, host)));
        res.forEach((r, k) => {
          if (r === g.key && !seen.has(VIPS[k] as string)) {
            seen.add(VIPS[k] as string);
            if (!first) { first = performance.now() - start; firstVip = VIPS[k] as string; }
          }
        });
        if (seen.size < VIPS.length) await sleep(20);
      }
      const all = performance.now() - start;
      if (!first) throw new Error(`sample ${i}: ${host} never carried ${g.key}`);
      latency.push({ i, ms: Math.round(first), vip: firstVip, allVipsMs: Math.round(all) });
      process.stdout.write(`  #${i} ${(first / 1000).toFixed(2)} s (all VIPs ${(all / 1000).toFixed(2)} s)\n`);
      await sleep(1200 + Math.random() * 600); // isolated events: let the coalescer go idle
    }
    const lat = latency.map((l) => l.ms).sort((a, b) => a - b);
    const latAll = latency.map((l) => l.allVipsMs).sort((a, b) => a - b);

    // ------------------------------------------------------------------ burst
    console.log('bench: burst, 1,000 events over 100 apps within 5 s ...');
    await sleep(3000);
    const { events, expected } = burst(NS, 100, 10, `u${TAG}`);
    const runsBefore = listener.events('run').length;
    const fromLine = listener.lines.length;
    const burstStart = Date.now();
    await publishPaced(pub, events, 4500);
    const lastPublish = Date.now();
    const publishSpanMs = lastPublish - burstStart;
    // the last event published: the last app's last event (add_public_endpoint); live when a VIP shows that gear
    const lastApp = [...expected.keys()].at(-1) as string;
    const lastExp = expected.get(lastApp)!;
    const ok = await waitFor(async () => {
      const r = routesJson(config).find((x) => x.fqdn === fq(lastApp));
      return r && JSON.stringify(r.backends) === JSON.stringify(lastExp.backends);
    }, 30_000, 50);
    if (!ok) throw new Error('burst: state never reached the expected backends');
    // all live: every app through both VIPs serves a gear of its final set and its last alias
    const liveAt = new Map<string, number>();
    const lastAlias = (id: string) => expected.get(id)!.aliases.at(-1) as string;
    while (liveAt.size < expected.size && Date.now() - lastPublish < 60_000) {
      const pending = [...expected.keys()].filter((id) => !liveAt.has(id));
      const res = await pool(pending, 24, async (id) => {
        const e = expected.get(id)!;
        const r = await Promise.all(VIPS.map((v) => gearAsync(v, lastAlias(id))));
        return r.every((x) => e.backends.includes(x));
      });
      const now = Date.now();
      pending.forEach((id, k) => { if (res[k]) liveAt.set(id, now); });
      if (liveAt.size < expected.size) await sleep(50);
    }
    if (liveAt.size < expected.size) throw new Error(`burst: only ${liveAt.size}/100 apps live after 60 s`);
    const allLiveMs = Math.max(...liveAt.values()) - lastPublish;
    // the listener's own view: when the run covering the last message ended
    await sleep(500);
    const burstLines = listener.lines.slice(fromLine);
    const runs = burstLines.filter((l) => l.event === 'run');
    const lastLive = burstLines.filter((l) => l.event === 'event_live').at(-1) as LogLine | undefined;
    const listenerAllLiveMs = lastLive ? Date.parse(lastLive.time) - lastPublish : NaN;
    const runsInBurst = listener.events('run').length - runsBefore;
    await pub.close();

    const result = {
      machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
      config: { quiet_ms: Number(process.env.RPROXY_BENCH_QUIET_MS ?? 0), warm: process.env.RPROXY_BENCH_WARM !== '0', max_wait_ms: 1500, proxies: 2, vips: VIPS.length },
      latency: {
        samples: lat.length,
        first_vip_ms: { p50: percentile(lat, 50), p95: percentile(lat, 95), p99: percentile(lat, 99), min: lat[0], max: lat.at(-1) },
        all_vips_ms: { p50: percentile(latAll, 50), p95: percentile(latAll, 95), p99: percentile(latAll, 99) },
        targets_ms: { p50: 2000, p95: 3500 },
        raw: latency,
      },
      burst: {
        events: events.length, apps: expected.size, publish_span_ms: publishSpanMs,
        all_live_after_last_publish_ms: allLiveMs, listener_all_applied_after_last_publish_ms: listenerAllLiveMs,
        runs: runsInBurst, targets: { all_live_ms: 8000, runs: 6 },
        run_log: runs.map((r) => ({ start_ms: ms(new Date(burstStart).toISOString(), r.time as string) - Number(r.duration_ms), duration_ms: r.duration_ms, apps: Array.isArray(r.apps) ? r.apps.length : null, result: r.result })),
      },
      took_s: Math.round((Date.now() - t0) / 1000),
    };
    mkdirSync(path.join(REPO, 'bench-results'), { recursive: true });
    writeFileSync(path.join(REPO, 'bench-results', 'listener-bench.json'), JSON.stringify(result, null, 2) + '\n');
    writeFileSync(path.join(REPO, 'bench-results', 'listener-bench.svg'), chart(result));
    const L = result.latency.first_vip_ms;
    console.log(`\nlatency (${lat.length} events, first VIP): p50 ${L.p50} ms, p95 ${L.p95} ms, p99 ${L.p99} ms  [targets 2000 / 3500]`);
    console.log(`latency (all VIPs): p50 ${result.latency.all_vips_ms.p50} ms, p95 ${result.latency.all_vips_ms.p95} ms, p99 ${result.latency.all_vips_ms.p99} ms`);
    console.log(`burst: 1000 events / 100 apps published in ${publishSpanMs} ms; all live through both VIPs ${allLiveMs} ms after the last publish (listener: applied ${listenerAllLiveMs} ms); ${runsInBurst} runs  [targets 8000 ms, 6 runs]`);
    console.log(`results: bench-results/listener-bench.json, bench-results/listener-bench.svg`);

    // clean up the bench apps
    const cleaner = await publisher(STOMP_PORT);
    for (let i = 0; i < SAMPLES; i++) cleaner.send(spi.del(`l${TAG}${i}`, NS));
    for (const id of expected.keys()) cleaner.send(spi.del(id.slice(0, id.lastIndexOf('-')), NS));
    await cleaner.close();
    await waitFor(() => !routesJson(config).some((r) => r.fqdn.endsWith(`-${NS}.apps.example.com`)), 30_000, 200);
    await waitFor(() => { const l = listener.events('run').at(-1); return l && Date.now() - Date.parse(l.time) > 2000; }, 30_000, 200);
  } finally {
    await listener.stop('SIGTERM').catch(() => undefined);
    await broker.stop().catch(() => undefined);
    releaseLab();
  }
}

// ------------------------------------------------------------------ chart (hand-written SVG)
function chart(r: { latency: { raw: { ms: number; allVipsMs: number }[]; first_vip_ms: { p50: number; p95: number; p99: number } }; burst: { run_log: { start_ms: number; duration_ms: unknown; apps: number | null }[]; publish_span_ms: number; all_live_after_last_publish_ms: number; runs: number } }): string {
  const W = 960, H = 420, pad = 50;
  const lat = r.latency.raw.map((x) => x.ms).sort((a, b) => a - b);
  const latAll = r.latency.raw.map((x) => x.allVipsMs).sort((a, b) => a - b);
  const maxX = Math.max(4000, ...latAll) * 1.05;
  const x1 = (v: number) => pad + (v / maxX) * (W / 2 - pad - 20);
  const y1 = (p: number) => H - pad - p * (H - 2 * pad);
  const cdf = (xs: number[]) => xs.map((v, i) => `${x1(v).toFixed(1)},${y1((i + 1) / xs.length).toFixed(1)}`).join(' ');
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(`<text x="${pad}" y="24" font-size="15" font-weight="bold">Event-to-live latency (CDF, ${lat.length} events)</text>`);
  parts.push(`<line x1="${pad}" y1="${H - pad}" x2="${W / 2 - 20}" y2="${H - pad}" stroke="black"/><line x1="${pad}" y1="${pad}" x2="${pad}" y2="${H - pad}" stroke="black"/>`);
  for (let s = 0; s <= maxX; s += 500) parts.push(`<text x="${x1(s)}" y="${H - pad + 16}" text-anchor="middle">${(s / 1000).toFixed(1)}</text>`);
  parts.push(`<text x="${(W / 4)}" y="${H - 12}" text-anchor="middle">seconds from publish</text>`);
  for (const p of [0, 0.5, 0.95, 1]) parts.push(`<text x="${pad - 6}" y="${y1(p) + 4}" text-anchor="end">${p * 100}%</text>`);
  for (const [v, c] of [[2000, '#c00'], [3500, '#c60']] as const) parts.push(`<line x1="${x1(v)}" y1="${pad}" x2="${x1(v)}" y2="${H - pad}" stroke="${c}" stroke-dasharray="4 3"/><text x="${x1(v) + 3}" y="${pad + 10}" fill="${c}">target ${v === 2000 ? 'p50' : 'p95'}</text>`);
  parts.push(`<polyline fill="none" stroke="#1565c0" stroke-width="2" points="${cdf(lat)}"/>`);
  parts.push(`<polyline fill="none" stroke="#7cb342" stroke-width="2" points="${cdf(latAll)}"/>`);
  const f = r.latency.first_vip_ms;
  parts.push(`<text x="${pad + 10}" y="${pad + 30}" fill="#1565c0">first VIP: p50 ${f.p50} ms, p95 ${f.p95} ms, p99 ${f.p99} ms</text>`);
  parts.push(`<text x="${pad + 10}" y="${pad + 46}" fill="#7cb342">both VIPs</text>`);
  // burst timeline
  const bx0 = W / 2 + 30, bw = W / 2 - 60;
  const end = Math.max(r.burst.publish_span_ms + r.burst.all_live_after_last_publish_ms, ...r.burst.run_log.map((x) => x.start_ms + Number(x.duration_ms))) * 1.05;
  const bx = (v: number) => bx0 + (v / end) * bw;
  parts.push(`<text x="${bx0}" y="24" font-size="15" font-weight="bold">Burst: 1,000 events / 100 apps, ${r.burst.runs} runs</text>`);
  parts.push(`<rect x="${bx(0)}" y="${pad + 10}" width="${bx(r.burst.publish_span_ms) - bx(0)}" height="24" fill="#ffe082"/><text x="${bx(0) + 4}" y="${pad + 27}">publishing ${(r.burst.publish_span_ms / 1000).toFixed(1)} s</text>`);
  r.burst.run_log.forEach((run, i) => {
    const y = pad + 50 + i * 28;
    parts.push(`<rect x="${bx(run.start_ms)}" y="${y}" width="${Math.max(2, bx(run.start_ms + Number(run.duration_ms)) - bx(run.start_ms))}" height="22" fill="#90caf9"/><text x="${bx(run.start_ms) + 4}" y="${y + 15}">run ${i + 1}: ${run.apps ?? 'all'} apps, ${(Number(run.duration_ms) / 1000).toFixed(2)} s</text>`);
  });
  const live = r.burst.publish_span_ms + r.burst.all_live_after_last_publish_ms;
  parts.push(`<line x1="${bx(live)}" y1="${pad}" x2="${bx(live)}" y2="${H - pad}" stroke="#2e7d32" stroke-width="2"/><text x="${bx(live) - 4}" y="${H - pad + 16}" text-anchor="end" fill="#2e7d32">all live: +${(r.burst.all_live_after_last_publish_ms / 1000).toFixed(2)} s after the last publish</text>`);
  if (r.burst.publish_span_ms + 8000 <= end) parts.push(`<line x1="${bx(r.burst.publish_span_ms + 8000)}" y1="${pad}" x2="${bx(r.burst.publish_span_ms + 8000)}" y2="${H - pad}" stroke="#c00" stroke-dasharray="4 3"/><text x="${bx(r.burst.publish_span_ms + 8000) - 4}" y="${pad + 6}" text-anchor="end" fill="#c00">target</text>`);
  parts.push(`<line x1="${bx0}" y1="${H - pad}" x2="${bx0 + bw}" y2="${H - pad}" stroke="black"/>`);
  for (let s = 0; s <= end; s += 2000) parts.push(`<text x="${bx(s)}" y="${H - pad + 30}" text-anchor="middle">${s / 1000}s</text>`);
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

main().then(() => process.exit(0), (e: unknown) => { console.error(`bench failed: ${e instanceof Error ? e.stack : String(e)}`); process.exit(1); });
