// The warm Ansible controller (ansible/warm_controller.py), TS side: the process the listener keeps as its child,
// and the client spawn.ts runs a playbook through when it is up. Design, protocol and figures: runner/README.md.
// Anything short of "the controller started the run" (not running, refused, socket gone) falls back to a cold
// ansible-playbook spawn: a warm controller can make a run faster, never make it fail.
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { warmSocketPid } from '../io/statedir.js';
import { pidAlive } from '../io/pid.js';

/** The environment of every ansible-playbook run (cold or warm): the warm controller is started with exactly this. */
export function playbookEnv(base: NodeJS.ProcessEnv, playbookDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...base,
    ANSIBLE_STDOUT_CALLBACK: 'default', // human output for the logs; results come from the rproxy_results callback
    ANSIBLE_NOCOLOR: '1',
    ANSIBLE_FORCE_COLOR: '0',
    ANSIBLE_RETRY_FILES_ENABLED: '0',
    PYTHONUNBUFFERED: '1',
  };
  // ansible reads ansible.cfg from the cwd: run next to the playbook so ansible/ansible.cfg applies
  if (!env.ANSIBLE_CONFIG) env.ANSIBLE_CONFIG = path.join(playbookDir, 'ansible.cfg');
  return env;
}

/** Sockets left by controllers of listeners that are gone (a controller SIGKILLed cannot remove its own). */
export async function removeStaleWarmSockets(stateDir: string): Promise<void> {
  let names: string[] = [];
  try { names = await fs.readdir(stateDir); } catch { return; }
  for (const n of names) {
    const pid = warmSocketPid(n);
    if (pid === null || pidAlive(pid)) continue;
    const f = path.join(stateDir, n); // the entry as listed (warmSocketPid matched it)
    try { if ((await fs.lstat(f)).isSocket()) await fs.rm(f); } catch { /* gone meanwhile */ }
  }
}

export type WarmLog = (event: string, fields: Record<string, unknown>) => void;

// --- framing: 1 type byte, 4-byte big-endian length, payload (ansible/warm_controller.py) ---
function frame(kind: string, payload: Buffer): Buffer {
  const h = Buffer.alloc(5);
  h.write(kind, 0, 'latin1');
  h.writeUInt32BE(payload.length, 1);
  return Buffer.concat([h, payload]);
}

export interface WarmRequest { argv: readonly string[]; cwd: string; env: NodeJS.ProcessEnv; killAfterS: number }

export type WarmOutcome =
  /** nothing was run: run it cold */
  | { kind: 'unavailable'; reason: string }
  /** the controller ran it; exitCode null = killed by `signal`, or the controller was lost mid-run (`lost`) */
  | { kind: 'ran'; exitCode: number | null; signal: string | null; lost?: string };

const MAX_FRAME = 16 << 20;
const START_ANSWER_MS = 15000;

/**
 * One run through the controller's socket. Output chunks go to `onData` (stdout and stderr interleaved as they
 * come, like the cold spawn's); `signal` aborts: the controller SIGTERMs the run, SIGKILLs it `killAfterS` later.
 */
export function runWarm(socketPath: string, req: WarmRequest, h: { onStart?: (pid: number) => void; onData: (b: Buffer) => void; signal?: AbortSignal | undefined }): Promise<WarmOutcome> {
  return new Promise((resolve) => {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.env)) if (typeof v === 'string') env[k] = v;
    const body = Buffer.from(JSON.stringify({ argv: req.argv, cwd: req.cwd, env, kill_after_s: req.killAfterS }));
    const sock = net.createConnection(socketPath);
    let started = false;
    let done = false;
    let buf: Buffer = Buffer.alloc(0);
    const finish = (o: WarmOutcome) => {
      if (done) return;
      done = true;
      clearTimeout(startTimer);
      h.signal?.removeEventListener('abort', onAbort);
      sock.destroy();
      resolve(o);
    };
    const onAbort = () => { if (!sock.destroyed) sock.write(frame('A', Buffer.alloc(0))); };
    // the controller answers S or F within milliseconds; a socket that accepts but never answers is not a controller
    const startTimer = setTimeout(() => { if (!started) finish({ kind: 'unavailable', reason: `no answer within ${START_ANSWER_MS} ms` }); }, START_ANSWER_MS);
    sock.on('connect', () => {
      sock.write(frame('R', body));
      if (h.signal) { if (h.signal.aborted) onAbort(); else h.signal.addEventListener('abort', onAbort, { once: true }); }
    });
    sock.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      while (buf.length >= 5) {
        const kind = String.fromCharCode(buf[0] as number);
        const n = buf.readUInt32BE(1);
        if (n > MAX_FRAME) { finish(started ? { kind: 'ran', exitCode: null, signal: null, lost: 'bad frame from the warm controller' } : { kind: 'unavailable', reason: 'bad frame' }); return; }
        if (buf.length < 5 + n) break;
        const p = buf.subarray(5, 5 + n);
        buf = buf.subarray(5 + n);
        if (kind === 'O' || kind === 'E') h.onData(Buffer.from(p));
        else if (kind === 'S') { started = true; h.onStart?.(Number((JSON.parse(p.toString('utf8')) as { pid: number }).pid)); }
        else if (kind === 'X') {
          const x = JSON.parse(p.toString('utf8')) as { exit_code: number | null; signal: string | null };
          finish({ kind: 'ran', exitCode: x.exit_code, signal: x.signal });
          return;
        } else if (kind === 'F') {
          const f = JSON.parse(p.toString('utf8')) as { error: string; message: string };
          finish({ kind: 'unavailable', reason: `refused (${f.error}): ${f.message}` });
          return;
        }
      }
    });
    const lost = (why: string) => finish(started
      ? { kind: 'ran', exitCode: null, signal: null, lost: `the warm controller was lost during the run (${why})` }
      : { kind: 'unavailable', reason: why });
    sock.on('error', (e: NodeJS.ErrnoException) => lost(e.code ?? e.message));
    sock.on('close', () => lost('connection closed'));
  });
}

export interface WarmControllerOptions {
  /** the configured ansible-playbook (config ansible.command): name on PATH or a path */
  command: string;
  /** where the runs start (next to site.yml) and the env they get: the controller imports Ansible with these */
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** io/statedir.ts warmSocketFile(): <state_dir>/warm-ansible-<listener pid>.sock: one per listener, so a
   *  second listener on the same state (a `paas-rproxy listen` by hand next to the service, the lab's tests) gets its
   *  own controller instead of none */
  socketPath: string;
  /** ansible/warm_controller.py */
  script: string;
  log: WarmLog;
  /** ms to wait for "ready" (Python + Ansible imports: ~0.5 s) */
  startTimeoutMs?: number;
  /** a crashed or stale controller is restarted at most this often */
  restartMinMs?: number;
}

/** The interpreter of an ansible-playbook script (its shebang): the controller must import the same Ansible. */
export async function ansibleInterpreter(command: string, pathEnv: string | undefined): Promise<string[] | null> {
  let file = command;
  if (!command.includes('/')) {
    file = '';
    for (const d of (pathEnv ?? '').split(':').filter(Boolean)) {
      const f = path.join(d, command);
      try { await fs.access(f, 1); file = f; break; } catch { /* next */ }
    }
    if (!file) return null;
  }
  let head: string;
  try {
    const fh = await fs.open(file, 'r');
    try { const b = Buffer.alloc(256); const { bytesRead } = await fh.read(b, 0, 256, 0); head = b.subarray(0, bytesRead).toString('utf8'); } finally { await fh.close(); }
  } catch { return null; }
  const m = /^#!\s*(\S+)(?:[ \t]+([^\n]*))?\n/.exec(head);
  if (!m) return null;
  const words = [m[1] as string, ...(m[2] ?? '').trim().split(/\s+/).filter(Boolean)];
  const interp = path.basename(words[0] as string) === 'env' ? words.slice(1) : words;
  return interp.length && /python/.test(path.basename(interp[0] as string)) ? interp : null;
}

/**
 * The warm controller process, a child of the listener: started at startup, stopped at shutdown (SIGTERM, then
 * SIGKILL), restarted lazily (at most every `restartMinMs`) after a crash or when it says it is stale.
 */
export class WarmController {
  private child: ChildProcess | null = null;
  private ready = false;
  private starting: Promise<boolean> | null = null;
  private stopped = false;
  private lastStart = 0;

  constructor(private readonly o: WarmControllerOptions) {}

  get socketPath(): string { return this.o.socketPath; }
  get pid(): number | undefined { return this.child?.pid; }
  /** up and listening: runs go through it */
  get available(): boolean { return this.ready && !this.stopped; }
  log(event: string, fields: Record<string, unknown>): void { this.o.log(event, fields); }

  start(): Promise<boolean> {
    if (this.stopped) return Promise.resolve(false);
    if (this.starting) return this.starting;
    if (this.ready) return Promise.resolve(true);
    this.lastStart = Date.now();
    this.starting = this.spawnController().finally(() => { this.starting = null; });
    return this.starting;
  }

  private async spawnController(): Promise<boolean> {
    const interp = await ansibleInterpreter(this.o.command, this.o.env.PATH);
    if (!interp) {
      this.o.log('warm_unavailable', { reason: `${this.o.command}: not found on PATH, or not a Python script (no warm controller; runs start ansible-playbook cold)` });
      return false;
    }
    const argv = [...interp.slice(1), this.o.script, '--socket', this.o.socketPath, '--command', this.o.command, '--parent-pid', String(process.pid)];
    const child = spawn(interp[0] as string, argv, { cwd: this.o.cwd, env: this.o.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const t0 = Date.now();
    let stderrTail = '';
    child.stderr.on('data', (b: Buffer) => {
      stderrTail = (stderrTail + b.toString('utf8')).slice(-4000);
      // its own JSON lines (warm_run, warm_refused...) go to the listener's log as they are
      for (const line of b.toString('utf8').split('\n')) if (line.startsWith('{')) this.o.log('warm_controller', { line: line.slice(0, 2000) });
    });
    return new Promise<boolean>((resolve) => {
      let settled = false;
      const settle = (ok: boolean) => { if (!settled) { settled = true; clearTimeout(timer); resolve(ok); } };
      const timer = setTimeout(() => {
        this.o.log('warm_unavailable', { reason: `no "ready" within ${this.o.startTimeoutMs ?? 15000} ms`, stderr: stderrTail.slice(-500) });
        child.kill('SIGKILL');
        settle(false);
      }, this.o.startTimeoutMs ?? 15000);
      child.stdout.on('data', (b: Buffer) => {
        if (!this.ready && b.toString('utf8').includes('ready')) {
          this.ready = true;
          this.o.log('warm_started', { pid: child.pid, socket: this.o.socketPath, start_ms: Date.now() - t0, interpreter: interp[0] });
          settle(true);
        }
      });
      child.on('error', (e) => { this.o.log('warm_unavailable', { reason: e.message }); settle(false); });
      child.on('exit', (code, sig) => {
        const wasReady = this.ready;
        this.ready = false;
        if (this.child === child) this.child = null;
        if (!this.stopped) this.o.log(wasReady ? 'warm_exited' : 'warm_unavailable', { code, signal: sig, stderr: stderrTail.slice(-500) });
        settle(false);
      });
    });
  }

  private reviving: Promise<void> | null = null;

  /**
   * After a fallback: restart it in the background when it is down, or when it refused as stale (ansible.cfg or
   * Ansible changed under it); never more often than restartMinMs. An env mismatch is not fixed by a restart.
   */
  revive(reason: string): void {
    if (this.stopped || this.starting || this.reviving) return;
    if (Date.now() - this.lastStart < (this.o.restartMinMs ?? 10000)) return;
    const stale = this.ready && /\(stale\)/.test(reason);
    if (this.ready && !stale) return;
    const old = stale ? this.child : null;
    this.reviving = (async () => {
      if (old) { this.ready = false; await terminate(old, 35000); }
      await this.start();
    })().finally(() => { this.reviving = null; });
  }

  /** SIGTERM (the controller SIGTERMs its runs), SIGKILL after `graceMs`; resolves when it has exited. */
  async stop(graceMs = 35000): Promise<void> {
    this.stopped = true;
    this.ready = false;
    if (this.starting) await this.starting;
    if (this.reviving) await this.reviving;
    const child = this.child;
    if (!child) return;
    await terminate(child, graceMs);
    this.o.log('warm_stopped', { pid: child.pid });
  }
}

async function terminate(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
