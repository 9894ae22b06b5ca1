/**
 * State-at-scale benchmark (not a test), issue 10: 10,000 apps published as 30,000 messages (create_application,
 * add_public_endpoint, add_alias per app) and applied through the StateStore in listener-sized batches (500),
 * in a child process running the built code (dist/, no tsx) so its RSS is the product's:
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
const dist = resolve(import.meta.dirname, '../../dist');
const dir = await mkdtemp(join(tmpdir(), 'rproxy-state-scale-'));
const stateDir = join(dir, 'var');

const CHILD = `
import { StateStore } from '${dist}/vars/store.js';
import { defaultConfig } from '${dist}/config.js';
import { runnerPorts } from '${dist}/runner/ports.js';
import { renderVars } from '${dist}/vars/emit.js';
import { writeFileSync, mkdirSync } from 'node:fs';
const [mode, stateDir, appsArg, singleDir] = process.argv.slice(2);
const APPS = Number(appsArg);
const config = { ...defaultConfig(), inventory_dir: stateDir + '/../inventory', state_dir: stateDir, tls_require_valid: false };
const now = () => Number(process.hrtime.bigint()) / 1e6;
const mib = (b) => Math.round(b / 1048576);
const ev = (i, kind) => {
  const app = 'app' + i, ns = 'ns' + (i % 1000), a = '10.' + ((i >> 16) & 255) + '.' + ((i >> 8) & 255) + '.' + (i & 255);
  if (kind === 0) return '---\\n:action: :create_application\\n:app_name: ' + app + '\\n:namespace: ' + ns + '\\n:scalable: true\\n:ha: false\\n';
  if (kind === 1) return '---\\n:action: :add_public_endpoint\\n:app_name: ' + app + '\\n:namespace: ' + ns + '\\n:gear_id: 5a' + i.toString(16).padStart(22, '0') +
    '\\n:public_port_name: php\\n:public_address: ' + a + '\\n:public_port: ' + (30000 + (i % 30000)) + '\\n:protocols:\\n- http\\n:types:\\n- web_framework\\n:mappings:\\n- frontend: ""\\n  backend: ""\\n';
  return '---\\n:action: :add_alias\\n:app_name: ' + app + '\\n:namespace: ' + ns + '\\n:alias: ' + (kind === 2 ? 'www' : 'x' + kind) + '.' + app + '.example.com\\n';
};
const out = {};
if (mode === 'bulk') {
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
const child = (mode: string): Record<string, unknown> => {
  const r = spawnSync(process.execPath, ['--expose-gc', childFile, mode, stateDir, String(APPS), join(dir, 'single')], { encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.status !== 0) throw new Error(`${mode} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
};
const bulk = child('bulk');
const events = child('events');
const du = spawnSync('du', ['-sb', join(stateDir, 'routes')], { encoding: 'utf8' }).stdout.split('\t')[0];
const py = spawnSync('/usr/bin/python3', ['-c', PY, resolve(import.meta.dirname, '../../roles/nginx_rproxy/action_plugins/nginx_rproxy_routes.py'), stateDir, join(dir, 'single')], { encoding: 'utf8' });
if (py.status !== 0) throw new Error(`python: ${py.stderr}`);
const plugin = JSON.parse(py.stdout) as Record<string, unknown>;
await rm(dir, { recursive: true, force: true });

const result = { date: new Date().toISOString(), node: process.version, apps: APPS, routes_dir_bytes: Number(du), ...bulk, ...events, plugin_load_state: plugin };
const outDir = resolve(process.cwd(), 'bench-results');
await mkdir(outDir, { recursive: true });
await writeFile(join(outDir, 'state-scale.json'), JSON.stringify(result, null, 2) + '\n');
console.log(JSON.stringify(result, null, 2));
