/** deriveRoute: every nginx value the role prints is computed here (the templates only print it). */
import test from 'ava';
import { deriveRoute, nginxQuote, regexEscape } from '../../../generator/src/state/route.js';
import type { AppState, Endpoint } from '../../../generator/src/state/types.js';
import type { Mapping } from '../../../generator/src/spi/types.js';

const D = 'apps.example.com';
const ep = (address: string, port: number, mappings: Mapping[], protocols = ['http']): Endpoint => ({
  address, port, gear_id: `g${port}`, port_name: 'web', protocols, types: ['web_framework'], mappings,
});
const app = (endpoints: Endpoint[], extra: Partial<AppState> = {}): AppState => ({
  id: 'shop-acme', app_name: 'shop', namespace: 'acme', scalable: false, ha: false, aliases: [], endpoints, tls: [], ...extra,
});
const m = (frontend: string, backend: string): Mapping => ({ frontend, backend });

test('upstream carries the ws. prefix of a websocket app; map_value is the upstream or @503', (t) => {
  const ws = deriveRoute(app([ep('198.51.100.1', 1, [], ['http', 'ws'])]), D);
  t.is(ws.upstream, 'ws.shop-acme');
  t.is(ws.map_value, 'ws.shop-acme');
  t.true(ws.websocket);
  const plain = deriveRoute(app([ep('198.51.100.1', 1, [])]), D);
  t.is(plain.upstream, 'shop-acme');
  t.is(plain.map_value, 'shop-acme');
  const none = deriveRoute(app([]), D);
  t.is(none.upstream, null);
  t.is(none.map_value, '@503');
  t.deepEqual(none.locations, []);
  t.true(none.root_location);
  t.false(none.dedicated_server);
});

test("bug: {'' -> /a} and {/ -> ''} are one path '/': one location, and the identity one needs none", (t) => {
  const r = deriveRoute(app([ep('198.51.100.1', 1, [m('', '/a'), m('/', '')])]), D);
  t.deepEqual(r.locations, [{ path: '/', backend: '/a', rewrite_regex: '^//*(.*)$', rewrite_to: '/a/$1' }]);
  t.false(r.root_location, 'the mapping is the root location: no default location / is added');
  // the other order: the identity mapping decides nothing, the remap still wins
  const r2 = deriveRoute(app([ep('198.51.100.1', 1, [m('/', ''), m('', '/a')])]), D);
  t.deepEqual(r2.locations, r.locations);
});

test("identity after normalization ('' <-> '/') needs no location", (t) => {
  for (const ms of [[m('', '/')], [m('/', '')], [m('', '')], [m('/', '/')], [m('/x', '/x')]]) {
    const r = deriveRoute(app([ep('198.51.100.1', 1, ms)]), D);
    t.deepEqual(r.locations, [], JSON.stringify(ms));
    t.true(r.root_location);
    t.false(r.dedicated_server);
  }
});

test('conflicts across endpoints: the first endpoint in state order (address, then port) wins', (t) => {
  const a = ep('198.51.100.1', 2, [m('/v1', '/one'), m('', '/root1')]);
  const b = ep('198.51.100.1', 10, [m('/v1', '/two'), m('/', '/root2'), m('/only-b', '/b')]);
  const c = ep('198.51.100.2', 1, [m('/v1', '/three')]);
  // the state keeps endpoints sorted (compareEndpoints); deriveRoute follows that order
  const r = deriveRoute(app([a, b, c]), D);
  t.deepEqual(r.locations.map((l) => [l.path, l.backend]), [['/only-b', '/b'], ['/v1', '/one'], ['/', '/root1']]);
  t.is(new Set(r.locations.map((l) => l.path)).size, r.locations.length, 'one location per path');
  // an identity mapping of the first endpoint does not block a later remap (as before the fix)
  const r2 = deriveRoute(app([ep('198.51.100.1', 1, [m('', '')]), ep('198.51.100.2', 1, [m('/', '/app')])]), D);
  t.deepEqual(r2.locations.map((l) => [l.path, l.backend]), [['/', '/app']]);
  t.false(r2.root_location);
});

test('locations: longest path first, then by path; rewrite keeps the old behaviour (prefix replaced, no double slash)', (t) => {
  const r = deriveRoute(app([ep('198.51.100.1', 1, [m('/a', '/x/'), m('/a/b', '/y//'), m('/b', ''), m('/c/', '/z')])]), D);
  t.deepEqual(r.locations, [
    { path: '/a/b', backend: '/y//', rewrite_regex: '^/a/b/*(.*)$', rewrite_to: '/y/$1' },
    { path: '/c/', backend: '/z', rewrite_regex: '^/c//*(.*)$', rewrite_to: '/z/$1' },
    { path: '/a', backend: '/x/', rewrite_regex: '^/a/*(.*)$', rewrite_to: '/x/$1' },
    { path: '/b', backend: '/', rewrite_regex: '^/b/*(.*)$', rewrite_to: '/$1' },
  ]);
  t.true(r.root_location);
  t.true(r.dedicated_server);
});

test('rewrite regex: PCRE metacharacters escaped like Python re.escape (what regex_escape did)', (t) => {
  const r = deriveRoute(app([ep('198.51.100.1', 1, [m('/a.b(c)*+~&!,=:@%20-d/', '/x.y')])]), D);
  t.is(r.locations[0]!.rewrite_regex, '^/a\\.b\\(c\\)\\*\\+\\~\\&!,=:@%20\\-d//*(.*)$');
  t.is(r.locations[0]!.path, '/a.b(c)*+~&!,=:@%20-d/');
  t.is(r.locations[0]!.rewrite_to, '/x.y/$1');
  t.is(regexEscape('a.b'), 'a\\.b');
});

test('nginx double-quoted strings: only backslashes nginx would unescape are doubled, quotes escaped', (t) => {
  t.is(nginxQuote('^/a\\.b$'), '^/a\\.b$', '\\. stays (nginx keeps unknown escapes)');
  t.is(nginxQuote('a"b'), 'a\\"b');
  t.is(nginxQuote('a\\nb'), 'a\\\\nb', '\\n would become a newline');
  t.is(nginxQuote('a\\"b'), 'a\\\\\\"b');
  t.is(nginxQuote('end\\'), 'end\\\\', 'a trailing backslash would escape the closing quote');
});

test('server names: fqdn first, then the aliases; dedicated server for TLS alone', (t) => {
  const r = deriveRoute(app([ep('198.51.100.1', 1, [])], {
    aliases: ['a.example.org', 'b.example.org'], tls: [{ alias: 'a.example.org', cert: 'c', key: 'k' }],
  }), D);
  t.deepEqual(r.server_names, ['shop-acme.apps.example.com', 'a.example.org', 'b.example.org']);
  t.true(r.dedicated_server);
  t.true(r.root_location);
  t.deepEqual(r.locations, []);
});
