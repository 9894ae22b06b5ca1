// Cumulative acks (STOMP ack mode `client`) against a model of ActiveMQ's STOMP subscription, as its source has it
// (activemq-stomp StompSubscription.onStompMessageAck, 5.17): per connection one subscription with its dispatched
// messages in dispatch order; an ACK of message m acks every dispatched message up to m and refills the prefetch
// window by as many; an ACK the subscription does not know is an ERROR (ProtocolConverter: "Unexpected ACK"); a
// connection that goes returns its unacked messages to the front of the queue, redelivered on the next one.
// The model checks at every ACK that each message it covers is durable; the batcher drives it through failures,
// connection losses during and between applies, and reconnects.
import test from 'ava';
import { Batcher, type IntakePort } from '../../../generator/src/listener/batcher.js';
import type { Delivery, DeliveryConnection } from '../../../generator/src/listener/stomp.js';
import { FakeClock } from '../../fixtures/clock.js';

interface Msg { id: string; redelivered: boolean }
class Conn implements DeliveryConnection { alive = true; dispatched: Msg[] = []; constructor(readonly n: number) {} }

class ModelBroker {
  queue: Msg[] = [];
  conn: Conn | null = null;
  private conns = 0;
  /** every ACK frame that reached the broker: connection number and message id */
  frames: { conn: number; id: string }[] = [];
  errors: string[] = [];
  acked = new Set<string>();
  constructor(private readonly prefetch: number, private readonly durable: Set<string>, private readonly push: (d: Delivery) => void) {}

  publish(n: number, from = 0): void { for (let i = from; i < from + n; i++) this.queue.push({ id: `m${i}`, redelivered: false }); this.dispatch(); }

  connect(): Conn { this.drop(); const c = new Conn(++this.conns); this.conn = c; this.dispatch(); return c; }

  /** the connection goes: its unacked messages go back to the front of the queue, marked redelivered */
  drop(): void {
    const c = this.conn;
    if (!c) return;
    c.alive = false;
    this.queue.unshift(...c.dispatched.map((m) => ({ id: m.id, redelivered: true })));
    c.dispatched = [];
    this.conn = null;
  }

  private dispatch(): void {
    const c = this.conn;
    while (c && c.alive && c.dispatched.length < this.prefetch && this.queue.length) {
      const m = this.queue.shift() as Msg;
      c.dispatched.push(m);
      this.push({
        messageId: m.id, body: `body of ${m.id}`, headers: { 'message-id': m.id, redelivered: String(m.redelivered) }, receivedAt: 0, connection: c,
        // as stomp.ts: a gone connection's ack is refused locally, no frame
        ack: async () => { if (!c.alive) return false; this.ack(c, m.id); return true; },
      });
    }
  }

  private ack(c: Conn, id: string): void {
    this.frames.push({ conn: c.n, id });
    const i = c.dispatched.findIndex((m) => m.id === id);
    if (i < 0) { this.errors.push(`Unexpected ACK received for message-id [${id}] on connection ${c.n}`); this.drop(); return; }
    for (const m of c.dispatched.splice(0, i + 1)) {
      if (!this.durable.has(m.id)) this.errors.push(`${m.id} acked (by the ACK of ${id}) before it was durable`);
      this.acked.add(m.id);
    }
    this.dispatch();
  }
}

/** an IntakePort that makes each new message durable in batch order (a redelivery of a durable one is a duplicate) */
function modelPort(durable: Set<string>, clock: FakeClock, fail: () => boolean, applied: string[][]): IntakePort {
  return {
    async apply(batch) {
      await clock.sleep(10);
      if (fail()) {
        // a failure may come after part of the batch was written (review M5): the first message, say
        const first = batch[0];
        if (first) durable.add(first.messageId);
        throw Object.assign(new Error('disk full'), { code: 'ERR_IO' });
      }
      applied.push(batch.map((d) => d.messageId));
      for (const d of batch) durable.add(d.messageId);
      return { messages: batch.map((d) => ({ messageId: d.messageId, docs: [] })), changedApps: [] };
    },
  };
}

test('cumulative ack: one ACK frame per apply, for its last message, sent after the apply; every message it covers is durable', async (t) => {
  const clock = new FakeClock();
  const durable = new Set<string>();
  const applied: string[][] = [];
  let b!: Batcher;
  const broker = new ModelBroker(100, durable, (d) => b.push(d));
  b = new Batcher(modelPort(durable, clock, () => false, applied), { quietMs: 5, maxBatch: 4, maxDelayMs: 20 }, () => undefined, () => undefined, clock);
  broker.connect();
  broker.publish(10);
  await clock.advance(200);
  t.deepEqual(applied, [['m0', 'm1', 'm2', 'm3'], ['m4', 'm5', 'm6', 'm7'], ['m8', 'm9']]);
  t.deepEqual(broker.frames, [{ conn: 1, id: 'm3' }, { conn: 1, id: 'm7' }, { conn: 1, id: 'm9' }]);
  t.deepEqual(broker.errors, []);
  t.is(broker.acked.size, 10);
  await b.stop();
});

test('cumulative ack: a failed apply acks nothing, and what arrives meanwhile waits behind it: its retry acks once, for the last', async (t) => {
  const clock = new FakeClock();
  const durable = new Set<string>();
  const applied: string[][] = [];
  let fails = 1;
  let b!: Batcher;
  const broker = new ModelBroker(100, durable, (d) => b.push(d));
  b = new Batcher(modelPort(durable, clock, () => fails-- > 0, applied), { quietMs: 5, maxBatch: 100, maxDelayMs: 20 }, () => undefined, () => undefined, clock);
  broker.connect();
  broker.publish(2);
  await clock.advance(12); // m0, m1 in an apply that fails
  broker.publish(2, 2);
  await clock.advance(100);
  t.deepEqual(broker.frames, [], 'nothing acked while the first apply is failing');
  await clock.advance(1500);
  t.deepEqual(applied, [['m0', 'm1', 'm2', 'm3']], 'the retry takes the failed batch first, in order');
  t.deepEqual(broker.frames, [{ conn: 1, id: 'm3' }]);
  t.deepEqual(broker.errors, []);
  await b.stop();
});

test('cumulative ack: the connection goes during an apply: its ack is refused locally; the new connection acks only its own deliveries (the redeliveries included)', async (t) => {
  const clock = new FakeClock();
  const durable = new Set<string>();
  const applied: string[][] = [];
  const events: string[] = [];
  let b!: Batcher;
  const broker = new ModelBroker(100, durable, (d) => b.push(d));
  b = new Batcher(modelPort(durable, clock, () => false, applied), { quietMs: 5, maxBatch: 3, maxDelayMs: 20 }, (e) => events.push(e), () => undefined, clock);
  broker.connect();
  broker.publish(5);
  await clock.advance(8); // m0..m2 in an apply; m3, m4 queued
  broker.connect(); // the old connection is gone: m0..m4 come again on connection 2
  broker.publish(1, 5);
  await clock.advance(300);
  t.deepEqual(applied[0], ['m0', 'm1', 'm2'], 'the apply in flight finishes');
  t.deepEqual(applied.slice(1).flat(), ['m0', 'm1', 'm2', 'm3', 'm4', 'm5'], "connection 1's queued m3, m4 were dropped, not applied ahead of their redeliveries");
  t.true(events.includes('deliveries_dropped'));
  t.true(broker.frames.every((f) => f.conn === 2), 'no ACK frame on connection 1 after it went, none on 2 for 1\'s deliveries');
  t.deepEqual(broker.frames.map((f) => f.id), ['m2', 'm5']);
  t.deepEqual(broker.errors, []);
  t.is(broker.acked.size, 6);
  await b.stop();
});

test('review M3: while applies fail, reconnects do not pile up windows of stale deliveries (at most the live connection\'s window is queued)', async (t) => {
  const clock = new FakeClock();
  const durable = new Set<string>();
  const applied: string[][] = [];
  let failing = true;
  let b!: Batcher;
  const broker = new ModelBroker(5, durable, (d) => b.push(d));
  b = new Batcher(modelPort(durable, clock, () => failing, applied), { quietMs: 5, maxBatch: 2, maxDelayMs: 20 }, () => undefined, () => undefined, clock);
  broker.connect();
  broker.publish(5);
  let most = 0;
  for (let i = 0; i < 6; i++) {
    await clock.advance(700); // an apply fails, its retry waits
    broker.connect(); // each reconnect: the whole window (5) delivered again
    most = Math.max(most, b.queued);
  }
  t.true(most <= 5, `queued at most one window (5), saw ${most}`);
  failing = false;
  await clock.advance(60_000);
  t.deepEqual(broker.errors, []);
  t.is(broker.acked.size, 5);
  t.true(broker.frames.every((f) => f.conn === 7));
  await b.stop();
});

/** a small deterministic PRNG (mulberry32) */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => { a = (a + 0x6D2B79F5) >>> 0; let x = a; x = Math.imul(x ^ (x >>> 15), x | 1); x ^= x + Math.imul(x ^ (x >>> 7), x | 61); return ((x ^ (x >>> 14)) >>> 0) / 4294967296; };
}

test('cumulative ack under random failures and connection losses: never an ACK the subscription does not know, never one covering a message not yet durable, nothing lost, queue bounded', async (t) => {
  for (let seed = 1; seed <= 30; seed++) {
    const rnd = prng(seed);
    const clock = new FakeClock();
    const durable = new Set<string>();
    const applied: string[][] = [];
    const PREFETCH = 20, MAX_BATCH = 8, N = 300;
    let b!: Batcher;
    let most = 0;
    const broker = new ModelBroker(PREFETCH, durable, (d) => { b.push(d); most = Math.max(most, b.queued); });
    b = new Batcher(modelPort(durable, clock, () => rnd() < 0.15, applied), { quietMs: 5, maxBatch: MAX_BATCH, maxDelayMs: 20 }, () => undefined, () => undefined, clock);
    broker.connect();
    let published = 0;
    for (let step = 0; step < 400 && broker.acked.size < N; step++) {
      if (published < N) { const k = Math.min(N - published, Math.floor(rnd() * 12)); broker.publish(k, published); published += k; }
      const r = rnd();
      if (r < 0.05) broker.connect(); // lost and re-established at once
      else if (r < 0.08) { broker.drop(); await clock.advance(Math.floor(rnd() * 400)); broker.connect(); }
      await clock.advance(Math.floor(rnd() * 40));
    }
    if (published < N) { broker.publish(N - published, published); published = N; }
    for (let i = 0; i < 200 && broker.acked.size < N; i++) await clock.advance(1000);
    t.deepEqual(broker.errors, [], `seed ${seed}`);
    t.is(broker.acked.size, N, `seed ${seed}: every message acked in the end`);
    t.is(durable.size, N, `seed ${seed}`);
    t.true(most <= PREFETCH + MAX_BATCH, `seed ${seed}: queued at most a window and a batch, saw ${most}`);
    t.true(broker.frames.length < N / 2, `seed ${seed}: ${broker.frames.length} ACK frames for ${N} messages`);
    await b.stop();
  }
});

test('stop during the pause after a failed apply: it does not wait out the backoff (up to 30 s of SIGTERM), nothing is acked, the batch is left for redelivery', async (t) => {
  const clock = new FakeClock();
  const durable = new Set<string>();
  const applied: string[][] = [];
  let b!: Batcher;
  const broker = new ModelBroker(100, durable, (d) => b.push(d));
  b = new Batcher(modelPort(durable, clock, () => true, applied), { quietMs: 5, maxBatch: 10, maxDelayMs: 20 }, () => undefined, () => undefined, clock);
  broker.connect();
  broker.publish(3);
  for (let i = 0; i < 8; i++) await clock.advance(20); // failing and retried: the pauses grow
  const stopped = b.stop().then(() => 'stopped');
  // the clock is not advanced: a stop that waits for the retry timer never resolves
  const outcome = await Promise.race([stopped, new Promise((r) => setImmediate(() => setImmediate(() => r('still waiting for the retry timer'))))]);
  t.is(outcome, 'stopped');
  t.deepEqual(broker.frames, []);
  t.is(b.queued, 0);
});
