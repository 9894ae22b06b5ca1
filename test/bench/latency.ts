// Support shared by the listener integration tests and the benchmark: a private ActiveMQ patched by the
// activemq_routinginfo role, a publisher that sends exactly what the broker plug-in sends, the listener as a
// child process with its JSON log, and route checks through the lab's VIPs.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync, readFileSync, rmSync, readdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import stompit from 'stompit';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const LAB = path.join(REPO, '.lab');
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs: number, intervalMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  let v = await fn();
  while (!v && Date.now() < end) { await sleep(intervalMs); v = await fn(); }
  return v;
}

export function portOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
    s.setTimeout(1000, () => { s.destroy(); resolve(false); });
  });
}

function pidAlive(pid: number): boolean { try { process.kill(pid, 0); return true; } catch { return false; } }

/** pids whose command line mentions `needle` (our own broker's base directory: never a broad name) */
function pidsMentioning(needle: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try { if (readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').some((a) => a.includes(needle))) out.push(Number(d)); } catch { /* gone */ }
  }
  return out;
}

/**
 * A private ActiveMQ on 127.0.0.1:PORT under /tmp (never the lab's): Debian's sample activemq.xml, patched by
 * roles/activemq_routinginfo through ansible-playbook (so the tests exercise the role), started with
 * `activemq console`, stopped by its own pid.
 */
export class PrivateBroker {
  readonly base: string;
  constructor(readonly port: number) { this.base = `/tmp/paas-rproxy-amq-${port}`; }

  get conf(): string { return path.join(this.base, 'conf', 'activemq.xml'); }

  /** fresh config (and, with wipe, fresh data), patched by the role */
  prepare(opts: { wipe?: boolean } = {}): void {
    if (opts.wipe) rmSync(this.base, { recursive: true, force: true });
    for (const d of ['conf', 'data', 'tmp']) mkdirSync(path.join(this.base, d), { recursive: true });
    const sample = readFileSync('/etc/activemq/instances-available/main/activemq.xml', 'utf8')
      .replaceAll('${activemq.base}/data', path.join(this.base, 'data'))
      .replace(/<transportConnector name="openwire"[^>]*\/>/, '');
    writeFileSync(this.conf, sample);
    writeFileSync(path.join(this.base, 'conf', 'log4j.properties'), [
      'log4j.rootLogger=INFO, logfile', 'log4j.logger.org.springframework=WARN', 'log4j.logger.org.apache.xbean=WARN',
      'log4j.appender.logfile=org.apache.log4j.RollingFileAppender', `log4j.appender.logfile.file=${this.base}/data/activemq.log`,
      'log4j.appender.logfile.maxFileSize=1024KB', 'log4j.appender.logfile.layout=org.apache.log4j.PatternLayout',
      'log4j.appender.logfile.layout.ConversionPattern=%d | %-5p | %m | %c | %t%n', ''].join('\n'));
    const play = path.join(this.base, 'patch.yml');
    writeFileSync(play, [
      '- hosts: localhost', '  gather_facts: false', '  roles:', '    - role: activemq_routinginfo', '      vars:',
      `        activemq_routinginfo_config_file: ${this.conf}`, '        activemq_routinginfo_service_name: ""',
      '        activemq_routinginfo_restart_command: "true"', '        activemq_routinginfo_wait_timeout: 0',
      '        activemq_routinginfo_backup: false', '        activemq_routinginfo_stomp_address: 127.0.0.1',
      `        activemq_routinginfo_listener_password: ${LISTENER_STOMP.passcode}`, '        activemq_routinginfo_allow_public_password: true',
      `        activemq_routinginfo_stomp_port: ${this.port}`, ''].join('\n'));
    for (let i = 0; i < 2; i++) {
      const r = spawnSync('ansible-playbook', ['-i', 'localhost,', '-c', 'local', play], {
        encoding: 'utf8', env: { ...process.env, ANSIBLE_ROLES_PATH: path.join(REPO, 'roles'), ANSIBLE_NOCOLOR: '1' },
      });
      if (r.status !== 0) throw new Error(`activemq_routinginfo role failed:\n${r.stdout}\n${r.stderr}`);
      // the second run must change nothing (idempotent patch)
      if (i === 1 && !/changed=0\s/.test(r.stdout)) throw new Error(`activemq_routinginfo second run changed something:\n${r.stdout}`);
    }
  }

  async start(): Promise<void> {
    if (await portOpen(this.port)) throw new Error(`127.0.0.1:${this.port} is already in use`);
    const pidfile = path.join(this.base, 'activemq.pid');
    rmSync(pidfile, { force: true });
    const child = spawn('activemq', ['console', `xbean:file:${this.conf}`], {
      detached: true, stdio: 'ignore',
      env: { ...process.env, ACTIVEMQ_BASE: this.base, ACTIVEMQ_CONF: path.join(this.base, 'conf'), ACTIVEMQ_DATA: path.join(this.base, 'data'),
        ACTIVEMQ_TMP: path.join(this.base, 'tmp'), ACTIVEMQ_PIDFILE: pidfile, ACTIVEMQ_USER: 'root' },
    });
    child.unref();
    if (!(await waitFor(() => portOpen(this.port), 120000, 250))) throw new Error(`private ActiveMQ did not open ${this.port} (see ${this.base}/data/activemq.log)`);
  }

  /** the broker's processes: the java (and any wrapper) whose command line names our base directory */
  pids(): number[] { return pidsMentioning(`${this.base}/conf`); }

  /** graceful stop (SIGTERM to java), SIGKILL after 30 s */
  async stop(): Promise<void> {
    const pids = this.pids();
    for (const p of pids) { try { process.kill(p, 'SIGTERM'); } catch { /* gone */ } }
    if (!(await waitFor(() => pids.every((p) => !pidAlive(p)), 30000, 100))) for (const p of pids) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
    await waitFor(async () => !(await portOpen(this.port)), 10000, 100);
  }

  async restart(): Promise<void> { await this.stop(); await this.start(); }
}

export interface Publisher { send(body: string): void; close(): Promise<void> }

/** A STOMP producer exactly like OpenShift's routing plug-in: SEND to /topic/routinginfo, no persistent header. */
export function publisher(port: number, host = '127.0.0.1'): Promise<Publisher> {
  return new Promise((resolve, reject) => {
    stompit.connect({ host, port, connectHeaders: { host: '/', login: 'routinginfo', passcode: 'routinginfopasswd' } } as never,
      (err: Error | null, client: any) => {
        if (err) { reject(err); return; }
        client.on('error', () => undefined);
        resolve({
          send(body: string) { const f = client.send({ destination: '/topic/routinginfo', 'content-type': 'text/plain' }); f.write(body); f.end(); },
          close: () => new Promise<void>((r) => client.disconnect(() => r())),
        });
      });
  });
}

/** The documents of a YAML stream, byte for byte (each starts at its "---" line): one message each. */
export function documents(stream: string): string[] {
  // a leading comment block (before the first "---") is not a message
  return stream.split(/^(?=---(?:\s|$))/m).filter((d) => d.split('\n').some((l) => l.trim() !== '' && !l.trim().startsWith('#') && !/^---\s*$/.test(l)));
}

export interface LogLine { time: string; level: string; event: string; [k: string]: unknown }

/** The listener (dist/listener/main.js) as a child process; its JSON log lines are collected. */
export class ListenerProc {
  child: ChildProcess | null = null;
  lines: LogLine[] = [];
  private buf = '';
  exitCode: number | null = null;
  constructor(readonly configFile: string, readonly logFile?: string) {}

  start(): void {
    this.exitCode = null;
    const child = spawn(process.execPath, [path.join(REPO, 'dist', 'listener', 'main.js'), '--config', this.configFile], {
      stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PAAS_RPROXY_CONFIG: '' },
    });
    this.child = child;
    const onData = (d: Buffer) => {
      this.buf += d.toString();
      let i;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i); this.buf = this.buf.slice(i + 1);
        if (this.logFile) writeFileSync(this.logFile, line + '\n', { flag: 'a' });
        try { this.lines.push(JSON.parse(line) as LogLine); } catch { this.lines.push({ time: '', level: 'raw', event: 'raw', text: line }); }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code, sig) => { this.exitCode = code ?? (sig ? 128 : 1); });
  }

  events(name: string): LogLine[] { return this.lines.filter((l) => l.event === name); }

  async waitEvent(name: string, pred: (l: LogLine) => boolean = () => true, timeoutMs = 60000, from = 0): Promise<LogLine | undefined> {
    return waitFor(() => this.lines.slice(from).find((l) => l.event === name && pred(l)), timeoutMs, 50);
  }

  kill(signal: NodeJS.Signals): void { this.child?.kill(signal); }

  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 60000): Promise<number | null> {
    const c = this.child;
    if (!c || this.exitCode !== null) return this.exitCode;
    c.kill(signal);
    await waitFor(() => this.exitCode !== null, timeoutMs, 50);
    return this.exitCode;
  }
}

/** The listener's own STOMP user on the private broker (roles/activemq_routinginfo: only it may read the queue). */
export const LISTENER_STOMP = { login: 'paas-rproxy', passcode: 'paas-rproxy-test' } as const;

/** A config for the listener against the lab's inventory and state, consuming the private broker. */
export function writeListenerConfig(file: string, o: { stompPort: number; stateDir?: string; inventoryDir?: string; quietMs?: number; maxWaitMs?: number; burstQuietMs?: number; retryMaxMs?: number; warm?: boolean }): void {
  writeFileSync(file, [
    'cloud_domain: apps.example.com',
    `inventory_dir: ${o.inventoryDir ?? path.join(LAB, 'inventory')}`,
    `state_dir: ${o.stateDir ?? path.join(LAB, 'var')}`,
    'ansible:', `  playbook: ${path.join(REPO, 'ansible', 'site.yml')}`, `  warm: ${o.warm ?? process.env.RPROXY_BENCH_WARM !== '0'}`,
    'runner:', `  quiet_ms: ${o.quietMs ?? Number(process.env.RPROXY_BENCH_QUIET_MS ?? 0)}`, `  max_wait_ms: ${o.maxWaitMs ?? 1500}`, `  burst_quiet_ms: ${o.burstQuietMs ?? 250}`, '  retry_initial_ms: 500', `  retry_max_ms: ${o.retryMaxMs ?? 4000}`,
    'stomp:', `  brokers: [{host: 127.0.0.1, port: ${o.stompPort}}]`, '  heartbeat_ms: 2000',
    `  login: ${LISTENER_STOMP.login}`, `  passcode: ${LISTENER_STOMP.passcode}`,
    'metrics:', '  listen: 127.0.0.1:0', ''].join('\n'));
}

// ---------------------------------------------------------------------------------------------- routes
export const CLIENT_NS = 'rpclient';
export const VIPS = ['198.51.100.201', '198.51.100.202'];
export const PROXY_ADDR: Record<string, string> = { rp1: '198.51.100.11', rp2: '198.51.100.12' };

/** The gear ("ADDR:PORT") answering HOST through ADDRESS (a VIP or a proxy), '' when none (404/503/error). */
export function gearVia(address: string, host: string, timeoutS = 3): string {
  const r = spawnSync('ip', ['netns', 'exec', CLIENT_NS, 'curl', '-s', '-m', String(timeoutS), '--resolve', `${host}:80:${address}`, `http://${host}/`], { encoding: 'utf8', timeout: timeoutS * 1000 + 3000 });
  return /^gear (\S+)/.exec(r.stdout ?? '')?.[1] ?? '';
}

/** curl's status code for HOST through ADDRESS (0 on connection error). */
export function statusVia(address: string, host: string, timeoutS = 3): number {
  const r = spawnSync('ip', ['netns', 'exec', CLIENT_NS, 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '-m', String(timeoutS), '--resolve', `${host}:80:${address}`, `http://${host}/`], { encoding: 'utf8', timeout: timeoutS * 1000 + 3000 });
  return Number(r.stdout) || 0;
}

/** The routing table from the CLI (`routes --json`) for a config. */
export function routesJson(configFile: string): Array<{ app: string; namespace: string; fqdn: string; aliases: string[]; backends: string[] }> {
  const r = spawnSync(process.execPath, [path.join(REPO, 'dist', 'cli', 'main.js'), 'routes', '--json', '--config', configFile], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`routes --json: ${r.stderr}`);
  return JSON.parse(r.stdout) as never;
}

// ---------------------------------------------------------------------------------------------- SPI
export const spi = {
  create: (app: string, ns: string) => `---\n:action: :create_application\n:app_name: ${app}\n:namespace: ${ns}\n:scalable: true\n:ha: false\n`,
  del: (app: string, ns: string) => `---\n:action: :delete_application\n:app_name: ${app}\n:namespace: ${ns}\n:scalable: true\n:ha: false\n`,
  addEp: (app: string, ns: string, addr: string, port: number, action = 'add_public_endpoint') =>
    `---\n:action: :${action}\n:app_name: ${app}\n:namespace: ${ns}\n:gear_id: 5a1f00c0e4b0aa00${String(port).padStart(8, '0')}\n:public_port_name: web\n:public_address: ${addr}\n:public_port: ${port}\n:protocols:\n- http\n:types:\n- web_framework\n:mappings:\n- frontend: ''\n  backend: ''\n${action === 'add_gear' ? ':deprecated: use add_public_endpoint\n' : ''}`,
  rmEp: (app: string, ns: string, addr: string, port: number) =>
    `---\n:action: :remove_public_endpoint\n:app_name: ${app}\n:namespace: ${ns}\n:gear_id: 5a1f00c0e4b0aa00${String(port).padStart(8, '0')}\n:public_address: ${addr}\n:public_port: ${port}\n`,
  addAlias: (app: string, ns: string, alias: string) => `---\n:action: :add_alias\n:app_name: ${app}\n:namespace: ${ns}\n:alias: ${alias}\n`,
  rmAlias: (app: string, ns: string, alias: string) => `---\n:action: :remove_alias\n:app_name: ${app}\n:namespace: ${ns}\n:alias: ${alias}\n`,
};

/** Lab gears: 198.51.100.31–.39 on ports 35531–35540 (each answers "gear ADDR:PORT"). */
export function gear(i: number): { addr: string; port: number; key: string } {
  const addr = `198.51.100.${31 + (i % 9)}`;
  const port = 35531 + (Math.floor(i / 9) % 10);
  return { addr, port, key: `${addr}:${port}` };
}

/**
 * A burst of N events over A apps (N/A events per app, interleaved across apps) and the final backends and
 * aliases each app must end with. Endpoint adds/removes, duplicate add_gear, alias add/remove.
 */
export function burst(ns: string, apps: number, perApp: number, prefix = 'b'): { events: string[]; expected: Map<string, { backends: string[]; aliases: string[] }> } {
  const perAppEvents: string[][] = [];
  const expected = new Map<string, { backends: string[]; aliases: string[] }>();
  for (let a = 0; a < apps; a++) {
    const app = `${prefix}${a}`;
    const g = (k: number) => gear(a * 3 + k);
    const evs: string[] = [spi.create(app, ns)];
    const backends = new Set<string>();
    const aliases = new Set<string>();
    const alias = (k: number) => `${app}-${k}.${ns}.example.net`;
    let k = 0;
    while (evs.length < perApp) {
      const step = k % 8;
      const gg = g(k % 3);
      if (step === 0 || step === 3 || step === 6) { evs.push(spi.addEp(app, ns, gg.addr, gg.port)); backends.add(gg.key); }
      else if (step === 1) { evs.push(spi.addEp(app, ns, gg.addr, gg.port, 'add_gear')); backends.add(gg.key); }
      else if (step === 2) { evs.push(spi.addAlias(app, ns, alias(k))); aliases.add(alias(k)); }
      else if (step === 4) { const r = g((k + 1) % 3); evs.push(spi.rmEp(app, ns, r.addr, r.port)); backends.delete(r.key); }
      else if (step === 5) { evs.push(spi.rmAlias(app, ns, alias(k - 3))); aliases.delete(alias(k - 3)); }
      else { evs.push(spi.addAlias(app, ns, alias(k))); aliases.add(alias(k)); }
      k++;
    }
    perAppEvents.push(evs);
    expected.set(`${app}-${ns}`, { backends: [...backends].sort(), aliases: [...aliases].sort() });
  }
  const events: string[] = [];
  for (let i = 0; i < perApp; i++) for (const evs of perAppEvents) events.push(evs[i] as string);
  return { events, expected };
}

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

/** Publishes `events` evenly over `spanMs` (one STOMP message each); resolves when the last one was sent. */
export async function publishPaced(pub: Publisher, events: readonly string[], spanMs: number): Promise<void> {
  const start = Date.now();
  const spacing = spanMs / events.length;
  for (let i = 0; i < events.length; i++) {
    pub.send(events[i] as string);
    const due = start + (i + 1) * spacing;
    if (due - Date.now() > 2) await sleep(due - Date.now());
  }
}

/** Runs `fn` over `items` with at most `n` in flight; results in input order. */
export async function pool<T, R>(items: T[], n: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let i = 0;
  await Promise.all(Array.from({ length: n }, async () => { while (i < items.length) { const k = i++; out[k] = await fn(items[k] as T); } }));
  return out;
}
