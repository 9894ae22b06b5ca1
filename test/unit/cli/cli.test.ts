/** The built binary (dist/cli/main.js): commands, help, exit codes, config selection. */
import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, SAMPLES_PATH, samplesDocs, tmpConfig, psych } from '../../fixtures/helpers.js';

const BIN = join(REPO, 'dist/cli/main.js');

test.before(() => {
  // `npm run test:unit` builds first; build here only when run alone on a fresh checkout.
  if (!existsSync(BIN)) execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: REPO, stdio: 'inherit' });
});

interface Run { code: number; stdout: string; stderr: string }
function cli(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? REPO, env: { ...process.env, PAAS_RPROXY_CONFIG: '', ...opts.env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    p.stdin.end(opts.input ?? '');
  });
}

async function setup(): Promise<{ dir: string; config: string; inventory: string }> {
  const cfg = await tmpConfig();
  const config = join(cfg.dir, 'config.yml');
  await writeFile(config, 'inventory_dir: ./inventory\nstate_dir: ./var\n');
  return { dir: cfg.dir, config, inventory: cfg.inventory_dir };
}

test('the binary has a node shebang and is what package.json names', async (t) => {
  t.true((await readFile(BIN, 'utf8')).startsWith('#!/usr/bin/env node\n'));
  t.is(JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')).bin['paas-rproxy'], 'dist/cli/main.js');
});

test('--help everywhere exits 0; no command or an unknown one is a usage error (2)', async (t) => {
  for (const args of [['--help'], ['apply', '--help'], ['routes', '--help'], ['-h']]) {
    const r = await cli(args);
    t.is(r.code, 0, args.join(' '));
    t.regex(r.stdout, /--config/);
    t.regex(r.stdout, /--inventory/);
  }
  t.regex((await cli(['--help'])).stdout, /apply \[file\][\s\S]*routes/);
  const none = await cli([]);
  t.is(none.code, 2);
  t.regex(none.stderr, /Name a command/);
  const unknown = await cli(['frobnicate']);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /Unknown argument: frobnicate/);
  t.is((await cli(['routes', '--no-such-flag'])).code, 2);
});

test('apply FILE: counts, apps changed, exit 0; applying again changes nothing', async (t) => {
  const s = await setup();
  const upToSsl = join(s.dir, 'part.yml');
  await writeFile(upToSsl, samplesDocs().slice(0, 11).join(''));
  const r = await cli(['apply', upToSsl, '--config', s.config]);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, 'applied 5, unchanged 6, rejected 0\napps changed: shop-acme\n');
  const again = await cli(['apply', upToSsl, '--config', s.config]);
  t.is(again.stdout, 'applied 0, unchanged 11, rejected 0\napps changed: (none)\n');
  const full = await cli(['apply', SAMPLES_PATH, '--config', s.config]);
  t.is(full.code, 0);
  t.is(full.stdout, 'applied 4, unchanged 12, rejected 0\napps changed: shop-acme\n', 'the rest of the samples removes the app');
});

test('apply - reads stdin; --json prints the result; a rejection exits 3 with the reason on stderr', async (t) => {
  const s = await setup();
  const bad = psych({ action: ':add_alias', app_name: 'shop', namespace: 'acme', alias: "'a b'" });
  const good = psych({ action: ':add_alias', app_name: 'shop', namespace: 'acme', alias: 'ok.example.org' });
  const r = await cli(['apply', '-', '--config', s.config], { input: good + bad });
  t.is(r.code, 3);
  t.is(r.stdout, 'applied 1, unchanged 0, rejected 1\napps changed: shop-acme\n');
  t.is(r.stderr, 'rejected document #2: add_alias: alias "a b" is not a DNS host name\n');
  const log = (await readFile(join(s.dir, 'var/rejects.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
  t.is(log.length, 1);
  t.is(log[0].source, 'stdin');
  const j = await cli(['apply', '--json', '--config', s.config], { input: good });
  t.is(j.code, 0);
  t.deepEqual(JSON.parse(j.stdout), { applied: 0, unchanged: 1, rejected: [], changedApps: [], wroteVars: false });
});

test('routes: table and --json sorted by fqdn', async (t) => {
  const s = await setup();
  const empty = await cli(['routes', '--config', s.config]);
  t.is(empty.code, 0);
  t.is(empty.stdout, 'no applications\n');
  t.deepEqual(JSON.parse((await cli(['routes', '--json', '--config', s.config])).stdout), []);
  await cli(['apply', '-', '--config', s.config], {
    input: samplesDocs().slice(0, 11).join('') + psych({ action: ':create_application', app_name: 'blog', namespace: 'acme', scalable: 'false', ha: 'false' }),
  });
  const j = await cli(['routes', '--json', '--config', s.config]);
  t.is(j.code, 0);
  t.deepEqual(JSON.parse(j.stdout), [
    { app: 'blog', namespace: 'acme', fqdn: 'blog-acme.apps.example.com', aliases: [], backends: [], websocket: false, tls: [] },
    {
      app: 'shop', namespace: 'acme', fqdn: 'shop-acme.apps.example.com', aliases: ['www.example.com'],
      backends: ['198.51.100.31:35531', '198.51.100.32:35536'], websocket: true, tls: ['www.example.com'],
    },
  ]);
  const table = await cli(['routes', '--config', s.config]);
  t.regex(table.stdout, /^blog-acme\.apps\.example\.com\n {2}backends: \(none: answers 503\)\nshop-acme\.apps\.example\.com {2}\(websocket, tls: www\.example\.com\)\n/);
});

test('config selection: PAAS_RPROXY_CONFIG, --inventory override, unknown config key exits 2 naming it', async (t) => {
  const s = await setup();
  const part = join(s.dir, 'part.yml');
  await writeFile(part, samplesDocs().slice(0, 11).join(''));
  const r = await cli(['apply', part], { env: { PAAS_RPROXY_CONFIG: s.config } });
  t.is(r.code, 0, r.stderr);
  t.true((await stat(join(s.dir, 'var/routes/index.json'))).isFile());
  t.true((await stat(join(s.dir, 'var/routes/apps/shop-acme.json'))).isFile());
  t.false(existsSync(s.inventory), 'nothing is generated into the inventory');
  const other = join(s.dir, 'other-state');
  const o = await cli(['apply', part, '--state-dir', other], { env: { PAAS_RPROXY_CONFIG: s.config } });
  t.is(o.code, 0);
  t.true((await stat(join(other, 'routes/index.json'))).isFile());
  await writeFile(s.config, 'inventory_dir: ./inventory\nrunner:\n  quiet: 1\n');
  const bad = await cli(['routes', '--config', s.config]);
  t.is(bad.code, 2);
  t.is(bad.stderr, 'paas-rproxy: config: unknown key "runner.quiet" (see config.example.yml for the valid keys)\n');
  const missing = await cli(['routes', '--config', join(s.dir, 'nope.yml')]);
  t.is(missing.code, 2);
  t.regex(missing.stderr, /cannot read .*nope\.yml: ENOENT/);
  const noFile = await cli(['apply', join(s.dir, 'nope.yml'), '--config', s.config.replace('config.yml', 'c2.yml')]);
  t.is(noFile.code, 2);
});

test('without a config the CLI uses the production paths, never the current directory', async (t) => {
  const cwd = await mkdtemp(join(tmpdir(), 'rproxy-cwd-'));
  const hadStateDir = existsSync('/var/lib/paas-rproxy');
  try {
    const r = await cli(['routes', '--json'], { cwd, env: { PAAS_RPROXY_CONFIG: '' } });
    t.is(r.code, 0, r.stderr);
    t.deepEqual(await readdir(cwd), [], 'nothing written where the command ran');
    // a command that needs the inventory says which setting names it
    const s = await cli(['sync'], { cwd, env: { PAAS_RPROXY_CONFIG: '' } });
    if (!existsSync('/etc/paas-rproxy/inventory')) {
      t.is(s.code, 2);
      t.regex(s.stderr, /the inventory \/etc\/paas-rproxy\/inventory does not exist: pass --inventory DIR, or set inventory_dir/);
    }
    t.deepEqual(await readdir(cwd), []);
  } finally {
    if (!hadStateDir) await rm('/var/lib/paas-rproxy', { recursive: true, force: true });
  }
});

test('status is a health check: exit 5 with the reasons when no listener ran; --no-listener for CLI-only use', async (t) => {
  const s = await setup();
  const r = await cli(['status', '--json', '--config', s.config]);
  t.is(r.code, 5, r.stderr);
  const j = JSON.parse(r.stdout) as { healthy: boolean; problems: string[] };
  t.false(j.healthy);
  t.deepEqual(j.problems, [`the listener never ran with this state_dir (${join(s.dir, 'var')})`]);
  const text = await cli(['status', '--config', s.config]);
  t.is(text.code, 5);
  t.regex(text.stdout, /^health: UNHEALTHY: the listener never ran/);
  const ok = await cli(['status', '--no-listener', '--config', s.config]);
  t.is(ok.code, 0, ok.stderr);
  t.regex(ok.stdout, /^health: ok$/m);
  // a listener that ran and is gone, or runs without its broker (the status file it writes)
  const listener = { pid: 999999999, startedAt: '2026-01-01T00:00:00Z', connected: true, broker: '127.0.0.1:61613', destination: '/queue/q', lastMessageAt: null, messages: 0 };
  const statusFile = (l: typeof listener) => writeFile(join(s.dir, 'var/status.json'), JSON.stringify({ schema: 1, updatedAt: '', listener: l, pendingEvents: 0, pendingApps: {}, backoff: {}, lastSuccessByHost: {}, runs: [] }));
  await statusFile(listener);
  const gone = await cli(['status', '--json', '--config', s.config]);
  t.is(gone.code, 5);
  t.deepEqual(JSON.parse(gone.stdout).problems, ['the listener is not running (pid 999999999 is gone)']);
  await statusFile({ ...listener, pid: process.pid, connected: false });
  const cut = await cli(['status', '--json', '--config', s.config]);
  t.is(cut.code, 5);
  t.deepEqual(JSON.parse(cut.stdout).problems, ['the listener is not connected to the broker']);
  await statusFile({ ...listener, pid: process.pid });
  t.is((await cli(['status', '--config', s.config])).code, 0, 'running and connected: healthy');
});

test('sync --json prints the result also when the run fails (exit 4)', async (t) => {
  const s = await setup();
  await mkdir(s.inventory, { recursive: true });
  await writeFile(join(s.inventory, 'hosts.yml'), 'all:\n  children:\n    proxies:\n      hosts:\n        rp1:\n');
  await writeFile(s.config, 'inventory_dir: ./inventory\nstate_dir: ./var\nansible:\n  command: /bin/false\n');
  const r = await cli(['sync', '--json', '--config', s.config]);
  t.is(r.code, 4, r.stderr);
  const j = JSON.parse(r.stdout) as { ok: boolean; lagging: Record<string, unknown>; runs: Array<{ result: string }>; error: string };
  t.false(j.ok);
  t.deepEqual(Object.keys(j.lagging), ['rp1']);
  t.is(j.runs[0]!.result, 'failed');
  t.regex(j.error, /playbook run failed/);
  t.regex(r.stderr, /paas-rproxy: playbook run failed/);
});

test('migrate: --check says what would move and changes nothing; then the state moves out of the inventory', async (t) => {
  const s = await setup();
  const part = join(s.dir, 'part.yml');
  await writeFile(part, samplesDocs().slice(0, 11).join(''));
  t.is((await cli(['apply', part, '--config', s.config])).code, 0);
  // the layout of paas-rproxy 0.1: the state inside the inventory
  const gv = join(s.inventory, 'group_vars/proxies');
  await mkdir(gv, { recursive: true });
  const appFile = join(s.dir, 'var/routes/apps/shop-acme.json');
  const appJson = await readFile(appFile, 'utf8');
  const json = JSON.stringify({ nginx_rproxy_routes_schema: 2, nginx_rproxy_apps: { 'shop-acme': JSON.parse(appJson) } });
  await writeFile(join(gv, 'rproxy_routes.json'), json.replaceAll('"tls/', '".rproxy_tls/'));
  await cp(join(s.dir, 'var/routes/tls'), join(s.inventory, '.rproxy_tls'), { recursive: true });
  await rm(join(s.dir, 'var/routes'), { recursive: true });
  const check = await cli(['migrate', '--check', '--json', '--config', s.config]);
  t.is(check.code, 0, check.stderr);
  t.is(JSON.parse(check.stdout).changed, true);
  t.true(existsSync(join(gv, 'rproxy_routes.json')), '--check moves nothing');
  const m = await cli(['migrate', '--config', s.config]);
  t.is(m.code, 0, m.stderr);
  t.regex(m.stdout, /^moved 1 app\(s\) from .*group_vars\/proxies\/rproxy_routes\.json into .*var\/routes\/index\.json/);
  t.false(existsSync(join(gv, 'rproxy_routes.json')));
  t.false(existsSync(join(s.inventory, '.rproxy_tls')));
  t.is(await readFile(appFile, 'utf8'), appJson);
  const again = await cli(['migrate', '--json', '--config', s.config]);
  t.is(JSON.parse(again.stdout).changed, false);
});

test('parallel CLI applies (separate processes) are serialized by the lock: nothing lost', async (t) => {
  const s = await setup();
  const runs = await Promise.all(Array.from({ length: 6 }, (_, i) =>
    cli(['apply', '-', '--config', s.config], { input: psych({ action: ':add_alias', app_name: `app${i}`, namespace: 'acme', alias: `a${i}.example.org` }) })));
  t.true(runs.every((r) => r.code === 0), runs.map((r) => r.stderr).join(''));
  const j = JSON.parse((await cli(['routes', '--json', '--config', s.config])).stdout) as unknown[];
  t.is(j.length, 6);
});
