/**
 * The operator's policy settings, each with its default and a changed value: per-app limits, tls_require_valid
 * (certificate expiry and names), gear_networks; and alias handling that stays linear and canonical.
 */
import test from 'ava';
import { StateStore } from '../../../generator/src/vars/store.js';
import { loadState } from '../../../generator/src/vars/store.js';
import { block, psych, tls, tmpConfig } from '../../fixtures/helpers.js';

const app = { app_name: 'shop', namespace: 'acme' };
const alias = (a: string, name = 'shop') => psych({ action: ':add_alias', app_name: name, namespace: 'acme', alias: a });
const removeAlias = (a: string) => psych({ action: ':remove_alias', ...app, alias: a });
const ssl = (a: string, crt: string, key: string) => psych({ action: ':add_ssl', ...app, alias: a, ssl: block(tls(crt)), private_key: block(tls(key)), pass_phrase: "''" });
const endpoint = (addr: string, port: number, mappings: Array<[string, string]> = []) => psych({
  action: ':add_public_endpoint', ...app, gear_id: 'g1', public_port_name: 'web', public_address: `"${addr}"`, public_port: String(port),
  protocols: '\n- http', types: '\n- web_framework',
  mappings: mappings.length ? '\n' + mappings.map(([f, b]) => `- frontend: '${f}'\n  backend: '${b}'`).join('\n') : '[]',
});
const removeEndpoint = (addr: string, port: number) => psych({ action: ':remove_public_endpoint', ...app, gear_id: 'g1', public_address: `"${addr}"`, public_port: String(port) });

async function store(extra = '', now?: () => number) {
  const cfg = await tmpConfig(extra);
  return { cfg, s: await StateStore.open(cfg, now ? { now } : {}) };
}

test('limits: defaults documented in config.example.yml; each one rejects the event that would go over it, naming it', async (t) => {
  const { s } = await store('limits:\n  endpoints_per_app: 2\n  aliases_per_app: 2\n  tls_aliases_per_app: 1\n  mappings_per_app: 3\n');
  const r = await s.applyText([
    endpoint('198.51.100.1', 80, [['/a', '/x']]), endpoint('198.51.100.2', 80, [['/a', '/x'], ['/b', '/y']]), endpoint('198.51.100.3', 80),
    endpoint('198.51.100.2', 80, [['/a', '/x'], ['/b', '/y'], ['/c', '/z']]), // replaces an endpoint: 3 mappings, at the limit
    endpoint('198.51.100.1', 80, [['/d', '/w']]), // a 4th distinct mapping
    alias('a.example.org'), alias('b.example.org'), alias('c.example.org'),
    ssl('a.example.org', 'a.crt', 'a.key'), ssl('b.example.org', 'b.crt', 'b.key'),
  ].join(''));
  t.deepEqual(r.results.map((x) => x.status), ['applied', 'applied', 'rejected', 'applied', 'rejected', 'applied', 'applied', 'rejected', 'applied', 'rejected']);
  t.deepEqual(r.rejected.map((x) => x.code), ['ERR_SPI_LIMIT', 'ERR_SPI_LIMIT', 'ERR_SPI_LIMIT', 'ERR_SPI_LIMIT']);
  t.deepEqual(r.rejected.map((x) => x.reason), [
    'add_public_endpoint: app shop-acme would have 3 routed endpoints, over the limit limits.endpoints_per_app = 2',
    'add_public_endpoint: app shop-acme would have 4 distinct path mappings, over the limit limits.mappings_per_app = 3',
    'add_alias: app shop-acme would have 3 aliases, over the limit limits.aliases_per_app = 2',
    'add_ssl: app shop-acme would have 2 aliases with a certificate, over the limit limits.tls_aliases_per_app = 1',
  ]);
  // at a limit, shrinking and replacing still work
  const r2 = await s.applyText(removeAlias('b.example.org') + alias('c.example.org') + removeEndpoint('198.51.100.1', 80) + endpoint('198.51.100.3', 80));
  t.deepEqual(r2.results.map((x) => x.status), ['applied', 'applied', 'applied', 'applied']);
  t.deepEqual(s.state.apps.get('shop-acme')!.aliases, ['a.example.org', 'c.example.org']);
});

test('limits: an app already over a lowered limit keeps what it has, can shrink, cannot grow', async (t) => {
  const { cfg, s } = await store();
  await s.applyText([alias('a.example.org'), alias('b.example.org'), alias('c.example.org')].join(''));
  const lowered = await StateStore.open({ ...cfg, limits: { ...cfg.limits, aliases_per_app: 1 } });
  t.is(lowered.state.apps.get('shop-acme')!.aliases.length, 3, 'the state loads as it is');
  const r = await lowered.applyText(alias('d.example.org') + removeAlias('a.example.org') + alias('b.example.org'));
  t.deepEqual(r.results.map((x) => x.status), ['rejected', 'applied', 'unchanged']);
});

test('tls_require_valid (default true): expired, not yet valid, names not covering the alias are rejected with a reason', async (t) => {
  const { s } = await store();
  await s.applyText(['old.example.org', 'new.example.org', 'a.example.org', 'www.example.net', 'example.net', 'a.b.example.net', 'b.example.org'].map((a) => alias(a)).join(''));
  const r = await s.applyText([
    ssl('old.example.org', 'expired.crt', 'expired.key'), ssl('new.example.org', 'future.crt', 'future.key'),
    ssl('b.example.org', 'a.crt', 'a.key'), ssl('a.b.example.net', 'wild.crt', 'wild.key'),
    ssl('a.example.org', 'a.crt', 'a.key'), ssl('www.example.net', 'wild.crt', 'wild.key'), ssl('example.net', 'wild.crt', 'wild.key'),
  ].join(''));
  t.deepEqual(r.results.map((x) => x.status), ['rejected', 'rejected', 'rejected', 'rejected', 'applied', 'applied', 'applied']);
  t.deepEqual(r.rejected.map((x) => x.code), ['ERR_SPI_INVALID', 'ERR_SPI_INVALID', 'ERR_SPI_INVALID', 'ERR_SPI_INVALID']);
  t.regex(r.rejected[0]!.reason, /^add_ssl: alias "old\.example\.org": the certificate expired on 2021-01-01T00:00:00\.000Z \(tls_require_valid is on\)$/);
  t.regex(r.rejected[1]!.reason, /^add_ssl: alias "new\.example\.org": the certificate is not valid before 2099-01-01T00:00:00\.000Z/);
  t.regex(r.rejected[2]!.reason, /^add_ssl: alias "b\.example\.org": the certificate's names \(CN=a\.example\.org\) do not cover "b\.example\.org"/);
  t.regex(r.rejected[3]!.reason, /the certificate's names \(DNS:\*\.example\.net, DNS:example\.net\) do not cover "a\.b\.example\.net"/, 'a wildcard covers one label');
});

test('tls_require_valid: false accepts them all; the clock is the store\'s', async (t) => {
  const { s } = await store('tls_require_valid: false\n');
  await s.applyText(['old.example.org', 'new.example.org', 'b.example.org'].map((a) => alias(a)).join(''));
  const r = await s.applyText([ssl('old.example.org', 'expired.crt', 'expired.key'), ssl('new.example.org', 'future.crt', 'future.key'), ssl('b.example.org', 'a.crt', 'a.key')].join(''));
  t.deepEqual(r.results.map((x) => x.status), ['applied', 'applied', 'applied']);
  // with the check on and a clock in 2020, the expired certificate is valid and the current one is not yet
  const { s: s2020 } = await store('', () => Date.parse('2020-06-01T00:00:00Z'));
  await s2020.applyText(alias('old.example.org') + alias('a.example.org'));
  const r2 = await s2020.applyText(ssl('old.example.org', 'expired.crt', 'expired.key') + ssl('a.example.org', 'a.crt', 'a.key'));
  t.deepEqual(r2.results.map((x) => x.status), ['applied', 'rejected']);
  t.regex(r2.rejected[0]!.reason, /not valid before 2026-/);
});

test('encrypted keys: the derivation cost is bounded before decrypting (1,000,000 PBKDF2 iterations, scrypt refused)', async (t) => {
  const { s } = await store();
  await s.applyText(alias('a.example.org'));
  const enc = (key: string) => psych({ action: ':add_ssl', ...app, alias: 'a.example.org', ssl: block(tls('a.crt')), private_key: block(tls(key)), pass_phrase: 's3cret' });
  const r = await s.applyText(enc('a.enc-1m.key') + enc('a.enc-scrypt.key') + enc('a.enc.key'));
  t.deepEqual(r.results.map((x) => x.status), ['rejected', 'rejected', 'applied']);
  t.regex(r.rejected[0]!.reason, /private_key is encrypted with 1000000 key derivation iterations, more than the 600000 accepted/);
  t.regex(r.rejected[1]!.reason, /private_key is encrypted, but its key is derived with something else than PBKDF2 \(scrypt is not accepted\)/);
  // an iteration count of 2^31-1 written into the key: refused without running it
  const der = Buffer.from(tls('a.enc-1m.key').split('\n').filter((l) => l && !l.startsWith('-----')).join(''), 'base64');
  const at = der.indexOf(Buffer.from([0x02, 0x03, 0x0f, 0x42, 0x40])); // INTEGER 1000000
  t.true(at > 0);
  der.set([0x7f, 0xff, 0xff], at + 2);
  const pem = `-----BEGIN ENCRYPTED PRIVATE KEY-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END ENCRYPTED PRIVATE KEY-----\n`;
  const before = process.cpuUsage();
  const r2 = await s.applyText(psych({ action: ':add_ssl', ...app, alias: 'a.example.org', ssl: block(tls('a.crt')), private_key: block(pem), pass_phrase: 's3cret' }));
  const used = process.cpuUsage(before);
  t.regex(r2.rejected[0]!.reason, /encrypted with 8388607 key derivation iterations/);
  t.log(`refusal took ${((used.user + used.system) / 1000).toFixed(1)} ms of CPU`);
});

test('certificates nginx would refuse to load are rejected (weak keys, a key that cannot sign, SHA-1 by a CA, a weak chain certificate), and RSA keys over 4096 bits', async (t) => {
  const { s } = await store();
  await s.applyText(alias('serve.example.org'));
  const cases = ['rsa1024', 'x25519', 'sha1-ca', 'weak-ca', 'rsa4608', 'ok-chain'];
  const r = await s.applyText(cases.map((c) => ssl('serve.example.org', `${c}.crt`, `${c}.key`)).join(''));
  t.deepEqual(r.results.map((x) => x.status), ['rejected', 'rejected', 'rejected', 'rejected', 'rejected', 'applied']);
  t.true(r.rejected.every((x) => x.code === 'ERR_SPI_INVALID'));
  const why = r.rejected.map((x) => x.reason);
  t.regex(why[0]!, /^add_ssl: alias "serve\.example\.org": nginx would refuse this certificate and key \(ee key too small; OpenSSL security level 2/);
  t.regex(why[1]!, /nginx would refuse this certificate and key \(unknown certificate type;/);
  t.regex(why[2]!, /nginx would refuse this certificate and key \(ca md too weak;/);
  t.regex(why[3]!, /nginx would refuse this certificate and key \(ca key too small;/);
  t.regex(why[4]!, /private_key is a 4608-bit RSA key, more than the 4096 bits accepted/);
  t.is(s.state.apps.get('shop-acme')!.tls[0]!.cert, tls('ok-chain.crt'), 'the accepted chain is kept whole, leaf first');
});

test('a certificate whose validity dates do not parse is rejected alone (it threw under the state lock: the batch failed)', async (t) => {
  const { s } = await store();
  await s.applyText(alias('a.example.org'));
  // a.crt with the month of notAfter set to 13 (OpenSSL then prints "Bad time value"); signatures are not checked
  const der = Buffer.from(tls('a.crt').split('\n').filter((l) => l && !l.startsWith('-----')).join(''), 'base64');
  const times = [...der.toString('latin1').matchAll(/\x17\x0d\d{12}Z/g)].map((m) => m.index!);
  t.is(times.length, 2);
  der.write('13', times[1]! + 4, 'latin1');
  const pem = `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`;
  const bad = psych({ action: ':add_ssl', ...app, alias: 'a.example.org', ssl: block(pem), private_key: block(tls('a.key')), pass_phrase: "''" });
  const r = await s.applyText(bad + alias('b.example.org'));
  t.deepEqual(r.results.map((x) => x.status), ['rejected', 'applied']);
  t.regex(r.rejected[0]!.reason, /^add_ssl: alias "a\.example\.org": the certificate's validity dates do not parse \(tls_require_valid is on\)$/);
});

test('an alias longer than 251 characters cannot have a certificate (its files <alias>.crt/.key would be over 255 bytes); 251 can', async (t) => {
  const { cfg, s } = await store('tls_require_valid: false\n');
  const host = (last: number) => `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(last)}.org`;
  t.is(host(55).length, 251);
  await s.applyText(alias(host(55)) + alias(host(56)));
  const r = await s.applyText(ssl(host(56), 'a.crt', 'a.key') + ssl(host(55), 'a.crt', 'a.key'));
  t.deepEqual(r.results.map((x) => x.status), ['rejected', 'applied']);
  t.regex(r.rejected[0]!.reason, /^add_ssl: alias "a{63}\.…" is longer than 251 characters: it cannot have a certificate/);
  t.is((await loadState(cfg)).apps.get('shop-acme')!.tls[0]!.alias, host(55));
});

test('gear_networks (default []): addresses outside are refused, and the network and broadcast addresses of an IPv4 one', async (t) => {
  const { s } = await store('gear_networks: [198.51.100.0/24, "2001:db8:10::/64"]\n');
  const r = await s.applyText([
    endpoint('198.51.100.7', 80), endpoint('::ffff:198.51.100.8', 80), endpoint('2001:db8:10::5', 80),
    endpoint('10.0.0.1', 80), endpoint('2001:db8:11::5', 80), endpoint('198.51.100.255', 80), endpoint('198.51.100.0', 80),
  ].join(''));
  t.deepEqual(r.results.map((x) => x.status), ['applied', 'applied', 'applied', 'rejected', 'rejected', 'rejected', 'rejected']);
  t.regex(r.rejected[0]!.reason, /public_address "10\.0\.0\.1" is outside gear_networks \(198\.51\.100\.0\/24, 2001:db8:10::\/64\)/);
  t.regex(r.rejected[2]!.reason, /is the network or broadcast address of gear network 198\.51\.100\.0\/24/);
  t.deepEqual(s.state.apps.get('shop-acme')!.endpoints.map((e) => e.address), ['198.51.100.7', '198.51.100.8', '2001:db8:10::5']);
  // the default accepts any unicast address
  const { s: any } = await store();
  t.is((await any.applyText(endpoint('10.0.0.1', 80) + endpoint('203.0.113.9', 80))).applied, 2);
});

test('addresses are stored canonical: removal matches addition in any spelling; an old state file is canonicalized on load', async (t) => {
  const { cfg, s } = await store();
  await s.applyText(endpoint('2001:DB8:0:0::1', 8080) + endpoint('::ffff:198.51.100.9', 8080));
  t.deepEqual(s.state.apps.get('shop-acme')!.endpoints.map((e) => e.address), ['198.51.100.9', '2001:db8::1']);
  const r = await s.applyText(removeEndpoint('2001:0db8:0000:0000:0000:0000:0000:0001', 8080) + removeEndpoint('0:0:0:0:0:ffff:c633:6409', 8080));
  t.is(r.applied, 2);
  t.deepEqual(s.state.apps.get('shop-acme')!.endpoints, []);
  // an app file written before addresses were canonical: two spellings of one gear, IPv4-mapped form
  await s.applyText(endpoint('2001:db8::1', 8080) + endpoint('198.51.100.9', 8081));
  const { readFile, writeFile } = await import('node:fs/promises');
  const { appFilePath } = await import('../../../generator/src/vars/paths.js');
  const file = appFilePath(cfg, 'shop-acme');
  const text = await readFile(file, 'utf8');
  const endpointLine = text.split('\n').find((l) => l.includes('"2001:db8::1"'))!;
  const old = text.replace(endpointLine, `${endpointLine.replace('2001:db8::1', '2001:DB8:0:0:0:0:0:1')},\n${endpointLine.replace('2001:db8::1', '2001:db8:0::1')}`)
    .replace('"198.51.100.9"', '"::ffff:198.51.100.9"');
  await writeFile(file, old);
  const loaded = await loadState(cfg);
  t.deepEqual(loaded.apps.get('shop-acme')!.endpoints.map((e) => `${e.address}:${e.port}`), ['198.51.100.9:8081', '2001:db8::1:8080']);
  const reopened = await StateStore.open(cfg);
  t.true((await readFile(file, 'utf8')).includes('"2001:db8::1"'), 'rewritten canonical on open');
  t.is((await reopened.applyText(removeEndpoint('2001:db8:0:0::1', 8080))).applied, 1);
});

test('aliases: ASCII before case folding (KELVIN SIGN), punycode IDNs accepted, Unicode ones refused with a hint', async (t) => {
  const { s } = await store();
  const r = await s.applyText([alias('\u212Aelvin.example.com'), alias('xn--bcher-kva.example'), alias('bücher.example'), alias('xn--zz.example'), alias('XN--BCHER-KVA.Example.ORG')].map((x) => x.replace(/:alias: (.*)/, ':alias: "$1"')).join(''));
  t.deepEqual(r.results.map((x) => x.status), ['rejected', 'applied', 'rejected', 'rejected', 'applied']);
  t.regex(r.rejected[0]!.reason, /is not a DNS host name \(not ASCII: send an internationalized name in its punycode form, xn--…\)/);
  t.regex(r.rejected[1]!.reason, /not ASCII/);
  t.regex(r.rejected[2]!.reason, /a label starting with "xn--" is not valid punycode/);
  t.deepEqual(s.state.apps.get('shop-acme')!.aliases, ['xn--bcher-kva.example', 'xn--bcher-kva.example.org']);
});

test('aliases: many on one app in one batch stay sorted and indexed; add and remove of one alias in a batch is no change', async (t) => {
  const { cfg, s } = await store('limits:\n  aliases_per_app: 5000\n');
  const names = Array.from({ length: 3000 }, (_, i) => `a${(i * 7919) % 3000}.example.org`);
  const r = await s.applyText(names.map((a) => alias(a)).join('') + removeAlias('a5.example.org') + alias('a5.example.org') + removeAlias('a6.example.org'));
  t.is(r.applied, 3003);
  const aliases = s.state.apps.get('shop-acme')!.aliases;
  t.is(aliases.length, 2999);
  t.deepEqual([...aliases], [...names].filter((a) => a !== 'a6.example.org').sort());
  t.deepEqual((await loadState(cfg)).apps.get('shop-acme')!.aliases, aliases);
  const claim = await s.applyText(alias('a7.example.org', 'other') + alias('a6.example.org', 'other'));
  t.deepEqual(claim.results.map((x) => x.status), ['rejected', 'applied'], 'the alias index follows the batch');
  const again = await s.applyText(alias('new.example.org') + removeAlias('new.example.org'));
  t.deepEqual(again.changedApps, [], 'added and removed within a batch: the app did not change');
});

test('reasons echo at most 64 characters of a value, encoded-looking runs masked', async (t) => {
  const { s } = await store();
  const big = 'Q'.repeat(100) + '.' + 'Ab3dEf7hIj9kLmNo1qRsTuVw'.repeat(1000);
  const r = await s.applyText([alias(big), psych({ action: ':add_alias', ...app, alias: 'x.example.org', [big]: '1' }), endpoint(big, 80)].join(''));
  t.is(r.rejected.length, 3);
  for (const x of r.rejected) {
    t.true(x.reason.length < 200, x.reason);
    t.false(x.reason.includes('Ab3dEf7h'), x.reason);
  }
  t.regex(r.rejected[1]!.reason, /^add_alias: unknown field "Q{64}…"$/);
});
