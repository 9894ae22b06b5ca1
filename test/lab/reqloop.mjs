#!/usr/bin/env node
// A bounded request loop (run it inside the client netns: ip netns exec rpclient node test/lab/reqloop.mjs ...).
// Sends one request at a time to URL, connecting to --connect ADDRESS (like curl --resolve), every
// --interval-ms, for --duration-ms (or until SIGTERM/SIGINT), and prints one JSON summary line:
//   {sent, ok, failed, attemptsFailed, statuses, gears, firstFailureMs, lastFailureMs, elapsedMs, failures[]}
// A request counts as ok when the status is 2xx (or --expect-status) after at most --retries retries
// (--retry-delay-ms apart); attemptsFailed counts every failed attempt.
import http from 'node:http';
import https from 'node:https';
import fs from 'node:fs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : dflt;
};
const url = new URL(opt('url', 'http://localhost/'));
const connect = opt('connect', url.hostname);
const interval = Number(opt('interval-ms', '50'));
const duration = Number(opt('duration-ms', '5000'));
const timeout = Number(opt('timeout-ms', '1000'));
const retries = Number(opt('retries', '0'));
const retryDelay = Number(opt('retry-delay-ms', '200'));
const maxRequests = Number(opt('max-requests', '100000'));
const expect = opt('expect-status', '2xx');
const ca = opt('ca', '');
const isHttps = url.protocol === 'https:';
const port = Number(url.port || (isHttps ? 443 : 80));

const t0 = Date.now();
const s = { sent: 0, ok: 0, failed: 0, attemptsFailed: 0, statuses: {}, gears: {}, firstFailureMs: null, lastFailureMs: null, elapsedMs: 0, failures: [] };
let stop = false;
const okStatus = (code) => (expect === '2xx' ? code >= 200 && code < 300 : String(code) === expect);

function attempt() {
  return new Promise((resolve) => {
    const mod = isHttps ? https : http;
    const req = mod.request({
      host: connect, port, path: url.pathname + url.search, method: 'GET', agent: false,
      headers: { host: url.host, accept: 'text/plain' },
      servername: isHttps ? url.hostname : undefined,
      ca: ca ? fs.readFileSync(ca) : undefined,
      timeout,
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { if (body.length < 4096) body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, gear: res.headers['x-gear'] ?? '', body }));
      res.on('error', (e) => resolve({ error: e.message }));
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeout} ms`)));
    req.on('error', (e) => resolve({ error: e.message }));
    req.end();
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => { stop = true; });

while (!stop && Date.now() - t0 < duration && s.sent < maxRequests) {
  const started = Date.now();
  s.sent += 1;
  let done = false;
  for (let i = 0; i <= retries && !done; i++) {
    const r = await attempt();
    const good = r.status !== undefined && okStatus(r.status);
    if (r.status !== undefined) s.statuses[r.status] = (s.statuses[r.status] ?? 0) + 1;
    if (good) {
      done = true;
      if (r.gear) s.gears[r.gear] = (s.gears[r.gear] ?? 0) + 1;
    } else {
      s.attemptsFailed += 1;
      const at = Date.now() - t0;
      s.firstFailureMs ??= at;
      s.lastFailureMs = at;
      if (s.failures.length < 20) s.failures.push({ atMs: at, error: r.error ?? `status ${r.status}` });
      if (i < retries) await sleep(retryDelay);
    }
  }
  if (done) s.ok += 1; else s.failed += 1;
  const wait = interval - (Date.now() - started);
  if (wait > 0) await sleep(wait);
}
s.elapsedMs = Date.now() - t0;
process.stdout.write(JSON.stringify(s) + '\n');
