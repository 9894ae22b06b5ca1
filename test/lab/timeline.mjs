#!/usr/bin/env node
// An open-loop request timeline (run it inside the client netns: ip netns exec rpclient node test/lab/timeline.mjs ...).
// Starts one request every --interval-ms whatever the others do (a failover does not slow the clock down), each
// on a new connection to --connect ADDRESS with the URL's host name, with a --timeout-ms; a failed request is
// retried once after --retry-delay-ms. Runs for --duration-ms or until SIGTERM, then prints one JSON document:
//   {startedAt (epoch ms), requests: [[t, firstStatus, firstMs, retryStatus, retryMs], ...]}
// t = start of the request in ms after startedAt; status 0 = no answer (refused, reset, timeout); retry* are
// null when the first attempt succeeded (2xx, or --expect-status).
import http from 'node:http';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : dflt;
};
const url = new URL(opt('url', 'http://localhost/'));
const connect = opt('connect', url.hostname);
const interval = Number(opt('interval-ms', '10'));
const duration = Number(opt('duration-ms', '10000'));
const timeout = Number(opt('timeout-ms', '200'));
const retryDelay = Number(opt('retry-delay-ms', '200'));
const expect = opt('expect-status', '2xx');
const maxRequests = Number(opt('max-requests', '20000'));
const port = Number(url.port || 80);
const ok = (s) => (expect === '2xx' ? s >= 200 && s < 300 : String(s) === expect);

function attempt() {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let done = false;
    const finish = (status) => {
      if (done) return;
      done = true;
      resolve([status, Math.round((performance.now() - t0) * 10) / 10]);
    };
    const req = http.request({
      host: connect, port, path: url.pathname + url.search, method: 'GET', agent: false,
      headers: { host: url.host, accept: 'text/plain', connection: 'close' },
    }, (res) => {
      res.resume();
      res.on('end', () => finish(res.statusCode ?? 0));
      res.on('error', () => finish(0));
    });
    const timer = setTimeout(() => { req.destroy(); finish(0); }, timeout);
    req.on('close', () => clearTimeout(timer));
    req.on('error', () => finish(0));
    req.end();
  });
}

const startedAt = Date.now();
const base = performance.now();
const requests = [];
const inflight = new Set();
let stop = false;
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => { stop = true; });

async function one(t) {
  const rec = [t, 0, 0, null, null];
  requests.push(rec);
  const [s1, ms1] = await attempt();
  rec[1] = s1; rec[2] = ms1;
  if (ok(s1)) return;
  await new Promise((r) => setTimeout(r, retryDelay));
  const [s2, ms2] = await attempt();
  rec[3] = s2; rec[4] = ms2;
}

let n = 0;
while (!stop && performance.now() - base < duration && n < maxRequests) {
  const t = Math.round((performance.now() - base) * 10) / 10;
  const p = one(t);
  inflight.add(p);
  p.finally(() => inflight.delete(p));
  n += 1;
  const next = base + n * interval;
  const wait = next - performance.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}
await Promise.all([...inflight]);
process.stdout.write(JSON.stringify({ startedAt, interval, timeout, retryDelay, requests }) + '\n');
