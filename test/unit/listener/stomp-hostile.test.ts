// The STOMP intake (the real StompIntake and stompit) against a minimal in-process STOMP server on 127.0.0.1 that
// sends what ActiveMQ forwards from a hostile publisher: the publisher's SEND headers come to the listener as
// MESSAGE headers (ActiveMQ's STOMP transport accepts up to 1000 headers of up to 10 KiB each, StompWireFormat),
// so the listener must read any such frame, and one frame must never stop the intake (everything behind it waits).
import test from 'ava';
import net from 'node:net';
import { StompIntake, type Delivery, type StompSettings } from '../../../generator/src/listener/stomp.js';

interface FakeBroker { port: number; acks: Record<string, string>[]; connects: number; close(): Promise<void> }

/** a STOMP 1.2 server: CONNECTED, then on SUBSCRIBE the given MESSAGE frames (each `extra` is raw header lines) */
async function fakeBroker(messages: { id: string; extra: string; body: string }[]): Promise<FakeBroker> {
  const acks: Record<string, string>[] = [];
  const sockets = new Set<net.Socket>();
  const state = { connects: 0 };
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let buf = '';
    s.on('data', (chunk) => {
      buf += chunk.toString('utf8');
      let nul: number;
      while ((nul = buf.indexOf('\0')) >= 0) {
        const frame = buf.slice(0, nul).replace(/^\n+/, '');
        buf = buf.slice(nul + 1);
        const [head = ''] = frame.split('\n\n');
        const [command, ...lines] = head.split('\n');
        const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]));
        if (command === 'CONNECT' || command === 'STOMP') { state.connects++; s.write('CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\0'); }
        else if (command === 'SUBSCRIBE') {
          for (const m of messages) {
            s.write(`MESSAGE\nsubscription:${headers.id}\nmessage-id:${m.id}\nack:ack-${m.id}\ndestination:/queue/paas-rproxy.routinginfo\n${m.extra}content-length:${Buffer.byteLength(m.body)}\n\n${m.body}\0`);
          }
        } else if (command === 'ACK') acks.push(headers);
        else if (command === 'DISCONNECT') { if (headers.receipt) s.write(`RECEIPT\nreceipt-id:${headers.receipt}\n\n\0`); s.end(); }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port, acks, get connects() { return state.connects; },
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}

const settings = (port: number, maxBodyBytes?: number): StompSettings => ({
  brokers: [{ host: '127.0.0.1', port }], login: 'u', passcode: 'p', destination: '/queue/paas-rproxy.routinginfo',
  clientId: 'c', heartbeatMs: 0, prefetch: 10, reconnectInitialMs: 20, reconnectMaxMs: 50, connectTimeoutMs: 2000,
  ...(maxBodyBytes ? { maxBodyBytes } : {}),
});

/** runs the intake until `n` deliveries came or it gave up waiting (a stalled intake makes the test fail, not hang) */
async function consume(broker: FakeBroker, n: number, maxBodyBytes?: number): Promise<{ got: Delivery[]; events: string[]; errors: string[]; fields: Record<string, unknown>[] }> {
  const got: Delivery[] = [];
  const events: string[] = [];
  const fields: Record<string, unknown>[] = [];
  const errors: string[] = [];
  const onUncaught = (e: Error) => { errors.push(e.message); };
  process.on('uncaughtException', onUncaught);
  const intake = new StompIntake(settings(broker.port, maxBodyBytes), (d) => { got.push(d); }, (e, f) => { events.push(e); fields.push({ event: e, ...f }); });
  intake.start();
  for (let i = 0; i < 300 && got.length < n && errors.length === 0 && broker.connects < 5; i++) await new Promise((r) => setTimeout(r, 10));
  for (const d of got) await d.ack();
  await intake.stop();
  process.off('uncaughtException', onUncaught);
  return { got, events, errors, fields };
}

test('hostile headers: a publisher header named hasOwnProperty does not break stompit\'s parser (the intake went deaf, connected)', async (t) => {
  const broker = await fakeBroker([
    { id: 'm1', extra: 'hasOwnProperty:x\nzz:1\n', body: 'a' },
    { id: 'm2', extra: '', body: 'b' },
  ]);
  const { got, errors } = await consume(broker, 2);
  await broker.close();
  t.deepEqual(errors, [], 'no exception thrown out of the frame parser');
  t.deepEqual(got.map((d) => d.messageId), ['m1', 'm2'], 'both messages delivered, in order');
});

test('hostile headers: a 10 KiB header line and 1000 headers (what ActiveMQ accepts from a STOMP publisher) are read, not a reconnect loop', async (t) => {
  const many = Array.from({ length: 990 }, (_, i) => `h${i}:v\n`).join('');
  const broker = await fakeBroker([
    // ActiveMQ 1.2 escapes ':' and '\n' in values as two characters: a 10 KiB value can be a 20 KiB line
    { id: 'm1', extra: `x-long:${'\\c'.repeat(10 * 1024)}\n`, body: 'a' },
    { id: 'm2', extra: many, body: 'b' },
    { id: 'm3', extra: '', body: 'c' },
  ]);
  const { got, events } = await consume(broker, 3);
  await broker.close();
  t.deepEqual(got.map((d) => d.messageId), ['m1', 'm2', 'm3'], `delivered; events: ${[...new Set(events)].join(', ')}`);
  t.is(broker.connects, 1, 'no reconnect');
  t.true(got.every((d) => Object.keys(d.headers).length <= 6), 'a delivery keeps only the headers the listener uses (not 25 MiB of a publisher\'s)');
  t.deepEqual(broker.acks.map((a) => a.id), ['ack-m1', 'ack-m2', 'ack-m3'], 'the acks still carry the ack id');
});

test('hostile bodies: a body over max_body_bytes is not held whole while queued (ActiveMQ takes STOMP bodies up to 100 MB, the prefetch is 1,000): its size is kept, its first bytes for the log', async (t) => {
  const big = 'x'.repeat(3 << 20);
  const broker = await fakeBroker([{ id: 'm1', extra: '', body: big }, { id: 'm2', extra: '', body: 'small' }]);
  const { got } = await consume(broker, 2, 1 << 20);
  await broker.close();
  t.deepEqual(got.map((d) => d.messageId), ['m1', 'm2']);
  t.true((got[0]?.body.length ?? Infinity) <= 4096, `held ${got[0]?.body.length} characters of a 3 MiB body`);
  t.is(got[0]?.bodyBytes, 3 << 20, 'the size as received, for the rejection');
  t.is(got[1]?.body, 'small');
});

test('an unreadable frame (beyond the limits: only another protocol could publish it) is named in the log as what holds the queue, with what to do', async (t) => {
  const many = Array.from({ length: 1200 }, (_, i) => `h${i}:v\n`).join('');
  const broker = await fakeBroker([{ id: 'm1', extra: many, body: 'a' }, { id: 'm2', extra: '', body: 'b' }]);
  const { got, fields } = await consume(broker, 2);
  await broker.close();
  t.deepEqual(got, [], 'nothing behind it is read (the operator must act)');
  const d = fields.find((f) => f.event === 'broker_disconnected');
  t.is(d?.error, 'too many headers');
  t.regex(String(d?.hint), /the first unacked message of \/queue\/paas-rproxy\.routinginfo is unreadable and holds every message behind it; move or delete it/);
});

test('hostile content-length: a text message whose content-length header lies (ActiveMQ forwards a STOMP publisher\'s content-length as is when it also sent amq-msg-type:text, and re-encodes an invalid UTF-8 body longer) is read to its NUL, not a reconnect loop', async (t) => {
  // the publisher sent `amq-msg-type:text`, `content-length:1` and the byte 0xFF: ActiveMQ forwards U+FFFD (3 bytes)
  const broker = await fakeBroker([
    { id: 'm1', extra: 'amq-msg-type:text\ncontent-length:1\n', body: '\uFFFD' },
    { id: 'm2', extra: '', body: 'b' },
  ]);
  const { got, fields } = await consume(broker, 2);
  await broker.close();
  t.deepEqual(got.map((d) => [d.messageId, d.body]), [['m1', '\uFFFD'], ['m2', 'b']], JSON.stringify(fields.filter((f) => f.event === 'broker_disconnected')[0]));
  t.is(broker.connects, 1, 'no reconnect');
});
