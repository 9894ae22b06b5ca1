// The listener process: STOMP intake → batched durable applies (ack after) → coalesced targeted runs,
// with structured logs, Prometheus metrics and the status file.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { packageRoot, type Config } from '../config.js';
import { RproxyError } from '../errors.js';
import { StateStore } from '../vars/store.js';
import { Runner, type RunRecord, type SyncResult } from '../runner/runner.js';
import { runnerPorts, runnerSettings } from '../runner/ports.js';
import { WarmController, playbookEnv, removeStaleWarmSockets } from '../runner/warm.js';
import { warmSocketFile } from '../io/statedir.js';
import { Metrics } from '../metrics/metrics.js';
import { registerOnboardingMetrics } from '../onboard/records.js';
import { updateStatus, type StatusFile } from '../status/file.js';
import { recordRun } from '../runner/record.js';
import { StompIntake, type Delivery } from './stomp.js';
import { Batcher, LISTENER_BATCHING, LISTENER_PREFETCH, type BatchOutcome } from './batcher.js';
import { storeIntake } from './intake.js';
import { SeenIds } from './seen.js';
import { checkInventory, applyInventoryPlan } from '../onboard/watcher.js';
import type { Logger } from './log.js';

export interface ListenerOptions {
  log: Logger;
  /** how long SIGTERM waits for a running playbook before abandoning it (it is retried at the next start) */
  stopGraceMs?: number;
  prefetch?: number;
}

interface PendingEvent { seq: number; t0: number; app: string; messageId: string }

export class Listener {
  private store!: StateStore;
  private runner!: Runner;
  private warm: WarmController | undefined;
  private intake!: StompIntake;
  private batcher!: Batcher;
  readonly metrics = new Metrics();
  private server: import('node:http').Server | undefined;
  private pending: PendingEvent[] = [];
  private messages = 0;
  private lastMessageAt: string | null = null;
  private readonly startedAt = new Date().toISOString();
  private statusTimer: NodeJS.Timeout | undefined;
  private statusDirty = true;
  private newRuns: RunRecord[] = [];
  private lastPlan: Record<string, string[]> = {};
  private statusWrite: Promise<void> = Promise.resolve();
  metricsAddress: string | null = null;

  constructor(private readonly config: Config, private readonly opts: ListenerOptions) {}

  async start(): Promise<void> {
    const { config, opts } = this;
    const log = opts.log;
    // what needs an operator but fails no batch (a rejects log that cannot rotate) goes to the listener's log
    this.store = await StateStore.open(config, { log: (e, f) => log(e, f) });
    try {
      const s = await this.metrics.serve(config.metrics.listen);
      this.server = s.server;
      this.metricsAddress = s.address;
    } catch (e) {
      log('metrics_error', { listen: config.metrics.listen, error: (e as Error).message });
    }
    registerOnboardingMetrics(this.metrics.registry, config.state_dir);
    if (config.ansible.warm) {
      // the warm Ansible controller: our child, started with exactly the env and cwd of the runs (runner/README.md)
      const playbookDir = path.dirname(config.ansible.playbook);
      this.warm = new WarmController({
        command: config.ansible.command, cwd: playbookDir, env: playbookEnv(process.env, playbookDir),
        socketPath: warmSocketFile(config.state_dir, process.pid), script: path.join(packageRoot(), 'ansible', 'warm_controller.py'),
        log: (e, f) => log(e, f),
      });
      // not awaited: runs before it is ready start ansible-playbook cold
      void removeStaleWarmSockets(config.state_dir).then(() => this.warm?.start());
    }
    this.runner = new Runner({ ...runnerSettings(config), warm: this.warm }, runnerPorts(config, this.store), (e, f) => log(e, f), {
      onRun: (r) => this.onRun(r),
      onSync: (r) => this.onSync(r),
      onPlan: (p) => { this.lastPlan = p.perHost; this.statusDirty = true; },
    });
    const ca = config.stomp.ca_file ? await readFile(config.stomp.ca_file, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new RproxyError('ERR_CONFIG_INVALID', `stomp.ca_file ${config.stomp.ca_file} cannot be read: ${e.code ?? e.message}`);
    }) : null;
    const seen = await SeenIds.open(config.state_dir);
    this.batcher = new Batcher(storeIntake(this.store, config.max_body_bytes, seen), LISTENER_BATCHING, (e, f) => log(e, f),
      (batch, outcome, afterFailure) => this.onApplied(batch, outcome, afterFailure));
    this.intake = new StompIntake({
      brokers: config.stomp.brokers, login: config.stomp.login, passcode: config.stomp.passcode, destination: config.stomp.destination,
      clientId: config.stomp.client_id, heartbeatMs: config.stomp.heartbeat_ms, prefetch: opts.prefetch ?? LISTENER_PREFETCH,
      reconnectInitialMs: 500, reconnectMaxMs: 30000, connectTimeoutMs: 5000, ca, maxBodyBytes: config.max_body_bytes,
    }, (d) => this.batcher.push(d), (e, f) => {
      if (e === 'broker_disconnected') this.metrics.reconnects.inc();
      log(e, f);
    }, (connected) => { this.metrics.connected.set(connected ? 1 : 0); this.statusDirty = true; });
    log('listener_start', {
      pid: process.pid, brokers: config.stomp.brokers.map((b) => `${b.tls ? 'stomp+ssl' : 'stomp'}://${b.host}:${b.port}`), destination: config.stomp.destination,
      state_dir: config.state_dir, inventory_dir: config.inventory_dir, metrics: this.metricsAddress, apps: this.store.state.apps.size,
    });
    this.runner.start(); // catches up whatever is pending since the last successful runs
    this.intake.start();
    this.statusTimer = setInterval(() => this.flushStatus(), 1000);
    // every 5 s: state written by another process, and inventory-driven onboarding/offboarding (a host added to /
    // removed from the proxies group)
    this.inventoryTimer = setInterval(() => { void this.checkInventory(); }, 5000);
    void this.checkInventory();
    this.flushStatus();
  }

  private inventoryTimer: NodeJS.Timeout | undefined;
  private inventoryBusy: Promise<void> | null = null;

  private checkInventory(): Promise<void> {
    if (this.inventoryBusy || this.stopping) return this.inventoryBusy ?? Promise.resolve();
    const log = this.opts.log;
    this.inventoryBusy = (async () => {
      try {
        // `paas-rproxy apply` (without --sync) from another process changed the routing state: put it live
        const known = this.store.state;
        await this.store.refresh();
        if (this.store.state !== known) this.runner.notify('external');
        const plan = await checkInventory(this.config);
        if (plan.actions.length === 0) return;
        const out = await applyInventoryPlan(this.config, plan, { log: (e, f) => log(e, f) });
        if (out.some((o) => o.ok && o.action.kind !== 'adopt')) this.runner.notify('inventory');
      } catch (e) {
        log('inventory_check_error', { error: e instanceof Error ? e.message : String(e) });
      }
    })().finally(() => { this.inventoryBusy = null; });
    return this.inventoryBusy;
  }

  private stopping = false;

  private onApplied(batch: readonly Delivery[], outcome: BatchOutcome, afterFailure = false): void {
    const log = this.opts.log;
    this.messages += batch.length;
    this.lastMessageAt = new Date().toISOString();
    // after a failed apply, a pass even when nothing changed now: the failed one may have written the state (the
    // runner compares digests, so a pass with nothing pending runs nothing)
    const seq = outcome.changedApps.length ? this.runner.notify('event') : afterFailure ? this.runner.notify('recovered') : this.runner.currentSeq;
    const changed = new Set(outcome.changedApps);
    outcome.messages.forEach((m, i) => {
      const d = batch[i] as Delivery;
      const ts = Number(d.headers.timestamp);
      const t0 = Number.isFinite(ts) && ts > 0 && ts <= d.receivedAt + 5000 ? Math.min(ts, d.receivedAt) : d.receivedAt;
      for (const doc of m.docs) {
        this.metrics.events.inc({ action: doc.action, result: doc.result });
        if (doc.result === 'rejected') this.metrics.rejected.inc({ code: doc.code ?? 'unknown' });
        log(doc.result === 'rejected' ? 'message_rejected' : 'message', {
          message_id: m.messageId, app: doc.app, action: doc.action, result: doc.result,
          ...(doc.code ? { code: doc.code, reason: doc.reason } : {}),
          redelivered: d.headers.redelivered === 'true', ...(m.docs.length > 1 ? { docs: m.docs.length } : {}),
        });
        if (doc.result === 'applied' && changed.has(doc.app)) this.pending.push({ seq, t0, app: doc.app, messageId: m.messageId });
      }
    });
    this.metrics.pending.set(this.pending.length);
    this.statusDirty = true;
  }

  private onRun(r: RunRecord): void {
    this.metrics.runs.inc({ kind: r.kind, result: r.result });
    this.metrics.runDuration.observe({ result: r.result }, r.durationMs / 1000);
    const end = (Date.parse(r.startedAt) + r.durationMs) / 1000;
    if (r.result !== 'aborted' && r.kind !== 'vrrp') for (const h of r.perHost) if (h.outcome === 'ok') this.metrics.lastSuccess.set({ proxy: h.host }, end);
    this.newRuns.push(r);
    this.statusDirty = true;
  }

  private onSync(res: SyncResult): void {
    if (!res.ok) return; // events stay pending until every proxy has them
    const now = Date.now();
    const keep: PendingEvent[] = [];
    for (const p of this.pending) {
      if (p.seq <= res.snapshotSeq) {
        this.metrics.latency.observe((now - p.t0) / 1000);
        this.opts.log('event_live', { message_id: p.messageId, app: p.app, latency_ms: now - p.t0 });
      } else keep.push(p);
    }
    this.pending = keep;
    this.metrics.pending.set(this.pending.length);
    this.statusDirty = true;
  }

  private flushStatus(): void {
    if (!this.statusDirty) return;
    this.statusDirty = false;
    const runs = this.newRuns.splice(0);
    const snapshot = {
      connected: this.intake.connected, broker: this.intake.connectedBroker, pending: this.pending.length,
      plan: this.lastPlan, backoff: this.runner.backoffState(),
    };
    this.statusWrite = this.statusWrite.then(() => updateStatus(this.config.state_dir, (s: StatusFile) => {
      s.listener = {
        pid: process.pid, startedAt: this.startedAt, connected: snapshot.connected, broker: snapshot.broker,
        destination: this.config.stomp.destination, lastMessageAt: this.lastMessageAt, messages: this.messages,
      };
      s.pendingEvents = snapshot.pending;
      s.pendingApps = snapshot.plan;
      s.backoff = snapshot.backoff;
      for (const r of runs) recordRun(s, r, 'listener');
    })).catch((e: unknown) => this.opts.log('status_write_error', { error: String(e) }));
  }

  /** SIGTERM: stop consuming, finish the apply in flight (acks only what is written), finish or abandon the run. */
  async stop(): Promise<void> {
    const log = this.opts.log;
    log('listener_stopping', { pending_events: this.pending.length, run_in_progress: this.runner?.busy ?? false });
    this.stopping = true;
    if (this.inventoryTimer) clearInterval(this.inventoryTimer);
    // stop consuming, finish the apply in flight and ack it on the still-open connection, then DISCONNECT
    this.intake?.pause();
    await this.batcher?.stop();
    await this.intake?.stop();
    if (this.runner) {
      const grace = this.opts.stopGraceMs ?? 15000;
      let timer: NodeJS.Timeout | undefined;
      const abandon = new Promise<void>((r) => { timer = setTimeout(() => { log('run_abandoned', { after_ms: grace }); void this.runner.stop({ abandon: true }).then(r); }, grace); });
      await Promise.race([this.runner.stop({ abandon: false }), abandon]);
      if (timer) clearTimeout(timer);
    }
    if (this.inventoryBusy) {
      // an onboarding/offboarding in progress: give it the same grace, then leave it (its records say where it stopped)
      await Promise.race([this.inventoryBusy, new Promise((r) => setTimeout(r, this.opts.stopGraceMs ?? 15000))]);
    }
    await this.warm?.stop();
    if (this.statusTimer) clearInterval(this.statusTimer);
    this.statusDirty = true;
    this.flushStatus();
    await this.statusWrite;
    await updateStatus(this.config.state_dir, (s) => { if (s.listener) s.listener.connected = false; }).catch(() => undefined);
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    log('listener_stopped', { pending_events: this.pending.length });
  }
}
