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
  ({ messageId, body, headers: { 'message-id': messageId }, receivedAt: Date.now(), ack: async () => true });
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
