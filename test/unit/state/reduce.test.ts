import test from 'ava';
import { parseSpiStream } from '../../../generator/src/spi/parse.js';
import type { SpiEvent } from '../../../generator/src/spi/types.js';
import { commit, reduce, type Outcome } from '../../../generator/src/state/reduce.js';
import { deriveRoute } from '../../../generator/src/state/route.js';
import { cloneState, emptyState, type ReduceContext, type State } from '../../../generator/src/state/types.js';
import { renderVars } from '../../../generator/src/vars/emit.js';
import { defaultConfig } from '../../../generator/src/config.js';
import { samplesDocs, samplesText, tls } from '../../fixtures/helpers.js';

// the certificate policy and the limits have tests of their own (test/unit/state/policy.test.ts)
const ctx: ReduceContext = {
  cloudDomain: 'apps.example.com', routedTypes: new Set(['web_framework']), limits: defaultConfig().limits, tlsRequireValid: false, now: Date.now,
};
const events = (text: string): SpiEvent[] =>
  parseSpiStream(text, { maxBodyBytes: 1 << 20 }).map((d) => {
    if (!d.ok) throw new Error(d.rejection.reason);
    return d.event;
  });
const SAMPLES = events(samplesText());

function run(evs: SpiEvent[], from: State = emptyState()): { state: State; outcomes: Outcome[] } {
  const state = cloneState(from);
  const outcomes = evs.map((e) => {
    const o = reduce(state, e, ctx);
    commit(state, o);
    return o;
  });
  return { state, outcomes };
}
/** Canonical text of a state (what goes to disk) plus TLS contents. */
const canon = (s: State) => renderVars(s.apps.values(), ctx.cloudDomain) + JSON.stringify([...s.apps.values()].map((a) => a.tls));

const A = { app_name: 'shop', namespace: 'acme' };
const ep = (addr: string, port: number, types = ['web_framework'], protocols = ['http']): SpiEvent => ({
  action: 'add_public_endpoint', ...A, gear_id: `g${port}`, public_port_name: 'web', public_address: addr, public_port: port,
  protocols, types, mappings: [],
});
const rm = (addr: string, port: number): SpiEvent => ({ action: 'remove_public_endpoint', ...A, gear_id: `g${port}`, public_address: addr, public_port: port });

test('samples: the stream builds shop-acme step by step and ends empty', (t) => {
  const upToSsl = run(SAMPLES.slice(0, 11)).state;
  const app = upToSsl.apps.get('shop-acme')!;
  t.deepEqual(app.endpoints.map((e) => `${e.address}:${e.port}`), ['198.51.100.31:35531', '198.51.100.32:35536'], 'only web_framework endpoints');
  t.deepEqual(app.aliases, ['www.example.com']);
  t.deepEqual(app.tls.map((x) => x.alias), ['www.example.com']);
  t.true(app.scalable);
  const r = deriveRoute(app, ctx.cloudDomain);
  t.deepEqual(r, {
    upstream: 'ws.shop-acme', map_value: 'ws.shop-acme', backends: ['198.51.100.31:35531', '198.51.100.32:35536'],
    server_names: ['shop-acme.apps.example.com', 'www.example.com'], websocket: true,
    locations: [{ path: '/health', backend: '/', rewrite_regex: '^/health/*(.*)$', rewrite_to: '/$1' }],
    root_location: true, dedicated_server: true,
  });
  const { state, outcomes } = run(SAMPLES);
  t.is(state.apps.size, 0);
  t.is(state.aliasOwner.size, 0);
  t.deepEqual(outcomes.map((o) => o.status), [
    'applied', 'applied', 'unchanged', 'unchanged', 'unchanged', 'applied', 'unchanged', 'unchanged', 'unchanged',
    'applied', 'applied', 'applied', 'unchanged', 'applied', 'applied', 'applied',
  ], 'deprecated duplicates and non-routed endpoints change nothing');
});

test('idempotence: any prefix of the samples applied twice equals once; each event applied twice equals once', (t) => {
  for (let n = 0; n <= SAMPLES.length; n++) {
    const once = run(SAMPLES.slice(0, n)).state;
    const twice = run(SAMPLES.slice(0, n), once).state;
    t.is(canon(twice), canon(once), `prefix ${n}`);
    const doubled = run(SAMPLES.slice(0, n).flatMap((e) => [e, e])).state;
    t.is(canon(doubled), canon(once), `doubled prefix ${n}`);
  }
});

test('reduce is pure: the input state is never mutated', (t) => {
  const s = run(SAMPLES.slice(0, 11)).state;
  const before = canon(s);
  for (const e of SAMPLES) reduce(s, e, ctx);
  t.is(canon(s), before);
});

test('order tolerance: any order of adds gives the same state', (t) => {
  const adds = [ep('198.51.100.1', 1001), ep('198.51.100.2', 1002, ['web_framework'], ['http', 'ws']), ep('198.51.100.3', 1003, ['database']),
    { action: 'add_alias', ...A, alias: 'b.example.org' } as SpiEvent, { action: 'add_alias', ...A, alias: 'a.example.org' } as SpiEvent,
    { action: 'create_application', ...A, scalable: true, ha: true } as SpiEvent];
  const ref = canon(run(adds).state);
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let i = 0; i < 50; i++) {
    const perm = [...adds].sort(() => rnd() - 0.5);
    t.is(canon(run(perm).state), ref);
  }
});

test('interleavings of add/remove: the last event per endpoint wins, removing absent is a no-op', (t) => {
  const a = ep('198.51.100.1', 1001);
  const b = ep('198.51.100.2', 1002);
  const keys = (s: State) => s.apps.get('shop-acme')?.endpoints.map((e) => e.port) ?? null;
  t.deepEqual(keys(run([a, b, rm('198.51.100.1', 1001)]).state), [1002]);
  t.deepEqual(keys(run([a, rm('198.51.100.1', 1001), b]).state), [1002]);
  t.deepEqual(keys(run([rm('198.51.100.1', 1001), a, b]).state), [1001, 1002]);
  t.deepEqual(keys(run([a, rm('198.51.100.1', 1001), a]).state), [1001]);
  t.deepEqual(keys(run([a, b, rm('198.51.100.2', 1002), rm('198.51.100.2', 1002), rm('198.51.100.1', 1001)]).state), []);
  // removal on an unknown app does not create it
  const { state, outcomes } = run([rm('198.51.100.1', 1001), { action: 'remove_alias', ...A, alias: 'x.example.org' }, { action: 'remove_ssl', ...A, alias: 'x.example.org' }, { action: 'delete_application', ...A, scalable: false, ha: false }]);
  t.is(state.apps.size, 0);
  t.true(outcomes.every((o) => o.status === 'unchanged'));
});

test('any add event creates an unknown app (defaults scalable/ha false); create updates flags', (t) => {
  for (const e of [ep('198.51.100.1', 1001), ep('198.51.100.1', 1001, ['database']), { action: 'add_alias', ...A, alias: 'a.example.org' } as SpiEvent]) {
    const s = run([e]).state;
    t.deepEqual([...s.apps.keys()], ['shop-acme'], e.action);
    t.false(s.apps.get('shop-acme')!.scalable);
  }
  const s = run([ep('198.51.100.1', 1001), { action: 'create_application', ...A, scalable: true, ha: true }]).state;
  t.true(s.apps.get('shop-acme')!.ha);
  t.is(s.apps.get('shop-acme')!.endpoints.length, 1, 'create does not reset what is known');
});

test('an endpoint re-added with non-routed types (same address:port) stops being routed', (t) => {
  const s = run([ep('198.51.100.1', 1001), ep('198.51.100.1', 1001, ['load_balancer'])]).state;
  t.deepEqual(s.apps.get('shop-acme')!.endpoints, []);
  t.is(deriveRoute(s.apps.get('shop-acme')!, ctx.cloudDomain).upstream, null, 'no backend → no upstream (503)');
});

test('an endpoint re-added with changed data replaces the old one; routed types are configurable', (t) => {
  const s = run([ep('198.51.100.1', 1001), ep('198.51.100.1', 1001, ['web_framework'], ['http', 'ws'])]).state;
  t.deepEqual(s.apps.get('shop-acme')!.endpoints.map((e) => e.protocols), [['http', 'ws']]);
  const lb = cloneState(emptyState());
  const o = reduce(lb, ep('198.51.100.1', 1001, ['load_balancer']), { ...ctx, routedTypes: new Set(['load_balancer']) });
  commit(lb, o);
  t.is(lb.apps.get('shop-acme')!.endpoints.length, 1);
});

test('delete_application removes everything (aliases, TLS) and frees the aliases', (t) => {
  const sslEv = events(samplesDocs()[10]!)[0]!;
  const { state } = run([...SAMPLES.slice(0, 11), { action: 'delete_application', ...A, scalable: true, ha: false }]);
  t.is(state.apps.size, 0);
  t.is(state.aliasOwner.size, 0);
  const other = run([{ action: 'add_alias', app_name: 'other', namespace: 'acme', alias: 'www.example.com' }], state).state;
  t.is(other.aliasOwner.get('www.example.com'), 'other-acme');
  t.truthy(sslEv);
});

test('alias conflicts: a second claim is rejected, never overwritten; after remove_alias it can be claimed', (t) => {
  const claim = (app: string): SpiEvent => ({ action: 'add_alias', app_name: app, namespace: 'acme', alias: 'www.example.com' });
  const { state, outcomes } = run([claim('first'), claim('second')]);
  t.is(outcomes[1]!.status, 'rejected');
  t.is((outcomes[1] as { rejection: { reason: string } }).rejection.reason, 'add_alias: alias "www.example.com" already belongs to app first-acme');
  t.deepEqual(state.apps.get('first-acme')!.aliases, ['www.example.com']);
  t.false(state.apps.has('second-acme'), 'a rejected event creates nothing');
  const after = run([{ action: 'remove_alias', app_name: 'second', namespace: 'acme', alias: 'www.example.com' }, { action: 'remove_alias', app_name: 'first', namespace: 'acme', alias: 'www.example.com' }, claim('second')], state).state;
  t.deepEqual(after.apps.get('second-acme')!.aliases, ['www.example.com']);
  t.deepEqual(after.apps.get('first-acme')!.aliases, []);
});

test('TLS: add_ssl needs the alias; remove_alias removes its certificate; remove_ssl keeps the alias; new cert replaces', (t) => {
  const cert = (c: string, k: string): SpiEvent => ({ action: 'add_ssl', ...A, alias: 'a.example.org', cert: c, key: k });
  const alias: SpiEvent = { action: 'add_alias', ...A, alias: 'a.example.org' };
  const r1 = run([cert(tls('a.crt'), tls('a.key'))]);
  t.is(r1.outcomes[0]!.status, 'rejected');
  t.false(r1.state.apps.has('shop-acme'));
  const r2 = run([alias, cert(tls('a.crt'), tls('a.key')), cert(tls('a.crt'), tls('a.key')), cert(tls('b.crt'), tls('b.key'))]);
  t.deepEqual(r2.outcomes.map((o) => o.status), ['applied', 'applied', 'unchanged', 'applied']);
  t.is(r2.state.apps.get('shop-acme')!.tls[0]!.cert, tls('b.crt'));
  const r3 = run([{ action: 'remove_ssl', ...A, alias: 'a.example.org' }], r2.state).state.apps.get('shop-acme')!;
  t.deepEqual([r3.aliases, r3.tls], [['a.example.org'], []]);
  const r4 = run([{ action: 'remove_alias', ...A, alias: 'a.example.org' }], r2.state).state.apps.get('shop-acme')!;
  t.deepEqual([r4.aliases, r4.tls], [[], []]);
});

test('same app name in two namespaces: two apps, never mixed', (t) => {
  const s = run([
    { ...ep('198.51.100.1', 1001) }, { ...ep('198.51.100.2', 1002), namespace: 'other' } as SpiEvent,
    { action: 'delete_application', app_name: 'shop', namespace: 'other', scalable: false, ha: false },
  ]).state;
  t.deepEqual([...s.apps.keys()], ['shop-acme']);
  t.deepEqual(s.apps.get('shop-acme')!.endpoints.map((e) => e.port), [1001]);
});

test('routes: locations longest first without identity mappings; websocket from ws; IPv6 backends bracketed', (t) => {
  const e1 = { ...ep('2001:db8::1', 8080), mappings: [{ frontend: '', backend: '' }, { frontend: '/a', backend: '/x' }, { frontend: '/a/b', backend: '/y' }, { frontend: '/same', backend: '/same' }] } as SpiEvent;
  const app = run([e1]).state.apps.get('shop-acme')!;
  const r = deriveRoute(app, ctx.cloudDomain);
  t.deepEqual(r.locations.map((l) => [l.path, l.backend]), [['/a/b', '/y'], ['/a', '/x']]);
  t.deepEqual(r.backends, ['[2001:db8::1]:8080']);
  t.false(r.websocket);
  t.true(r.dedicated_server);
});
