// Batches deliveries that arrive together into one apply (one lock, one vars write), then acks them only after the
// apply resolved (the effect is durable): ONE cumulative ack per connection, for its last message in the batch.
// Applies are serialized. Never NACKs: when an apply fails for a passing reason (I/O, lock timeout), the batch is
// retried after a pause and nothing is acked. A dead connection's queued deliveries are dropped (redelivered).
//
// Why a cumulative ack is safe (an ack of message m covers every message its connection delivered before m):
//  - `push` receives a connection's messages in the order the broker dispatched them (stompit reads one frame, body
//    to the end, before it parses the next), and the queue keeps that order: a batch is always a prefix of the queue,
//    a failed batch goes back to the front, dropping a dead connection's deliveries keeps the others' order;
//  - applies run one at a time, and a failed one is retried before anything behind it;
//  so when a batch has been applied, every message its connections delivered before the batch's last one of that
//  connection is in this batch or in one applied before it. Messages dropped unapplied (stop, connection gone) are
//  never followed by an ack on their connection: stop acks only the apply in flight, which holds earlier ones, and a
//  dead connection is never acked again. A reconnect is a new connection object: nothing is ever acked across.
import type { Delivery, DeliveryConnection } from './stomp.js';
import { backoffDelay } from '../runner/backoff.js';
import { systemClock, type Clock, type TimerHandle } from '../runner/clock.js';

export interface DocOutcome { action: string; app: string; result: 'applied' | 'unchanged' | 'rejected'; code?: string; reason?: string }
export interface MessageOutcome { messageId: string; docs: DocOutcome[] }
export interface BatchOutcome { messages: MessageOutcome[]; changedApps: string[] }

export interface IntakePort {
  /** parse + validate + reduce + durable write, one call for the whole batch; rejections recorded by the store */
  apply(batch: readonly Delivery[]): Promise<BatchOutcome>;
  /**
   * Called once per delivery when it is queued: CPU work that does not depend on the state (parsing, validation)
   * can run here, while the apply before it waits on its fsyncs, instead of on the next apply's critical path.
   */
  prepare?(d: Delivery): void;
}

export interface BatcherOptions {
  quietMs: number;
  /** messages per apply, at most */
  maxBatch: number;
  maxDelayMs: number;
  /** message body characters per apply, at most (a single larger message goes alone): bounds what one apply holds */
  maxBatchChars?: number;
}

/**
 * The listener's batching (listener.ts; measured by `npm run bench:state`, figures in README.md). maxBatch is only
 * reached under load; the prefetch window must exceed it, so the broker keeps delivering while an apply runs.
 */
export const LISTENER_BATCHING: BatcherOptions = { quietMs: 15, maxBatch: 500, maxDelayMs: 100, maxBatchChars: 16 << 20 };
/**
 * STOMP prefetch (activemq.prefetchSize): unacked messages the broker hands over ahead of the applies. It bounds what
 * a hostile publisher can make the listener hold (each message up to max_body_bytes, 1 MiB by default, parsed while
 * queued): 2,000 was 10-20 % faster on bulk loads and doubles that bound, so it stays at 1,000.
 */
export const LISTENER_PREFETCH = 1000;

type Log = (event: string, fields: Record<string, unknown>) => void;

export class Batcher {
  private queue: Delivery[] = [];
  /** body characters in `queue` (kept as it changes: a sum per push would be quadratic) */
  private queuedChars = 0;
  private firstAt = 0;
  private timer: TimerHandle | undefined;
  private busy: Promise<void> | null = null;
  private stopped = false;
  private failures = 0;
  private lastConnection: DeliveryConnection | undefined;
  private wakeRetry: (() => void) | undefined;

  constructor(private readonly port: IntakePort, private readonly opts: BatcherOptions, private readonly log: Log,
    private readonly onApplied: (batch: readonly Delivery[], outcome: BatchOutcome, afterFailure: boolean) => void, private readonly clock: Clock = systemClock) {}

  push(d: Delivery): void {
    if (this.stopped) return; // not acked: redelivered to the next consumer
    // a new connection: the one before is gone, its queued deliveries go (M3: at most one live window queued)
    if (d.connection !== this.lastConnection) { this.lastConnection = d.connection; this.dropDead(); }
    if (this.queue.length === 0) this.firstAt = this.clock.now();
    this.queue.push(d);
    this.queuedChars += d.body.length;
    // parsed now only if it fits the next batch: what waits beyond that stays a body until its turn, so parsed
    // documents held at once are bounded by about one batch (a hostile flood of 1 MiB messages cannot multiply it)
    const fitsNext = this.queue.length <= this.opts.maxBatch && this.queuedChars <= (this.opts.maxBatchChars ?? Infinity);
    if (fitsNext) try { this.port.prepare?.(d); } catch { /* the apply does the work again, and reports */ }
    this.schedule();
  }

  get queued(): number { return this.queue.length; }

  /**
   * Review M3: the queued deliveries of a connection that is gone are dropped (their broker redelivers them on the
   * next connection, and a cumulative ack could never cover them); otherwise every reconnect while applies fail would
   * add another prefetch window of stale copies. Keeps the order of what stays; linear in the queue.
   */
  private dropDead(): void {
    let dead = 0;
    for (const d of this.queue) if (!d.connection.alive) dead++;
    if (dead === 0) return;
    const keep: Delivery[] = [];
    let chars = 0;
    for (const d of this.queue) if (d.connection.alive) { keep.push(d); chars += d.body.length; }
    this.queue = keep;
    this.queuedChars = chars;
    if (keep.length) this.firstAt = this.clock.now();
    this.log('deliveries_dropped', { messages: dead, reason: 'connection gone: redelivered on the next one' });
  }

  private schedule(): void {
    if (this.busy || this.queue.length === 0) return;
    if (this.timer) this.clock.clearTimeout(this.timer);
    const full = this.queue.length >= this.opts.maxBatch || this.queuedChars >= (this.opts.maxBatchChars ?? Infinity);
    const wait = full ? 0 : Math.max(0, Math.min(this.opts.quietMs, this.firstAt + this.opts.maxDelayMs - this.clock.now()));
    this.timer = this.clock.setTimeout(() => this.flush(), wait);
  }

  private flush(): void {
    this.timer = undefined;
    this.dropDead();
    if (this.busy || this.queue.length === 0) return;
    const batch = this.queue.splice(0, this.batchLength());
    for (const d of batch) this.queuedChars -= d.body.length;
    if (this.queue.length) this.firstAt = this.clock.now();
    this.busy = this.process(batch).finally(() => { this.busy = null; if (!this.stopped) this.schedule(); });
  }

  /**
   * How many queued messages the next apply takes. Adaptive by construction: an idle listener applies each message
   * as it comes (after quietMs), while under load everything that arrived during the previous apply goes into the
   * next one (up to maxBatch / maxBatchChars), so the per-apply costs (lock, index.json, fsync rounds, seen log) are
   * shared by more messages exactly when messages arrive faster than applies finish.
   */
  private batchLength(): number {
    const max = Math.min(this.queue.length, this.opts.maxBatch);
    const cap = this.opts.maxBatchChars;
    if (cap === undefined) return max;
    let chars = 0;
    for (let i = 0; i < max; i++) {
      chars += (this.queue[i] as Delivery).body.length;
      if (chars > cap) return Math.max(1, i);
    }
    return max;
  }

  private async process(batch: Delivery[]): Promise<void> {
    let outcome: BatchOutcome;
    const t0 = performance.now();
    // a failed apply may have made its changes durable before it failed (the seen log, after the state): its retry
    // then finds nothing to change, and only `afterFailure` tells the listener to let the runner look
    const afterFailure = this.failures > 0;
    try {
      outcome = await this.port.apply(batch);
      this.failures = 0;
    } catch (e) {
      // a passing fault: keep the messages unacked and try again (never NACK: the DLQ would eat them)
      this.failures++;
      const delay = backoffDelay(this.failures, 500, 30000, Math.random);
      this.log('apply_error', { error: e instanceof Error ? e.message : String(e), code: (e as { code?: string }).code, messages: batch.length, retry_in_ms: delay });
      this.queue.unshift(...batch);
      for (const d of batch) this.queuedChars += d.body.length;
      this.firstAt = this.clock.now();
      this.dropDead(); // the connections that died meanwhile: their messages come again on the next one
      // the pause before the retry; stop() ends it at once (SIGTERM must not wait out up to 30 s of backoff)
      await new Promise<void>((r) => {
        const timer = this.clock.setTimeout(() => { this.wakeRetry = undefined; r(); }, delay);
        this.wakeRetry = () => { this.clock.clearTimeout(timer); this.wakeRetry = undefined; r(); };
      });
      return;
    }
    const ms = Math.round(performance.now() - t0);
    this.onApplied(batch, outcome, afterFailure);
    const { acked, notAcked, frames } = await ackBatch(batch);
    this.log('batch', { messages: batch.length, changed_apps: outcome.changedApps.length, apply_ms: ms, acked, ack_frames: frames, ...(notAcked ? { not_acked_connection_gone: notAcked } : {}) });
  }

  /** stop taking messages; finish the apply in flight (and its acks); drop the rest unacked (redelivered). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.wakeRetry?.();
    if (this.busy) await this.busy;
    this.queue = [];
    this.queuedChars = 0;
  }
}

/**
 * The acks of an applied batch: per connection, one cumulative ack of its LAST message in the batch (see the top of
 * this file for why that is safe). Linear in the batch. `acked` counts the messages covered.
 */
export async function ackBatch(batch: readonly Delivery[]): Promise<{ acked: number; notAcked: number; frames: number }> {
  const last = new Map<DeliveryConnection, { d: Delivery; n: number }>();
  for (const d of batch) {
    const e = last.get(d.connection);
    if (e) { e.d = d; e.n++; } else last.set(d.connection, { d, n: 1 });
  }
  let acked = 0, notAcked = 0;
  await Promise.all([...last.values()].map(async ({ d, n }) => { if (await d.ack()) acked += n; else notAcked += n; }));
  return { acked, notAcked, frames: last.size };
}
