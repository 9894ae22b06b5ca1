/**
 * The role's templates, fed by the generator's `route` block, give a configuration real nginx accepts: apps built
 * from SPI events (the samples, the lab demo, and tricky mappings) are rendered by test/unit/vars/render_routes.py
 * (the action plugin's own check_app/check_settings/render_app and the role's templates) into a temp prefix,
 * then `nginx -t -p DIR -c DIR/nginx.conf`.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync } from 'node:fs';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StateStore } from '../../../generator/src/vars/store.js';
import { varsFilePath } from '../../../generator/src/vars/paths.js';
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

async function renderTree(streams: string[]): Promise<{ dir: string; vars: string; stateDir: string }> {
  const cfg = await tmpConfig();
  const store = await StateStore.open(cfg);
  for (const s of streams) {
    const r = await store.applyText(s);
    if (r.rejected.length) throw new Error(JSON.stringify(r.rejected));
  }
  const dir = join(cfg.dir, 'nginx');
  await run('/usr/bin/python3', [HELPER, cfg.state_dir, dir, join(FIXTURES, 'tls/a.crt'), join(FIXTURES, 'tls/a.key')]);
  return { dir, vars: varsFilePath(cfg), stateDir: cfg.state_dir };
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
  const server = (id: string) => readFile(join(dir, 'rproxy/servers', `${id}.conf`), 'utf8');
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
    const doc = JSON.parse(await readFile(vars, 'utf8'));
    const app = doc.nginx_rproxy_apps['odd-acme'];
    tamper(app.route, app);
    await writeFile(vars, JSON.stringify(doc));
    const e = await t.throwsAsync(run('/usr/bin/python3', [HELPER, stateDir, dir + '2', join(FIXTURES, 'tls/a.crt'), join(FIXTURES, 'tls/a.key')]));
    t.is((e as { code?: number }).code, 3);
    t.regex(String((e as { stderr?: string }).stderr), message);
  });
}
