// The nginx health watcher of roles/keepalived_vrrp against a real nginx on loopback (no lab): the track file it
// writes for keepalived follows nginx's death (pidfd), a frozen nginx (HTTP probe), a restart, and a reset of the
// file by keepalived; restarting the watcher keeps the file as it is. Needs nginx and python3 (test/lab/deps.sh).
import { needs, NGINX, PYTHON3 } from '../helpers/tools.js';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, chmodSync, copyFileSync, mkdirSync, symlinkSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const test = needs(NGINX, PYTHON3);

const WATCHER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../roles/keepalived_vrrp/files/rproxy_health_watcher.py');
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
async function until(fn: () => boolean, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) { if (fn()) return true; await sleep(10); }
  return fn();
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); });
  });
}

class Nginx {
  constructor(readonly dir: string, readonly port: number) {
    writeFileSync(path.join(dir, 'nginx.conf'), [
      `pid ${dir}/nginx.pid;`, `error_log ${dir}/error.log;`, 'worker_processes 1;', 'events { worker_connections 64; }',
      `http { access_log off; client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};`,
      `  server { listen 127.0.0.1:${port}; location = /healthz { return 200 "ok\\n"; } } }`, '',
    ].join('\n'));
  }
  private nginx(...args: string[]) { return spawnSync('nginx', ['-c', path.join(this.dir, 'nginx.conf'), '-p', this.dir, ...args], { encoding: 'utf8' }); }
  start(): void { const r = this.nginx(); if (r.status !== 0) throw new Error(`nginx: ${r.stderr}`); }
  get pid(): number { try { return Number(readFileSync(path.join(this.dir, 'nginx.pid'), 'utf8').trim()); } catch { return 0; } }
  signalAll(sig: string): void { spawnSync('sh', ['-c', `m=${this.pid}; kill -${sig} $m $(pgrep -P $m)`]); }
  stop(): void { if (this.pid) this.nginx('-s', 'stop'); }
}

test.serial('the track file follows nginx: death at once, a frozen nginx by its probe, recovery, and a reset by keepalived', async (t) => {
  t.timeout(120_000);
  t.is(spawnSync('nginx', ['-v']).status, 0, 'nginx is installed (test/lab/deps.sh)');
  const dir = mkdtempSync(path.join(tmpdir(), 'rproxy-watcher-'));
  const port = await freePort();
  const ng = new Nginx(dir, port);
  // not in nginx's directory: nginx hands its temp paths to its worker user, and the watcher refuses a track file
  // in a directory another user owns
  const track = path.join(mkdtempSync(path.join(tmpdir(), 'rproxy-watcher-track-')), 'state', 'nginx-healthy');
  const config = path.join(dir, 'watcher.json');
  writeFileSync(config, JSON.stringify({ pid_file: path.join(dir, 'nginx.pid'), url: `http://127.0.0.1:${port}/healthz`, track_file: track, rise: 2, log_file: path.join(dir, 'watcher.log') }));
  const value = () => (existsSync(track) ? readFileSync(track, 'utf8').trim() : '');
  let watcher: ChildProcess | undefined;
  const startWatcher = () => { watcher = spawn('python3', [WATCHER, '--config', config], { stdio: 'ignore' }); };
  try {
    ng.start();
    startWatcher();
    t.true(await until(() => value() === '1'), 'healthy');

    ng.signalAll('KILL');
    t.true(await until(() => value() === '0'), 'nginx killed: down');
    t.regex(readFileSync(path.join(dir, 'watcher.log'), 'utf8'), /"event": "nginx_down", "reason": "nginx master \d+ exited"/, 'seen through the pidfd, not the probe');

    ng.start();
    t.true(await until(() => value() === '1'), 'nginx back: healthy');

    writeFileSync(track, '0\n'); // keepalived's init_file at its start
    t.true(await until(() => value() === '1'), 'the reset file is put back');

    ng.signalAll('STOP');
    t.true(await until(() => value() === '0'), 'frozen nginx (alive, not answering): down');
    t.true(ng.pid > 0);
    ng.signalAll('CONT');
    t.true(await until(() => value() === '1'), 'answering again: healthy');

    // a restarted watcher keeps the file until it has a verdict: keepalived sees no change
    watcher!.kill('SIGTERM');
    await new Promise((r) => watcher!.once('close', r));
    const seen = new Set<string>();
    startWatcher();
    const end = Date.now() + 1500;
    while (Date.now() < end) { seen.add(value()); await sleep(5); }
    t.deepEqual([...seen], ['1']);
  } finally {
    watcher?.kill('SIGTERM');
    ng.signalAll('CONT');
    ng.stop();
  }
});

test('an invalid watcher configuration is refused with a message (the role validates it before installing it)', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'rproxy-watcher-cfg-'));
  const check = (cfg: object) => {
    writeFileSync(path.join(dir, 'c.json'), JSON.stringify(cfg));
    return spawnSync('python3', [WATCHER, '--check-config', '--config', path.join(dir, 'c.json')], { encoding: 'utf8' });
  };
  t.is(check({ interval: 0.1 }).status, 0);
  const bad = check({ interval: 0 });
  t.is(bad.status, 2);
  t.regex(bad.stderr, /interval must be within 0\.01\.\.60 s/);
  t.regex(check({ intervall: 1 }).stderr, /unknown settings .*intervall/);
  t.regex(check({ url: 'https://127.0.0.1/' }).stderr, /only http:\/\/ health URLs/);
});

test('a reused pid held by an unprivileged process named nginx is not taken for the nginx master', async (t) => {
  // nginx died and left its pid file; a local user gets that pid reused by a process it named "nginx" and
  // answers the loopback health URL itself: the proxy must stay down, or it would take its VIPs back.
  const dir = mkdtempSync(path.join(tmpdir(), 'rproxy-watcher-pid-'));
  chmodSync(dir, 0o755);
  copyFileSync('/bin/sleep', path.join(dir, 'nginx'));
  chmodSync(path.join(dir, 'nginx'), 0o755);
  const fake = spawn('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', path.join(dir, 'nginx'), '60'], { stdio: 'ignore' });
  const health = http.createServer((_q, s) => { s.writeHead(200); s.end('ok\n'); });
  await new Promise<void>((r) => health.listen(0, '127.0.0.1', r));
  try {
    t.true(await until(() => { try { return readFileSync(`/proc/${fake.pid}/comm`, 'utf8').trim() === 'nginx'; } catch { return false; } }), 'the fake master runs');
    writeFileSync(path.join(dir, 'nginx.pid'), `${fake.pid}\n`);
    const port = (health.address() as net.AddressInfo).port;
    writeFileSync(path.join(dir, 'c.json'), JSON.stringify({ pid_file: path.join(dir, 'nginx.pid'), url: `http://127.0.0.1:${port}/healthz`, track_file: path.join(dir, 'state', 'nginx-healthy') }));
    // asynchronously: the health server answers from this process's event loop
    const once = await new Promise<{ status: number | null; stdout: string }>((resolve) => {
      const p = spawn('python3', [WATCHER, '--once', '--config', path.join(dir, 'c.json')], { stdio: ['ignore', 'pipe', 'inherit'] });
      let stdout = '';
      p.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
      p.on('close', (status) => resolve({ status, stdout }));
    });
    const verdict = JSON.parse(once.stdout) as { healthy: boolean; master_pid: number | null; probe: string };
    t.is(verdict.probe, 'ok', 'the impostor answers the probe');
    t.is(verdict.master_pid, null, once.stdout);
    t.false(verdict.healthy);
    t.is(once.status, 1);
  } finally {
    fake.kill('SIGKILL');
    health.close();
  }
});

test('the track file never lives where another user may write, and no symlink is followed by the root watcher', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'rproxy-watcher-dirs-'));
  const check = (cfg: object) => {
    writeFileSync(path.join(dir, 'c.json'), JSON.stringify(cfg));
    return spawnSync('python3', [WATCHER, '--check-config', '--config', path.join(dir, 'c.json')], { encoding: 'utf8' });
  };
  // a local user who may write the track file's directory decides whether this proxy takes its VIPs
  const shared = path.join(dir, 'shared');
  mkdirSync(shared);
  chmodSync(shared, 0o1777);
  const refused = check({ track_file: path.join(shared, 'nginx-healthy') });
  t.is(refused.status, 2);
  t.regex(refused.stderr, /shared .* is owned or writable by another user: they could replace the track file/);
  t.is(check({ track_file: path.join(shared, 'missing', 'nginx-healthy') }).status, 2, 'a directory still to be made inside it');
  chmodSync(shared, 0o755);
  t.is(check({ track_file: path.join(shared, 'nginx-healthy') }).status, 0, 'root-owned 0755 (under the sticky /tmp)');

  // a symlink planted at the log's name: the watcher logs to stderr instead of appending to its target
  const victim = path.join(dir, 'victim');
  writeFileSync(victim, 'untouched\n');
  symlinkSync(victim, path.join(dir, 'watcher.log'));
  writeFileSync(path.join(dir, 'c.json'), JSON.stringify({ pid_file: path.join(dir, 'none.pid'), url: 'http://127.0.0.1:1/healthz',
    track_file: path.join(shared, 'nginx-healthy'), log_file: path.join(dir, 'watcher.log'), fall: 1 }));
  const w = spawn('python3', [WATCHER, '--config', path.join(dir, 'c.json')], { stdio: 'ignore' });
  try {
    t.true(await until(() => existsSync(path.join(shared, 'nginx-healthy'))), 'a verdict was written (and logged)');
  } finally {
    w.kill('SIGTERM');
    await new Promise((r) => w.once('close', r));
  }
  t.is(readFileSync(victim, 'utf8'), 'untouched\n');
});

test('a health port answering endless bytes without a status line fails the probe at once, without buffering them', async (t) => {
  // while nginx is down any local user may listen on the health port: the root watcher reads a bounded status line
  const dir = mkdtempSync(path.join(tmpdir(), 'rproxy-watcher-flood-'));
  const chunk = Buffer.alloc(64 * 1024, 0x41);
  const flood = net.createServer((c) => {
    c.on('error', () => undefined);
    const pump = () => { while (!c.destroyed && c.write(chunk)) { /* until the socket buffer is full */ } };
    c.on('drain', pump);
    pump();
  });
  await new Promise<void>((r) => flood.listen(0, '127.0.0.1', r));
  try {
    const port = (flood.address() as net.AddressInfo).port;
    writeFileSync(path.join(dir, 'c.json'), JSON.stringify({ pid_file: path.join(dir, 'none.pid'), url: `http://127.0.0.1:${port}/healthz`,
      track_file: path.join(dir, 'state', 'nginx-healthy'), timeout: 30 }));
    const once = await new Promise<string>((resolve) => {
      const p = spawn('python3', [WATCHER, '--once', '--config', path.join(dir, 'c.json')], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
      p.on('close', () => resolve(out));
    });
    t.is((JSON.parse(once) as { probe: string }).probe, 'no HTTP status line', once);
  } finally {
    flood.close();
  }
});
