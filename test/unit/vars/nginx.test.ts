/**
 * The role's templates, fed by the generator's `route` block, give a configuration real nginx accepts: apps built
 * from SPI events (the samples, the lab demo, and tricky mappings) are rendered by test/unit/vars/render_routes.py
 * (the action plugin's own check_app/check_settings/render_app and the role's templates) into a temp prefix,
 * then `nginx -t -p DIR -c DIR/nginx.conf`.
 */
import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { request } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { existsSync } from 'node:fs';
import { appendFile, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StateStore } from '../../../generator/src/vars/store.js';
import { appFilePath } from '../../../generator/src/vars/paths.js';
import { block, FIXTURES, psych, REPO, samplesDocs, tls, tmpConfig } from '../../fixtures/helpers.js';

const run = promisify(execFile);
const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));
const HELPER = join(REPO, 'test/unit/vars/render_routes.py');

const endpoint = (app: string, gear: string, addr: string, port: number, protocols: string[], mappings: Array<[string, string]>): string =>
  `---\n:action: :add_public_endpoint\n:app_name: ${app}\n:namespace: acme\n:gear_id: ${gear}\n:public_port_name: web\n` +
  `:public_address: ${addr}\n:public_port: ${port}\n:protocols:\n${protocols.map((p) => `- ${p}\n`).join('')}:types:\n- web_framework\n` +
  `:mappings:${mappings.length ? '\n' + mappings.map(([f, b]) => `- frontend: '${f}'\n  backend: '${b}'\n`).join('') : ' []\n'}`;
const create = (app: string): string => `---\n:action: :create_application\n:app_name: ${app}\n:namespace: acme\n:scalable: true\n:ha: false\n`;

/** Apps that broke or could break the rendered config. */
const TRICKY = [
  // the reported bug: '' -> /a and / -> '' are both path '/'
  create('bug'), endpoint('bug', 'g1', '198.51.100.41', 8080, ['http'], [['', '/a'], ['/', '']]),
  // the same conflict spread over two endpoints, plus conflicting remaps of one path
  create('split'), endpoint('split', 'g2', '198.51.100.42', 8080, ['http', 'ws'], [['/', '/one'], ['/v1', '/a']]),
  endpoint('split', 'g3', '198.51.100.43', 8080, ['http', 'ws'], [['', '/two'], ['/v1', '/b'], ['/v1/', '/c']]),
  // every special character of the path set, IPv6 backend, identity mappings
  create('odd'), endpoint('odd', 'g4', '2001:db8::7', 8081, ['http', 'ws'], [['/a.b(c)*+~&!,=:@%20-d/', '/x.y//'], ['/same', '/same'], ['', '']]),
  // a TLS alias but no backend (its gear is gone): a dedicated server answering 503
  create('gone'), endpoint('gone', 'g5', '198.51.100.44', 8080, ['http'], [['/p', '/q']]),
  `---\n:action: :remove_public_endpoint\n:app_name: gone\n:namespace: acme\n:gear_id: g5\n:public_address: 198.51.100.44\n:public_port: 8080\n`,
  psych({ action: ':add_alias', app_name: 'gone', namespace: 'acme', alias: 'gone.example.org' }),
  psych({ action: ':add_ssl', app_name: 'gone', namespace: 'acme', alias: 'gone.example.org', ssl: block(tls('a.crt')), private_key: block(tls('a.key')), pass_phrase: "''" }),
  create('idle'),
].join('');

async function renderTree(streams: string[], extraConfig = ''): Promise<{ dir: string; /** apps/odd-acme.json */ vars: string; stateDir: string }> {
  // the fixture certificate is for a.example.org: the TLS aliases here test rendering, not certificate names
  const cfg = await tmpConfig('tls_require_valid: false\n' + extraConfig);
  const store = await StateStore.open(cfg);
  for (const s of streams) {
    const r = await store.applyText(s);
    if (r.rejected.length) throw new Error(JSON.stringify(r.rejected));
  }
  const dir = join(cfg.dir, 'nginx');
  await run('/usr/bin/python3', [HELPER, cfg.state_dir, dir, join(FIXTURES, 'tls/a.crt'), join(FIXTURES, 'tls/a.key')]);
  return { dir, vars: appFilePath(cfg, 'odd-acme'), stateDir: cfg.state_dir };
}

/** servers/<id>.conf with each include of the app's locations file replaced by that file (what nginx reads). */
async function serverWithLocations(dir: string, id: string): Promise<string> {
  const text = await readFile(join(dir, 'rproxy/servers', `${id}.conf`), 'utf8');
  const locations = await readFile(join(dir, 'rproxy/locations', `${id}.conf`), 'utf8');
  const include = `    include ${join(dir, 'rproxy/locations', `${id}.conf`)};\n`;
  return text.split(include).join(locations.split('\n').map((l) => (l ? `    ${l}\n` : '')).join(''));
}

const nginxT = (dir: string) => run(NGINX!, ['-t', '-q', '-p', dir, '-c', join(dir, 'nginx.conf')]);

const CASES: Array<[string, string[]]> = [
  ['samples (TLS alias, websocket, /health mapping)', [samplesDocs().slice(0, 11).join('')]],
  ['lab demo apps', [await readFile(join(REPO, 'test/lab/demo.yml'), 'utf8')]],
  ['tricky mappings', [TRICKY]],
];

for (const [name, streams] of CASES) {
  test(`nginx -t accepts the rendered config: ${name}`, async (t) => {
    if (!NGINX) return t.pass('nginx not installed');
    const { dir } = await renderTree(streams);
    await t.notThrowsAsync(nginxT(dir));
  });
}

test('tricky apps render as expected: one location per path, 503 without backend', async (t) => {
  if (!NGINX) return t.pass('nginx not installed');
  const { dir } = await renderTree([TRICKY]);
  const server = (id: string) => serverWithLocations(dir, id);
  const bug = await server('bug-acme');
  t.is(bug.match(/location "\/" \{/g)?.length, 2, 'one location "/" per server block (:80 and the wildcard :443)');
  t.true(bug.includes('rewrite "^//*(.*)$" "/a/$1" break;'));
  t.false(bug.includes('location / {'), 'no default location next to the remapped root');
  const split = await server('split-acme');
  t.true(split.includes('rewrite "^//*(.*)$" "/one/$1" break;'), 'first endpoint wins for /');
  t.true(split.includes('rewrite "^/v1/*(.*)$" "/a/$1" break;'), 'first endpoint wins for /v1');
  t.true(split.includes('proxy_pass http://ws.split-acme;'));
  const odd = await server('odd-acme');
  t.true(odd.includes('location "/a.b(c)*+~&!,=:@%20-d/" {'));
  t.true(odd.includes('rewrite "^/a\\.b\\(c\\)\\*\\+\\~\\&!,=:@%20\\-d//*(.*)$" "/x.y/$1" break;'));
  const gone = await server('gone-acme');
  t.false(gone.includes('proxy_pass'));
  t.is(gone.match(/location \/ \{\n *return 503;/g)?.length, 1, 'the TLS server answers 503 (the mapping left with its endpoint)');
  t.true(existsSync(join(dir, 'rproxy/tls/gone-acme/gone.example.org.crt')));
  t.is(await readFile(join(dir, 'rproxy/maps/gone-acme.map'), 'utf8'), '# app gone-acme\ngone-acme.apps.example.com @503;\ngone.example.org @503;\n');
  t.false(existsSync(join(dir, 'rproxy/upstreams/gone-acme.conf')));
  t.false(existsSync(join(dir, 'rproxy/servers/idle-acme.conf')));
});

test('control: nginx -t does catch a duplicate location (so the tests above can fail)', async (t) => {
  if (!NGINX) return t.pass('nginx not installed');
  const { dir } = await renderTree([TRICKY]);
  await appendFile(join(dir, 'rproxy/servers/bug-acme.conf'), 'server {\n    listen 8080;\n    server_name x.example.org;\n    location "/" { return 404; }\n    location "/" { return 404; }\n}\n');
  const e = await t.throwsAsync(nginxT(dir));
  t.regex(String((e as { stderr?: string }).stderr), /duplicate location "\/"/);
});

/** Second line of defence: a tampered route block never reaches a file. */
const TAMPER: Array<[string, (route: Record<string, any>, app: Record<string, any>) => void, RegExp]> = [
  ['upstream with a directive', (r) => { r.upstream = { __ansible_unsafe: 'ws.odd-acme; }' }; }, /route\.upstream/],
  ['upstream without ws. for a websocket app', (r) => { r.upstream = { __ansible_unsafe: 'odd-acme' }; r.map_value = r.upstream; }, /route\.upstream/],
  ['map value not the upstream', (r) => { r.map_value = { __ansible_unsafe: '@503' }; }, /map_value/],
  ['location path with a quote', (r) => { r.locations[0].path = { __ansible_unsafe: '/a" { }' }; }, /location path/],
  ['rewrite regex not of the derived form', (r) => { r.locations[0].rewrite_regex = { __ansible_unsafe: '^(.*)$' }; }, /rewrite_regex/],
  ['rewrite target with a variable', (r) => { r.locations[0].rewrite_to = { __ansible_unsafe: '/$host/$1' }; }, /rewrite_to/],
  ['duplicate location path', (r) => { r.locations.push(r.locations[0]); }, /two locations/],
  ['root_location wrong', (r) => { r.root_location = false; }, /root_location/],
  ['a route block of the previous generator', (r) => { delete r.map_value; delete r.root_location; r.upstream = { __ansible_unsafe: 'odd-acme' }; r.locations = [{ frontend: '/x', backend: '' }]; }, /written by an older paas-rproxy/],
  ['fqdn with a space', (_r, a) => { a.fqdn = { __ansible_unsafe: 'odd-acme.apps.example.com x' }; }, /fqdn/],
];

for (const [name, tamper, message] of TAMPER) {
  test(`action plugin check_app rejects: ${name}`, async (t) => {
    if (!NGINX) return t.pass('nginx not installed');
    const { vars, stateDir, dir } = await renderTree([TRICKY]);
    const app = JSON.parse(await readFile(vars, 'utf8'));
    tamper(app.route, app);
    await writeFile(vars, JSON.stringify(app));
    const e = await t.throwsAsync(run('/usr/bin/python3', [HELPER, stateDir, dir + '2', join(FIXTURES, 'tls/a.crt'), join(FIXTURES, 'tls/a.key')]));
    t.is((e as { code?: number }).code, 3);
    t.regex(String((e as { stderr?: string }).stderr), message);
  });
}

// --- one app's locations: rendered once, included from each of its servers ------------------------------------

/** An app with `endpoints` gears carrying the same `mappings` path mappings (as web gears do), and `certs` TLS aliases. */
function bigApp(endpoints: number, mappings: number, certs: number): string {
  const docs = [create('big')];
  for (let e = 0; e < endpoints; e++) {
    docs.push(endpoint('big', `g${e}`, `198.51.100.${50 + e}`, 8080, ['http', 'ws'], Array.from({ length: mappings }, (_, m) => [`/p${m}`, `/b${m}`] as [string, string])));
  }
  for (let c = 0; c < certs; c++) {
    docs.push(psych({ action: ':add_alias', app_name: 'big', namespace: 'acme', alias: `t${c}.example.org` }));
    docs.push(psych({ action: ':add_ssl', app_name: 'big', namespace: 'acme', alias: `t${c}.example.org`, ssl: block(tls('a.crt')), private_key: block(tls('a.key')), pass_phrase: "''" }));
  }
  return docs.join('');
}

async function appBytes(dir: string, id: string): Promise<number> {
  let n = 0;
  for (const sub of ['maps', 'upstreams', 'servers', 'locations']) {
    const f = join(dir, 'rproxy', sub, `${id}.${sub === 'maps' ? 'map' : 'conf'}`);
    if (existsSync(f)) n += (await readFile(f)).length;
  }
  return n;
}

test('an app\'s rendered size grows with the sum of its parts, not their product; nginx -t accepts it', async (t) => {
  if (!NGINX) return t.pass('nginx not installed');
  const small = await renderTree([bigApp(12, 32, 25)]);
  const large = await renderTree([bigApp(25, 64, 50)]); // the reported case: 25 gears × 64 mappings + 50 certificates
  const [a, b] = [await appBytes(small.dir, 'big-acme'), await appBytes(large.dir, 'big-acme')];
  t.log(`12 gears, 32 mappings, 25 certificates: ${a} bytes; 25, 64, 50: ${b} bytes (×${(b / a).toFixed(2)})`);
  t.true(b < 3 * a, 'parts doubled: about twice the bytes (mappings × servers would be 4×)');
  t.true(b < 100_000, 'tens of kilobytes, not megabytes');
  const server = await readFile(join(large.dir, 'rproxy/servers/big-acme.conf'), 'utf8');
  const locations = await readFile(join(large.dir, 'rproxy/locations/big-acme.conf'), 'utf8');
  t.is(server.match(/^server \{/gm)?.length, 52, ':80, the wildcard :443 and one :443 server per certificate');
  t.is(server.match(/include .*\/locations\/big-acme\.conf;/g)?.length, 52, 'each includes the one locations file');
  t.false(server.includes('location '), 'no location is repeated in the servers');
  t.is(locations.match(/^location "/gm)?.length, 64, 'every mapped path once');
  await t.notThrowsAsync(nginxT(large.dir));
});

/** Runs the role's module on this machine, as Ansible would (arguments file), against a rendered prefix. */
async function runModule(dir: string, args: Record<string, unknown>): Promise<{ failed?: boolean; msg?: string; changed?: boolean; written?: string[]; removed?: string[] }> {
  const argsFile = join(dir, 'module-args.json');
  await writeFile(argsFile, JSON.stringify({
    ANSIBLE_MODULE_ARGS: {
      conf_dir: join(dir, 'rproxy'), test_command: [NGINX, '-t', '-q', '-p', dir, '-c', join(dir, 'nginx.conf')],
      pid_file: join(dir, 'none.pid'), start_command: ['true'], ...args,
    },
  }));
  const out = await run('/usr/bin/python3', [join(REPO, 'roles/nginx_rproxy/library/nginx_rproxy_routes.py'), argsFile]).catch((e: { stdout: string }) => e);
  return JSON.parse(out.stdout.slice(out.stdout.indexOf('{')));
}

test('the module: writes locations files, refuses other paths, removes stale ones, restores the previous files when nginx -t fails', async (t) => {
  if (!NGINX) return t.pass('nginx not installed');
  const { dir } = await renderTree([TRICKY]);
  const rel = 'locations/bug-acme.conf';
  const good = await readFile(join(dir, 'rproxy', rel), 'utf8');
  // the locations file is part of an app's files: a targeted run restores a lost one
  await unlink(join(dir, 'rproxy', rel));
  const files: Record<string, string> = {};
  for (const sub of ['maps/bug-acme.map', 'upstreams/bug-acme.conf', 'servers/bug-acme.conf']) files[sub] = await readFile(join(dir, 'rproxy', sub), 'utf8');
  const restored = await runModule(dir, { apps: ['bug-acme'], files: { ...files, [rel]: good } });
  t.falsy(restored.failed, restored.msg);
  t.deepEqual(restored.written, [rel]);
  t.is(await readFile(join(dir, 'rproxy', rel), 'utf8'), good);
  // allow-list: nothing outside the app's own kinds of files
  for (const bad of ['locations/../servers/x-acme.conf', 'locations/bug-acme.map', 'locations/other.conf', 'snippets/bug-acme.conf']) {
    const r = await runModule(dir, { apps: ['bug-acme'], files: { [bad]: 'x' } });
    t.true(r.failed, bad);
    t.regex(r.msg ?? '', /refusing to write/, bad);
  }
  // rollback: a locations file nginx refuses leaves the previous one in place
  const broken = await runModule(dir, { apps: ['bug-acme'], files: { ...files, [rel]: 'location "/" { no_such_directive; }\n' } });
  t.true(broken.failed);
  t.regex(broken.msg ?? '', /nginx configuration test failed, previous files restored/);
  t.is(await readFile(join(dir, 'rproxy', rel), 'utf8'), good);
  // stale files: a full run for the apps that remain removes the others' locations files too
  const full = await runModule(dir, { apps: ['split-acme'], full: true, files: {} });
  t.falsy(full.failed, full.msg);
  t.true(full.removed!.includes(rel));
  t.true(full.removed!.includes('locations/split-acme.conf'), 'split-acme was selected with no files: its files go as well');
  t.false(existsSync(join(dir, 'rproxy', rel)));
  await t.notThrowsAsync(nginxT(dir));
});

// --- TLS material: what the intake accepts, nginx loads ----------------------------------------------------------

const sslDoc = (name: string, alias: string, crt: string, key: string): string =>
  psych({ action: ':add_alias', app_name: name, namespace: 'acme', alias }) +
  psych({ action: ':add_ssl', app_name: name, namespace: 'acme', alias, ssl: block(tls(crt)), private_key: block(tls(key)), pass_phrase: "''" });
/** 251 characters: the longest alias whose files <alias>.crt / <alias>.key fit in a 255-byte file name. */
const LONG_ALIAS = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(55)}.org`;

test('TLS material: what the intake refuses is what nginx refuses to load (weak keys, X25519, SHA-1 by a CA, weak chain); the rest passes nginx -t', async (t) => {
  if (!NGINX) return t.pass('nginx not installed');
  const refused = ['rsa1024', 'x25519', 'sha1-ca', 'weak-ca'];
  const cfg = await tmpConfig('tls_require_valid: false\n');
  const store = await StateStore.open(cfg);
  const r = await store.applyText(refused.map((c, i) => sslDoc(`r${i}`, `r${i}.example.org`, `${c}.crt`, `${c}.key`)).join(''));
  t.deepEqual(r.rejected.map((x) => x.reason.replace(/^.*nginx would refuse this certificate and key \(([^;]*);.*$/, '$1')),
    ['ee key too small', 'unknown certificate type', 'ca md too weak', 'ca key too small']);
  // accepted: a chain, EC and RSA keys, a certificate for the longest alias that can have one (its files are 255 bytes)
  const { dir } = await renderTree([create('chain') + sslDoc('chain', 'chain.example.org', 'ok-chain.crt', 'ok-chain.key') +
    create('ec') + sslDoc('ec', 'ec.example.org', 'b.crt', 'b.key') + create('long') + sslDoc('long', LONG_ALIAS, 'a.crt', 'a.key')]);
  await t.notThrowsAsync(nginxT(dir));
  // the module writes the 255-byte file names on a proxy
  const files: Record<string, string> = {};
  const secret: Record<string, string> = {};
  for (const sub of ['maps/long-acme.map', 'servers/long-acme.conf', 'locations/long-acme.conf']) {
    if (existsSync(join(dir, 'rproxy', sub))) files[sub] = await readFile(join(dir, 'rproxy', sub), 'utf8');
  }
  files[`tls/long-acme/${LONG_ALIAS}.crt`] = await readFile(join(dir, 'rproxy', `tls/long-acme/${LONG_ALIAS}.crt`), 'utf8');
  secret[`tls/long-acme/${LONG_ALIAS}.key`] = await readFile(join(dir, 'rproxy', `tls/long-acme/${LONG_ALIAS}.key`), 'utf8');
  for (const ext of ['crt', 'key']) await unlink(join(dir, 'rproxy', `tls/long-acme/${LONG_ALIAS}.${ext}`));
  const m = await runModule(dir, { apps: ['long-acme'], files, secret_files: secret });
  t.falsy(m.failed, m.msg);
  t.deepEqual(m.written, [`tls/long-acme/${LONG_ALIAS}.crt`, `tls/long-acme/${LONG_ALIAS}.key`]);
  // control: each refused certificate, put in place of an accepted one, does make nginx -t fail here
  for (const c of refused) {
    await writeFile(join(dir, 'rproxy/tls/ec-acme/ec.example.org.crt'), tls(`${c}.crt`));
    await writeFile(join(dir, 'rproxy/tls/ec-acme/ec.example.org.key'), tls(`${c}.key`));
    const e = await t.throwsAsync(nginxT(dir), undefined, c);
    t.regex(String((e as { stderr?: string }).stderr), /SSL_CTX_use_certificate|SSL_CTX_set0_chain/, c);
  }
});

// --- the loop guard: a gear address that is a proxy ---------------------------------------------------------------

const freePort = (): Promise<number> => new Promise((resolve, reject) => {
  const srv = createServer();
  srv.once('error', reject);
  srv.listen(0, '127.0.0.1', () => {
    const { port } = srv.address() as AddressInfo;
    srv.close(() => resolve(port));
  });
});

/** One GET to nginx at 127.0.0.1:port for `host`: the status. */
const get = (port: number, host: string): Promise<number> => new Promise((resolve, reject) => {
  const req = request({ host: '127.0.0.1', port, path: '/', headers: { host }, timeout: 10_000 }, (res) => {
    res.resume();
    res.on('end', () => resolve(res.statusCode ?? 0));
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', reject);
  req.end();
});

test('loop guard: a gear that is the proxy itself is answered 508 at the second hop (it looped until the workers ran out of connections)', async (t) => {
  if (!NGINX) return t.pass('nginx not installed');
  const { dir } = await renderTree([[create('loop'), endpoint('loop', 'g1', '198.51.100.41', 8080, ['http'], []),
    create('mapped'), endpoint('mapped', 'g2', '198.51.100.42', 8080, ['http', 'ws'], [['/a', '/b']])].join('')]);
  // Serve on free loopback ports only; the generator refuses loopback gears, so the upstreams are pointed at this
  // nginx by hand, as a published gear address that is a proxy's or a VIP would.
  const [http, https, health] = [await freePort(), await freePort(), await freePort()];
  const conf = join(dir, 'rproxy');
  for (const f of ['rproxy.conf', 'servers/mapped-acme.conf']) {
    const text = (await readFile(join(conf, f), 'utf8')).replace(/^ *listen \[::\].*\n/gm, '')
      .replace(/listen 8080\b/g, `listen 127.0.0.1:${http}`).replace(/listen 8443\b/g, `listen 127.0.0.1:${https}`).replace('127.0.0.1:18081', `127.0.0.1:${health}`);
    await writeFile(join(conf, f), text);
  }
  for (const id of ['loop-acme', 'ws.mapped-acme']) {
    const f = join(conf, 'upstreams', `${id.replace('ws.', '')}.conf`);
    await writeFile(f, (await readFile(f, 'utf8')).replace(/server [^ ]+/, `server 127.0.0.1:${http}`));
  }
  const log = join(dir, 'access.log');
  await writeFile(join(dir, 'nginx.conf'), (await readFile(join(dir, 'nginx.conf'), 'utf8')).replace('access_log off;', `access_log ${log};`));
  await nginxT(dir);
  const nginx = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'ignore' });
  const exited = new Promise((r) => nginx.once('exit', r));
  try {
    for (let i = 0; i < 100 && !(await get(health, 'localhost').then(() => true, () => false)); i++) await new Promise((r) => setTimeout(r, 50));
    t.is(await get(http, 'loop-acme.apps.example.com'), 508, 'shared server');
    t.is(await get(http, 'mapped-acme.apps.example.com'), 508, 'dedicated server (path mappings)');
    // the health server logs nothing: every line is a hop of the two requests
    t.is((await readFile(log, 'utf8')).trim().split('\n').length, 4, 'two hops per request');
  } finally {
    nginx.kill('SIGQUIT');
    await exited;
  }
});
