// STOMP intake with stompit: a broker list tried in turn, our own outer reconnect loop forever with backoff
// (stompit gives up after an ERROR frame on CONNECT), heart-beats, an error handler on every client,
// cumulative acks (ack mode `client`) sent only by the caller after the effect of every message up to the acked one
// is durable (the batcher: README.md, "Cumulative acks"), never across connections, and never a NACK.
import { isIP } from 'node:net';
import stompit from 'stompit';
import { backoffDelay } from '../runner/backoff.js';

export interface BrokerAddress { host: string; port: number; tls?: boolean }

export interface StompSettings {
  brokers: BrokerAddress[];
  login: string;
  passcode: string;
  destination: string; // /queue/… (default) or /topic/… (then a durable subscription named client_id)
  clientId: string;
  heartbeatMs: number;
  prefetch: number;
  reconnectInitialMs: number;
  reconnectMaxMs: number;
  connectTimeoutMs: number;
  /** PEM CA bundle the brokers' TLS certificates are verified against (null: the system's CAs) */
  ca?: string | null;
  /**
   * Bodies over this many bytes are read to the end but not kept: the delivery holds their first 4 KiB (for the
   * rejection's log excerpt) and their size (`bodyBytes`), the intake rejects them (ERR_SPI_TOO_LARGE). ActiveMQ
   * takes STOMP bodies up to 100 MB, and a prefetch window of them held whole would run the heap out.
   */
  maxBodyBytes?: number;
}

/** What a delivery over `maxBodyBytes` keeps of its body. */
export const CUT_BODY_KEEP_BYTES = 4096;

/** One broker connection, with its one subscription: what a cumulative ack can cover. */
export interface DeliveryConnection {
  /** false once the connection is gone: its unacked deliveries are redelivered on the next one */
  readonly alive: boolean;
}

export interface Delivery {
  messageId: string;
  body: string;
  headers: Record<string, string>;
  receivedAt: number; // ms since epoch, when the body was read
  /** the body's size in bytes as received, when it was over StompSettings.maxBodyBytes (then `body` is its start) */
  bodyBytes?: number;
  /** the connection that delivered it: an ack never covers another connection's messages */
  connection: DeliveryConnection;
  /**
   * CUMULATIVE (STOMP ack mode `client`): acknowledges this message and every message delivered before it on the
   * same connection, so the caller may call it only once all of those are durably done. Resolves false when that
   * connection is gone (the broker redelivers whatever it had not acked).
   */
  ack(): Promise<boolean>;
}

type Log = (event: string, fields: Record<string, unknown>) => void;

/**
 * What one MESSAGE frame's header section may hold. A hostile publisher's SEND headers reach us as MESSAGE headers:
 * ActiveMQ's STOMP transport takes up to 1000 headers of up to 10 KiB a line (StompWireFormat MAX_HEADERS,
 * MAX_HEADER_LENGTH), and in STOMP 1.2 escapes ':' '\\' and newlines in values as two characters. stompit's defaults
 * (64 headers, 1,024-byte lines) made such a frame a parse error: the connection dropped, the message came first again
 * on the next one, forever, and nothing behind it was ever applied. A frame beyond these limits can only come from a
 * publisher over another protocol (OpenWire): give the publisher's user STOMP only.
 */
export const STOMP_MAX_HEADERS = 1100;
export const STOMP_MAX_LINE_BYTES = 24 * 1024;
/** The headers a Delivery keeps (the rest, up to ~25 MiB of a hostile publisher's, are not held while queued). */
const KEPT_HEADERS = ['message-id', 'destination', 'subscription', 'ack', 'timestamp', 'redelivered'] as const;

// stompit's header parser calls `this._headers.hasOwnProperty(name)` on an object whose keys the publisher chooses: a
// header named `hasOwnProperty` made the next header line throw a TypeError out of the socket's data handler, which
// left the frame stream stuck with the connection up (the intake deaf, nothing applied, no reconnect). Its
// replacement (the same code, with an own-property check that cannot be shadowed), installed once.
const frameStreamProto = (stompit as unknown as { IncomingFrameStream: { prototype: Record<string, unknown> } }).IncomingFrameStream.prototype;
/** stompit's ParseError (not exported; only it makes the stream fail cleanly, anything else is thrown out of it) */
const ParseError: new (m: string) => Error = (() => {
  try { (frameStreamProto._exceededLineLengthLimit as (this: unknown) => never).call({ _maxLineLength: 0 }); } catch (e) { if (e instanceof Error) return e.constructor as new (m: string) => Error; }
  throw new Error('stompit: IncomingFrameStream._exceededLineLengthLimit did not throw its ParseError: the header-parser fix in listener/stomp.ts needs review for this stompit version');
})();
if (['_parseHeaderLine', '_parseLine', '_beginBody', '_parseNullByte', '_parseBody', '_beginTrailer'].some((m) => typeof frameStreamProto[m] !== 'function')) {
  throw new Error('stompit: IncomingFrameStream lacks _parseHeaderLine/_parseLine/_beginBody/_parseNullByte/_parseBody/_beginTrailer: the parser fixes in listener/stomp.ts need review for this stompit version');
}
// A MESSAGE whose content-length lies: ActiveMQ forwards a STOMP publisher's `content-length` header as is on a text
// message (sent with `amq-msg-type:text`; LegacyFrameTranslator removes it only for a bytes message) and, from 6.2.0
// (AMQ-8398; 5.17.2 keeps the bytes), re-encodes the text, so an invalid UTF-8 body comes out longer than declared. stompit then found no NUL after the declared
// length: a parse error, a reconnect, the same message first again, forever. Instead the body runs on to its NUL.
const parseBody = frameStreamProto._parseBody as (this: unknown) => void;
frameStreamProto._parseNullByte = function parseNullByte(this: { _chunk: Buffer; _consume(n: number): void; _beginTrailer(): void; _parse: unknown }): void {
  if (this._chunk[0] !== 0) { this._parse = parseBody; return; }
  this._consume(1);
  this._beginTrailer();
};
frameStreamProto._parseHeaderLine = function parseHeaderLine(this: {
  _parseLine(): string | null; _beginBody(): unknown; _decode(s: string): string;
  _headers: Record<string, string>; _numHeaders: number; _maxHeaders: number;
}): unknown {
  const line = this._parseLine();
  if (line === null) return undefined;
  if (line.length === 0) return this._beginBody();
  const separator = line.indexOf(':');
  if (separator === -1) throw new ParseError('header parse error');
  const name = this._decode(line.substring(0, separator));
  const value = this._decode(line.substring(separator + 1));
  if (!Object.prototype.hasOwnProperty.call(this._headers, name)) {
    if (this._numHeaders === this._maxHeaders) throw new ParseError('too many headers');
    // defined, not assigned: a header named __proto__ is a plain key
    Object.defineProperty(this._headers, name, { value, enumerable: true, writable: true, configurable: true });
    this._numHeaders += 1;
  }
  return undefined;
};

interface StompClient {
  on(ev: string, fn: (...a: any[]) => void): void;
  subscribe(headers: Record<string, unknown>, cb: (err: Error | null, msg: any) => void): unknown;
  ack(message: unknown, headers?: unknown, sendOptions?: unknown, cb?: (err?: Error | null) => void): void;
  disconnect(cb?: (err?: Error | null) => void): void;
  destroy(e?: Error): void;
}

export function subscribeHeaders(s: StompSettings): Record<string, string> {
  const h: Record<string, string> = {
    destination: s.destination,
    // cumulative: one ACK frame per apply instead of one per message (the broker acks every message of this
    // subscription dispatched up to the acked one, and refills the prefetch window by as many)
    ack: 'client',
    'activemq.prefetchSize': String(Math.max(1, s.prefetch)),
  };
  if (s.destination.startsWith('/topic/')) h['activemq.subscriptionName'] = s.clientId; // durable: equal to client-id
  else h['activemq.exclusive'] = 'true'; // one active listener; a standby takes over when it dies
  return h;
}

export function connectHeaders(s: StompSettings): Record<string, string> {
  const h: Record<string, string> = {
    host: '/',
    login: s.login,
    passcode: s.passcode,
    'heart-beat': `${s.heartbeatMs},${s.heartbeatMs}`,
  };
  // client-id only works inside the CONNECT headers; needed for the durable topic subscription
  if (s.destination.startsWith('/topic/')) h['client-id'] = s.clientId;
  return h;
}

export class StompIntake {
  private client: StompClient | null = null;
  private alive = false;
  private stopped = false;
  private attempt = 0;
  private next = 0;
  private timer: NodeJS.Timeout | undefined;
  connectedBroker: string | null = null;

  constructor(private readonly s: StompSettings, private readonly onMessage: (d: Delivery) => void, private readonly log: Log,
    private readonly onState: (connected: boolean, broker: string | null) => void = () => undefined) {}

  start(): void { this.connect(); }

  private connect(): void {
    if (this.stopped) return;
    const broker = this.s.brokers[this.next % this.s.brokers.length] as BrokerAddress;
    this.next++;
    const name = `${broker.host}:${broker.port}`;
    let client: StompClient;
    let settled = false;
    const fail = (err: Error | undefined, phase: string) => {
      if (settled) return;
      settled = true;
      if (this.stopped) { try { client.destroy(); } catch { /* ignore */ } return; }
      const wasAlive = this.client === client && this.alive;
      if (this.client === client) { this.alive = false; this.client = null; this.connectedBroker = null; this.onState(false, null); }
      try { client.destroy(); } catch { /* already dead */ }
      // consecutive failures back off; a session that was established starts again from the first delay
      if (wasAlive) this.attempt = 0;
      this.attempt++;
      const delay = backoffDelay(this.attempt, this.s.reconnectInitialMs, this.s.reconnectMaxMs, Math.random);
      // a frame stompit could not read is at the head of the queue: it comes first again on every reconnect
      const unreadable = wasAlive && (err as { isProtocolError?: () => boolean } | undefined)?.isProtocolError?.() === true;
      this.log('broker_disconnected', {
        broker: name, phase, error: err?.message ?? 'closed', reconnect_in_ms: delay, attempt: this.attempt,
        ...(unreadable ? { hint: `a frame from the broker could not be read (limits: ${STOMP_MAX_HEADERS} headers, ${STOMP_MAX_LINE_BYTES}-byte header lines): if this repeats, the first unacked message of ${this.s.destination} is unreadable and holds every message behind it; move or delete it (ActiveMQ web console), and let the publisher's user publish over STOMP only` } : {}),
      });
      if (!this.stopped) this.timer = setTimeout(() => this.connect(), delay);
    };
    try {
      client = stompit.connect({
        host: broker.host, port: broker.port, timeout: this.s.connectTimeoutMs,
        // STOMP over TLS: the broker's certificate is verified (CA and host name), never accepted blindly
        // (SNI only for a DNS name: RFC 6066 forbids an IP address there; Node checks an IP against the IP SANs)
        ...(broker.tls ? { ssl: true, rejectUnauthorized: true, ...(isIP(broker.host) ? {} : { servername: broker.host }), ...(this.s.ca ? { ca: this.s.ca } : {}) } : {}),
        connectHeaders: connectHeaders(this.s),
        // ActiveMQ's inactivity monitor may leave up to 2 intervals between its heart-beats: stompit's own check
        // (one interval + 100 ms) would drop healthy connections; allow 2.5 intervals of silence
        heartbeatDelayMargin: Math.round(this.s.heartbeatMs * 1.5),
        // what ActiveMQ forwards from a publisher's SEND (see STOMP_MAX_HEADERS)
        maxHeaders: STOMP_MAX_HEADERS, maxLineLength: STOMP_MAX_LINE_BYTES,
      } as any, (err: Error | null) => {
        if (err) { fail(err, 'connect'); return; }
        if (this.stopped) { try { client.disconnect(); } catch { /* ignore */ } return; }
        this.client = client;
        this.alive = true;
        this.connectedBroker = name;
        // what the batcher sees of this connection: alive while it is the current one (a reconnect makes a new one)
        const self = this;
        const conn: DeliveryConnection = { get alive() { return self.client === client && self.alive; } };
        // subscribe again inside every connect callback
        client.subscribe(subscribeHeaders(this.s), (e: Error | null, message: any) => {
          if (e) { fail(e, 'subscribe'); return; }
          this.receive(client, conn, message);
        });
        this.log('broker_connected', { broker: name, destination: this.s.destination, attempt: this.attempt });
        this.onState(true, name);
      }) as unknown as StompClient;
    } catch (e) {
      // synchronous failures (bad options)
      setImmediate(() => fail(e as Error, 'connect'));
      return;
    }
    // always an error handler: a broker fault never crashes the process
    client.on('error', (e: Error) => fail(e, this.client === client ? 'session' : 'connect'));
    client.on('end', () => fail(new Error('connection ended by the broker'), 'session'));
  }

  private receive(client: StompClient, conn: DeliveryConnection, message: any): void {
    // only the headers the listener and the ack use are held while the delivery is queued (bounded per message)
    const all = message.headers as Record<string, string>;
    const headers: Record<string, string> = {};
    for (const k of KEPT_HEADERS) if (Object.prototype.hasOwnProperty.call(all, k) && typeof all[k] === 'string') headers[k] = all[k] as string;
    const messageId = headers['message-id'] ?? '';
    // read every body to the end
    readBody(message, this.s.maxBodyBytes, (err: Error | null, body: string, bodyBytes?: number) => {
      if (err) { this.log('message_read_error', { message_id: messageId, error: err.message }); return; } // the client is dead: redelivered
      if (this.paused) return; // shutting down: left unacked, redelivered to the next consumer
      this.onMessage({
        messageId, body, headers, receivedAt: Date.now(), connection: conn, ...(bodyBytes !== undefined ? { bodyBytes } : {}),
        ack: () => new Promise<boolean>((resolve) => {
          if (!conn.alive) { resolve(false); return; }
          try { client.ack({ headers }, undefined, undefined, (e?: Error | null) => resolve(!e)); } catch { resolve(false); }
        }),
      });
    });
  }

  get connected(): boolean { return this.alive; }

  private paused = false;
  /** Stop handing messages over (they stay unacked and go back to the queue at disconnect); acks still work. */
  pause(): void { this.paused = true; }

  /** Stop consuming: DISCONNECT (unacked messages are redelivered to the next consumer). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    const c = this.client;
    this.client = null;
    this.alive = false;
    if (!c) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => { try { c.destroy(); } catch { /* ignore */ } resolve(); }, 2000);
      try { c.disconnect(() => { clearTimeout(t); resolve(); }); } catch { clearTimeout(t); resolve(); }
    });
  }
}

/**
 * Reads a frame's body to the end (the next frame is parsed only after it), as stompit's readString does, but keeps at
 * most `cap` bytes of it: over the cap, only its first CUT_BODY_KEEP_BYTES and its size are handed on.
 */
function readBody(frame: NodeJS.ReadableStream, cap: number | undefined, done: (err: Error | null, body: string, bodyBytes?: number) => void): void {
  const chunks: Buffer[] = [];
  let kept = 0;
  let total = 0;
  let settled = false;
  frame.on('data', (c: Buffer | string) => {
    const b = typeof c === 'string' ? Buffer.from(c, 'utf8') : c;
    total += b.length;
    if (cap === undefined || kept <= cap) { chunks.push(b); kept += b.length; }
  });
  frame.on('end', () => {
    if (settled) return;
    settled = true;
    const all = Buffer.concat(chunks);
    if (cap !== undefined && total > cap) done(null, all.subarray(0, CUT_BODY_KEEP_BYTES).toString('utf8'), total);
    else done(null, all.toString('utf8'));
  });
  frame.on('error', (e: Error) => { if (!settled) { settled = true; done(e, ''); } });
}
