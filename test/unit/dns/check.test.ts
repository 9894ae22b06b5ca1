// dns --check-aliases: the verdict per alias (pure) and the bounded pool (fake resolver: no network).
import test from 'ava';
import { checkAliases, classify, type Answer } from '../../../generator/src/dns/check.js';

const VIPS = new Set(['198.51.100.201', '198.51.100.202']);
const a = (...addresses: string[]): Answer => ({ addresses });
const err = (code: string): Answer => ({ code });

test('verdicts: ok, partial, elsewhere, unresolved, error', (t) => {
  t.is(classify('x.example.org', 'app', { a: a('198.51.100.202', '198.51.100.201'), aaaa: err('ENODATA') }, VIPS).status, 'ok');
  const partial = classify('x.example.org', 'app', { a: a('198.51.100.201'), aaaa: err('ENODATA') }, VIPS);
  t.is(partial.status, 'partial');
  t.deepEqual(partial.missing, ['198.51.100.202']);
  const elsewhere = classify('x.example.org', 'app', { a: a('198.51.100.201', '203.0.113.7'), aaaa: err('ENODATA') }, VIPS);
  t.is(elsewhere.status, 'elsewhere');
  t.deepEqual(elsewhere.foreign, ['203.0.113.7']);
  // an AAAA record of the owner's old host sends IPv6 clients elsewhere
  t.is(classify('x.example.org', 'app', { a: a('198.51.100.201', '198.51.100.202'), aaaa: a('2001:db8::99') }, VIPS).status, 'elsewhere');
  t.is(classify('x.example.org', 'app', { a: err('ENOTFOUND'), aaaa: err('ENOTFOUND') }, VIPS).status, 'unresolved');
  t.is(classify('x.example.org', 'app', { a: err('ENODATA'), aaaa: err('ENODATA') }, VIPS).status, 'unresolved');
  const e = classify('x.example.org', 'app', { a: err('ETIMEOUT'), aaaa: err('ENODATA') }, VIPS);
  t.is(e.status, 'error');
  t.deepEqual(e.errors, ['A ETIMEOUT']);
  // a known wrong address wins over an unanswered question
  t.is(classify('x.example.org', 'app', { a: a('203.0.113.7'), aaaa: err('ESERVFAIL') }, VIPS).status, 'elsewhere');
});

test('IPv6 VIPs compare canonically', (t) => {
  const vips = new Set(['2001:db8::201']);
  t.is(classify('x.example.org', 'app', { a: err('ENODATA'), aaaa: a('2001:0db8:0:0::201') }, vips).status, 'ok');
});

test('the pool: every alias answered, in input order, never more than `concurrency` aliases in flight', async (t) => {
  const aliases = Array.from({ length: 40 }, (_, i) => ({ alias: `a${i}.example.org`, app: 'shop-acme' }));
  let inFlight = 0;
  let peak = 0;
  const lookup = async (name: string, type: 'A' | 'AAAA') => {
    inFlight++;
    peak = Math.max(peak, inFlight);
    await new Promise((r) => setImmediate(r));
    inFlight--;
    if (type === 'AAAA') throw Object.assign(new Error('no data'), { code: 'ENODATA' });
    return name.startsWith('a7.') ? ['203.0.113.7'] : ['198.51.100.201', '198.51.100.202'];
  };
  const r = await checkAliases(aliases, [...VIPS], lookup, 3);
  t.is(r.length, 40);
  t.deepEqual(r.map((x) => x.alias), aliases.map((x) => x.alias));
  t.deepEqual(r.filter((x) => x.status !== 'ok').map((x) => x.alias), ['a7.example.org']);
  t.true(peak <= 6, `at most 3 aliases x 2 questions in flight (peak ${peak})`);
  t.deepEqual(await checkAliases([], [...VIPS], lookup, 3), []);
});
