// nginx_rproxy's Lua data plane (roles/nginx_rproxy/files/rproxy.lua) on a real nginx: a batch overwrites the names
// it gives out and deletes only those no app of the batch keeps. The hostile cases of that rule, through the live
// apply endpoint and a reload's init: a name moved from one app to another in one batch (both ways round, whatever
// order the batch lists them in), two apps swapping their names, the old owner deleted after the move (the name
// stays with its new owner), a name dropped and given to nobody (404, not left behind), a name dropped in one batch
// and given elsewhere in the next, and a batch that fails half way (the shared dict full): nothing of it stays.
import { execFile, spawn } from 'node:child_process';
import { createServer as httpServer, request, type Server } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { StateStore } from '../../../generator/src/vars/store.js';
import { FIXTURES, REPO, tmpConfig } from '../../fixtures/helpers.js';
import { needs, NGINX as NGINX_TOOL, ANSIBLE } from '../helpers/tools.js';

const run = promisify(execFile);
const test = needs(NGINX_TOOL, ANSIBLE);
const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));
const HELPER = join(REPO, 'test/contract/vars/render_routes.py');

const freePort = (): Promise<number> => new Promise((resolve, reject) => {
  const srv = createServer();
  srv.once('error', reject);
  srv.listen(0, '127.0.0.1', () => { const { port } = srv.address() as AddressInfo; srv.close(() => resolve(port)); });
});

function call(target: number | string, method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const r = request({ ...(typeof target === 'number' ? { host: '127.0.0.1', port: target } : { socketPath: target }), method, path, headers, timeout: 10_000, agent: false }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { b += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
    });
    r.on('timeout', () => r.destroy(new Error('timeout')));
    r.on('error', reject);
    r.end(body);
  });
}

/** A gear answering with its app's id. */
async function gear(id: string): Promise<{ port: number; server: Server }> {
  const server = httpServer((_q, res) => { res.end(id); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as AddressInfo).port, server };
}

test('names moved, swapped, dropped and deleted across live batches and reloads: every name answers for the app that holds it now, none is left behind, a failed batch leaves nothing', async (t) => {
  t.timeout(120_000);
  const ports = { http: await freePort(), https: await freePort(), health: await freePort() };
  const cfg = await tmpConfig('tls_require_valid: false\n');
  const store = await StateStore.open(cfg);
  t.deepEqual((await store.applyText(`---\n:action: :create_application\n:app_name: idle\n:namespace: acme\n:scalable: true\n:ha: false\n`)).rejected, []);
  const dir = join(cfg.dir, 'nginx');
  await run('/usr/bin/python3', [HELPER, cfg.state_dir, dir, join(FIXTURES, 'tls/a.crt'), join(FIXTURES, 'tls/a.key')],
    { env: { ...process.env, RPROXY_PORTS: `${ports.http},${ports.https},${ports.health}` } });
  const ids = ['aa-acme', 'zz-acme', 'mm-acme'];
  const gears = Object.fromEntries(await Promise.all(ids.map(async (id) => [id, await gear(id)] as const)));
  const rec = (id: string, names: string[]) => ({ id, names, backends: [`127.0.0.1:${gears[id]!.port}`], websocket: false, root_location: true, locations: [] });
  // start: aa has one.example.org, zz has two.example.org, mm has three.example.org (files: what init loads)
  const files: Record<string, ReturnType<typeof rec>> = {
    'aa-acme': rec('aa-acme', ['one.example.org', 'aa.example.org']),
    'zz-acme': rec('zz-acme', ['two.example.org', 'zz.example.org']),
    'mm-acme': rec('mm-acme', ['three.example.org', 'mm.example.org']),
  };
  const save = async () => { for (const [id, r] of Object.entries(files)) await writeFile(join(dir, 'rproxy/apps', `${id}.json`), JSON.stringify(r)); };
  await save();
  const child = spawn(NGINX!, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'ignore' });
  const exited = new Promise((res) => child.once('exit', res));
  const sock = join(dir, 'run/apply.sock');
  const who = async (host: string) => { const r = await call(ports.http, 'GET', '/', { host }); return r.status === 200 ? r.body : String(r.status); };
  const apply = async (body: unknown) => (await call(sock, 'POST', '/apply', { 'content-type': 'application/json' }, JSON.stringify(body))).status;
  const expect = async (want: Record<string, string>, what: string) => {
    for (const [host, id] of Object.entries(want)) t.is(await who(host), id, `${what}: ${host}`);
  };
  try {
    for (let i = 0; i < 100 && !(await call(ports.health, 'GET', '/', { host: 'localhost' }).then(() => true, () => false)); i++) await new Promise((r) => setTimeout(r, 50));
    await expect({ 'one.example.org': 'aa-acme', 'two.example.org': 'zz-acme', 'three.example.org': 'mm-acme' }, 'start');

    // one batch: aa gives one.example.org to zz (aa listed first), and zz gives two.example.org to aa (swap)
    t.is(await apply({ set: { 'aa-acme': rec('aa-acme', ['two.example.org', 'aa.example.org']), 'zz-acme': rec('zz-acme', ['one.example.org', 'zz.example.org']) } }), 200);
    await expect({ 'one.example.org': 'zz-acme', 'two.example.org': 'aa-acme', 'aa.example.org': 'aa-acme', 'zz.example.org': 'zz-acme' }, 'swapped');
    // and back, the batch listing them the other way round
    t.is(await apply({ set: { 'zz-acme': rec('zz-acme', ['two.example.org', 'zz.example.org']), 'aa-acme': rec('aa-acme', ['one.example.org', 'aa.example.org']) } }), 200);
    await expect({ 'one.example.org': 'aa-acme', 'two.example.org': 'zz-acme' }, 'swapped back');

    // one batch: mm is deleted, its three.example.org moves to aa: the deletion does not take the name with it
    t.is(await apply({ delete: ['mm-acme'], set: { 'aa-acme': rec('aa-acme', ['one.example.org', 'aa.example.org', 'three.example.org']) } }), 200);
    await expect({ 'three.example.org': 'aa-acme', 'mm.example.org': '404' }, 'moved from a deleted app');

    // a name dropped and given to nobody is gone; given to zz in the next batch, it is zz's
    t.is(await apply({ set: { 'aa-acme': rec('aa-acme', ['one.example.org', 'aa.example.org']) } }), 200);
    await expect({ 'three.example.org': '404', 'one.example.org': 'aa-acme' }, 'dropped');
    t.is(await apply({ set: { 'zz-acme': rec('zz-acme', ['two.example.org', 'zz.example.org', 'three.example.org']) } }), 200);
    await expect({ 'three.example.org': 'zz-acme' }, 'given in a later batch');

    // a batch that fails half way (more than the shared dict holds): every name as before it
    const huge: Record<string, unknown> = { 'aa-acme': rec('aa-acme', ['two.example.org', 'aa.example.org']) };
    const fillerNames = (i: number) => Array.from({ length: 40 }, (_, j) => `${'n'.repeat(60)}-${i}-${j}.example.org`);
    for (let i = 0; i < 8000; i++) huge[`f${i}-acme`] = { ...rec('aa-acme', fillerNames(i)), id: `f${i}-acme` };
    const failed = await call(sock, 'POST', '/apply', { 'content-type': 'application/json' }, JSON.stringify({ set: huge }));
    t.regex(failed.body, /shared dict rproxy_routes/, `the batch failed in the commit, half way (${failed.status} ${failed.body.slice(0, 300)})`);
    await expect({ 'one.example.org': 'aa-acme', 'two.example.org': 'zz-acme', 'three.example.org': 'zz-acme', 'aa.example.org': 'aa-acme', [fillerNames(0)[0]!]: '404', [fillerNames(7999)[39]!]: '404' }, 'after a failed batch');

    // a reload (init re-commits every file) with the files as the apply left them: the same answers
    delete files['mm-acme'];
    files['aa-acme'] = rec('aa-acme', ['one.example.org', 'aa.example.org']);
    files['zz-acme'] = rec('zz-acme', ['two.example.org', 'zz.example.org', 'three.example.org']);
    await save();
    await run('rm', ['-f', join(dir, 'rproxy/apps/mm-acme.json')]);
    process.kill(child.pid!, 'SIGHUP');
    await new Promise((r) => setTimeout(r, 1500)); // the new workers (a wait for the reload, not a timing figure)
    await expect({ 'one.example.org': 'aa-acme', 'two.example.org': 'zz-acme', 'three.example.org': 'zz-acme', 'mm.example.org': '404' }, 'after a reload');
    t.notRegex(await readFile(join(dir, 'error.log'), 'utf8').catch(() => ''), /cannot load the routes/);
  } finally {
    child.kill('SIGQUIT');
    await exited;
    for (const g of Object.values(gears)) g.server.close();
  }
});
