/**
 * What onboarding/offboarding leaves on disk, under state_dir (paths: io/statedir.ts):
 * - onboarding.json: the operation in progress (pid, step) and the last 20 finished ones (steps, timings);
 *   `paas-rproxy status` reads it here (onboardingStatus);
 * - fleet.json (the proxies that are provisioned and part of the VRRP set) is status/fleet.ts's: the runner reads it.
 * Plus Prometheus gauges read from onboarding.json at scrape time (registerOnboardingMetrics).
 */
import { promises as fs } from 'node:fs';
import { Gauge, type Registry } from 'prom-client';
import { writeFileAtomic } from '../io/atomic.js';
import { onboardingFile } from '../io/statedir.js';
import { pidAlive } from '../io/pid.js';

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


/** onboarding.json; null when there is none (or it cannot be read). */
async function readOnboardingFile(stateDir: string): Promise<OnboardingFile | null> {
  try {
    const j = JSON.parse(await fs.readFile(onboardingFile(stateDir), 'utf8')) as OnboardingFile;
    return { schema: 1, current: Array.isArray(j.current) ? j.current : [], history: Array.isArray(j.history) ? j.history : [] };
  } catch { return null; }
}

export async function readOnboarding(stateDir: string): Promise<OnboardingFile> {
  return (await readOnboardingFile(stateDir)) ?? { schema: 1, current: [], history: [] };
}

/** What `paas-rproxy status` shows: the operations in progress as last recorded and the last 5 finished; null = none ever. */
export async function onboardingStatus(stateDir: string): Promise<{ current: OpRecord[]; last: OpRecord[] } | null> {
  const f = await readOnboardingFile(stateDir);
  return f ? { current: f.current, last: f.history.slice(-5) } : null;
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
    await writeFileAtomic(onboardingFile(stateDir), JSON.stringify(f, null, 1) + '\n');
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

/** Lines for `paas-rproxy status` (from onboardingStatus). */
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
