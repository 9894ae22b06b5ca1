/**
 * Generator benchmark (not a test): a synthetic Psych-style stream of 100,000 events over 10,000 apps.
 * Prints events/s for parse+validate+reduce, the time to write the state (index.json + one file per app) for 10,000 apps,
 * peak RSS, and how long Ansible takes to load that vars file (`ansible localhost -m debug` with and without it;
 * BENCH_ANSIBLE=0 skips that); writes bench-results/generator.json.
 * Targets (2-core machine): ≥ 20,000 ev/s, write ≤ 300 ms, RSS ≤ 200 MiB.
 */
import { copyFile, mkdtemp, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { closeSync, existsSync, openSync, writeSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { iterateSpiStream } from '../../generator/src/spi/parse.js';
import { reduce, commit } from '../../generator/src/state/reduce.js';
import { cloneState, emptyState, type ReduceContext } from '../../generator/src/state/types.js';
import { writeState } from '../../generator/src/vars/write.js';
import { renderVarsChunks } from '../../generator/src/vars/emit.js';
import { singleFilePath } from '../../generator/src/vars/paths.js';
import { writeFileAtomic } from '../../generator/src/io/atomic.js';
import { defaultConfig } from '../../generator/src/config.js';

const APPS = Number(process.env.BENCH_APPS ?? 10_000);
const EVENTS_PER_APP = 10;
const SSL_EVERY = 100; // one app in 100 gets a certificate (add_ssl is the costly event: X.509 + key match)

const samples = await readFile(resolve(import.meta.dirname, '../fixtures/spi/samples.yml'), 'utf8');
const sslDoc = samples.split(/^---$/m).find((d) => d.includes(':action: :add_ssl'))!;
const sslBody = sslDoc.slice(sslDoc.indexOf(':ssl:'));

function endpoint(action: string, app: string, ns: string, gear: number, addr: string, port: number, types: string, extra = ''): string {
  return `---\n:action: :${action}\n:app_name: ${app}\n:namespace: ${ns}\n:gear_id: 5a${gear.toString(16).padStart(22, '0')}\n` +
    `:public_port_name: php\n:public_address: ${addr}\n:public_port: ${port}\n:protocols:\n- http\n- ws\n:types:\n- ${types}\n` +
    `:mappings:\n- frontend: ''\n  backend: ''\n- frontend: "/health"\n  backend: ''\n${extra}`;
}

/** Writes the synthetic stream to `file` app by app (the harness must not hold 100,000 strings itself). */
function writeStream(file: string): number {
  const fd = openSync(file, 'w');
  let events = 0;
  for (let i = 0; i < APPS; i++) {
    const app = `app${i}`;
    const ns = `ns${i % 1000}`;
    const a = `198.51.${(i >> 8) & 255}.${i & 255}`;
    const base = 30000 + (i % 30000);
    const ev: string[] = [
      `---\n:action: :create_application\n:app_name: ${app}\n:namespace: ${ns}\n:scalable: true\n:ha: false\n`,
      endpoint('add_public_endpoint', app, ns, i * 4, a, base, 'web_framework'),
      endpoint('add_gear', app, ns, i * 4, a, base, 'web_framework', ':deprecated: use add_public_endpoint\n'),
      endpoint('add_public_endpoint', app, ns, i * 4 + 1, a, base + 1, 'web_framework'),
      endpoint('add_public_endpoint', app, ns, i * 4 + 2, a, base + 2, 'load_balancer'),
      endpoint('add_public_endpoint', app, ns, i * 4 + 3, a, base + 3, 'database'),
      `---\n:action: :add_alias\n:app_name: ${app}\n:namespace: ${ns}\n:alias: www.${app}.example.com\n`,
      `---\n:action: :remove_public_endpoint\n:app_name: ${app}\n:namespace: ${ns}\n:gear_id: 5a${(i * 4 + 1).toString(16).padStart(22, '0')}\n:public_address: ${a}\n:public_port: ${base + 1}\n`,
      endpoint('add_public_endpoint', app, ns, i * 4 + 1, a, base + 1, 'web_framework'),
      i % SSL_EVERY === 0
        ? `---\n:action: :add_ssl\n:app_name: ${app}\n:namespace: ${ns}\n:alias: www.${app}.example.com\n${sslBody}`
        : `---\n:action: :add_alias\n:app_name: ${app}\n:namespace: ${ns}\n:alias: api.${app}.example.com\n`,
    ];
    writeSync(fd, ev.join(''));
    events += ev.length;
  }
  closeSync(fd);
  return events;
}

const dir = await mkdtemp(join(tmpdir(), 'rproxy-bench-'));
const streamFile = join(dir, 'stream.yml');
const events = writeStream(streamFile);
// What `paas-rproxy apply FILE` does: read the whole file, then parse and reduce document by document.
let text: string | null = await readFile(streamFile, 'utf8');
const streamBytes = Buffer.byteLength(text);
if (events !== APPS * EVENTS_PER_APP) throw new Error('generator bug');

const ctx: ReduceContext = { cloudDomain: 'apps.example.com', routedTypes: new Set(['web_framework']), limits: defaultConfig().limits, tlsRequireValid: false, now: Date.now };
// Parse (split + safe load + validate) and reduce one document at a time, as a replay does.
const t0 = process.hrtime.bigint();
const state = emptyState();
let rejected = 0;
let firstReject: unknown;
let parseNs = 0n;
let tp = process.hrtime.bigint();
for (const d of iterateSpiStream(text!, { maxBodyBytes: 1048576 })) {
  const tr = process.hrtime.bigint();
  parseNs += tr - tp;
  if (!d.ok) { rejected++; firstReject ??= d; tp = process.hrtime.bigint(); continue; }
  const out = reduce(state, d.event, ctx);
  if (out.status === 'rejected') { rejected++; firstReject ??= out; }
  commit(state, out);
  tp = process.hrtime.bigint();
}
const t2 = process.hrtime.bigint();
const t1 = t0 + parseNs;
text = null; // done with the input
if (rejected > 0) throw new Error(`${rejected} synthetic events rejected: ${JSON.stringify(firstReject)}`);

const ms = (a: bigint, b: bigint) => Number(b - a) / 1e6;
const config = { ...defaultConfig(), inventory_dir: join(dir, 'inventory'), state_dir: join(dir, 'var') };
await mkdir(config.inventory_dir, { recursive: true });
// The single file of schema 2 (render 10,000 app entries + atomic write; what Ansible loaded before issue 10, kept
// for the Ansible comparison below), then the full first write of the current layout with TLS.
const varsFile = join(dir, 'rproxy_routes.json');
const v0 = process.hrtime.bigint();
await mkdir(dirname(singleFilePath(config)), { recursive: true });
await writeFileAtomic(varsFile, renderVarsChunks(state.apps.values(), config.cloud_domain));
const v1 = process.hrtime.bigint();
const varsBytes = (await stat(varsFile)).size;
const w0 = process.hrtime.bigint();
const first = await writeState(config, emptyState(), state, null);
const w1 = process.hrtime.bigint();
// One app changes: the common case for the listener (one app file and the index rewritten).
const next = cloneState(state);
const change = reduce(next, { action: 'add_alias', app_name: 'app1', namespace: 'ns1', alias: 'new.app1.example.com' }, ctx);
commit(next, change);
const w2 = process.hrtime.bigint();
await writeState(config, state, next, first.disk);
const w3 = process.hrtime.bigint();

// What every ansible-playbook start pays for the state: an ad-hoc debug of the apps' count, with the vars file
// in group_vars/all, against the same inventory without it (best of 2 each).
let ansibleLoad: { with_vars_ms: number; without_vars_ms: number; apps_seen: number } | null = null;
if (process.env.BENCH_ANSIBLE !== '0' && spawnSync('ansible', ['--version']).status === 0) {
  const inv = join(dir, 'ansible-inventory');
  await mkdir(join(inv, 'group_vars/all'), { recursive: true });
  await writeFile(join(inv, 'hosts.yml'), 'all:\n  hosts:\n    localhost:\n      ansible_connection: local\n');
  const adhoc = (msg: string): { ms: number; out: string } => {
    const a0 = process.hrtime.bigint();
    const r = spawnSync('ansible', ['localhost', '-i', inv, '-m', 'ansible.builtin.debug', '-a', `msg=${msg}`, '-o'],
      { encoding: 'utf8', env: { ...process.env, ANSIBLE_NOCOLOR: '1', ANSIBLE_LOCALHOST_WARNING: '0' } });
    if (r.status !== 0) throw new Error(`ansible failed: ${r.stdout}${r.stderr}`);
    return { ms: ms(a0, process.hrtime.bigint()), out: r.stdout };
  };
  const best = (msg: string) => { const a = adhoc(msg); const b = adhoc(msg); return { ms: Math.min(a.ms, b.ms), out: b.out }; };
  const without = best('none');
  await copyFile(varsFile, join(inv, 'group_vars/all', 'rproxy_routes.json'));
  const withVars = best('{{ nginx_rproxy_apps | length }}');
  ansibleLoad = { with_vars_ms: Math.round(withVars.ms), without_vars_ms: Math.round(without.ms), apps_seen: Number(/"msg": "(\d+)"/.exec(withVars.out)?.[1] ?? -1) };
}

// The product end to end: the built CLI applies the same stream in a fresh process (no tsx loader in it);
// a preload prints the child's own peak RSS when it exits.
const cli = resolve(import.meta.dirname, '../../dist/cli/main.js');
let cliRun: { wall_ms: number; peak_rss_mib: number; applied: number; unchanged: number; rejected: number } | null = null;
if (existsSync(cli)) {
  const probe = join(dir, 'rss-probe.mjs');
  await writeFile(probe, "import { writeSync } from 'node:fs';\nprocess.on('exit', () => writeSync(2, `\\nBENCH_MAXRSS_KIB=${process.resourceUsage().maxRSS}\\n`));\n");
  const cfg = join(dir, 'config.yml');
  // the samples' certificate (www.example.com) stands in for every app's alias: names are not what this measures
  await writeFile(cfg, `inventory_dir: ${join(dir, 'cli-inventory')}\nstate_dir: ${join(dir, 'cli-var')}\ntls_require_valid: false\n`);
  const c0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, ['--import', probe, cli, 'apply', streamFile, '--json', '--config', cfg], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const c1 = process.hrtime.bigint();
  const rss = /BENCH_MAXRSS_KIB=(\d+)/.exec(r.stderr);
  if (r.status !== 0 || !rss) throw new Error(`CLI apply failed (${r.status}): ${r.stderr.slice(0, 2000)}`);
  const out = JSON.parse(r.stdout) as { applied: number; unchanged: number; rejected: unknown[] };
  cliRun = { wall_ms: Math.round(ms(c0, c1)), peak_rss_mib: Math.round(Number(rss[1]) / 1024), applied: out.applied, unchanged: out.unchanged, rejected: out.rejected.length };
}
await rm(dir, { recursive: true, force: true });

const parseMs = ms(t0, t1);
const reduceMs = ms(t1, t2);
const result = {
  date: new Date().toISOString(),
  node: process.version,
  apps: APPS,
  events,
  stream_bytes: streamBytes,
  parse_validate_ms: Math.round(parseMs),
  reduce_ms: Math.round(reduceMs),
  events_per_s: Math.round(events / ((parseMs + reduceMs) / 1000)),
  write_vars_ms: Math.round(ms(v0, v1)),
  vars_bytes: varsBytes,
  write_full_ms: Math.round(ms(w0, w1)),
  tls_files_written: first.tlsFilesWritten,
  write_after_one_change_ms: Math.round(ms(w2, w3)),
  /** peak RSS of `paas-rproxy apply` (built CLI, own process) on the whole stream: the product's figure */
  peak_rss_mib: cliRun?.peak_rss_mib ?? null,
  /** peak RSS of this harness process (tsx loader ≈ 40 MiB, plus the harness's own copies) */
  harness_peak_rss_mib: Math.round(process.resourceUsage().maxRSS / 1024),
  cli_apply: cliRun,
  /** ansible localhost -m debug: inventory with the 10,000-app vars file vs without it */
  ansible_load: ansibleLoad,
  targets: { events_per_s: 20000, write_ms: 300, peak_rss_mib: 200 },
};
const outDir = resolve(process.cwd(), 'bench-results');
await mkdir(outDir, { recursive: true });
await writeFile(join(outDir, 'generator.json'), JSON.stringify(result, null, 2) + '\n');
console.log(`events: ${events} over ${APPS} apps (${(result.stream_bytes / 1048576).toFixed(1)} MiB of YAML)`);
console.log(`parse+validate+reduce: ${result.events_per_s} events/s (parse+validate ${result.parse_validate_ms} ms, reduce ${result.reduce_ms} ms)  target ≥ 20000`);
console.log(`single-file render, ${APPS} apps: ${result.write_vars_ms} ms (render + atomic write of ${(varsBytes / 1048576).toFixed(1)} MiB, schema 2)  target ≤ 300`);
console.log(`  first full write (${APPS} app files + index) with ${result.tls_files_written} TLS files: ${result.write_full_ms} ms; after a one-app change: ${result.write_after_one_change_ms} ms`);
if (cliRun) {
  console.log(`paas-rproxy apply (built CLI, whole stream incl. writes): ${cliRun.wall_ms} ms, applied ${cliRun.applied}, unchanged ${cliRun.unchanged}, rejected ${cliRun.rejected}`);
  console.log(`peak RSS: ${cliRun.peak_rss_mib} MiB (CLI process)  target ≤ 200; harness under tsx: ${result.harness_peak_rss_mib} MiB`);
} else {
  console.log(`peak RSS: harness only ${result.harness_peak_rss_mib} MiB (dist/cli/main.js missing: run npm run build)`);
}
if (ansibleLoad) {
  console.log(`ansible localhost -m debug with the ${ansibleLoad.apps_seen}-app vars file: ${ansibleLoad.with_vars_ms} ms; without it: ${ansibleLoad.without_vars_ms} ms`);
}
console.log(`written: bench-results/generator.json`);
