// The listener's intake over the store: each STOMP body parsed (and redacted) before the store's lock, a body
// over the size cap or with more documents than a message may hold rejected whole, key material never logged.
import test from 'ava';
import { readFile } from 'node:fs/promises';
import { MAX_DOCUMENTS_PER_MESSAGE, storeIntake } from '../../../generator/src/listener/intake.js';
import type { Delivery } from '../../../generator/src/listener/stomp.js';
import { StateStore } from '../../../generator/src/vars/store.js';
import { block, psych, tls, tmpConfig } from '../../fixtures/helpers.js';
import { leakedSecrets, secretNeedles } from '../../fixtures/hostile.js';

const delivery = (messageId: string, body: string): Delivery =>
  ({ messageId, body, headers: { 'message-id': messageId }, receivedAt: Date.now(), connection: { alive: true }, ack: async () => true });
const alias = (a: string) => psych({ action: ':add_alias', app_name: 'shop', namespace: 'acme', alias: a });

test('intake: a message of up to 1000 documents is applied, one of more is rejected whole without parsing', async (t) => {
  const cfg = await tmpConfig('limits:\n  aliases_per_app: 5000\n');
  const store = await StateStore.open(cfg);
  const intake = storeIntake(store, cfg.max_body_bytes);
  const many = (n: number, p: string) => Array.from({ length: n }, (_, i) => alias(`${p}${i}.example.org`)).join('');
  const out = await intake.apply([delivery('m1', many(MAX_DOCUMENTS_PER_MESSAGE, 'a')), delivery('m2', many(MAX_DOCUMENTS_PER_MESSAGE + 1, 'b'))]);
  t.is(out.messages[0]!.docs.filter((d) => d.result === 'applied').length, MAX_DOCUMENTS_PER_MESSAGE);
  t.deepEqual(out.messages[1]!.docs.map((d) => [d.result, d.code, d.reason]), [['rejected', 'ERR_SPI_TOO_LARGE', `message holds more than ${MAX_DOCUMENTS_PER_MESSAGE} documents`]]);
  t.is(store.state.apps.get('shop-acme')!.aliases.length, MAX_DOCUMENTS_PER_MESSAGE);
  const log = (await readFile(`${cfg.state_dir}/rejects.jsonl`, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
  t.is(log.length, 1);
  t.is(log[0].message_id, 'm2');
});

test('intake: a body the STOMP intake cut (bodyBytes over max_body_bytes) is rejected by its size as received, not by what was kept', async (t) => {
  const cfg = await tmpConfig('max_body_bytes: 2048\n');
  const store = await StateStore.open(cfg);
  const cut: Delivery = { ...delivery('cut', alias('a.example.org')), bodyBytes: 100 << 20 };
  const out = await storeIntake(store, cfg.max_body_bytes).apply([cut]);
  t.deepEqual(out.messages[0]!.docs.map((d) => [d.result, d.code, d.reason]), [['rejected', 'ERR_SPI_TOO_LARGE', `message body is ${100 << 20} bytes, over the 2048-byte cap (max_body_bytes)`]]);
  t.false(store.state.apps.has('shop-acme'));
});

test('intake: a body over max_body_bytes holding a key is rejected, its log entry keeps no key byte', async (t) => {
  const cfg = await tmpConfig('max_body_bytes: 2048\n');
  const store = await StateStore.open(cfg);
  const body = psych({ action: ':add_ssl', app_name: 'shop', namespace: 'acme', alias: 'a.example.org', ssl: block(tls('a.crt')), private_key: block(tls('a.key')), pass_phrase: "'Pa55-phrase-nobody-may-see'" });
  t.true(body.length > 2048);
  const out = await storeIntake(store, cfg.max_body_bytes).apply([delivery('big', body)]);
  t.is(out.messages[0]!.docs[0]!.code, 'ERR_SPI_TOO_LARGE');
  t.deepEqual(await leakedSecrets(cfg.dir, secretNeedles()), []);
  const log = await readFile(`${cfg.state_dir}/rejects.jsonl`, 'utf8');
  t.true(log.includes(':private_key: [REDACTED PRIVATE KEY]'), log.slice(0, 500));
});

test('intake: a message js-yaml would read as two documents ("..." and a tab) no longer fails the batch, so the other messages apply', async (t) => {
  const cfg = await tmpConfig();
  const store = await StateStore.open(cfg);
  const evil = `---\n:action: :create_application\n:app_name: evil\n:namespace: x\n:scalable: true\n:ha: false\n...\t\n:a: 1\n`;
  const out = await storeIntake(store, cfg.max_body_bytes).apply([delivery('m-good', alias('innocent.example.org')), delivery('m-evil', evil)]);
  t.deepEqual(out.messages.map((m) => m.docs.map((d) => d.result)), [['applied'], ['rejected', 'applied']]);
  t.deepEqual(store.state.apps.get('shop-acme')!.aliases, ['innocent.example.org']);
});

/** CPU seconds (user + system) the intake takes to apply one message. */
async function messageCpu(body: string, extra = ''): Promise<{ cpu: number; docs: Array<{ result: string; code?: string; reason?: string }> }> {
  const cfg = await tmpConfig(extra);
  const store = await StateStore.open(cfg);
  await store.applyText(alias('a.example.org'));
  const intake = storeIntake(store, cfg.max_body_bytes);
  const before = process.cpuUsage();
  const out = await intake.apply([delivery('m', body)]);
  const used = process.cpuUsage(before);
  return { cpu: (used.user + used.system) / 1e6, docs: out.messages[0]!.docs };
}

test.serial('intake: the add_ssl checks of one message are bounded (32 certificates, 600,000 key derivation iterations): 16 costly keys cost what one does', async (t) => {
  const ssl = (key: string, pass: string) => psych({ action: ':add_ssl', app_name: 'shop', namespace: 'acme', alias: 'a.example.org', ssl: block(tls('a.crt')), private_key: block(tls(key)), pass_phrase: pass });
  // 600,000 PBKDF2 iterations (the most one key may take) and a wrong pass phrase: the full derivation runs for nothing
  const costly = ssl('a.enc-600k.key', 'wrong');
  const one = await messageCpu(costly);
  const sixteen = await messageCpu(costly.repeat(16));
  t.deepEqual(one.docs.map((d) => d.reason), ['add_ssl: alias "a.example.org": pass_phrase does not decrypt private_key']);
  t.is(sixteen.docs.filter((d) => d.code === 'ERR_SPI_TOO_LARGE').length, 15);
  t.regex(sixteen.docs.find((d) => d.code === 'ERR_SPI_TOO_LARGE')!.reason!, /^add_ssl: alias "a\.example\.org": this message has spent its budget of key derivation iterations \(32 certificates and 600000 key derivation iterations per message/);
  t.log(`1 document: ${(one.cpu * 1000).toFixed(0)} ms CPU, 16: ${(sixteen.cpu * 1000).toFixed(0)} ms CPU`);
  t.true(sixteen.cpu < 2 * one.cpu, `16 costly keys (${sixteen.cpu.toFixed(3)} s) under twice one (${one.cpu.toFixed(3)} s)`);
  // plain keys: the first 32 certificates are checked (and applied or found unchanged), the others refused unread
  const plain = await messageCpu(ssl('a.key', "''").repeat(40), 'tls_require_valid: false\n');
  const count = (what: string) => plain.docs.filter((d) => (d.code ?? d.result) === what).length;
  t.deepEqual([count('applied'), count('unchanged'), count('ERR_SPI_TOO_LARGE')], [1, 31, 8]);
  t.regex(plain.docs.find((d) => d.code)!.reason!, /this message has spent its budget of certificate checks/);
  // replays (paas-rproxy apply) have no per-text budget: each key is bounded on its own
  const cfg = await tmpConfig('tls_require_valid: false\n');
  const store = await StateStore.open(cfg);
  await store.applyText(alias('a.example.org'));
  const r = await store.applyText(ssl('a.key', "''").repeat(40));
  t.is(r.rejected.length, 0);
});
