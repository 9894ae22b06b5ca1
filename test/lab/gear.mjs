#!/usr/bin/env node
// Lab sample backend ("gear"): listens on every ADDRESS:PORT given and answers each request with its own
// identity plus what it received, so a test can tell which gear a request reached through the proxies.
//
//   node test/lab/gear.mjs --addresses 198.51.100.31-39 --ports 8080,35531-35580
//
// HTTP: first line `gear <addr>:<port>`, then `host: ...`, `path: ...` and the forwarding headers
// (`Accept: application/json` gives the same as JSON). Header `X-Gear: <addr>:<port>` on every answer.
// Websocket (any path): sends `gear <addr>:<port> ws <path>` on open, then echoes each message as `echo <msg>`.
// Special paths: /__gear/status/<code> answers with that status; /__gear/sleep/<ms> waits before answering.
import http from 'node:http';
import { WebSocketServer } from 'ws';

function expand(spec, kind) {
  const out = [];
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    if (kind === 'addr') {
      const m = /^(\d+\.\d+\.\d+\.)(\d+)(?:-(\d+))?$/.exec(part);
      if (!m) throw new Error(`bad address spec ${part}`);
      const lo = Number(m[2]);
      const hi = m[3] === undefined ? lo : Number(m[3]);
      for (let i = lo; i <= hi; i++) out.push(`${m[1]}${i}`);
    } else {
      const m = /^(\d+)(?:-(\d+))?$/.exec(part);
      if (!m) throw new Error(`bad port spec ${part}`);
      const lo = Number(m[1]);
      const hi = m[2] === undefined ? lo : Number(m[2]);
      for (let i = lo; i <= hi; i++) out.push(i);
    }
  }
  return out;
}

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : dflt;
};
const addresses = expand(opt('addresses', '198.51.100.31-39'), 'addr');
const ports = expand(opt('ports', '8080,35531-35580'), 'port');

let listening = 0;
const total = addresses.length * ports.length;

for (const address of addresses) {
  for (const port of ports) {
    const id = `${address}:${port}`;
    const server = http.createServer((req, res) => {
      const url = req.url ?? '/';
      const send = () => {
        const status = /^\/__gear\/status\/(\d{3})/.exec(url);
        const info = {
          gear: id,
          host: req.headers.host ?? '',
          path: url,
          method: req.method,
          'x-forwarded-for': req.headers['x-forwarded-for'] ?? '',
          'x-forwarded-proto': req.headers['x-forwarded-proto'] ?? '',
          'x-forwarded-host': req.headers['x-forwarded-host'] ?? '',
          'x-real-ip': req.headers['x-real-ip'] ?? '',
          remote: req.socket.remoteAddress ?? '',
        };
        const json = (req.headers.accept ?? '').includes('application/json');
        const body = json
          ? JSON.stringify(info) + '\n'
          : `gear ${id}\n` + Object.entries(info).filter(([k]) => k !== 'gear').map(([k, v]) => `${k}: ${v}`).join('\n') + '\n';
        res.writeHead(status ? Number(status[1]) : 200, {
          'content-type': json ? 'application/json' : 'text/plain',
          'x-gear': id,
          'cache-control': 'no-store',
        });
        res.end(body);
      };
      const sleep = /^\/__gear\/sleep\/(\d+)/.exec(url);
      req.resume();
      req.on('end', () => (sleep ? setTimeout(send, Math.min(Number(sleep[1]), 60000)) : send()));
    });
    const wss = new WebSocketServer({ noServer: true });
    server.on('upgrade', (req, socket, head) => {
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.send(`gear ${id} ws ${req.url ?? '/'} host=${req.headers.host ?? ''}`);
        ws.on('message', (data) => ws.send(`echo ${data.toString()}`));
        ws.on('error', () => {});
      });
    });
    server.keepAliveTimeout = 5000;
    server.on('error', (err) => {
      console.error(`gear ${id}: ${err.message}`);
      process.exit(1);
    });
    server.listen(port, address, () => {
      listening += 1;
      if (listening === total) console.log(`gears ready: ${addresses.length} addresses x ${ports.length} ports`);
    });
  }
}

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
