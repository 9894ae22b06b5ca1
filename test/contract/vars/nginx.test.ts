/**
 * The role's data plane, fed by the generator's `route` block, on the real nginx with the Lua module: apps built from
 * SPI events (the samples, the lab demo, and tricky mappings) are rendered by test/contract/vars/render_routes.py (the
 * action plugin's own check_app/check_settings/render_app, the role's templates and files/rproxy.lua) into a temp
 * prefix, then `nginx -t -p DIR -c DIR/nginx.conf`; the live tests run that nginx on free loopback ports (apply socket
 * inside the temp prefix) and stop it.
 */
import { needs, NGINX as NGINX_TOOL, ANSIBLE } from '../helpers/tools.js';
import { execFile, spawn } from 'node:child_process';
import { createServer as createHttpServer, request, type Server } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { existsSync } from 'node:fs';
import { appendFile, chmod, mkdir, readFile, readdir, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StateStore } from '../../../generator/src/vars/store.js';
import { appFilePath } from '../../../generator/src/vars/paths.js';
import { block, FIXTURES, psych, REPO, samplesDocs, tls, tmpConfig } from '../../fixtures/helpers.js';

const run = promisify(execFile);
const test = needs(NGINX_TOOL, ANSIBLE); // render_routes.py loads the role's action plugin with Ansible's Jinja
const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));
const HELPER = join(REPO, 'test/contract/vars/render_routes.py');

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

interface Ports { http: number; https: number; health: number }

async function renderTree(streams: string[], extraConfig = '', ports?: Ports): Promise<{ dir: string; /** apps/odd-acme.json */ vars: string; stateDir: string }> {
  // the fixture certificate is for a.example.org: the TLS aliases here test rendering, not certificate names
  const cfg = await tmpConfig('tls_require_valid: false\n' + extraConfig);
  const store = await StateStore.open(cfg);
  for (const s of streams) {
    const r = await store.applyText(s);
    if (r.rejected.length) throw new Error(JSON.stringify(r.rejected));
  }
  const dir = join(cfg.dir, 'nginx');
  await render(cfg.state_dir, dir, ports);
  return { dir, vars: appFilePath(cfg, 'odd-acme'), stateDir: cfg.state_dir };
}

const render = (stateDir: string, dir: string, ports?: Ports) => run('/usr/bin/python3', [HELPER, stateDir, dir, join(FIXTURES, 'tls/a.crt'), join(FIXTURES, 'tls/a.key')],
  { env: { ...process.env, ...(ports ? { RPROXY_PORTS: `${ports.http},${ports.https},${ports.health}` } : {}) } });

const nginxT = (dir: string) => run(NGINX!, ['-t', '-q', '-p', dir, '-c', join(dir, 'nginx.conf')]);
const appData = async (dir: string, id: string): Promise<Record<string, any>> => JSON.parse(await readFile(join(dir, 'rproxy/apps', `${id}.json`), 'utf8'));

const CASES: Array<[string, string[]]> = [
  ['samples (TLS alias, websocket, /health mapping)', [samplesDocs().slice(0, 11).join('')]],
  ['lab demo apps', [await readFile(join(REPO, 'test/lab/demo.yml'), 'utf8')]],
  ['tricky mappings', [TRICKY]],
];

for (const [name, streams] of CASES) {
  // `nginx -t` does not run init_by_lua (checked: a bad setting there passes it), so the data files are checked by
  // starting the nginx for real: its init loads every file and logs the count, skipping (and logging) a bad one
  test(`nginx -t accepts the rendered config; started, it loads every app file: ${name}`, async (t) => {
    const ports = { http: await freePort(), https: await freePort(), health: await freePort() };
    const { dir } = await renderTree(streams, '', ports);
    await t.notThrowsAsync(nginxT(dir));
    const apps = (await readdir(join(dir, 'rproxy/apps'))).length;
    t.true(apps > 0);
    const nginx = await startNginx(dir, ports.health);
    try {
      const log = await readFile(join(dir, 'error.log'), 'utf8');
      t.regex(log, new RegExp(`rproxy: loaded ${apps} apps`));
      // a port that another test took between freePort and the start makes nginx retry its bind (logged [emerg]):
      // not the data's fault, and the start fails if the retries do
      const problems = log.split('\n').filter((l) => /skipping|\[error\]|\[emerg\]/.test(l) && !/bind\(\) to \S+ failed \(98: Address already in use\)/.test(l));
      t.deepEqual(problems, [], 'every app file passes the Lua checks');
    } finally {
      await nginx.stop();
    }
  });
}

test('tricky apps: one data file per app from the route block only (deterministic bytes); TLS servers only for TLS aliases', async (t) => {
  const { dir, stateDir } = await renderTree([TRICKY]);
  const bug = await appData(dir, 'bug-acme');
  t.deepEqual(bug.locations, [{ path: '/', rewrite_to: '/a/$1' }], 'one location per path');
  t.false(bug.root_location, 'no default location next to the remapped root');
  const split = await appData(dir, 'split-acme');
  t.true(split.websocket);
  t.deepEqual(split.locations, [{ path: '/v1/', rewrite_to: '/c/$1' }, { path: '/v1', rewrite_to: '/a/$1' }, { path: '/', rewrite_to: '/one/$1' }], 'first endpoint wins for / and /v1');
  const odd = await appData(dir, 'odd-acme');
  t.deepEqual(odd.backends, ['[2001:db8::7]:8081']);
  t.deepEqual(odd.locations.find((l: { path: string }) => l.path === '/a.b(c)*+~&!,=:@%20-d/'), { path: '/a.b(c)*+~&!,=:@%20-d/', rewrite_to: '/x.y/$1' });
  const gone = await appData(dir, 'gone-acme');
  t.deepEqual(gone, { backends: [], id: 'gone-acme', locations: [], names: ['gone-acme.apps.example.com', 'gone.example.org'], root_location: true, websocket: false });
  const tlsServers = await readFile(join(dir, 'rproxy/tls-servers/gone-acme.conf'), 'utf8');
  t.is(tlsServers.match(/^server \{/gm)?.length, 1);
  t.true(tlsServers.includes('server_name gone.example.org;'));
  t.true(tlsServers.includes('set $rproxy_app gone-acme;'), 'pinned to its app whatever the Host header');
  t.true(existsSync(join(dir, 'rproxy/tls/gone-acme/gone.example.org.crt')));
  t.false(existsSync(join(dir, 'rproxy/tls-servers/idle-acme.conf')));
  t.deepEqual(await readdir(join(dir, 'rproxy/apps')), ['bug-acme.json', 'gone-acme.json', 'idle-acme.json', 'odd-acme.json', 'split-acme.json']);
  // the bytes are a function of the state: a second render is identical (the module's byte compare gives changed=false)
  const before = await readFile(join(dir, 'rproxy/apps/split-acme.json'), 'utf8');
  t.true(before.startsWith('{"backends":['), 'sorted keys, no spaces');
  await render(stateDir, dir + '2');
  t.is(await readFile(join(dir + '2', 'rproxy/apps/split-acme.json'), 'utf8'), before);
});

test('control: nginx -t does catch a broken TLS server file (so the tests above can fail)', async (t) => {
  const { dir } = await renderTree([TRICKY]);
  await appendFile(join(dir, 'rproxy/tls-servers/gone-acme.conf'), 'server {\n    listen 8080;\n    server_name x.example.org;\n    location "/" { return 404; }\n    location "/" { return 404; }\n}\n');
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
  // Python's $ matches before a final newline: the checks anchor with \Z
  ['fqdn with a trailing newline', (_r, a) => { a.fqdn = { __ansible_unsafe: 'odd-acme.apps.example.com\n' }; }, /fqdn/],
  ['location path with a trailing newline', (r) => { r.locations[0].path = { __ansible_unsafe: '/same\n' }; }, /location path/],
  ['rewrite target with a trailing newline', (r) => { r.locations[0].rewrite_to = { __ansible_unsafe: '/same/$1\n' }; }, /rewrite_to/],
];

for (const [name, tamper, message] of TAMPER) {
  test(`action plugin check_app rejects: ${name}`, async (t) => {
    const { vars, stateDir, dir } = await renderTree([TRICKY]);
    const app = JSON.parse(await readFile(vars, 'utf8'));
    tamper(app.route, app);
    await writeFile(vars, JSON.stringify(app));
    const e = await t.throwsAsync(run('/usr/bin/python3', [HELPER, stateDir, dir + '2', join(FIXTURES, 'tls/a.crt'), join(FIXTURES, 'tls/a.key')]));
    t.is((e as { code?: number }).code, 3);
    t.regex(String((e as { stderr?: string }).stderr), message);
  });
}

// --- one big app: its data grows with the sum of its parts ---------------------------------------------------------

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

test('a big app (25 gears × 64 mappings + 50 certificates): data and TLS servers grow with the sum of its parts; nginx -t accepts it', async (t) => {
  const { dir } = await renderTree([bigApp(25, 64, 50)]);
  const data = await readFile(join(dir, 'rproxy/apps/big-acme.json'), 'utf8');
  const servers = await readFile(join(dir, 'rproxy/tls-servers/big-acme.conf'), 'utf8');
  t.log(`data ${data.length} bytes, TLS servers ${servers.length} bytes`);
  t.true(data.length + servers.length < 100_000, 'tens of kilobytes, not megabytes');
  t.is(JSON.parse(data).locations.length, 64, 'every mapped path once');
  t.is(servers.match(/^server \{/gm)?.length, 50, 'one :443 server per certificate');
  t.false(servers.includes('location "'), 'no location in the servers: the Lua router does the mappings');
  await t.notThrowsAsync(nginxT(dir));
});

/** Runs the role's module on this machine, as Ansible would (arguments file), against a rendered prefix. */
async function runModule(dir: string, args: Record<string, unknown>): Promise<{ failed?: boolean; msg?: string; changed?: boolean; written?: string[]; removed?: string[]; applied?: string; legacy_removed?: string[] }> {
  const argsFile = join(dir, 'module-args.json');
  await writeFile(argsFile, JSON.stringify({
    ANSIBLE_MODULE_ARGS: {
      conf_dir: join(dir, 'rproxy'), test_command: [NGINX, '-t', '-q', '-p', dir, '-c', join(dir, 'nginx.conf')],
      pid_file: join(dir, 'none.pid'), start_command: ['true'], apply_socket: join(dir, 'run/apply.sock'), ...args,
    },
  }));
  const out = await run('/usr/bin/python3', [join(REPO, 'roles/nginx_rproxy/library/nginx_rproxy_routes.py'), argsFile]).catch((e: { stdout: string }) => e);
  return JSON.parse(out.stdout.slice(out.stdout.indexOf('{')));
}

test('the module: refuses other paths, restores the previous files when nginx -t fails on a TLS server, removes stale files and the older layout', async (t) => {
  const { dir } = await renderTree([TRICKY]);
  const rel = 'tls-servers/gone-acme.conf';
  const good = await readFile(join(dir, 'rproxy', rel), 'utf8');
  const data = await readFile(join(dir, 'rproxy/apps/gone-acme.json'), 'utf8');
  // a targeted run restores a lost file
  await unlink(join(dir, 'rproxy', rel));
  const crt = 'tls/gone-acme/gone.example.org.crt';
  const key = 'tls/gone-acme/gone.example.org.key';
  const files = { 'apps/gone-acme.json': data, [rel]: good, [crt]: await readFile(join(dir, 'rproxy', crt), 'utf8') };
  const secret_files = { [key]: await readFile(join(dir, 'rproxy', key), 'utf8') };
  for (const f of [crt, key]) await chmod(join(dir, 'rproxy', f), 0o600); // the helper wrote them 0644
  const restored = await runModule(dir, { apps: ['gone-acme'], files, secret_files });
  t.falsy(restored.failed, restored.msg);
  t.deepEqual(restored.written, [rel]);
  t.is(await readFile(join(dir, 'rproxy', rel), 'utf8'), good);
  t.false((await runModule(dir, { apps: ['gone-acme'], files, secret_files })).changed, 'same bytes: changed=false');
  // allow-list: nothing outside the app's own kinds of files (the older layout's kinds neither)
  for (const bad of ['apps/../tls-servers/x-acme.conf', 'apps/gone-acme.conf', 'apps/other.json', 'snippets/gone-acme.conf', 'maps/gone-acme.map', 'servers/gone-acme.conf']) {
    const r = await runModule(dir, { apps: ['gone-acme'], files: { [bad]: 'x' } });
    t.true(r.failed, bad);
    t.regex(r.msg ?? '', /refusing to write/, bad);
  }
  const notData = await runModule(dir, { apps: ['gone-acme'], files: { 'apps/gone-acme.json': '{"id": "other-acme"}' } });
  t.regex(notData.msg ?? '', /not the data of app gone-acme/);
  // rollback: a TLS server nginx refuses leaves the previous files in place (the data file written with it too)
  const broken = await runModule(dir, { apps: ['gone-acme'], secret_files, files: { ...files, 'apps/gone-acme.json': data.replace('"websocket":false', '"websocket":true'), [rel]: 'server { no_such_directive; }\n' } });
  t.true(broken.failed);
  t.regex(broken.msg ?? '', /nginx configuration test failed, previous files restored/);
  t.is(await readFile(join(dir, 'rproxy', rel), 'utf8'), good);
  t.is(await readFile(join(dir, 'rproxy/apps/gone-acme.json'), 'utf8'), data);
  // an older installation's layout: a full run removes it once the base configuration no longer includes it
  for (const d of ['maps', 'upstreams', 'servers', 'locations']) {
    await mkdir(join(dir, 'rproxy', d), { recursive: true });
    await writeFile(join(dir, 'rproxy', d, 'gone-acme.conf'), '# old\n');
  }
  const full = await runModule(dir, { apps: ['split-acme'], full: true, files: {} });
  t.falsy(full.failed, full.msg);
  t.true(full.removed!.includes(rel));
  t.true(full.removed!.includes('apps/split-acme.json'), 'split-acme was selected with no files: its files go as well');
  t.deepEqual(full.legacy_removed, ['maps', 'upstreams', 'servers', 'locations']);
  for (const d of ['maps', 'upstreams', 'servers', 'locations', 'tls/gone-acme']) t.false(existsSync(join(dir, 'rproxy', d)), d);
  t.deepEqual(await readdir(join(dir, 'rproxy/apps')), []);
  await t.notThrowsAsync(nginxT(dir));
});

test('the module: a targeted run looks only at its apps\' own files: a deleted app\'s data, TLS server and keys go, every other app\'s stay', async (t) => {
  const { dir } = await renderTree([TRICKY]);
  const list = async (): Promise<string[]> => {
    const out: string[] = [];
    for (const sub of ['apps', 'tls-servers']) for (const f of await readdir(join(dir, 'rproxy', sub)).catch(() => [] as string[])) out.push(`${sub}/${f}`);
    for (const a of await readdir(join(dir, 'rproxy/tls')).catch(() => [] as string[])) for (const f of await readdir(join(dir, 'rproxy/tls', a))) out.push(`tls/${a}/${f}`);
    return out.sort();
  };
  const before = await list();
  const gone = before.filter((f) => f.includes('gone-acme'));
  t.deepEqual(gone.map((f) => f.split('/')[0]).sort(), ['apps', 'tls', 'tls', 'tls-servers'], 'the fixture app has a data file, a TLS server and a key pair');
  t.true(before.length - gone.length >= 3, 'other apps have files');
  const r = await runModule(dir, { apps: ['gone-acme', 'never-acme'], files: {} });
  t.falsy(r.failed, r.msg);
  t.deepEqual([...r.removed!].sort(), gone);
  t.deepEqual(await list(), before.filter((f) => !gone.includes(f)));
  t.false(existsSync(join(dir, 'rproxy/tls/gone-acme')), 'the deleted app\'s TLS directory is removed');
});

test('the module: many files (a new proxy\'s 10,000) are written as temporary files, synced once, then renamed: whole files, no temporary file left, all restored when nginx -t fails', async (t) => {
  const { dir } = await renderTree([TRICKY]);
  const ids = Array.from({ length: 40 }, (_, i) => `bulk${i}-acme`); // above the module's BATCH_SYNC_MIN (32)
  const data = (id: string, v: number) => `{"backends":["198.51.100.41:${8000 + v}"],"id":"${id}","locations":[],"names":["${id}.apps.example.com"],"root_location":true,"websocket":false}\n`;
  const files = (v: number) => Object.fromEntries(ids.map((id) => [`apps/${id}.json`, data(id, v)]));
  const leftovers = async () => (await readdir(join(dir, 'rproxy/apps'))).concat(await readdir(join(dir, 'rproxy/tls-servers'))).filter((f) => f.startsWith('.rproxy-'));
  const first = await runModule(dir, { apps: ids, files: files(1) });
  t.falsy(first.failed, first.msg);
  t.is((first as { written_count?: number }).written_count, 40);
  for (const id of ids) t.is(await readFile(join(dir, 'rproxy/apps', `${id}.json`), 'utf8'), data(id, 1));
  t.deepEqual(await leftovers(), []);
  t.false((await runModule(dir, { apps: ids, files: files(1) })).changed, 'same bytes: changed=false');
  // a refused TLS server among them: every data file keeps its previous bytes, the new server file is gone
  const broken = await runModule(dir, { apps: ids, files: { ...files(2), 'tls-servers/bulk0-acme.conf': 'server { no_such_directive; }\n' } });
  t.true(broken.failed);
  t.regex(broken.msg ?? '', /nginx configuration test failed, previous files restored/);
  for (const id of ids) t.is(await readFile(join(dir, 'rproxy/apps', `${id}.json`), 'utf8'), data(id, 1), id);
  t.false(existsSync(join(dir, 'rproxy/tls-servers/bulk0-acme.conf')));
  t.deepEqual(await leftovers(), []);
  const second = await runModule(dir, { apps: ids, files: files(2) });
  t.falsy(second.failed, second.msg);
  for (const id of ids) t.is(await readFile(join(dir, 'rproxy/apps', `${id}.json`), 'utf8'), data(id, 2));
  t.deepEqual(await leftovers(), []);
});

// --- TLS material: what the intake accepts, nginx loads ----------------------------------------------------------

const sslDoc = (name: string, alias: string, crt: string, key: string): string =>
  psych({ action: ':add_alias', app_name: name, namespace: 'acme', alias }) +
  psych({ action: ':add_ssl', app_name: name, namespace: 'acme', alias, ssl: block(tls(crt)), private_key: block(tls(key)), pass_phrase: "''" });
/** 251 characters: the longest alias whose files <alias>.crt / <alias>.key fit in a 255-byte file name. */
const LONG_ALIAS = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(55)}.org`;

test('TLS material: what the intake refuses is what nginx refuses to load (weak keys, X25519, SHA-1 by a CA, weak chain); the rest passes nginx -t', async (t) => {
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
  for (const sub of ['apps/long-acme.json', 'tls-servers/long-acme.conf']) {
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

// --- the Lua data plane on a real nginx (loopback ports, apply socket in the temp prefix) ---------------------------

const freePort = (): Promise<number> => new Promise((resolve, reject) => {
  const srv = createServer();
  srv.once('error', reject);
  srv.listen(0, '127.0.0.1', () => {
    const { port } = srv.address() as AddressInfo;
    srv.close(() => resolve(port));
  });
});

interface Reply { status: number; body: string; json?: Record<string, any> }

/** One request to 127.0.0.1:port (or the unix socket) with the given headers. */
const req = (target: number | string, path: string, headers: Record<string, string>, method = 'GET', body?: string): Promise<Reply> => new Promise((resolve, reject) => {
  const r = request({ ...(typeof target === 'number' ? { host: '127.0.0.1', port: target } : { socketPath: target }), method, path, headers, timeout: 10_000 }, (res) => {
    let b = '';
    res.setEncoding('utf8');
    res.on('data', (c) => (b += c));
    res.on('end', () => {
      let json;
      try { json = JSON.parse(b); } catch { /* not JSON */ }
      resolve({ status: res.statusCode ?? 0, body: b, json });
    });
  });
  r.on('timeout', () => r.destroy(new Error('timeout')));
  r.on('error', reject);
  r.end(body);
});
const get = (port: number, host: string, path = '/', headers: Record<string, string> = {}) => req(port, path, { host, ...headers });

/** A gear on a loopback port: answers every request (an Upgrade one too) with what it received, as JSON. */
async function gear(): Promise<{ port: number; server: Server }> {
  const port = await freePort();
  const server = createHttpServer((q, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ gear: port, url: q.url, host: q.headers.host, upgrade: q.headers.upgrade ?? '', connection: q.headers.connection ?? '', xff: q.headers['x-forwarded-for'] ?? '', loop: q.headers['cdn-loop'] ?? '' }));
  });
  server.on('upgrade', (q, socket) => {
    const body = JSON.stringify({ gear: port, url: q.url, host: q.headers.host, upgrade: q.headers.upgrade ?? '', connection: q.headers.connection ?? '' });
    socket.end(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return { port, server };
}

const pids = async (master: number): Promise<string> => (await run('pgrep', ['-P', String(master)]).catch(() => ({ stdout: '' }))).stdout.split('\n').filter(Boolean).sort().join(',');

/** nginx -p DIR in the foreground (daemon off); its master pid. */
async function startNginx(dir: string, health: number): Promise<{ pid: number; stop: (signal?: NodeJS.Signals) => Promise<void> }> {
  const child = spawn(NGINX!, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'ignore' });
  const exited = new Promise((r) => child.once('exit', r));
  for (let i = 0; i < 100 && !(await get(health, 'localhost').then(() => true, () => false)); i++) await new Promise((r) => setTimeout(r, 50));
  const pid = child.pid!;
  return {
    pid,
    stop: async (signal: NodeJS.Signals = 'SIGQUIT') => {
      if (signal === 'SIGKILL') {
        // a crash: the master first (a live master respawns a killed worker), then its workers (they would keep
        // the ports)
        const ws = (await pids(pid)).split(',').filter(Boolean);
        child.kill(signal);
        await exited;
        for (const w of ws) process.kill(Number(w), 'SIGKILL');
        for (let i = 0; i < 100 && ws.some((w) => existsSync(`/proc/${w}`)); i++) await new Promise((r) => setTimeout(r, 20));
        return;
      }
      child.kill(signal);
      await exited;
    },
  };
}

const WEB = [create('web'), endpoint('web', 'g1', '198.51.100.41', 8080, ['http'], [['/api', '/v2']]), endpoint('web', 'g2', '198.51.100.42', 8080, ['http'], []),
  psych({ action: ':add_alias', app_name: 'web', namespace: 'acme', alias: 'www.example.org' }),
  create('sock'), endpoint('sock', 'g3', '198.51.100.43', 8080, ['http', 'ws'], []), create('idle')].join('');

test('the Lua data plane on a real nginx: routes by host, 404/503/508, mappings, websocket; live apply all-or-nothing without a reload; a restart serves the files', async (t) => {
  t.timeout(120_000);
  const ports = { http: await freePort(), https: await freePort(), health: await freePort() };
  const [g1, g2] = [await gear(), await gear()];
  const { dir } = await renderTree([WEB], '', ports);
  // the generator refuses loopback gears: point the data at this test's gears by hand (and add a wildcard alias)
  for (const id of ['web-acme', 'sock-acme']) {
    const d = await appData(dir, id);
    d.backends = id === 'web-acme' ? [`127.0.0.1:${g1.port}`, `127.0.0.1:${g2.port}`] : [`127.0.0.1:${g2.port}`];
    if (id === 'web-acme') d.names.push('*.wild.example.org');
    await writeFile(join(dir, 'rproxy/apps', `${id}.json`), JSON.stringify(d));
  }
  // a file the Lua checks refuse (written by hand: the module never writes one) is skipped, the others load
  await writeFile(join(dir, 'rproxy/apps/evil-acme.json'), JSON.stringify({ id: 'evil-acme', names: ['evil;x.example.org'], backends: [], websocket: false, root_location: true, locations: [] }));
  const sock = join(dir, 'run/apply.sock');
  let nginx = await startNginx(dir, ports.health);
  t.regex(await readFile(join(dir, 'error.log'), 'utf8'), /skipping .*evil-acme\.json: app evil-acme: bad server name/);
  await unlink(join(dir, 'rproxy/apps/evil-acme.json'));
  try {
    const workers = await pids(nginx.pid);
    t.truthy(workers);
    // host lookup: exact, case-insensitive, trailing dot; wildcard (any depth, not the bare suffix); unknown
    for (const h of ['web-acme.apps.example.com', 'WWW.Example.org', 'www.example.org.', 'a.wild.example.org', 'a.b.wild.example.org']) {
      const r = await get(ports.http, h, '/x?y=1');
      t.is(r.status, 200, h);
      t.is(r.json?.url, '/x?y=1', h);
      t.is(r.json?.loop, 'paas-rproxy', 'CDN-Loop carried');
    }
    t.is((await get(ports.http, 'wild.example.org')).status, 404, 'a wildcard does not match its bare suffix');
    t.is((await get(ports.http, 'nope.example.org')).status, 404);
    const idle = await get(ports.http, 'idle-acme.apps.example.com');
    t.is(idle.status, 503);
    t.regex(idle.body, /no running gear/, 'the 503 page');
    t.is((await get(ports.http, 'web-acme.apps.example.com', '/', { 'cdn-loop': 'cdn1, paas-rproxy' })).status, 508, 'loop guard');
    // round robin over the gears; the mapping's prefix becomes the backend path
    const seen = new Set<number>();
    for (let i = 0; i < 4; i++) seen.add((await get(ports.http, 'web-acme.apps.example.com')).json?.gear);
    t.deepEqual([...seen].sort(), [g1.port, g2.port].sort());
    t.is((await get(ports.http, 'web-acme.apps.example.com', '/api/users?x=1')).json?.url, '/v2/users?x=1');
    t.is((await get(ports.http, 'web-acme.apps.example.com', '/api')).json?.url, '/v2/');
    // Upgrade/Connection reach a websocket app only
    const ws = await get(ports.http, 'sock-acme.apps.example.com', '/', { upgrade: 'websocket', connection: 'Upgrade' });
    t.is(ws.json?.upgrade, 'websocket');
    t.is(ws.json?.connection, 'upgrade');
    const plain = await get(ports.http, 'web-acme.apps.example.com', '/', { upgrade: 'websocket', connection: 'Upgrade' });
    t.is(plain.json?.upgrade, '');

    // the apply endpoint: any invalid entry = 422 and nothing changed
    const good = { id: 'new-acme', names: ['new.example.org'], backends: [`127.0.0.1:${g2.port}`], websocket: false, root_location: true, locations: [] };
    const invalid: Array<[string, unknown]> = [
      ['a bad name next to a good app', { set: { 'new-acme': good, 'bad-acme': { ...good, id: 'bad-acme', names: ['bad";x.example.org'] } } }],
      ['a backend with a port out of range', { set: { 'new-acme': { ...good, backends: ['127.0.0.1:70000'] } } }],
      ['a rewrite target with a variable', { set: { 'new-acme': { ...good, root_location: true, locations: [{ path: '/a', rewrite_to: '/$host/$1' }] } } }],
      ['root_location with a location /', { set: { 'new-acme': { ...good, root_location: true, locations: [{ path: '/', rewrite_to: '/$1' }] } } }],
      ['an unknown field', { set: { 'new-acme': { ...good, extra: 1 } } }],
      ['an id that is not its key', { set: { 'new-acme': { ...good, id: 'web-acme' } } }],
      ['a bad id to delete', { delete: ['web-acme', '../x'] }],
      ['a name longer than 253', { set: { 'new-acme': { ...good, names: [`${'a'.repeat(250)}.org`] } } }],
    ];
    for (const [name, body] of invalid) {
      const r = await req(sock, '/apply', { 'content-type': 'application/json' }, 'POST', JSON.stringify(body));
      t.is(r.status, 422, name);
      t.truthy(r.json?.error, name);
    }
    t.is((await req(sock, '/apply', {}, 'POST', '{"set": ')).status, 422, 'not JSON');
    t.is((await get(ports.http, 'new.example.org')).status, 404, 'nothing of the refused batches went live');
    t.is((await get(ports.http, 'web-acme.apps.example.com')).status, 200, 'the routes are unchanged');
    // a valid batch goes live at once, without a reload (same worker processes)
    const ok = await req(sock, '/apply', {}, 'POST', JSON.stringify({ set: { 'new-acme': good }, delete: ['idle-acme'] }));
    t.is(ok.status, 200, ok.body);
    t.is((await get(ports.http, 'new.example.org')).json?.gear, g2.port);
    t.is((await get(ports.http, 'idle-acme.apps.example.com')).status, 404);
    t.is(await pids(nginx.pid), workers, 'no reload: the same workers');

    // the module: a data-only change goes live through the socket (changed, no reload), then changed=false
    const pidFile = join(dir, 'nginx.pid');
    const web = await appData(dir, 'web-acme');
    const one = JSON.stringify({ ...web, backends: [`127.0.0.1:${g2.port}`] });
    const m = await runModule(dir, { apps: ['web-acme'], files: { 'apps/web-acme.json': one }, pid_file: pidFile });
    t.falsy(m.failed, m.msg);
    t.is(m.applied, 'live');
    for (let i = 0; i < 3; i++) t.is((await get(ports.http, 'web-acme.apps.example.com')).json?.gear, g2.port);
    t.false((await runModule(dir, { apps: ['web-acme'], files: { 'apps/web-acme.json': one }, pid_file: pidFile })).changed);
    t.is(await pids(nginx.pid), workers, 'still no reload');
    // data the Lua checks refuse: the module fails with the reason and puts the previous bytes back
    const refused = await runModule(dir, { apps: ['web-acme'], files: { 'apps/web-acme.json': JSON.stringify({ ...web, names: ['x x'] }) }, pid_file: pidFile });
    t.true(refused.failed);
    t.regex(refused.msg ?? '', /previous files restored.*422.*bad server name/);
    t.is(await readFile(join(dir, 'rproxy/apps/web-acme.json'), 'utf8'), one);
    t.is((await get(ports.http, 'web-acme.apps.example.com')).json?.gear, g2.port);

    // a crash (SIGKILL: the socket file stays behind) and a start: every route from the files, nothing else
    await nginx.stop('SIGKILL');
    t.true(existsSync(sock), 'a stale socket file');
    nginx = await startNginx(dir, ports.health);
    t.is((await get(ports.http, 'web-acme.apps.example.com')).json?.gear, g2.port, 'the module\'s file');
    t.is((await get(ports.http, 'a.wild.example.org')).status, 200);
    t.is((await get(ports.http, 'idle-acme.apps.example.com')).status, 503, 'the file of idle-acme is still there');
    t.is((await get(ports.http, 'new.example.org')).status, 404, 'posted without a file: gone after the restart');
    t.is((await req(sock, '/apply', {}, 'POST', '{}')).status, 200, 'the apply socket is back');
  } finally {
    await nginx.stop();
    g1.server.close();
    g2.server.close();
  }
});

test('loop guard: a gear that is the proxy itself is answered 508 at the second hop (it looped until the workers ran out of connections)', async (t) => {
  const ports = { http: await freePort(), https: await freePort(), health: await freePort() };
  const { dir } = await renderTree([[create('loop'), endpoint('loop', 'g1', '198.51.100.41', 8080, ['http'], []),
    create('mapped'), endpoint('mapped', 'g2', '198.51.100.42', 8080, ['http', 'ws'], [['/a', '/b']])].join('')], '', ports);
  // the generator refuses loopback gears: point the apps at this nginx by hand, as a published gear address that is a
  // proxy's or a VIP would
  for (const id of ['loop-acme', 'mapped-acme']) {
    const d = await appData(dir, id);
    d.backends = [`127.0.0.1:${ports.http}`];
    await writeFile(join(dir, 'rproxy/apps', `${id}.json`), JSON.stringify(d));
  }
  const log = join(dir, 'access.log');
  await writeFile(join(dir, 'nginx.conf'), (await readFile(join(dir, 'nginx.conf'), 'utf8')).replace('access_log off;', `access_log ${log};`));
  await nginxT(dir);
  const nginx = await startNginx(dir, ports.health);
  try {
    t.is((await get(ports.http, 'loop-acme.apps.example.com')).status, 508);
    t.is((await get(ports.http, 'mapped-acme.apps.example.com', '/a/x')).status, 508, 'a mapped path');
    // the health server logs nothing: every line is a hop of the two requests
    t.is((await readFile(log, 'utf8')).trim().split('\n').length, 4, 'two hops per request');
  } finally {
    await nginx.stop();
  }
});

test('hostile requests and apply entries: a Host cannot poison the pinned servers\' cache, a Host longer than any name is 404 at once, a control character in a mapped path is 400, a trailing newline passes no check', async (t) => {
  t.timeout(60_000);
  const ports = { http: await freePort(), https: await freePort(), health: await freePort() };
  const g = await gear();
  const { dir } = await renderTree([WEB], '', ports);
  const d = await appData(dir, 'web-acme');
  d.backends = [`127.0.0.1:${g.port}`];
  d.names.push('*.wild.example.org');
  await writeFile(join(dir, 'rproxy/apps/web-acme.json'), JSON.stringify(d));
  // a server pinned to web-acme as an app's TLS servers are (plain HTTP here: the pinning is the point)
  const pinned = await freePort();
  await writeFile(join(dir, 'rproxy/tls-servers/web-acme.conf'),
    `server {\n    listen 127.0.0.1:${pinned};\n    set $rproxy_app web-acme;\n    include ${join(dir, 'rproxy/snippets/routed.conf')};\n}\n`);
  const sock = join(dir, 'run/apply.sock');
  const nginx = await startNginx(dir, ports.health);
  try {
    // the workers cached pinned apps and hosts under one key space: "Host: #web-acme" on :80 cached a 404 where
    // the pinned server looks its app up, and the app's TLS servers answered 404 on that worker
    for (let i = 0; i < 20; i++) t.is((await get(ports.http, '#web-acme')).status, 404);
    for (let i = 0; i < 10; i++) t.is((await get(pinned, 'whatever.example.org')).json?.gear, g.port, 'the pinned server still routes');
    // the wildcard lookup walks every label of the Host: 4,000 labels cost ~70 ms of worker CPU per request
    const long = `${'a.'.repeat(130)}wild.example.org`; // 276 characters: no DNS name is that long
    t.is((await get(ports.http, `b.wild.example.org`)).status, 200, 'control: the wildcard routes');
    t.is((await get(ports.http, long)).status, 404, 'a Host longer than 253 characters is not looked up');
    t.is((await get(ports.http, `${'a.'.repeat(3900)}wild.example.org`)).status, 404);
    // a %0D%0A decoded into $uri: set_uri refuses it (it was a 500 and a Lua stack trace in the log per request)
    t.is((await get(ports.http, 'web-acme.apps.example.com', '/api/a%0d%0aX-Injected:%201')).status, 400);
    t.is((await get(ports.http, 'web-acme.apps.example.com', '/api/a%20b')).json?.url, '/v2/a%20b', 'control: an escaped space passes');
    t.notRegex(await readFile(join(dir, 'error.log'), 'utf8'), /stack traceback/);
    // PCRE's $ matches before a final newline: every field is checked with \z
    const good = { id: 'new-acme', names: ['new.example.org'], backends: [`127.0.0.1:${g.port}`], websocket: false, root_location: true, locations: [{ path: '/p', rewrite_to: '/q/$1' }] };
    t.is((await req(sock, '/apply', {}, 'POST', JSON.stringify({ set: { 'new-acme': good } }))).status, 200, 'control: the good app');
    const bad: Array<[string, unknown]> = [
      ['id', { set: { 'new-acme\n': { ...good, id: 'new-acme\n' } } }],
      ['name', { set: { 'new-acme': { ...good, names: ['new.example.org\n'] } } }],
      ['backend', { set: { 'new-acme': { ...good, backends: [`127.0.0.1:${g.port}\n`] } } }],
      ['location path', { set: { 'new-acme': { ...good, locations: [{ path: '/p\n', rewrite_to: '/q/$1' }] } } }],
      ['rewrite_to', { set: { 'new-acme': { ...good, locations: [{ path: '/p', rewrite_to: '/q/$1\n' }] } } }],
      ['deleted id', { delete: ['new-acme\n'] }],
    ];
    for (const [name, body] of bad) t.is((await req(sock, '/apply', {}, 'POST', JSON.stringify(body))).status, 422, `a trailing newline in the ${name}`);
  } finally {
    await nginx.stop();
    g.server.close();
  }
});
