// The integration tests' view of the lab (test/lab/lab.sh): bring it up once if it is not up (and take it
// down after the test run only when the tests brought it up), and drive it like an operator would:
// requests from the client netns, ssh to the proxies, the product's CLI against .lab/config.yml.
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import readline from 'node:readline';

export const LAB_DIR = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(LAB_DIR, '../..');
export const LAB = path.join(REPO, '.lab');
export const LAB_SH = path.join(LAB_DIR, 'lab.sh');

/**
 * The lab profile the tests run on (test/lab/lab.sh, "Profiles"): PAAS_RPROXY_LAB_PROFILE, default "default".
 * ensureLab() brings that profile up (a running lab of the other profile is replaced).
 */
export const PROFILE: 'default' | 'prod' = process.env.PAAS_RPROXY_LAB_PROFILE === 'prod' ? 'prod' : 'default';
interface Profile {
  cloudDomain: string; vips: readonly [string, string, ...string[]]; proxies: Record<string, string>; proxyIf: string;
  sshUser: string; config: string; inventory: string; stateDir: string; listenerUser: string; cli: string;
}
const P: Profile = PROFILE === 'prod'
  ? {
    cloudDomain: 'paas.example.net', vips: ['198.51.100.201', '198.51.100.202', '198.51.100.203'],
    proxies: { rp1: '198.51.100.11', rp2: '198.51.100.12', rp3: '198.51.100.13' }, proxyIf: 'ens4', sshUser: 'rpadmin',
    config: '/etc/paas-rproxy/config.yml', inventory: '/etc/paas-rproxy/inventory', stateDir: '/var/lib/paas-rproxy',
    listenerUser: 'paas-rproxy', cli: '/opt/paas-rproxy/dist/cli/main.js',
  }
  : {
    cloudDomain: 'apps.example.com', vips: ['198.51.100.201', '198.51.100.202'],
    proxies: { rp1: '198.51.100.11', rp2: '198.51.100.12' }, proxyIf: 'eth0', sshUser: 'root',
    config: path.join(LAB, 'config.yml'), inventory: path.join(LAB, 'inventory'), stateDir: path.join(LAB, 'var'),
    listenerUser: 'root', cli: path.join(REPO, 'dist', 'cli', 'main.js'),
  };
export const CLOUD_DOMAIN: string = P.cloudDomain;
export const VIPS = P.vips;
export const PROXIES: Readonly<Record<string, string>> = P.proxies;
export type ProxyName = string;
/** the proxies' network interface (VIPs, VRRP) */
export const PROXY_IF = P.proxyIf;
/** Ansible's ansible_user on the proxies (prod: not root, sudo) */
export const SSH_USER = P.sshUser;
export const CLIENT_NS = 'rpclient';
/** the product's config: prod = the listener's, in its production place */
export const CONFIG = P.config;
export const INVENTORY = P.inventory;
export const STATE_DIR = P.stateDir;
/** the user the listener runs as and the tests run the CLI as */
export const LISTENER_USER = P.listenerUser;
/** prod: the lab CA that signed the wildcard certificate of the cloud domain and ActiveMQ's TLS certificate */
export const LAB_CA = path.join(LAB, 'tls', 'ca.crt');
export const VAULT_PASS = path.join(LAB, 'vault-pass');
/** The next proxy host after the profile's (onboarding): rp3 (default), rp4 (prod). */
export const NEXT_PROXY = `rp${Object.keys(P.proxies).length + 1}`;
/** The next VIP after the profile's. */
export const NEXT_VIP = `198.51.100.${201 + P.vips.length}`;

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function toRun(r: SpawnSyncReturns<string>): Run {
  const code = r.status ?? (r.signal ? 128 : 1);
  return { code, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? `\n${r.error.message}` : '') };
}

/** Runs a command to completion (bounded by timeoutMs). */
export function run(cmd: string, args: string[], opts: { timeoutMs?: number; input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Run {
  return toRun(
    spawnSync(cmd, args, {
      encoding: 'utf8',
      timeout: opts.timeoutMs ?? 60_000,
      input: opts.input,
      env: opts.env ?? process.env,
      cwd: opts.cwd ?? REPO,
      maxBuffer: 64 * 1024 * 1024,
    }),
  );
}

/** Runs a command to completion without blocking the event loop (bounded by timeoutMs). */
export function runAsync(cmd: string, args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? REPO, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      stderr += `\ntimed out after ${opts.timeoutMs ?? 60_000} ms`;
      child.kill('SIGTERM');
    }, opts.timeoutMs ?? 60_000);
    child.on('error', (e) => (stderr += `\n${e.message}`));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls fn until it returns a truthy value or timeoutMs passes; returns the last value. */
export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs: number, intervalMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  let v = await fn();
  while (!v && Date.now() < end) {
    await sleep(intervalMs);
    v = await fn();
  }
  return v;
}

// ------------------------------------------------------------------------------------------------ lab life
let broughtUp = false;

/** The pid of the test runner (ava's main process) whose end should take the lab down. */
function runnerPid(): number {
  return isMainThread ? process.ppid : process.pid;
}

/**
 * Makes sure the lab is up and provisioned (site.yml ran). If it was not, brings it up and starts a
 * detached reaper that takes it down once the test runner exits (so every test file of one run shares
 * one lab). RPROXY_LAB_KEEP=1 keeps a lab the tests brought up.
 */
export async function ensureLab(): Promise<{ broughtUp: boolean }> {
  if (process.getuid && process.getuid() !== 0) throw new Error('the lab tests need root (network namespaces)');
  await acquireTestLock();
  const r = await runAsync('bash', [LAB_SH, 'test-up', '--profile', PROFILE], { timeoutMs: 900_000 });
  if (r.code !== 0) throw new Error(`lab bring-up failed (exit ${r.code}):\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`);
  const m = /LAB_BROUGHT_UP (\S+)/.exec(r.stdout);
  if (m && m[1]) {
    broughtUp = true;
    if (process.env.RPROXY_LAB_KEEP !== '1') {
      const reaper = spawn('setsid', ['bash', path.join(LAB_DIR, 'reaper.sh'), String(runnerPid()), m[1]], {
        detached: true,
        stdio: 'ignore',
      });
      reaper.unref();
    }
  }
  if (!(await waitVipsServing(30_000))) throw new Error(`the VIPs do not all answer: ${VIPS.map((v) => `${v} on ${vipHolder(v)}`).join(', ')}`);
  return { broughtUp };
}

/** Every VIP is held by one proxy and answers HTTP from the client (any status) — the layout has settled. */
export async function waitVipsServing(timeoutMs: number): Promise<boolean> {
  let stableSince = 0;
  let last = '';
  return waitFor(() => {
    const layout = VIPS.map((v) => vipHolder(v)).join(',');
    const serving = !layout.includes('none') && VIPS.every((v) => curlVia(v, `settle.${CLOUD_DOMAIN}`, '/', { timeoutS: 1 }).status > 0);
    if (!serving || layout !== last) {
      last = layout;
      stableSince = serving ? Date.now() : 0;
      return false;
    }
    return Date.now() - stableSince >= 2000;
  }, timeoutMs, 250);
}

let testLock: ChildProcess | undefined;

/**
 * One lab test file at a time, whoever runs them (ava without --serial runs files concurrently; other
 * suites use the lab too): an exclusive flock held by a child process until releaseLab() or exit.
 */
async function acquireTestLock(): Promise<void> {
  if (testLock) return;
  const child = spawn('flock', ['-x', '/tmp/paas-rproxy-lab-tests.lock', '-c', 'echo locked; exec cat > /dev/null'], {
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`flock exited ${code}`)));
  });
  child.stdout!.destroy();
  testLock = child;
}

/** Releases the test lock (call from test.after.always); the lab itself stays up for the next file. */
export function releaseLab(): void {
  testLock?.stdin?.end();
  testLock = undefined;
}

// ------------------------------------------------------------------------------------------------ client side
export interface HttpResult {
  status: number;
  body: string;
  headers: Record<string, string>;
  gear: string; // first line "gear ADDR:PORT" -> "ADDR:PORT", else ''
  error: string;
}

/** One request from the client netns (curl --resolve HOST:PORT:VIP). */
export function curlVia(
  vip: string,
  host: string,
  urlPath = '/',
  opts: { https?: boolean; cacert?: string; timeoutS?: number; headers?: string[] } = {},
): HttpResult {
  const scheme = opts.https ? 'https' : 'http';
  const port = opts.https ? 443 : 80;
  const args = ['netns', 'exec', CLIENT_NS, 'curl', '-s', '-S', '-D', '-', '-m', String(opts.timeoutS ?? 5), '--resolve', `${host}:${port}:${vip}`];
  if (opts.cacert) args.push('--cacert', opts.cacert);
  for (const h of opts.headers ?? []) args.push('-H', h);
  args.push(`${scheme}://${host}${urlPath}`);
  const r = run('ip', args, { timeoutMs: (opts.timeoutS ?? 5) * 1000 + 5000 });
  const out = r.stdout.replace(/\r\n/g, '\n');
  const sep = out.indexOf('\n\n');
  const head = sep >= 0 ? out.slice(0, sep) : out;
  const body = sep >= 0 ? out.slice(sep + 2) : '';
  const lines = head.split('\n');
  const status = Number(/^HTTP\/\S+ (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
  }
  const gear = /^gear (\S+)/.exec(body)?.[1] ?? '';
  return { status, body, headers, gear, error: r.code === 0 ? '' : r.stderr.trim() };
}

/** Subject of the certificate a VIP presents for an SNI name (openssl s_client from the client netns). */
export function certSubject(vip: string, servername: string): string {
  const r = run(
    'ip',
    ['netns', 'exec', CLIENT_NS, 'sh', '-c', `openssl s_client -connect ${vip}:443 -servername ${servername} </dev/null 2>/dev/null | openssl x509 -noout -subject`],
    { timeoutMs: 15_000 },
  );
  return r.stdout.trim();
}

export interface LoopSummary {
  sent: number;
  ok: number;
  failed: number;
  attemptsFailed: number;
  statuses: Record<string, number>;
  gears: Record<string, number>;
  firstFailureMs: number | null;
  lastFailureMs: number | null;
  elapsedMs: number;
  failures: Array<{ atMs: number; error: string }>;
}

/** A bounded request loop in the client netns (test/lab/reqloop.mjs); stop() ends it early. */
export function startRequestLoop(opts: {
  vip: string;
  host: string;
  path?: string;
  intervalMs?: number;
  durationMs: number;
  timeoutMs?: number;
  retries?: number;
  retryDelayMs?: number;
}): { stop: () => Promise<LoopSummary>; done: Promise<LoopSummary> } {
  const child = spawn(
    'ip',
    [
      'netns', 'exec', CLIENT_NS, 'node', path.join(LAB_DIR, 'reqloop.mjs'),
      '--url', `http://${opts.host}${opts.path ?? '/'}`,
      '--connect', opts.vip,
      '--interval-ms', String(opts.intervalMs ?? 50),
      '--duration-ms', String(opts.durationMs),
      '--timeout-ms', String(opts.timeoutMs ?? 1000),
      '--retries', String(opts.retries ?? 0),
      '--retry-delay-ms', String(opts.retryDelayMs ?? 100),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const hardStop = setTimeout(() => child.kill('SIGKILL'), opts.durationMs + 60_000);
  const done = new Promise<LoopSummary>((resolve, reject) => {
    child.on('close', () => {
      clearTimeout(hardStop);
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as LoopSummary);
      } catch {
        reject(new Error(`request loop gave no summary: ${out} ${err}`));
      }
    });
  });
  return {
    done,
    stop: () => {
      child.kill('SIGTERM');
      return done;
    },
  };
}

/** A websocket client in the client netns (test/lab/wsclient.mjs), line based. */
export class WsClient {
  private child: ChildProcess;
  private lines: string[] = [];
  private waiters: Array<() => void> = [];
  closed = false;

  constructor(opts: { vip: string; host: string; path?: string }) {
    this.child = spawn(
      'ip',
      ['netns', 'exec', CLIENT_NS, 'node', path.join(LAB_DIR, 'wsclient.mjs'), '--url', `ws://${opts.host}${opts.path ?? '/'}`, '--connect', opts.vip],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const rl = readline.createInterface({ input: this.child.stdout! });
    rl.on('line', (l) => {
      this.lines.push(l);
      this.waiters.splice(0).forEach((w) => w());
    });
    this.child.on('close', () => {
      this.closed = true;
      this.waiters.splice(0).forEach((w) => w());
    });
  }

  /** Waits for the next line (or null on timeout/close). */
  async next(timeoutMs = 5000): Promise<string | null> {
    const end = Date.now() + timeoutMs;
    while (this.lines.length === 0 && !this.closed && Date.now() < end) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(1, end - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return this.lines.shift() ?? null;
  }

  send(line: string): void {
    this.child.stdin!.write(line + '\n');
  }

  close(): void {
    if (!this.closed) {
      this.child.stdin!.end();
      setTimeout(() => this.closed || this.child.kill('SIGKILL'), 2000).unref();
    }
  }
}

// ------------------------------------------------------------------------------------------------ proxies
/** The lab address of a proxy host name (rpN -> 198.51.100.(10+N)). */
export function proxyAddress(host: string): string {
  const m = /^rp(\d+)$/.exec(host);
  if (!m) throw new Error(`not a lab proxy name: ${host}`);
  return `198.51.100.${10 + Number(m[1])}`;
}

/** A command as root on a proxy, over SSH as the profile's user (prod: rpadmin with sudo). */
export function sshProxy(host: string, command: string, timeoutMs = 30_000): Run {
  const cmd = SSH_USER === 'root' ? command : `sudo -n sh -c ${shq(command)}`;
  return run('ssh', ['-F', path.join(LAB, 'ssh', 'config'), '-o', 'BatchMode=yes', `${SSH_USER}@${proxyAddress(host)}`, cmd], { timeoutMs });
}

/** POSIX shell single quoting. */
export const shq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** The proxy netns of the lab (rp1, rp2, and hosts added with `lab.sh host rpN`). */
export function proxyNetns(): string[] {
  return run('ip', ['netns', 'list'], { timeoutMs: 5000 })
    .stdout.split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => /^rp\d+$/.test(n))
    .sort();
}

/** The proxy netns holding a VIP right now, or 'none'. */
export function vipHolder(vip: string): string {
  for (const h of proxyNetns()) {
    const r = run('ip', ['-n', h, '-o', '-4', 'addr', 'show', 'dev', PROXY_IF], { timeoutMs: 5000 });
    if (r.stdout.includes(` ${vip}/`)) return h;
  }
  return 'none';
}

/** VIPs held by a proxy. */
export function vipsOf(host: string): string[] {
  return VIPS.filter((v) => vipHolder(v) === host);
}

export function nginxMasterPid(host: string): number {
  const r = sshProxy(host, 'p=$(cat /run/nginx.pid 2>/dev/null) && kill -0 "$p" 2>/dev/null && echo "$p"');
  return Number(r.stdout.trim() || 0);
}

/** SIGKILLs nginx (master and its workers) on a proxy: a crash, not a stop. */
export function killNginx(host: string): Run {
  return sshProxy(host, 'm=$(cat /run/nginx.pid) && kill -KILL $m $(pgrep -P $m)');
}

export function startNginx(host: string): Run {
  return sshProxy(host, 'service nginx start');
}

// ------------------------------------------------------------------------------------------------ failover
/** Cuts a proxy off the network (its veth is taken down on the bridge side): host loss, as the switch sees it. */
export function cutLink(host: string): Run {
  return run('ip', ['link', 'set', `rpl-${host}`, 'down'], { timeoutMs: 5000 });
}

export function restoreLink(host: string): Run {
  return run('ip', ['link', 'set', `rpl-${host}`, 'up'], { timeoutMs: 5000 });
}

/** SIGKILLs keepalived (parent and children) on a proxy: no priority-0 advert, the VIPs stay configured there. */
export function killKeepalived(host: string): Run {
  return sshProxy(host, 'p=$(cat /run/keepalived.pid) && kill -KILL $p $(pgrep -P $p)');
}

/**
 * Starts keepalived on a proxy after killKeepalived: the killed daemon stays a zombie until the lab's init reaps
 * it, and keepalived refuses to start while its pid file names a live (zombie) pid; retried for up to 20 s.
 */
export async function startKeepalived(host: string): Promise<boolean> {
  const running = 'p=$(cat /run/keepalived.pid 2>/dev/null) && [ -n "$p" ] && ! grep -q "^State:.*Z" /proc/$p/status 2>/dev/null && kill -0 "$p" 2>/dev/null';
  for (let i = 0; i < 20; i++) {
    if (sshProxy(host, `${running} || service keepalived start >/dev/null 2>&1; sleep 0.5; ${running}`).code === 0) return true;
    await sleep(500);
  }
  return false;
}

/** The nginx health track file keepalived follows (1 = healthy), written by the health watcher. */
export function nginxHealthFile(host: string): string {
  return sshProxy(host, 'cat /run/rproxy-nginx-healthy 2>/dev/null').stdout.trim();
}

/** The VRRP hold file (1 while another proxy is stale), written by the runner. */
export function holdFile(host: string): string {
  return sshProxy(host, 'cat /etc/keepalived/paas-rproxy/hold 2>/dev/null').stdout.trim();
}

/**
 * Restarts the lab's listener (deployed by site.yml, supervised): SIGTERM to the pid `paas-rproxy status` reports;
 * resolves with the new pid once it runs and is connected again.
 */
export async function restartListener(timeoutMs = 90_000): Promise<{ before: number; after: number }> {
  const listener = async () => {
    const r = await cli(['status', '--json']);
    try { return (JSON.parse(r.stdout) as { listener?: { pid?: number; running?: boolean; connected?: boolean } }).listener ?? null; } catch { return null; }
  };
  const l = await listener();
  if (!l?.pid || !l.running) throw new Error('the lab listener is not running (paas-rproxy status)');
  process.kill(l.pid, 'SIGTERM');
  let after = 0;
  await waitFor(async () => {
    const n = await listener();
    after = n?.pid && n.pid !== l.pid && n.running && n.connected ? n.pid : 0;
    return after > 0;
  }, timeoutMs, 500);
  if (!after) throw new Error(`the lab listener did not come back after SIGTERM to ${l.pid}`);
  return { before: l.pid, after };
}

export interface VipEvent { t: number; host: string; vip: string; added: boolean }

/**
 * Follows VIP additions and removals on every proxy as the kernel reports them (`ip -ts monitor address` in
 * each proxy netns), with the time (ms, Date.now() clock) each was seen. stop() ends the monitors.
 */
export function watchVips(hosts: readonly string[] = proxyNetns(), vips: readonly string[] = VIPS): { events: VipEvent[]; stop: () => void } {
  const events: VipEvent[] = [];
  const children = hosts.map((host) => {
    const child = spawn('ip', ['-n', host, 'monitor', 'address'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const rl = readline.createInterface({ input: child.stdout });
    rl.on('line', (l) => {
      const m = /^(Deleted )?\d+: \S+\s+inet (\d+\.\d+\.\d+\.\d+)\//.exec(l);
      if (m && m[2] && vips.includes(m[2])) events.push({ t: Date.now(), host, vip: m[2], added: !m[1] });
    });
    return child;
  });
  return { events, stop: () => children.forEach((c) => c.kill('SIGTERM')) };
}

// ------------------------------------------------------------------------------------------------ product
/**
 * The product's CLI with the lab's config. prod: the installed CLI (/opt/paas-rproxy) as the listener's user, as an
 * operator runs it there (the state belongs to that user); its config is the default /etc/paas-rproxy/config.yml.
 */
export function cli(args: string[], opts: { timeoutMs?: number } = {}): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, PAAS_RPROXY_CONFIG: CONFIG };
  if (PROFILE === 'prod') {
    return runAsync('setpriv', [`--reuid=${LISTENER_USER}`, `--regid=${LISTENER_USER}`, '--init-groups', 'env', `HOME=${STATE_DIR}`,
      'node', P.cli, ...args], { timeoutMs: opts.timeoutMs ?? 180_000, env: { ...env, PAAS_RPROXY_CONFIG: '' }, cwd: STATE_DIR });
  }
  return runAsync('node', [P.cli, ...args], { timeoutMs: opts.timeoutMs ?? 180_000, env });
}

export async function sitePlaybook(args: string[] = [], timeoutMs = 600_000): Promise<Run & { recap: Record<string, Record<string, number>> }> {
  const env: NodeJS.ProcessEnv = { ...process.env, ANSIBLE_CONFIG: path.join(REPO, 'ansible', 'ansible.cfg') };
  if (existsSync(VAULT_PASS)) env.ANSIBLE_VAULT_PASSWORD_FILE = VAULT_PASS;
  const r = await runAsync('ansible-playbook', ['-i', INVENTORY, path.join(REPO, 'ansible', 'site.yml'), ...args], { timeoutMs, env });
  return { ...r, recap: parseRecap(r.stdout) };
}

/** PLAY RECAP -> {host: {ok, changed, unreachable, failed, ...}} */
export function parseRecap(out: string): Record<string, Record<string, number>> {
  const recap: Record<string, Record<string, number>> = {};
  const i = out.lastIndexOf('PLAY RECAP');
  if (i < 0) return recap;
  for (const line of out.slice(i).split('\n').slice(1)) {
    const m = /^(\S+)\s+:\s+(.*)$/.exec(line.trim());
    if (!m || !m[1] || !m[2]) continue;
    const counts: Record<string, number> = {};
    for (const kv of m[2].trim().split(/\s+/)) {
      const [k, v] = kv.split('=');
      if (k && v !== undefined) counts[k] = Number(v);
    }
    recap[m[1]] = counts;
  }
  return recap;
}

let applySync: boolean | undefined;

/**
 * Applies a Routing SPI stream and makes it live on the proxies: `paas-rproxy apply --sync` when the CLI
 * has it, else `apply` followed by the targeted routing run of ansible/site.yml.
 */
export async function applyAndSync(stream: string): Promise<Run> {
  applySync ??= /--sync\b/.test((await cli(['apply', '--help'])).stdout);
  const dir = mkdtempSync(path.join(tmpdir(), 'rplab-'));
  chmodSync(dir, 0o755); // prod: the CLI runs as the listener's user
  const file = path.join(dir, 'stream.yml');
  writeFileSync(file, stream, { mode: 0o644 });
  if (applySync) return cli(['apply', '--sync', file]);
  const a = await cli(['apply', file]);
  if (a.code !== 0) return a;
  const p = await sitePlaybook(['--tags', 'nginx_rproxy_routes', '--limit', 'proxies']);
  return { code: p.code === 0 ? 0 : 4, stdout: a.stdout + p.stdout, stderr: a.stderr + p.stderr };
}

/** The lines of a failed run worth reading in a test log (fatal/failed/error lines and the recap). */
export function failureLines(r: Run): string {
  const all = (r.stdout + '\n' + r.stderr).split('\n');
  const recap = all.findIndex((l) => l.startsWith('PLAY RECAP'));
  const bad = all.filter((l) => /fatal:|FAILED|ERROR|[Ee]rror:|rejected|paas-rproxy:/.test(l)).slice(0, 20);
  return [...bad, ...(recap >= 0 ? all.slice(recap, recap + 8) : [])].join('\n');
}

/** Brings every proxy up to the current state (after a failed run), as an operator would: `paas-rproxy sync`. */
export function syncAll(): Promise<Run> {
  return cli(['sync']);
}

// ------------------------------------------------------------------------------------------------ SPI builders
// Exactly the shape the broker's routing plug-in publishes (Psych dump of a Ruby Hash with symbol keys).
const q = (s: string) => (s === '' ? "''" : /^[A-Za-z0-9._-]+$/.test(s) && !/^\d/.test(s) ? s : JSON.stringify(s));

export const spi = {
  createApp(app: string, ns: string, scalable = true): string {
    return `---\n:action: :create_application\n:app_name: ${app}\n:namespace: ${ns}\n:scalable: ${scalable}\n:ha: false\n`;
  },
  deleteApp(app: string, ns: string): string {
    return `---\n:action: :delete_application\n:app_name: ${app}\n:namespace: ${ns}\n:scalable: true\n:ha: false\n`;
  },
  addEndpoint(
    app: string,
    ns: string,
    address: string,
    port: number,
    opts: { types?: string[]; protocols?: string[]; gearId?: string; portName?: string; mappings?: Array<[string, string]> } = {},
  ): string {
    const types = opts.types ?? ['web_framework'];
    const protocols = opts.protocols ?? ['http'];
    const mappings = opts.mappings ?? [['', '']];
    return (
      `---\n:action: :add_public_endpoint\n:app_name: ${app}\n:namespace: ${ns}\n` +
      `:gear_id: ${opts.gearId ?? `7a1f00c0e4b0${address.split('.').pop()!.padStart(4, '0')}${String(port).padStart(8, '0')}`}\n` +
      `:public_port_name: ${opts.portName ?? 'web'}\n:public_address: ${address}\n:public_port: ${port}\n` +
      `:protocols:\n${protocols.map((p) => `- ${p}\n`).join('')}` +
      `:types:\n${types.map((t) => `- ${t}\n`).join('')}` +
      (mappings.length ? `:mappings:\n${mappings.map(([f, b]) => `- frontend: ${q(f)}\n  backend: ${q(b)}\n`).join('')}` : ':mappings: []\n')
    );
  },
  removeEndpoint(app: string, ns: string, address: string, port: number, gearId = 'x'): string {
    return `---\n:action: :remove_public_endpoint\n:app_name: ${app}\n:namespace: ${ns}\n:gear_id: ${gearId}\n:public_address: ${address}\n:public_port: ${port}\n`;
  },
  addAlias(app: string, ns: string, alias: string): string {
    return `---\n:action: :add_alias\n:app_name: ${app}\n:namespace: ${ns}\n:alias: ${alias}\n`;
  },
  removeAlias(app: string, ns: string, alias: string): string {
    return `---\n:action: :remove_alias\n:app_name: ${app}\n:namespace: ${ns}\n:alias: ${alias}\n`;
  },
  addSsl(app: string, ns: string, alias: string, certPem: string, keyPem: string, passPhrase = ''): string {
    const block = (pem: string) => pem.trim().split('\n').map((l) => `  ${l}\n`).join('');
    return (
      `---\n:action: :add_ssl\n:app_name: ${app}\n:namespace: ${ns}\n:alias: ${alias}\n` +
      `:ssl: |\n${block(certPem)}:private_key: |\n${block(keyPem)}:pass_phrase: ${q(passPhrase)}\n`
    );
  },
};

/** A fresh self-signed certificate for a host name: {cert, key, certFile}. */
export function selfSigned(name: string): { cert: string; key: string; certFile: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'rplab-tls-'));
  const certFile = path.join(dir, `${name}.crt`);
  const keyFile = path.join(dir, `${name}.key`);
  const r = run('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${name}/O=paas-rproxy lab test`,
    '-addext', `subjectAltName=DNS:${name}`, '-keyout', keyFile, '-out', certFile,
  ]);
  if (r.code !== 0) throw new Error(`openssl: ${r.stderr}`);
  return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), certFile };
}

export function fqdn(app: string, ns: string): string {
  return `${app}-${ns}.${CLOUD_DOMAIN}`;
}

export function labReady(): boolean {
  return existsSync(path.join(LAB, 'READY'));
}
