// Onboarding's verify step against two local HTTP servers (the new proxy and the one in service): its requests
// reuse keep-alive connections (a connection per request made it 3.9 s at 10,000 apps), a connection the server
// drops is retried once, and a wrong answer is still a failure naming the host name.
import test from 'ava';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { AppState, State } from '../../../generator/src/state/types.js';
import { verifyRoutes, UNKNOWN_HOST } from '../../../generator/src/onboard/verify.js';

const app = (id: string): AppState => ({
  id, app_name: id.split('-')[0]!, namespace: id.split('-')[1]!, scalable: false, ha: false, aliases: [`www.${id}.example.net`], tls: [],
  endpoints: [{ address: '198.51.100.31', port: 8080, gear_id: 'g1', port_name: 'web', protocols: ['http'], types: ['web_framework'], mappings: [{ frontend: '', backend: '' }] }],
} as unknown as AppState);
const stateOf = (n: number): State => ({ apps: new Map(Array.from({ length: n }, (_, i) => app(`a${i}-ns`)).map((a) => [a.id, a])), aliasOwner: new Map() });

interface Srv { server: http.Server; connections: number; requests: number; close(): Promise<void> }

/** answers 404 for the unknown name, `status(host)` otherwise; `drop(n)` destroys the socket instead of the n-th answer */
async function serve(address: string, port: number, status: (host: string) => number, drop: (n: number, host: string) => boolean = () => false): Promise<Srv> {
  const sockets = new Set<Socket>();
  const s: Srv = {
    connections: 0, requests: 0,
    server: http.createServer((req, res) => {
      const n = ++s.requests;
      const host = String(req.headers.host);
      if (drop(n, host)) { req.socket.destroy(); return; }
      res.writeHead(host === UNKNOWN_HOST ? 404 : status(host)).end('x');
    }),
    close: () => new Promise((r) => { for (const k of sockets) k.destroy(); s.server.close(() => r()); }),
  };
  s.server.on('connection', (k: Socket) => { s.connections++; sockets.add(k); k.on('close', () => sockets.delete(k)); });
  await new Promise<void>((r) => s.server.listen(port, address, () => r()));
  return s;
}

async function pair(newStatus: (host: string) => number, drop?: (n: number, host: string) => boolean): Promise<{ mine: Srv; ref: Srv; port: number }> {
  const mine = await serve('127.0.0.1', 0, newStatus, drop);
  const port = (mine.server.address() as AddressInfo).port;
  const ref = await serve('127.0.0.2', port, () => 200);
  return { mine, ref, port };
}

test('verify: every server name of the picked apps, compared with the proxy in service, over keep-alive connections', async (t) => {
  const { mine, ref, port } = await pair(() => 200);
  try {
    const v = await verifyRoutes(stateOf(300), 'apps.example.com', '127.0.0.1', '127.0.0.2', { port, max: 300, concurrency: 8 });
    t.true(v.ok, JSON.stringify(v.failures.slice(0, 3)));
    t.is(v.requests, 300 * 2 * 2 + 1, 'fqdn and alias of 300 apps on both proxies, plus the unknown name');
    t.is(mine.requests, 601);
    t.is(ref.requests, 601);
    t.true(mine.connections <= 9, `the new proxy saw ${mine.connections} connections for 601 requests`);
    t.true(ref.connections <= 9, `the proxy in service saw ${ref.connections} connections for 601 requests`);
  } finally { await mine.close(); await ref.close(); }
});

test('verify: an answer that differs from the proxy in service fails, naming the host name', async (t) => {
  const { mine, ref, port } = await pair((host) => (host === 'www.a7-ns.example.net' ? 404 : 200));
  try {
    const v = await verifyRoutes(stateOf(20), 'apps.example.com', '127.0.0.1', '127.0.0.2', { port, concurrency: 4 });
    t.false(v.ok);
    t.deepEqual(v.failures.map((f) => [f.app, f.name, f.status]), [['a7-ns', 'www.a7-ns.example.net', 404]]);
  } finally { await mine.close(); await ref.close(); }
});

test('verify: a connection the server drops is retried once on a new one (a dropped answer twice in a row fails)', async (t) => {
  const dropped = new Set<string>();
  // the first request for every fifth app's fqdn loses its connection
  const { mine, ref, port } = await pair(() => 200, (_n, host) => /^a\d*[05]-ns\.apps/.test(host) && !dropped.has(host) && Boolean(dropped.add(host)));
  try {
    const v = await verifyRoutes(stateOf(50), 'apps.example.com', '127.0.0.1', '127.0.0.2', { port, concurrency: 4 });
    t.true(v.ok, JSON.stringify(v.failures.slice(0, 3)));
    t.is(dropped.size, 10);
    t.is(mine.requests, 101 + 10, 'each dropped request was sent again once');
  } finally { await mine.close(); await ref.close(); }
  const twice = await pair(() => 200, (n) => n > 1);
  try {
    const v = await verifyRoutes(stateOf(2), 'apps.example.com', '127.0.0.1', '127.0.0.2', { port: twice.port, concurrency: 1 });
    t.false(v.ok);
    t.true(v.failures.every((f) => typeof f.status === 'string'), JSON.stringify(v.failures));
  } finally { await twice.mine.close(); await twice.ref.close(); }
});
