/**
 * What onboarding/offboarding leaves on disk, under state_dir:
 * - fleet.json: the proxies that are provisioned and part of the VRRP set (the watcher compares the
 *   inventory's proxies group with it);
 * - onboarding.json: the operation in progress (pid, step) and the last 20 finished ones (steps, timings);
 *   also copied into status.json as "onboarding" for `paas-rproxy status`.
 * Plus Prometheus gauges read from onboarding.json at scrape time (registerOnboardingMetrics).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Gauge, type Registry } from 'prom-client';
import { RproxyError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { pidAlive } from '../io/pid.js';
import { updateStatus } from '../status/file.js';

export interface FleetEntry { name: string; address: string | null }
export interface FleetFile { schema: 1; updatedAt: string; proxies: FleetEntry[]; /** digest of the VRRP layout inputs last applied (vrrpkey.ts) */ vrrpKey?: string }

export type Op = 'onboard' | 'offboard';
export interface StepRecord { step: string; ok: boolean; ms: number; detail?: string }
export interface OpRecord {
  op: Op;
  host: string;
  address: string | null;
  pid: number;
  by: string; // "cli" | "listener"
  startedAt: string;
  step: string; // current step (in progress) or the last one
  steps: StepRecord[];
  result?: 'ok' | 'failed';
  durationMs?: number;
  error?: string;
}
export interface OnboardingFile { schema: 1; current: OpRecord[]; history: OpRecord[] }

export const fleetPath = (stateDir: string): string => path.join(stateDir, 'fleet.json');
export const onboardingPath = (stateDir: string): string => path.join(stateDir, 'onboarding.json');
export const inventoryLockPath = (stateDir: string): string => path.join(stateDir, 'inventory.lock');

/** Pure: fleet.json's text checked; ERR_STATE_CORRUPT naming the file and what to do when it is not a fleet record. */
export function parseFleet(text: string, file: string): FleetFile {
  let j: unknown;
  try { j = JSON.parse(text); } catch { j = undefined; }
  const proxies = (j as Partial<FleetFile> | undefined)?.proxies;
  const entryOk = (p: unknown) => typeof (p as FleetEntry)?.name === 'string' && (typeof (p as FleetEntry).address === 'string' || (p as FleetEntry).address === null);
  if (!Array.isArray(proxies) || !proxies.every(entryOk)) {
    throw new RproxyError('ERR_STATE_CORRUPT', `${file} is not a fleet record (${j === undefined ? 'not JSON' : 'no "proxies" list of {name, address}'}): automatic onboarding and offboarding stop until it is fixed. Restore it from a backup; or, when every proxy of the inventory's group is provisioned and in the VRRP set, remove it (the listener then adopts the group as it is).`);
  }
  return j as FleetFile;
}

/** The fleet record; null when there is none yet (adopt the group). A corrupt one is an error, never "none". */
export async function readFleet(stateDir: string): Promise<FleetFile | null> {
  let text: string;
  try { text = await fs.readFile(fleetPath(stateDir), 'utf8'); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new RproxyError('ERR_IO', `cannot read ${fleetPath(stateDir)}: ${(e as Error).message}`);
  }
  return parseFleet(text, fleetPath(stateDir));
}

export async function writeFleet(stateDir: string, proxies: FleetEntry[], vrrpKey?: string): Promise<void> {
  await fs.mkdir(stateDir, { recursive: true });
  const f: FleetFile = { schema: 1, updatedAt: new Date().toISOString(), proxies, ...(vrrpKey ? { vrrpKey } : {}) };
  await writeFileAtomic(fleetPath(stateDir), JSON.stringify(f, null, 1) + '\n');
}


export async function readOnboarding(stateDir: string): Promise<OnboardingFile> {
  try {
    const j = JSON.parse(await fs.readFile(onboardingPath(stateDir), 'utf8')) as OnboardingFile;
    return { schema: 1, current: Array.isArray(j.current) ? j.current : [], history: Array.isArray(j.history) ? j.history : [] };
  } catch { return { schema: 1, current: [], history: [] }; }
}

/** Operations in progress whose process is alive (a crashed one is not "in progress"). */
export function liveOperations(f: OnboardingFile): OpRecord[] {
  return f.current.filter((c) => pidAlive(c.pid));
}

let chain: Promise<unknown> = Promise.resolve();

/** Read-modify-write of onboarding.json (serialized in this process; one writer per host across processes). */
export async function updateOnboarding(stateDir: string, fn: (f: OnboardingFile) => void): Promise<void> {
  const next = chain.then(async () => {
    const f = await readOnboarding(stateDir);
    fn(f);
    f.current = f.current.filter((c) => pidAlive(c.pid));
    f.history = f.history.slice(-20);
    await fs.mkdir(stateDir, { recursive: true });
    await writeFileAtomic(onboardingPath(stateDir), JSON.stringify(f, null, 1) + '\n');
    // status.json: informative copy (best effort; the status module owns the file)
    await updateStatus(stateDir, (s) => {
      (s as unknown as Record<string, unknown>).onboarding = { current: f.current, last: f.history.slice(-5) };
    }).catch(() => undefined);
  });
  chain = next.catch(() => undefined);
  await next;
}

/** Tracks one operation: begin → step()* → finish(ok|failed). Never throws (records are informative). */
export class OpTracker {
  readonly rec: OpRecord;
  private readonly t0 = performance.now();
  private stepT0 = performance.now();
  constructor(private readonly stateDir: string, op: Op, host: string, address: string | null, by: string) {
    this.rec = { op, host, address, pid: process.pid, by, startedAt: new Date().toISOString(), step: 'start', steps: [] };
  }

  private async save(): Promise<void> {
    const rec = { ...this.rec, steps: [...this.rec.steps] };
    await updateOnboarding(this.stateDir, (f) => {
      f.current = f.current.filter((c) => !(c.pid === rec.pid && c.host === rec.host && c.op === rec.op));
      if (rec.result) f.history.push(rec);
      else f.current.push(rec);
    }).catch(() => undefined);
  }

  async begin(): Promise<void> { await this.save(); }

  async start(step: string): Promise<void> {
    this.rec.step = step;
    this.stepT0 = performance.now();
    await this.save();
  }

  /** Ends the current step. */
  async end(ok: boolean, detail?: string): Promise<StepRecord> {
    const s: StepRecord = { step: this.rec.step, ok, ms: Math.round(performance.now() - this.stepT0), ...(detail ? { detail } : {}) };
    this.rec.steps.push(s);
    await this.save();
    return s;
  }

  async finish(ok: boolean, error?: string): Promise<void> {
    this.rec.result = ok ? 'ok' : 'failed';
    this.rec.durationMs = Math.round(performance.now() - this.t0);
    if (error) this.rec.error = error;
    await this.save();
  }

  get elapsedMs(): number { return Math.round(performance.now() - this.t0); }
}

/**
 * Gauges for the listener's registry, computed from onboarding.json at each scrape (the CLI runs in
 * another process): operations in progress, and per host the last operation's result and duration.
 */
/** The last finished operation of each op and host (history is oldest first). */
function lastFinished(history: readonly OpRecord[]): OpRecord[] {
  const last = new Map<string, OpRecord>();
  for (const h of history) last.set(`${h.op} ${h.host}`, h);
  return [...last.values()];
}

export function registerOnboardingMetrics(registry: Registry, stateDir: string): void {
  let snapshot: Promise<OnboardingFile> | null = null;
  const read = () => (snapshot ??= readOnboarding(stateDir).finally(() => setTimeout(() => { snapshot = null; }, 200).unref()));
  new Gauge({
    name: 'paas_rproxy_onboarding_in_progress', help: 'proxy onboarding/offboarding operations in progress, by op, host and current step',
    labelNames: ['op', 'host', 'step'], registers: [registry],
    async collect() {
      this.reset();
      for (const c of liveOperations(await read())) this.set({ op: c.op, host: c.host, step: c.step }, 1);
    },
  });
  new Gauge({
    name: 'paas_rproxy_onboarding_last_duration_seconds', help: 'duration of the last finished onboarding/offboarding, by op, host and result',
    labelNames: ['op', 'host', 'result'], registers: [registry],
    async collect() {
      this.reset();
      for (const h of lastFinished((await read()).history)) this.set({ op: h.op, host: h.host, result: h.result ?? 'failed' }, (h.durationMs ?? 0) / 1000);
    },
  });
  new Gauge({
    name: 'paas_rproxy_onboarding_last_finished_timestamp_seconds', help: 'end of the last finished onboarding/offboarding (unix time), by op, host and result',
    labelNames: ['op', 'host', 'result'], registers: [registry],
    async collect() {
      this.reset();
      for (const h of lastFinished((await read()).history)) this.set({ op: h.op, host: h.host, result: h.result ?? 'failed' }, (Date.parse(h.startedAt) + (h.durationMs ?? 0)) / 1000);
    },
  });
}

/** Lines for `paas-rproxy status` (the status command can print these from status.json's "onboarding"). */
export function formatOnboarding(o: { current?: OpRecord[]; last?: OpRecord[] } | undefined, now = Date.now()): string[] {
  if (!o) return [];
  const lines: string[] = [];
  for (const c of o.current ?? []) {
    lines.push(`${c.op} ${c.host} in progress (by ${c.by}, pid ${c.pid}): step ${c.step}, ${((now - Date.parse(c.startedAt)) / 1000).toFixed(0)} s so far`);
  }
  for (const h of o.last ?? []) {
    const steps = h.steps.map((s) => `${s.step} ${(s.ms / 1000).toFixed(1)}s${s.ok ? '' : ' FAILED'}`).join(', ');
    lines.push(`${h.op} ${h.host} ${h.result ?? '?'} at ${h.startedAt} in ${((h.durationMs ?? 0) / 1000).toFixed(1)} s (${steps})${h.error ? `: ${h.error}` : ''}`);
  }
  return lines;
}
