/**
 * State-at-scale benchmark (not a test), issue 10: 10,000 apps published as 30,000 messages (create_application,
 * add_public_endpoint, add_alias per app), in child processes running the built code (dist/, no tsx) so their
 * RSS is the product's:
 *   - the listener's intake (intake_*): the real Batcher + storeIntake + SeenIds with the listener's batching, a
 *     broker-like prefetch window and a log line per message: msg/s, apply_ms, CPU per message, peak heap, VmHWM
 *     (BENCH_ONLY=intake: only this; BENCH_MAX_BATCH / BENCH_PREFETCH: other settings; BENCH_NODE_FLAGS: e.g.
 *     --cpu-prof; BENCH_ALLOC_PROF=file: every allocation sampled, garbage included; BENCH_HEAP_SNAPSHOT=file);
 *   - BENCH_STOMP=1 instead: the real listener process over a private ActiveMQ on loopback (never the lab's),
 *     publishing at 6,000 msg/s, its runner without proxies (intake only);
 *   - BENCH_DIST=<dist dir> measures another build (before/after), BENCH_DIST_B a second one in the STOMP mode
 *     (BENCH_REPEAT=n rounds, the order swapped every round; the broker's and the listener's CPU seconds per run);
 *     BENCH_STOMP_RAW=1: the STOMP path alone (no listener), acks per message against one cumulative ack per batch;
 *   - applied through the StateStore in batches of 500:
 *   - bulk apply time of the 30,000 messages, and the state on disk (index.json + apps/);
 *   - one event (add_alias to one app) applied through a store holding 10,000 apps: p50/max of 20;
 *   - the runner's digests per pass (store in memory; index.json alone as the CLI does);
 *   - RSS of a process that opened the 10,000-app store (what the listener holds) and of the bulk applier;
 *   - the action plugin's load_state (python, in-process, best of 5): targeted 1 app vs full, and the schema-2
 *     single file it replaced.
 * BENCH_APPS overrides 10,000. Writes bench-results/state-scale.json.
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const APPS = Number(process.env.BENCH_APPS ?? 10_000);
// BENCH_DIST: another build (e.g. the base branch's) to compare against
const dist = resolve(process.env.BENCH_DIST ?? resolve(import.meta.dirname, '../../dist'));
const dir = await mkdtemp(join(tmpdir(), 'rproxy-state-scale-'));
const stateDir = join(dir, 'var');

// one message of the bulk load: app i; kind 0 create_application, 1 add_public_endpoint, 2+ add_alias
const CHILD_EV = `const ev = (i, kind) => {
  const app = 'app' + i, ns = 'ns' + (i % 1000), a = '10.' + ((i >> 16) & 255) + '.' + ((i >> 8) & 255) + '.' + (i & 255);
  if (kind === 0) return '---\\n:action: :create_application\\n:app_name: ' + app + '\\n:namespace: ' + ns + '\\n:scalable: true\\n:ha: false\\n';
  if (kind === 1) return '---\\n:action: :add_public_endpoint\\n:app_name: ' + app + '\\n:namespace: ' + ns + '\\n:gear_id: 5a' + i.toString(16).padStart(22, '0') +
    '\\n:public_port_name: php\\n:public_address: ' + a + '\\n:public_port: ' + (30000 + (i % 30000)) + '\\n:protocols:\\n- http\\n:types:\\n- web_framework\\n:mappings:\\n- frontend: ""\\n  backend: ""\\n';
  return '---\\n:action: :add_alias\\n:app_name: ' + app + '\\n:namespace: ' + ns + '\\n:alias: ' + (kind === 2 ? 'www' : 'x' + kind) + '.' + app + '.example.com\\n';
};`;

const CHILD = `
import { StateStore } from '${dist}/vars/store.js';
import { defaultConfig } from '${dist}/config.js';
import { runnerPorts } from '${dist}/runner/ports.js';
import { renderVars } from '${dist}/vars/emit.js';
import { writeFileSync, mkdirSync, readFileSync, createWriteStream } from 'node:fs';
import { Batcher } from '${dist}/listener/batcher.js';
import { storeIntake } from '${dist}/listener/intake.js';
import { SeenIds } from '${dist}/listener/seen.js';
import { jsonLogger } from '${dist}/listener/log.js';
const [mode, stateDir, appsArg, singleDir] = process.argv.slice(2);
const vmhwm = () => Math.round(Number(/VmHWM:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) / 1024);
const APPS = Number(appsArg);
const config = { ...defaultConfig(), inventory_dir: stateDir + '/../inventory', state_dir: stateDir, tls_require_valid: false };
const now = () => Number(process.hrtime.bigint()) / 1e6;
const mib = (b) => Math.round(b / 1048576);
${CHILD_EV}
const out = {};
// the listener's batching and prefetch (BENCH_MAX_BATCH / BENCH_PREFETCH try others)
const listenerBatching = await import('${dist}/listener/batcher.js');
const BATCHER = { ...(listenerBatching.LISTENER_BATCHING ?? { quietMs: 15, maxBatch: 500, maxDelayMs: 100 }), ...(process.env.BENCH_MAX_BATCH ? { maxBatch: Number(process.env.BENCH_MAX_BATCH) } : {}) };
if (mode === 'intake') {
  // what the listener does per batch, without STOMP: deliveries pushed into the real Batcher through the real
  // storeIntake + SeenIds (parse, validate, reduce, durable write, seen log), a broker-like prefetch window of
  // PREFETCH unacked messages (a message is handed over only when the window has room, as ActiveMQ does), and the
  // listener's per-message log line (jsonLogger into a file, as stdout into the journal).
  const PREFETCH = Number(process.env.BENCH_PREFETCH ?? listenerBatching.LISTENER_PREFETCH ?? 1000);
  const store = await StateStore.open(config);
  const seen = await SeenIds.open(stateDir);
  const logStream = createWriteStream(singleDir + '-listener.log');
  const log = jsonLogger(logStream);
  const msgs = [];
  for (let i = 0; i < APPS; i++) for (const k of [0, 1, 2]) msgs.push(ev(i, k));
  const batches = [];
  let next = 0, unacked = 0, acked = 0, done;
  const finished = new Promise((r) => { done = r; });
  const feed = () => {
    while (unacked < PREFETCH && next < msgs.length) {
      const n = next++;
      unacked++;
      batcher.push({ messageId: 'ID:bench-' + n, body: msgs[n], headers: { redelivered: 'false' }, receivedAt: Date.now(),
        ack: () => new Promise((r) => setImmediate(() => { unacked--; acked++; r(true); if (acked === msgs.length) done(); else setImmediate(feed); })) });
    }
  };
  const batcher = new Batcher(storeIntake(store, config.max_body_bytes, seen), BATCHER, (e, f) => { if (e === 'batch') batches.push(f); log(e, f); },
    (batch, outcome) => {
      const changed = new Set(outcome.changedApps);
      outcome.messages.forEach((m, i) => {
        const d = batch[i];
        for (const doc of m.docs) log('message', { message_id: m.messageId, app: doc.app, action: doc.action, result: doc.result, redelivered: d.headers.redelivered === 'true' });
      });
      void changed;
    });
  // BENCH_ALLOC_PROF=file: sampling profile of everything allocated (garbage included), for finding the peak's source
  let session;
  if (process.env.BENCH_ALLOC_PROF) {
    session = new (await import('node:inspector')).Session();
    session.connect();
    await new Promise((r) => session.post('HeapProfiler.startSampling', { samplingInterval: 32768, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true }, r));
  }
  const t0 = now();
  const peak = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };
  const sample = () => { const m = process.memoryUsage(); for (const k of Object.keys(peak)) peak[k] = Math.max(peak[k], m[k]); };
  const sampler = setInterval(sample, 50);
  const cpu0 = process.cpuUsage();
  feed();
  await finished;
  clearInterval(sampler);
  const ms = now() - t0;
  const cpu = process.cpuUsage(cpu0);
  if (session) await new Promise((r) => session.post('HeapProfiler.stopSampling', (e, res) => { writeFileSync(process.env.BENCH_ALLOC_PROF, JSON.stringify(res.profile)); r(); }));
  await batcher.stop();
  await new Promise((r) => logStream.end(r));
  const apply = batches.map((b) => b.apply_ms).sort((a, b) => a - b);
  const q = (f) => apply[Math.min(apply.length - 1, Math.floor(f * apply.length))];
  out.intake_messages = msgs.length;
  out.intake_ms = Math.round(ms);
  out.intake_msg_per_s = Math.round(msgs.length / ms * 1000);
  out.intake_batches = batches.length;
  out.intake_batching = { ...BATCHER, prefetch: PREFETCH };
  out.intake_batch_messages_max = Math.max(...batches.map((b) => b.messages));
  out.intake_apply_ms = { p50: q(0.5), p90: q(0.9), max: apply[apply.length - 1] };
  out.intake_apps = store.state.apps.size;
  out.intake_cpu_ms = Math.round((cpu.user + cpu.system) / 1000);
  out.intake_cpu_us_per_msg = Math.round((cpu.user + cpu.system) / msgs.length);
  out.intake_peak_mib = Object.fromEntries(Object.entries(peak).map(([k, v]) => [k, mib(v)]));
  globalThis.gc?.();
  out.intake_heap_after_gc_mib = mib(process.memoryUsage().heapUsed);
  if (process.env.BENCH_HEAP_SNAPSHOT) (await import('node:v8')).writeHeapSnapshot(process.env.BENCH_HEAP_SNAPSHOT);
  out.intake_rss_mib = mib(process.memoryUsage().rss);
  out.intake_vmhwm_mib = vmhwm();
} else if (mode === 'bulk') {
  const store = await StateStore.open(config);
  const msgs = [];
  for (let i = 0; i < APPS; i++) for (const k of [0, 1, 2]) msgs.push(ev(i, k));
  const t0 = now();
  for (let i = 0; i < msgs.length; i += 500) await store.applyText(msgs.slice(i, i + 500).join(''));
  out.bulk_messages = msgs.length;
  out.bulk_apply_ms = Math.round(now() - t0);
  out.bulk_rss_mib = mib(process.memoryUsage().rss);
  out.bulk_peak_rss_mib = Math.round(process.resourceUsage().maxRSS / 1024);
  // the schema-2 single file of the same state, for the plugin comparison
  mkdirSync(singleDir + '/routes', { recursive: true });
  writeFileSync(singleDir + '/routes/rproxy_routes.json', renderVars(store.state.apps.values(), config.cloud_domain));
} else {
  const o0 = now();
  const store = await StateStore.open(config);
  out.open_ms = Math.round(now() - o0);
  globalThis.gc?.();
  out.open_rss_mib = mib(process.memoryUsage().rss);
  out.open_heap_mib = mib(process.memoryUsage().heapUsed);
  const ports = runnerPorts(config, store);
  const times = [], dig = [];
  for (let n = 0; n < 20; n++) {
    const i = (n * 487) % APPS;
    const t0 = now();
    const r = await store.applyText(ev(i, 10 + n));
    times.push(now() - t0);
    if (r.changedApps.length !== 1) throw new Error('not applied: ' + JSON.stringify(r));
    const d0 = now();
    const d = await ports.digests();
    dig.push(now() - d0);
    if (Object.keys(d).length !== APPS) throw new Error('digests');
  }
  times.sort((a, b) => a - b); dig.sort((a, b) => a - b);
  out.one_event_apply_ms = { p50: +times[10].toFixed(2), max: +times[19].toFixed(2) };
  out.digests_store_ms = { p50: +dig[10].toFixed(2), max: +dig[19].toFixed(2) };
  const cli = runnerPorts(config);
  const c = [];
  for (let n = 0; n < 5; n++) { const t0 = now(); await cli.digests(); c.push(now() - t0); }
  c.sort((a, b) => a - b);
  out.digests_index_ms = { p50: +c[2].toFixed(2), max: +c[4].toFixed(2) };
  globalThis.gc?.();
  out.after_events_rss_mib = mib(process.memoryUsage().rss);
  out.peak_rss_mib = Math.round(process.resourceUsage().maxRSS / 1024);
}
process.stdout.write(JSON.stringify(out) + '\\n');
`;

const PY = `
import importlib.util, json, sys, time
spec = importlib.util.spec_from_file_location('plugin', sys.argv[1])
plugin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plugin)
def best(f, n=5):
    ts = []
    for _ in range(n):
        t0 = time.perf_counter(); r = f(); ts.append(time.perf_counter() - t0)
    return round(min(ts) * 1000, 1), r
out = {}
t, r = best(lambda: plugin.load_state(sys.argv[2], ['app1-ns1'])[0]); out['targeted_1_app_ms'] = t; assert list(r) == ['app1-ns1'], list(r)
t, r = best(lambda: plugin.load_state(sys.argv[2], None)[0], 3); out['full_ms'] = t; out['full_apps'] = len(r)
t, r = best(lambda: plugin.load_state(sys.argv[3], ['app1-ns1'])[0], 3); out['single_file_schema2_ms'] = t; out['single_file_apps'] = len(r)
print(json.dumps(out))
`;

const childFile = join(dir, 'child.mjs');
await writeFile(childFile, CHILD);
await mkdir(stateDir, { recursive: true });
const child = (mode: string, state = stateDir): Record<string, unknown> => {
  const flags = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  const r = spawnSync(process.execPath, [...flags, '--expose-gc', childFile, mode, state, String(APPS), join(dir, 'single')], { encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.status !== 0) throw new Error(`${mode} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
};
// BENCH_STOMP=1: the same 30,000 messages through the real listener process (dist/listener/main.js) and a private
// ActiveMQ on loopback (test/bench/latency.ts PrivateBroker, never the lab's), published at 6,000 msg/s as the
// plug-in does. The listener's inventory has no proxy, so its runner plans and never runs: intake only.
if (process.env.BENCH_STOMP === '1') {
  const { PrivateBroker, LISTENER_STOMP } = await import('./latency.js');
  const port = 61700 + (process.pid % 200);
  const broker = new PrivateBroker(port);
  broker.prepare({ wipe: true });
  await broker.start();
  try {
    // BENCH_DIST_B: a second build measured on the same broker right after (before/after on one machine state)
    const builds = [dist, ...(process.env.BENCH_DIST_B ? [resolve(process.env.BENCH_DIST_B)] : [])];
    const results: Record<string, unknown>[] = [];
    // BENCH_STOMP_RAW=1: the STOMP path alone, without the listener: a stompit consumer with the listener's
    // subscription (prefetch 1000) that reads each body and acks in batches of up to 500 (or what came within
    // 15 ms), per message (`client-individual`, before) or once per batch (`client`, after), the modes interleaved
    if (process.env.BENCH_STOMP_RAW === '1') {
      for (let r = 0; r < Number(process.env.BENCH_REPEAT ?? 1); r++) {
        for (const mode of (r % 2 ? ['client', 'client-individual'] : ['client-individual', 'client']) as ('client' | 'client-individual')[]) {
          results.push({ mode, round: r, ...await rawStompRun(port, LISTENER_STOMP, mode, broker.pids()) });
        }
      }
      console.log(JSON.stringify(results, null, 2));
      await broker.stop();
      await rm(dir, { recursive: true, force: true });
      process.exit(0);
    }
    // BENCH_REPEAT=n: n rounds, the builds' order swapped every round (interleaved before/after)
    const rounds = Number(process.env.BENCH_REPEAT ?? 1);
    for (let r = 0; r < rounds; r++) {
      for (const build of r % 2 ? [...builds].reverse() : builds) results.push({ build, round: r, ...await stompRun(build, port, LISTENER_STOMP, broker.pids()) });
    }
    console.log(JSON.stringify(results, null, 2));
  } finally { await broker.stop(); }
  await rm(dir, { recursive: true, force: true });
  process.exit(0);
}

async function rawStompRun(port: number, login: { login: string; passcode: string }, mode: 'client' | 'client-individual', brokerPids: number[]): Promise<Record<string, unknown>> {
  const { publisher } = await import('./latency.js');
  const { readFileSync } = await import('node:fs');
  const stompit = (await import('stompit')).default;
  const cpuOf = (pids: number[]) => pids.reduce((a, p) => { try { const f = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' '); return a + Number(f[11]) + Number(f[12]); } catch { return a; } }, 0) / 100;
  const client: any = await new Promise((res, rej) => stompit.connect({ host: '127.0.0.1', port, connectHeaders: { host: '/', login: login.login, passcode: login.passcode, 'heart-beat': '0,0' } } as never, (e: Error | null, c: unknown) => (e ? rej(e) : res(c))));
  client.on('error', () => undefined);
  let got = 0, acked = 0, lastAck = 0;
  let batch: unknown[] = [];
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    timer = undefined;
    const b = batch; batch = [];
    if (!b.length) return;
    if (mode === 'client') client.ack(b[b.length - 1]); else for (const m of b) client.ack(m);
    acked += b.length; lastAck = performance.now();
  };
  client.subscribe({ destination: '/queue/paas-rproxy.routinginfo', ack: mode, 'activemq.prefetchSize': '1000', 'activemq.exclusive': 'true' }, (e: Error | null, m: any) => {
    if (e) return;
    m.readString('utf-8', () => { got++; batch.push(m); if (batch.length >= 500) flush(); else if (!timer) timer = setTimeout(flush, 15); });
  });
  const pub = await publisher(port);
  const bodies: string[] = JSON.parse(spawnSync(process.execPath, ['-e', `${CHILD_EV}; const o=[]; for (let i=0;i<${APPS};i++) for (const k of [0,1,2]) o.push(ev(i,k)); process.stdout.write(JSON.stringify(o))`], { encoding: 'utf8', maxBuffer: 64 << 20 }).stdout);
  const brokerCpu0 = cpuOf(brokerPids), cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < bodies.length; i += 600) {
    for (const b of bodies.slice(i, i + 600)) pub.send(b);
    await new Promise((r) => setTimeout(r, Math.max(0, t0 + ((i + 600) / 6000) * 1000 - performance.now())));
  }
  const published = performance.now();
  const end = Date.now() + 300000;
  while (acked < bodies.length && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  const brokerCpu = cpuOf(brokerPids) - brokerCpu0, cpu = process.cpuUsage(cpu0);
  await new Promise<void>((r) => client.disconnect(() => r()));
  await pub.close();
  return {
    messages: bodies.length, received: got, publish_ms: Math.round(published - t0), after_last_published_ms: Math.round(lastAck - published),
    msg_per_s: Math.round(bodies.length / (lastAck - t0) * 1000), broker_cpu_s: Math.round(brokerCpu * 10) / 10,
    consumer_and_publisher_cpu_s: Math.round((cpu.user + cpu.system) / 1e5) / 10,
  };
}

async function stompRun(build: string, port: number, login: { login: string; passcode: string }, brokerPids: number[] = []): Promise<Record<string, unknown>> {
  const { publisher } = await import('./latency.js');
  const { spawn } = await import('node:child_process');
  const { readFileSync } = await import('node:fs');
  const base = await mkdtemp(join(tmpdir(), 'rproxy-intake-stomp-'));
  await mkdir(join(base, 'inventory'), { recursive: true });
  await writeFile(join(base, 'inventory', 'hosts.yml'), 'all:\n  children:\n    proxies:\n      hosts: {}\n');
  await writeFile(join(base, 'config.yml'), ['cloud_domain: apps.example.com', `inventory_dir: ${join(base, 'inventory')}`, `state_dir: ${join(base, 'var')}`,
    'tls_require_valid: false', 'ansible:', `  playbook: ${resolve(import.meta.dirname, '../../ansible/site.yml')}`, '  warm: false',
    'stomp:', `  brokers: [{host: 127.0.0.1, port: ${port}}]`, '  heartbeat_ms: 2000', `  login: ${login.login}`, `  passcode: ${login.passcode}`,
    'metrics:', '  listen: 127.0.0.1:0', ''].join('\n'));
  const flags = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  const proc = spawn(process.execPath, [...flags, join(build, 'listener', 'main.js'), '--config', join(base, 'config.yml')], { stdio: ['ignore', 'pipe', 'inherit'] });
  let buf = '', acked = 0, connected = false, firstBatch = 0, lastBatch = 0;
  const applyMs: number[] = [];
  const sizes: number[] = [];
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i); buf = buf.slice(i + 1);
      if (line.includes('"broker_connected"')) connected = true;
      if (!line.includes('"event":"batch"')) continue;
      const b = JSON.parse(line) as { acked: number; apply_ms: number; messages: number };
      acked += b.acked; applyMs.push(b.apply_ms); sizes.push(b.messages);
      firstBatch ||= performance.now(); lastBatch = performance.now();
    }
  });
  const until = async (f: () => boolean, ms: number) => { const end = Date.now() + ms; while (!f()) { if (Date.now() > end) throw new Error('timeout'); await new Promise((r) => setTimeout(r, 50)); } };
  await until(() => connected, 30000);
  const pub = await publisher(port);
  const bodies: string[] = JSON.parse(spawnSync(process.execPath, ['-e', `${CHILD_EV}; const o=[]; for (let i=0;i<${APPS};i++) for (const k of [0,1,2]) o.push(ev(i,k)); process.stdout.write(JSON.stringify(o))`], { encoding: 'utf8', maxBuffer: 64 << 20 }).stdout);
  // CPU seconds of the broker's processes (utime + stime) and of the listener, from the first publish to the last ack
  const cpuOf = (pids: number[]) => pids.reduce((a, p) => { try { const f = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' '); return a + Number(f[11]) + Number(f[12]); } catch { return a; } }, 0) / 100;
  const brokerCpu0 = cpuOf(brokerPids), listenerCpu0 = cpuOf([proc.pid!]);
  const t0 = performance.now();
  for (let i = 0; i < bodies.length; i += 600) {
    for (const b of bodies.slice(i, i + 600)) pub.send(b);
    await new Promise((r) => setTimeout(r, Math.max(0, t0 + ((i + 600) / 6000) * 1000 - performance.now())));
  }
  const published = performance.now();
  await until(() => acked >= bodies.length, 300000);
  const brokerCpu = cpuOf(brokerPids) - brokerCpu0, listenerCpu = cpuOf([proc.pid!]) - listenerCpu0;
  const status = readFileSync(`/proc/${proc.pid}/status`, 'utf8');
  const kib = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  proc.kill('SIGTERM');
  await new Promise((r) => proc.on('exit', r));
  await pub.close();
  await rm(base, { recursive: true, force: true });
  applyMs.sort((a, b) => a - b);
  return {
    messages: bodies.length, publish_ms: Math.round(published - t0), intake_ms: Math.round(lastBatch - t0),
    after_last_published_ms: Math.round(lastBatch - published), msg_per_s: Math.round(bodies.length / (lastBatch - t0) * 1000),
    batches: applyMs.length, batch_messages_max: Math.max(...sizes),
    broker_cpu_s: Math.round(brokerCpu * 10) / 10, listener_cpu_s: Math.round(listenerCpu * 10) / 10,
    apply_ms: { p50: applyMs[Math.floor(applyMs.length / 2)], p90: applyMs[Math.floor(applyMs.length * 0.9)], max: applyMs[applyMs.length - 1] },
    rss_mib: Math.round(kib('VmRSS') / 1024), vmhwm_mib: Math.round(kib('VmHWM') / 1024),
  };
}

const intake = child('intake', join(dir, 'intake-var'));
if (process.env.BENCH_ONLY === 'intake') { console.log(JSON.stringify(intake, null, 2)); await rm(dir, { recursive: true, force: true }); process.exit(0); }
const bulk = child('bulk');
const events = child('events');
const du = spawnSync('du', ['-sb', join(stateDir, 'routes')], { encoding: 'utf8' }).stdout.split('\t')[0];
const py = spawnSync('/usr/bin/python3', ['-c', PY, resolve(import.meta.dirname, '../../roles/nginx_rproxy/action_plugins/nginx_rproxy_routes.py'), stateDir, join(dir, 'single')], { encoding: 'utf8' });
if (py.status !== 0) throw new Error(`python: ${py.stderr}`);
const plugin = JSON.parse(py.stdout) as Record<string, unknown>;
await rm(dir, { recursive: true, force: true });

const result = { date: new Date().toISOString(), node: process.version, apps: APPS, routes_dir_bytes: Number(du), ...intake, ...bulk, ...events, plugin_load_state: plugin };
const outDir = resolve(process.cwd(), 'bench-results');
await mkdir(outDir, { recursive: true });
await writeFile(join(outDir, 'state-scale.json'), JSON.stringify(result, null, 2) + '\n');
console.log(JSON.stringify(result, null, 2));
