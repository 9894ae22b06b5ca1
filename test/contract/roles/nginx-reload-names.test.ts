// nginx_rproxy's Lua data plane (roles/nginx_rproxy/files/rproxy.lua) on a real nginx: a reload re-commits every app
// file in init_by_lua while the old workers still serve from the shared dict. A batch that deleted every touched
// app's names before putting them back left each name missing for the whole batch, and requests to a proxy in
// service were answered 404 during every reload at 10,000 apps (seen in the lab: an onboarding's verify, right after
// the new proxy's reload). Here: 12,000 app files, reloads under a steady request loop, not one 404.
import { execFile, spawn } from 'node:child_process';
import { request } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { StateStore } from '../../../generator/src/vars/store.js';
import { FIXTURES, REPO, tmpConfig } from '../../fixtures/helpers.js';
import { needs, NGINX as NGINX_TOOL, ANSIBLE } from '../helpers/tools.js';

const run = promisify(execFile);
const test = needs(NGINX_TOOL, ANSIBLE); // render_routes.py loads the role's action plugin with Ansible's Jinja
const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));
const HELPER = join(REPO, 'test/contract/vars/render_routes.py');
const APPS = 12_000;

const freePort = (): Promise<number> => new Promise((resolve, reject) => {
  const srv = createServer();
  srv.once('error', reject);
  srv.listen(0, '127.0.0.1', () => { const { port } = srv.address() as AddressInfo; srv.close(() => resolve(port)); });
});

const status = (port: number, host: string): Promise<number> => new Promise((resolve, reject) => {
  const r = request({ host: '127.0.0.1', port, path: '/', headers: { host }, timeout: 10_000, agent: false }, (res) => {
    res.resume();
    res.on('end', () => resolve(res.statusCode ?? 0));
  });
  r.on('timeout', () => r.destroy(new Error('timeout')));
  r.on('error', reject);
  r.end();
});

const workers = async (master: number): Promise<string> =>
  (await run('pgrep', ['-P', String(master)]).catch(() => ({ stdout: '' }))).stdout.split('\n').filter(Boolean).sort().join(',');

test('a reload at 12,000 apps: every name keeps answering while init_by_lua re-commits every app (no 404)', async (t) => {
  t.timeout(300_000);
  const ports = { http: await freePort(), https: await freePort(), health: await freePort() };
  const cfg = await tmpConfig('tls_require_valid: false\n');
  const store = await StateStore.open(cfg);
  const r = await store.applyText(`---\n:action: :create_application\n:app_name: idle\n:namespace: acme\n:scalable: true\n:ha: false\n`);
  t.deepEqual(r.rejected, []);
  const dir = join(cfg.dir, 'nginx');
  await run('/usr/bin/python3', [HELPER, cfg.state_dir, dir, join(FIXTURES, 'tls/a.crt'), join(FIXTURES, 'tls/a.key')],
    { env: { ...process.env, RPROXY_PORTS: `${ports.http},${ports.https},${ports.health}` } });
  // the fillers: copies of idle's data file under other ids and names (an app without a gear answers 503, a missing
  // name 404: the status tells which)
  const appsDir = join(dir, 'rproxy/apps');
  const idle = JSON.parse(await readFile(join(appsDir, 'idle-acme.json'), 'utf8')) as Record<string, unknown>;
  for (let i = 0; i < APPS; i++) {
    const id = `f${i}-acme`;
    await writeFile(join(appsDir, `${id}.json`), JSON.stringify({ ...idle, id, names: [`${id}.apps.example.com`, `w${i}.example.net`] }));
  }
  t.is((await readdir(appsDir)).length, APPS + 1);
  const child = spawn(NGINX!, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'ignore' });
  const exited = new Promise((res) => child.once('exit', res));
  try {
    const up = async () => status(ports.http, 'idle-acme.apps.example.com').then((s) => s === 503, () => false);
    for (let i = 0; i < 600 && !(await up()); i++) await new Promise((res) => setTimeout(res, 50));
    const names = ['idle-acme.apps.example.com', 'f0-acme.apps.example.com', `w${APPS - 1}.example.net`, `f${APPS >> 1}-acme.apps.example.com`];
    for (const n of names) t.is(await status(ports.http, n), 503, n);
    t.is(await status(ports.http, 'nope.example.net'), 404, 'a name no app has is 404 (so a missing name would show)');

    const seen: Record<number, number> = {};
    let during = 0;
    for (let reload = 0; reload < 3; reload++) {
      const before = await workers(child.pid!);
      process.kill(child.pid!, 'SIGHUP');
      // requests until the new workers serve (the old ones serve from the shared dict while the master re-commits)
      for (let i = 0; i < 4000; i++) {
        const s = await status(ports.http, names[i % names.length]!).catch(() => 0);
        seen[s] = (seen[s] ?? 0) + 1;
        during++;
        const now = await workers(child.pid!);
        if (now && now !== before && !before.split(',').some((p) => now.split(',').includes(p))) break;
      }
    }
    t.log(`requests during 3 reloads: ${during}, statuses ${JSON.stringify(seen)}`);
    t.true(during >= 30, 'requests were sent while the reloads ran');
    t.is(seen[404] ?? 0, 0, 'no name went missing during a reload');
    t.deepEqual(Object.keys(seen), ['503'], `only the apps' own answer: ${JSON.stringify(seen)}`);
  } finally {
    child.kill('SIGQUIT');
    await exited;
  }
});
