// storeIntake with a fake store and a fake seen-ids set: how a batch of STOMP messages becomes store calls (one call
// for every valid document, parse failures alone with their message-id) and how the results map back to messages.
// (intake.test.ts runs it over the real store: size caps, redaction, the rejects log.)
import test from 'ava';
import { storeIntake } from '../../../generator/src/listener/intake.js';
import type { Delivery } from '../../../generator/src/listener/stomp.js';
import type { SeenIds } from '../../../generator/src/listener/seen.js';
import type { ApplyMeta, ApplyResult, DocResult, StateStore } from '../../../generator/src/vars/store.js';
import type { ParsedDoc } from '../../../generator/src/spi/types.js';
import { psych } from '../../fixtures/helpers.js';

const delivery = (messageId: string, body: string): Delivery =>
  ({ messageId, body, headers: { 'message-id': messageId }, receivedAt: Date.now(), connection: { alive: true }, ack: async () => true });
const alias = (a: string, app = 'shop') => psych({ action: ':add_alias', app_name: app, namespace: 'acme', alias: a });
const BROKEN = '---\n:action: :add_alias\n:app_name: [unclosed\n';

interface Call { docs: ParsedDoc[]; meta: ApplyMeta }

/** A store that applies every valid document ("app" = app_name-namespace), rejects the invalid, and records its calls. */
function fakeStore(opts: { drop?: number; fail?: Error } = {}): StateStore & { calls: Call[] } {
  const calls: Call[] = [];
  return {
    calls,
    parseOptions: { maxBodyBytes: 1 << 20, gearNetworks: [] },
    async applyEvents(items: Iterable<ParsedDoc>, meta: ApplyMeta = {}): Promise<ApplyResult> {
      const docs = [...items];
      calls.push({ docs, meta });
      if (opts.fail) throw opts.fail;
      const results: DocResult[] = docs.filter((d) => d.index !== opts.drop).map((d) => (d.ok
        ? { index: d.index, status: 'applied', app: `${(d.event as { app_name: string }).app_name}-${(d.event as { namespace: string }).namespace}` }
        : { index: d.index, status: 'rejected', code: d.rejection.code, reason: d.rejection.reason }));
      const changedApps = [...new Set(results.flatMap((r) => (r.status === 'applied' ? [r.app] : [])))].sort();
      return { applied: changedApps.length, unchanged: 0, rejected: [], changedApps, results, wroteVars: changedApps.length > 0 };
    },
  } as unknown as StateStore & { calls: Call[] };
}

function fakeSeen(ids: string[] = []): SeenIds & { added: string[][] } {
  const set = new Set(ids);
  const added: string[][] = [];
  return { added, has: (id: string) => set.has(id), add: async (x: readonly string[]) => { added.push([...x]); for (const i of x) set.add(i); } } as unknown as SeenIds & { added: string[][] };
}

const results = (o: Awaited<ReturnType<ReturnType<typeof storeIntake>['apply']>>) => o.messages.map((m) => [m.messageId, m.docs.map((d) => `${d.result}${d.code ? ` ${d.code}` : ''}`)]);

test('storeIntake: the valid documents of every message in ONE store call; results go back to their messages in order', async (t) => {
  const store = fakeStore();
  const out = await storeIntake(store, 1 << 20).apply([delivery('m1', alias('a.example.org')), delivery('m2', alias('b.example.org', 'blog') + alias('c.example.org'))]);
  t.is(store.calls.length, 1, 'one lock, one vars write for the batch');
  t.deepEqual(store.calls[0]!.docs.map((d) => d.index), [0, 1, 2], 'renumbered across the batch');
  t.deepEqual(store.calls[0]!.meta, { source: 'stomp' }, 'no single message-id for a batch of several');
  t.deepEqual(results(out), [['m1', ['applied']], ['m2', ['applied', 'applied']]]);
  t.deepEqual(out.messages[1]!.docs.map((d) => [d.action, d.app]), [['add_alias', 'blog-acme'], ['add_alias', 'shop-acme']]);
  t.deepEqual(out.changedApps, ['blog-acme', 'shop-acme']);

  const one = fakeStore();
  await storeIntake(one, 1 << 20).apply([delivery('m3', alias('d.example.org'))]);
  t.deepEqual(one.calls[0]!.meta, { source: 'stomp', messageId: 'm3' }, 'a batch of one names its message');
});

test('storeIntake: a document that does not parse is applied alone, with its message-id; the rest of its message still applies', async (t) => {
  const store = fakeStore();
  const out = await storeIntake(store, 1 << 20).apply([delivery('ok', alias('a.example.org')), delivery('mixed', alias('b.example.org') + BROKEN)]);
  t.is(store.calls.length, 2);
  t.deepEqual(store.calls[0]!.meta, { source: 'stomp', messageId: 'mixed' }, 'the rejects log names the message');
  t.deepEqual(store.calls[0]!.docs.map((d) => [d.index, d.ok]), [[0, false]]);
  t.deepEqual(store.calls[1]!.docs.map((d) => d.ok), [true, true]);
  t.deepEqual(results(out), [['ok', ['applied']], ['mixed', ['rejected ERR_SPI_YAML', 'applied']]]);
});

test('storeIntake: an empty body and a body over the cap are rejected without parsing', async (t) => {
  const store = fakeStore();
  const big = alias('x'.repeat(300) + '.example.org');
  const out = await storeIntake(store, 200).apply([delivery('empty', ''), delivery('big', big)]);
  t.deepEqual(results(out), [['empty', ['rejected ERR_SPI_INVALID']], ['big', ['rejected ERR_SPI_TOO_LARGE']]]);
  t.regex(out.messages[0]!.docs[0]!.reason!, /empty/);
  t.is(out.messages[1]!.docs[0]!.reason, `message body is ${Buffer.byteLength(big)} bytes, over the 200-byte cap (max_body_bytes)`);
  t.deepEqual(out.changedApps, []);
});

test('storeIntake: redeliveries of applied messages are acknowledged as duplicates, not applied again; the new ids are remembered after the apply', async (t) => {
  const store = fakeStore();
  const seen = fakeSeen(['old']);
  const out = await storeIntake(store, 1 << 20, seen).apply([delivery('old', alias('a.example.org')), delivery('new', alias('b.example.org'))]);
  t.deepEqual(results(out), [['old', ['unchanged']], ['new', ['applied']]]);
  t.is(out.messages[0]!.docs[0]!.action, 'duplicate');
  t.deepEqual(store.calls.map((c) => c.meta.messageId), ['new']);
  t.deepEqual(seen.added, [['new']]);

  // a store that fails: nothing is remembered, so the redelivery applies it
  const failing = fakeStore({ fail: new Error('disk full') });
  const seen2 = fakeSeen();
  await t.throwsAsync(storeIntake(failing, 1 << 20, seen2).apply([delivery('m', alias('c.example.org'))]), { message: 'disk full' });
  t.deepEqual(seen2.added, []);
});

test('storeIntake: a second copy of a message in one batch (a dead connection\'s delivery still queued, then its redelivery) is a duplicate: the first copy is applied in its place', async (t) => {
  const store = fakeStore();
  const seen = fakeSeen();
  const out = await storeIntake(store, 1 << 20, seen).apply([delivery('m1', alias('a.example.org')), delivery('m2', alias('b.example.org')), delivery('m1', alias('a.example.org'))]);
  t.deepEqual(results(out), [['m1', ['applied']], ['m2', ['applied']], ['m1', ['unchanged']]]);
  t.is(out.messages[2]!.docs[0]!.action, 'duplicate');
  t.is(store.calls.flatMap((c) => c.docs).length, 2, 'm1 is not applied again after m2');
  t.deepEqual(seen.added, [['m1', 'm2']]);
});

test('storeIntake: a document the store returns no result for is rejected as ERR_INTERNAL (a broken invariant, not an input error)', async (t) => {
  const store = fakeStore({ drop: 1 });
  const out = await storeIntake(store, 1 << 20).apply([delivery('m', alias('a.example.org') + alias('b.example.org'))]);
  t.deepEqual(out.messages[0]!.docs.map((d) => [d.result, d.code, d.reason]), [['applied', undefined, undefined], ['rejected', 'ERR_INTERNAL', 'no result']]);
});
