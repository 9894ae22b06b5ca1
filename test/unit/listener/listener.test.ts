import test from 'ava';
import { Batcher, type IntakePort, type BatchOutcome } from '../../../generator/src/listener/batcher.js';
import { connectHeaders, subscribeHeaders, type StompSettings, type Delivery } from '../../../generator/src/listener/stomp.js';
import { FakeClock } from '../../fixtures/clock.js';


const live = { alive: true };
function delivery(id: string, log: string[]): Delivery {
  return { messageId: id, body: `---\n:action: :create_application\n`, headers: { 'message-id': id }, receivedAt: Date.now(), connection: live, ack: async () => { log.push(`ack ${id}`); return true; } };
}

test('batcher: messages arriving together are applied in one call, acked only after it resolved (one cumulative ack, for the last)', async (t) => {
  const log: string[] = [];
  const port: IntakePort = {
    async apply(batch) {
      log.push(`apply ${batch.map((d) => d.messageId).join(',')}`);
      await clock.sleep(30);
      log.push('written');
      return { messages: batch.map((d) => ({ messageId: d.messageId, docs: [] })), changedApps: [] } satisfies BatchOutcome;
    },
  };
  const clock = new FakeClock();
  const b = new Batcher(port, { quietMs: 10, maxBatch: 100, maxDelayMs: 50 }, () => undefined, () => log.push('applied'), clock);
  for (const id of ['m1', 'm2', 'm3']) b.push(delivery(id, log));
  await clock.advance(120);
  t.deepEqual(log, ['apply m1,m2,m3', 'written', 'applied', 'ack m3']);
  await b.stop();
});

test('batcher: a failing apply acks nothing, never nacks, and retries the same messages', async (t) => {
  const log: string[] = [];
  let fail = 1;
  const port: IntakePort = {
    async apply(batch) {
      log.push(`apply ${batch.map((d) => d.messageId).join(',')}`);
      if (fail-- > 0) throw Object.assign(new Error('disk full'), { code: 'ERR_IO' });
      return { messages: batch.map((d) => ({ messageId: d.messageId, docs: [] })), changedApps: [] };
    },
  };
  const events: string[] = [];
  const clock = new FakeClock();
  const after: boolean[] = [];
  const b = new Batcher(port, { quietMs: 5, maxBatch: 100, maxDelayMs: 20 }, (e) => events.push(e), (_b, _o, afterFailure) => after.push(afterFailure), clock);
  b.push(delivery('m1', log));
  await clock.advance(1500); // the retry pause is 450-550 ms (backoff with jitter)
  t.deepEqual(log, ['apply m1', 'apply m1', 'ack m1']);
  t.true(events.includes('apply_error'));
  t.deepEqual(after, [true], 'the apply after a failed one says so: the failed one may have written the state (the listener then lets the runner look)');
  b.push(delivery('m2', log));
  await clock.advance(100);
  t.deepEqual(after, [true, false]);
  await b.stop();
});

test('batcher: stop waits for the apply in flight and its acks; later messages stay unacked', async (t) => {
  const log: string[] = [];
  const port: IntakePort = {
    async apply(batch) { applying = true; await clock.sleep(50); log.push(`written ${batch.length}`); return { messages: batch.map((d) => ({ messageId: d.messageId, docs: [] })), changedApps: [] }; },
  };
  let applying = false;
  const clock = new FakeClock();
  const b = new Batcher(port, { quietMs: 1, maxBatch: 1, maxDelayMs: 1 }, () => undefined, () => undefined, clock);
  b.push(delivery('m1', log));
  await clock.advance(1);
  t.true(applying, "m1's apply is in flight");
  b.push(delivery('m2', log));
  const stopped = b.stop();
  await clock.advance(50); // m1's apply ends
  await stopped;
  b.push(delivery('m3', log));
  await clock.advance(100);
  t.deepEqual(log, ['written 1', 'ack m1']);
});

const base: StompSettings = {
  brokers: [{ host: 'b1', port: 61613 }], login: 'routinginfo', passcode: 'pw', destination: '/queue/paas-rproxy.routinginfo',
  clientId: 'paas-rproxy', heartbeatMs: 10000, prefetch: 500, reconnectInitialMs: 500, reconnectMaxMs: 30000, connectTimeoutMs: 5000,
};

test('stomp: queue consumer is exclusive, cumulative acks (client), no client-id', (t) => {
  t.deepEqual(subscribeHeaders(base), { destination: '/queue/paas-rproxy.routinginfo', ack: 'client', 'activemq.prefetchSize': '500', 'activemq.exclusive': 'true' });
  t.deepEqual(connectHeaders(base), { host: '/', login: 'routinginfo', passcode: 'pw', 'heart-beat': '10000,10000' });
});

test('stomp: a topic destination is a durable subscription (client-id in CONNECT, subscriptionName = client-id)', (t) => {
  const s = { ...base, destination: '/topic/routinginfo' };
  t.is(connectHeaders(s)['client-id'], 'paas-rproxy');
  t.is(subscribeHeaders(s)['activemq.subscriptionName'], 'paas-rproxy');
  t.is(subscribeHeaders(s).ack, 'client');
});

test('seen ids: persisted, reloaded, never re-added', async (t) => {
  const { SeenIds } = await import('../../../generator/src/listener/seen.js');
  const { mkdtempSync, readFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const path = await import('node:path');
  const dir = mkdtempSync(path.join(tmpdir(), 'seen-'));
  const a = await SeenIds.open(dir);
  t.false(a.has('ID:1'));
  await a.add(['ID:1', 'ID:2', '']);
  await a.add(['ID:2', 'ID:3']);
  t.true(a.has('ID:1') && a.has('ID:3'));
  t.false(a.has(''));
  t.is(readFileSync(path.join(dir, 'applied-messages.log'), 'utf8'), 'ID:1\nID:2\nID:3\n');
  const b = await SeenIds.open(dir);
  t.true(b.has('ID:2'));
});

test('batcher: under load the next apply takes what arrived during the previous one (up to maxBatch), idle ones stay small', async (t) => {
  const sizes: number[] = [];
  const port: IntakePort = {
    async apply(batch) { sizes.push(batch.length); await clock.sleep(40); return { messages: batch.map((d) => ({ messageId: d.messageId, docs: [] })), changedApps: [] }; },
  };
  const clock = new FakeClock();
  const b = new Batcher(port, { quietMs: 5, maxBatch: 4, maxDelayMs: 20 }, () => undefined, () => undefined, clock);
  const log: string[] = [];
  b.push(delivery('idle', log));
  await clock.advance(10); // applied alone, 5 ms after it came
  t.deepEqual(sizes, [1]);
  for (let i = 0; i < 7; i++) b.push(delivery(`m${i}`, log)); // arrive while 'idle' is being applied
  await clock.advance(40);
  await clock.advance(200);
  t.deepEqual(sizes, [1, 4, 3], 'the queue is taken at once after each apply, maxBatch at most');
  t.deepEqual(log, ['ack idle', 'ack m3', 'ack m6'], 'one cumulative ack per apply');
  await b.stop();
});

test('batcher: an apply holds at most maxBatchChars of bodies (a single larger message goes alone); prepare sees a message once, when queued, only while it fits the next batch', async (t) => {
  const sizes: number[] = [];
  const prepared: string[] = [];
  const port: IntakePort = {
    prepare(d) { prepared.push(d.messageId); },
    async apply(batch) { sizes.push(batch.length); return { messages: batch.map((d) => ({ messageId: d.messageId, docs: [] })), changedApps: [] }; },
  };
  const clock = new FakeClock();
  const b = new Batcher(port, { quietMs: 5, maxBatch: 100, maxDelayMs: 20, maxBatchChars: 100 }, () => undefined, () => undefined, clock);
  const log: string[] = [];
  const sized = (id: string, n: number): Delivery => ({ ...delivery(id, log), body: 'x'.repeat(n) });
  for (const [id, n] of [['a', 40], ['b', 40], ['c', 40], ['big', 500], ['d', 10]] as const) b.push(sized(id, n));
  t.deepEqual(prepared, ['a', 'b'], 'prepared as they were queued while they fit the next batch (c would make 120 > 100); the rest are parsed by their own apply, so a flood never holds more than about a batch parsed');
  await clock.advance(100);
  t.deepEqual(sizes, [2, 1, 1, 1], 'a+b (80), c (c+big is over), big alone, d');
  t.deepEqual(log, ['ack b', 'ack c', 'ack big', 'ack d']);
  await b.stop();
});
