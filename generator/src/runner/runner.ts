// The runner edge: coalesced, one-at-a-time, targeted playbook runs; per-host applied digests; retries with
// exponential backoff per host; a host in backoff never delays the others (it is retried on its own timer).
import { backoffDelay } from './backoff.js';
import { idle, trigger, dueAt, take, ended, type CoalescerState } from './coalescer.js';
import { fullRoutesCommand, targetedRoutesCommand, type PlaybookSettings, type PlaybookCommand } from './command.js';
import { planRun, snapshotOf, digestView, type Digests, type DigestView, type RunPlan } from './pending.js';
import { AppliedCache } from './applied.js';
import { runPlaybook } from './spawn.js';
import { toRecord, type RunRecord } from './record.js';
import { syncHold } from './vrrphold.js';
import { PlaybookLock } from './lock.js';
import type { WarmController } from './warm.js';
import { playbookLockFile } from '../io/statedir.js';
import { systemClock, type Clock, type TimerHandle } from './clock.js';

export interface RunnerSettings {
  stateDir: string;
  playbook: PlaybookSettings;
  quietMs: number;
  maxWaitMs: number;
  /** with quiet_ms 0: changes that arrived during a run wait for a pause this long (at most maxWaitMs after that run) */
  burstQuietMs: number;
  retryInitialMs: number;
  retryMaxMs: number;
  reconcileIntervalS: number;
  lockTimeoutMs: number;
  /** the listener's warm Ansible controller (runner/warm.ts); absent = every run starts ansible-playbook cold */
  warm?: WarmController | undefined;
}

export interface RunnerPorts {
  /** current per-app digests (core's appDigest over the state on disk) */
  digests(): Promise<Digests>;
  /**
   * The same as a live view, when there is one (the listener's store: runner/ports.ts): no copy per pass. Read it
   * synchronously; without it, `digests()` is used.
   */
  view?(): Promise<DigestView>;
  /** the proxies group's hosts, inventory order */
  proxies(): Promise<string[]>;
}

export type Log = (event: string, fields: Record<string, unknown>) => void;

export type { HostRunResult, RunRecord } from './record.js';

export interface SyncResult {
  runs: RunRecord[];
  ok: boolean;
  /** hosts still lacking apps after this pass (failed, unreachable, skipped in backoff) */
  lagging: Record<string, string[]>;
  plan: RunPlan;
  /** the digests snapshot taken before the runs, and a sequence the caller can correlate events with */
  snapshotSeq: number;
  /** proxies whose VRRP hold file could not be written (runner/vrrphold.ts): retry them */
  holdPending: string[];
}

export interface RunnerHooks {
  onRun?(r: RunRecord): void;
  onSync?(r: SyncResult): void;
  onPlan?(plan: RunPlan): void;
}

/** The current digests: the live view when the ports have one, else the plain object. */
async function currentDigests(ports: RunnerPorts): Promise<DigestView> {
  return ports.view ? ports.view() : digestView(await ports.digests());
}

/** The snapshot's digests of the apps one host lacked: recorded on top of what it had, they make it the snapshot. */
function changesFor(changes: ReadonlyMap<string, string | null>, apps: readonly string[]): Map<string, string | null> {
  const out = new Map<string, string | null>();
  for (const a of apps) if (changes.has(a)) out.set(a, changes.get(a) as string | null);
  return out;
}

/**
 * One synchronisation pass (no coalescing, no retry): what each host lacks since its last successful run.
 * `exclude` hosts are left out (in backoff). Used by the Runner and by `paas-rproxy sync`.
 */
export async function syncPass(s: RunnerSettings, ports: RunnerPorts, log: Log, opts: {
  trigger: string; exclude?: ReadonlySet<string>; onlyHosts?: ReadonlySet<string>; full?: boolean; signal?: AbortSignal;
  seq?: number; hooks?: RunnerHooks;
  /** what each host applied, kept between passes (the Runner's); absent: read from the files for this pass */
  applied?: AppliedCache;
}): Promise<SyncResult> {
  const appliedCache = opts.applied ?? new AppliedCache(s.stateDir);
  const snapshotSeq = opts.seq ?? 0;
  // Plan under the playbook lock: another process (the listener, `paas-rproxy sync`) that ran meanwhile has
  // recorded what it applied, so the same change is never run twice. The lock is held from the plan to the
  // last applied digests written; the VRRP hold step below takes it again.
  const lock = await PlaybookLock.acquire(playbookLockFile(s.stateDir), `sync pass (${opts.trigger})`, {
    timeoutMs: s.lockTimeoutMs, signal: opts.signal, onWait: (holder) => log('run_lock_wait', { holder }),
  });
  const runs: RunRecord[] = [];
  const okHosts = new Set<string>();
  let hosts: string[];
  let plan: RunPlan;
  try {
    hosts = await ports.proxies();
    const applied = new Map<string, ReadonlyMap<string, string> | null>();
    for (const h of hosts) applied.set(h, opts.full ? null : await appliedCache.get(h));
    // The snapshot BEFORE the run, what is recorded on success: the plan and what it records are taken together,
    // synchronously (a live view changes when the store commits; nothing here awaits between them).
    const current = await currentDigests(ports);
    plan = planRun(current, applied);
    const snap = snapshotOf(current, plan);
    const appCount = current.size;
    opts.hooks?.onPlan?.(plan);
    const eligible = (h: string) => !opts.exclude?.has(h) && (!opts.onlyHosts || opts.onlyHosts.has(h));
    const commands: PlaybookCommand[] = [];
    const fullHosts = plan.fullHosts.filter(eligible);
    const targetedHosts = plan.targetedHosts.filter(eligible);
    const p = plan;
    if (fullHosts.length) commands.push(fullRoutesCommand(s.playbook, fullHosts));
    if (targetedHosts.length) commands.push(targetedRoutesCommand(s.playbook, targetedHosts, p.apps.filter((a) => targetedHosts.some((h) => p.perHost[h]?.includes(a)))));
    for (const cmd of commands) {
      if (opts.signal?.aborted) break;
      log('run_start', { trigger: opts.trigger, kind: cmd.kind, command: cmd.display, argv: cmd.argv, hosts: cmd.hosts, apps: cmd.apps, app_count: cmd.apps?.length ?? appCount });
      const r = await runPlaybook(cmd, {
        lockFile: lock.file, lockTimeoutMs: s.lockTimeoutMs, signal: opts.signal, heldLock: lock, warm: s.warm,
      });
      const rec = toRecord(r, opts.trigger);
      if (!r.aborted) {
        for (const h of rec.perHost) {
          if (h.outcome !== 'ok') continue;
          if (cmd.kind === 'routes-full') await appliedCache.replace(h.host, snap.full ?? new Map());
          else await appliedCache.record(h.host, changesFor(snap.changes, plan.perHost[h.host] ?? []));
          okHosts.add(h.host);
        }
      }
      log('run', {
        run_id: rec.id, kind: rec.kind, trigger: rec.trigger, command: rec.command, hosts: rec.hosts, apps: rec.apps,
        result: rec.result, exit_code: rec.exitCode, duration_ms: rec.durationMs, warm: r.warm, per_host: rec.perHost, ...(rec.error ? { error: rec.error } : {}),
      });
      if (rec.result !== 'ok') log('run_output', { run_id: rec.id, output_tail: r.output.split('\n').slice(-40).join('\n') });
      runs.push(rec);
      opts.hooks?.onRun?.(rec);
    }
  } finally {
    await lock.release();
  }
  const lagging: Record<string, string[]> = {};
  for (const h of hosts) {
    const p = plan.perHost[h] ?? [];
    const needed = plan.fullHosts.includes(h) || p.length > 0;
    if (needed && !okHosts.has(h)) lagging[h] = p;
  }
  const holdPending = await holdStep(s, ports, log, hosts, Object.keys(lagging), runs, { ...opts, applied: appliedCache });
  const res: SyncResult = { runs, ok: Object.keys(lagging).length === 0, lagging, plan, snapshotSeq, holdPending };
  opts.hooks?.onSync?.(res);
  return res;
}

/**
 * The VRRP hold after a pass (runner/vrrphold.ts): while a proxy lacks apps after a pass, the up-to-date proxies
 * outrank it, so it cannot re-master a VIP with stale routes; lifted once it was caught up. Returns the
 * proxies whose hold file could not be written.
 */
async function holdStep(s: RunnerSettings, ports: RunnerPorts, log: Log, hosts: string[], lagging: string[], runs: RunRecord[],
  opts: { trigger: string; signal?: AbortSignal; hooks?: RunnerHooks; applied: AppliedCache }): Promise<string[]> {
  if (opts.signal?.aborted || runs.some((r) => r.result === 'aborted') || hosts.length < 2) return [];
  try {
    const h = await syncHold({
      stateDir: s.stateDir, playbook: s.playbook, lockTimeoutMs: s.lockTimeoutMs, signal: opts.signal,
      proxies: hosts, candidates: lagging, digests: () => currentDigests(ports), applied: opts.applied, warm: s.warm,
    });
    if (h.spawn) {
      const rec = toRecord(h.spawn, opts.trigger);
      log('vrrp_hold', { run_id: rec.id, stale: h.stale, hold: h.plan.hold, hosts: h.plan.hosts, result: rec.result, duration_ms: rec.durationMs, command: rec.command, ...(rec.error ? { error: rec.error } : {}) });
      runs.push(rec);
      opts.hooks?.onRun?.(rec);
    }
    return h.failed;
  } catch (e) {
    log('vrrp_hold_error', { error: e instanceof Error ? e.message : String(e) });
    return hosts.filter((x) => !lagging.includes(x));
  }
}

/** Long-running coalescing runner (the listener's). `notify()` after every durable state change. */
export class Runner {
  private co: CoalescerState = idle();
  private timer: TimerHandle | undefined;
  private running: Promise<void> | null = null;
  private stopped = false;
  private readonly abort = new AbortController();
  private seq = 0; // increases with every notify(); a pass covers everything notified before its snapshot
  private readonly backoff = new Map<string, { attempt: number; nextAt: number }>();
  private retryTimer: TimerHandle | undefined;
  private reconcileTimer: TimerHandle | undefined;
  private fullDue = false;
  /** what each host applied, in memory between passes (the files stay the truth: re-read when another process wrote) */
  private readonly applied: AppliedCache;

  constructor(private readonly s: RunnerSettings, private readonly ports: RunnerPorts, private readonly log: Log, private readonly hooks: RunnerHooks = {},
    private readonly clock: Clock = systemClock) {
    this.applied = new AppliedCache(s.stateDir);
  }

  start(): void {
    // catch up at start: whatever is pending since the last successful runs (e.g. after a crash)
    this.notify('startup');
    if (this.s.reconcileIntervalS > 0) {
      this.reconcileTimer = this.clock.setInterval(() => { this.fullDue = true; this.notify('reconcile'); }, this.s.reconcileIntervalS * 1000);
    }
  }

  get currentSeq(): number { return this.seq; }

  private lastTrigger = 'event';
  notify(reason = 'event'): number {
    if (this.stopped) return this.seq;
    this.seq++;
    this.lastTrigger = reason;
    this.co = trigger(this.co, this.clock.now());
    this.schedule();
    return this.seq;
  }

  private schedule(): void {
    if (this.stopped) return;
    const due = dueAt(this.co, this.s.quietMs, this.s.maxWaitMs, this.running !== null, this.s.burstQuietMs); // null while running: re-asked when it ends
    if (due === null) return;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = this.clock.setTimeout(() => this.fire(), Math.max(0, due - this.clock.now()));
  }

  private fire(): void {
    this.timer = undefined;
    if (this.running || this.stopped) return;
    this.co = take(this.co);
    const seq = this.seq;
    const trig = this.lastTrigger;
    this.running = this.pass(seq, trig).catch((e) => {
      this.log('runner_error', { error: e instanceof Error ? e.message : String(e) });
      this.scheduleRetry(['*']);
    }).finally(() => { this.running = null; this.co = ended(this.co, this.clock.now()); this.schedule(); });
  }

  private async pass(seq: number, trig: string): Promise<void> {
    const now = this.clock.now();
    const exclude = new Set<string>();
    this.backoff.delete('*'); // a retry after a runner error: this pass is it
    for (const [h, b] of this.backoff) if (b.nextAt > now) exclude.add(h);
    const full = this.fullDue; this.fullDue = false;
    const res = await syncPass(this.s, this.ports, this.log, {
      trigger: trig, exclude, full, signal: this.abort.signal, seq, hooks: this.hooks, applied: this.applied,
    });
    const failedHosts = [...new Set([...Object.keys(res.lagging), ...res.holdPending])].filter((h) => !exclude.has(h));
    for (const h of [...this.backoff.keys()]) if (!(h in res.lagging)) this.backoff.delete(h); // caught up, or gone from the inventory
    if (res.runs.some((r) => r.result === 'aborted')) return;
    if (failedHosts.length) this.scheduleRetry(failedHosts);
    else this.armRetryTimer();
  }

  /** a retry timer for the earliest host still waiting in backoff (hosts skipped by this pass keep theirs) */
  private armRetryTimer(): void {
    if (this.stopped || this.retryTimer || this.backoff.size === 0) return;
    const next = Math.min(...[...this.backoff.values()].map((b) => b.nextAt));
    this.retryTimer = this.clock.setTimeout(() => { this.retryTimer = undefined; this.notify('retry'); }, Math.max(0, next - this.clock.now()) + 5);
  }

  private scheduleRetry(hosts: string[]): void {
    if (this.stopped) return;
    for (const h of hosts) {
      const prev = this.backoff.get(h);
      const attempt = (prev?.attempt ?? 0) + 1;
      const delay = backoffDelay(attempt, this.s.retryInitialMs, this.s.retryMaxMs, Math.random);
      this.backoff.set(h, { attempt, nextAt: this.clock.now() + delay });
      this.log('retry_scheduled', { host: h, attempt, delay_ms: delay });
    }
    if (this.retryTimer) this.clock.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.armRetryTimer();
  }

  /** hosts currently waiting for a retry, with their attempt number and when */
  backoffState(): Record<string, { attempt: number; nextAt: string }> {
    const out: Record<string, { attempt: number; nextAt: string }> = {};
    for (const [h, b] of this.backoff) out[h] = { attempt: b.attempt, nextAt: new Date(b.nextAt).toISOString() };
    return out;
  }

  get busy(): boolean { return this.running !== null; }

  /** SIGTERM: no new runs; `abandon` interrupts the running playbook (the next start catches up), else waits for it. */
  async stop(opts: { abandon: boolean }): Promise<void> {
    this.stopped = true;
    for (const t of [this.timer, this.retryTimer]) if (t) this.clock.clearTimeout(t);
    if (this.reconcileTimer) this.clock.clearInterval(this.reconcileTimer);
    if (opts.abandon) this.abort.abort();
    if (this.running) await this.running;
  }
}
