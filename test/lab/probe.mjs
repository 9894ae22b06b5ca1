// A request prober for the benchmarks, run inside the client netns (`ip netns exec rpclient node probe.mjs`):
// one JSON line per request on stdin ({"id", "addr", "host", "path"?}), one JSON line per answer on stdout
// ({"id", "status", "gear"}; status 0 = no answer). A fresh connection per request (agent: false), so a VIP's
// answer always comes from whoever holds it now; every request times out after 2 s.
import http from 'node:http';
import readline from 'node:readline';

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let q;
  try { q = JSON.parse(line); } catch { return; }
  const done = (status, body) => {
    const gear = /^gear (\S+)/.exec(body)?.[1] ?? '';
    process.stdout.write(JSON.stringify({ id: q.id, status, gear }) + '\n');
  };
  const req = http.request({ host: q.addr, port: 80, path: q.path ?? '/', headers: { host: q.host }, agent: false, timeout: 2000 }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (d) => { if (body.length < 256) body += d; });
    res.on('end', () => done(res.statusCode ?? 0, body));
    res.on('error', () => done(0, ''));
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', () => done(0, ''));
  req.end();
});
rl.on('close', () => process.exit(0));
