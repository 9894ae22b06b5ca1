import test from 'ava';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { parseSpiStream, parseSpiDocument } from '../../../generator/src/spi/parse.js';
import { splitYamlStream } from '../../../generator/src/spi/split.js';
import { samplesDocs, samplesText, tls, psych, block } from '../../fixtures/helpers.js';

const opts = { maxBodyBytes: 1048576 };
const ok = (text: string) => {
  const d = parseSpiDocument(text, 0, opts);
  if (!d.ok) throw new Error(`rejected: ${d.rejection.reason}`);
  return d.event;
};
const reason = (text: string): string => {
  const d = parseSpiDocument(text, 0, opts);
  if (d.ok) throw new Error(`accepted: ${JSON.stringify(d.event)}`);
  return d.rejection.reason;
};

const app = { app_name: 'shop', namespace: 'acme' };
const web = { protocols: ['http', 'ws'], types: ['web_framework'], mappings: [{ frontend: '', backend: '' }, { frontend: '/health', backend: '' }] };

test('samples.yml: 16 documents, each parsed byte for byte as Psych wrote it', (t) => {
  const docs = samplesDocs();
  t.is(docs.length, 16);
  t.is(docs.join(''), samplesText(), 'the split documents are exactly the file');
  const events = docs.map(ok);
  t.deepEqual(events.map((e) => e.action), [
    'create_application', 'add_public_endpoint', 'add_gear', 'add_public_endpoint', 'add_gear', 'add_public_endpoint', 'add_gear',
    'add_public_endpoint', 'add_gear', 'add_alias', 'add_ssl', 'remove_public_endpoint', 'delete_gear', 'remove_ssl', 'remove_alias',
    'delete_application',
  ]);
  t.deepEqual(events[0], { action: 'create_application', ...app, scalable: true, ha: false });
  t.deepEqual(events[1], {
    action: 'add_public_endpoint', ...app, gear_id: '5a1f00c0e4b0aa0001000001', public_port_name: 'php',
    public_address: '198.51.100.31', public_port: 35531, ...web,
  });
  t.deepEqual({ ...events[2], action: 'add_public_endpoint' }, events[1], 'add_gear carries the same payload');
  t.deepEqual(events[3], {
    action: 'add_public_endpoint', ...app, gear_id: '5a1f00c0e4b0aa0001000001', public_port_name: 'haproxy',
    public_address: '198.51.100.31', public_port: 35532, protocols: ['http', 'ws'], types: ['load_balancer'],
    mappings: [{ frontend: '', backend: '' }, { frontend: '/health', backend: '/configuration/health' }],
  });
  t.deepEqual(events[7], {
    action: 'add_public_endpoint', ...app, gear_id: '5a1f00c0e4b0aa0001000003', public_port_name: 'mysql',
    public_address: '198.51.100.33', public_port: 35541, protocols: ['mysql'], types: ['database'], mappings: [],
  });
  t.deepEqual(events[9], { action: 'add_alias', ...app, alias: 'www.example.com' });
  const ssl = events[10]!;
  if (ssl.action !== 'add_ssl') throw new Error('not add_ssl');
  t.is(new X509Certificate(ssl.cert).subject, 'CN=www.example.com');
  t.true(ssl.key.startsWith('-----BEGIN PRIVATE KEY-----'));
  t.true(new X509Certificate(ssl.cert).checkPrivateKey(createPrivateKey(ssl.key)));
  t.deepEqual(events[11], { action: 'remove_public_endpoint', ...app, gear_id: '5a1f00c0e4b0aa0001000002', public_address: '198.51.100.32', public_port: 35536 });
  t.deepEqual({ ...events[12], action: 'remove_public_endpoint' }, events[11]);
  t.deepEqual(events[13], { action: 'remove_ssl', ...app, alias: 'www.example.com' });
  t.deepEqual(events[14], { action: 'remove_alias', ...app, alias: 'www.example.com' });
  t.deepEqual(events[15], { action: 'delete_application', ...app, scalable: true, ha: false });
});

test('the whole samples stream parses document by document with indexes', (t) => {
  const docs = parseSpiStream(samplesText(), opts);
  t.is(docs.length, 16);
  t.deepEqual(docs.map((d) => d.index), [...Array(16).keys()]);
  t.true(docs.every((d) => d.ok));
});

test('stream splitting: implicit first document, "..." ends, directives, CRLF, comments, empty documents', (t) => {
  const a = ':action: :add_alias\n:app_name: a\n:namespace: b\n:alias: x.example.org\n';
  t.deepEqual(splitYamlStream(a), [a]);
  t.is(splitYamlStream(`${a}...\n---\n${a}`).length, 2);
  t.is(splitYamlStream(`%YAML 1.1\n---\n${a}---\n${a}`).length, 2);
  t.true(splitYamlStream(`%YAML 1.1\n---\n${a}`)[0]!.startsWith('%YAML 1.1\n---\n'));
  t.is(splitYamlStream(`# comment\n---\n---\n${a}---\n`).length, 1);
  const crlf = `---\r\n${a.replace(/\n/g, '\r\n')}---\r\n${a.replace(/\n/g, '\r\n')}`;
  const docs = parseSpiStream(crlf, opts);
  t.is(docs.length, 2);
  t.true(docs.every((d) => d.ok));
  // a "---" inside a block scalar at deeper indentation is content, not a boundary
  t.is(splitYamlStream('---\n:ssl: |\n  ---\n  x\n').length, 1);
});

test('"..." followed by a tab ends a document too: js-yaml never sees two documents in one piece (it threw a TypeError)', (t) => {
  const a = ':action: :add_alias\n:app_name: a\n:namespace: b\n:alias: x.example.org\n';
  t.is(splitYamlStream(`${a}...\t\n${a}`).length, 2);
  t.is(splitYamlStream(`${a}...\t# end\n${a}`).length, 2);
  // a text holding two documents, given as one (js-yaml's error for it has no line mark): rejected, never thrown
  const d = parseSpiDocument(`${a}...\t\n${a}`, 0, opts);
  t.false(d.ok);
  t.regex(d.ok ? '' : d.rejection.reason, /^malformed YAML: expected a single document in the stream, but found more$/);
});

test('one broken document in a stream is rejected alone', (t) => {
  const good = psych({ action: ':add_alias', app_name: 'shop', namespace: 'acme', alias: 'a.example.org' });
  const docs = parseSpiStream(`${good}---\n:action: [unclosed\n${good}`, opts);
  t.deepEqual(docs.map((d) => d.ok), [true, false, true]);
});

test('plain keys and plain action names are accepted; both spellings of one field are not', (t) => {
  t.deepEqual(ok('action: add_alias\napp_name: shop\nnamespace: acme\nalias: a.example.org\n'), { action: 'add_alias', ...app, alias: 'a.example.org' });
  t.regex(reason(':action: :add_alias\n:app_name: shop\napp_name: shop\n:namespace: acme\n:alias: a.example.org\n'), /field "app_name" is given twice/);
});

test('values Psych leaves plain stay strings (no YAML 1.2 floats): gear id 5e123…', (t) => {
  const e = ok(psych({ action: ':remove_public_endpoint', app_name: 'shop', namespace: 'acme', gear_id: '5e1234567890123456789012', public_address: '198.51.100.9', public_port: '8080' }));
  t.is((e as { gear_id: string }).gear_id, '5e1234567890123456789012');
});

test('aliases are lowercased; IPv6 addresses accepted and lowercased', (t) => {
  t.is((ok(psych({ action: ':add_alias', app_name: 'shop', namespace: 'acme', alias: 'WWW.Example.COM' })) as { alias: string }).alias, 'www.example.com');
  const e = ok(psych({ action: ':remove_public_endpoint', app_name: 'shop', namespace: 'acme', gear_id: 'g1', public_address: '2001:DB8::1', public_port: '80' }));
  t.is((e as { public_address: string }).public_address, '2001:db8::1');
});

const sslDoc = (cert: string, key: string, pass: string) =>
  psych({ action: ':add_ssl', app_name: 'shop', namespace: 'acme', alias: 'a.example.org', ssl: block(cert), private_key: block(key), pass_phrase: pass });

test('add_ssl: encrypted keys are decrypted with pass_phrase (PKCS#8 and legacy PEM)', (t) => {
  for (const k of ['a.enc.key', 'a.enc-legacy.key']) {
    const e = ok(sslDoc(tls('a.crt'), tls(k), 's3cret'));
    if (e.action !== 'add_ssl') throw new Error();
    t.true(e.key.startsWith('-----BEGIN PRIVATE KEY-----'), k);
    t.false(e.key.includes('ENCRYPTED'));
  }
});

test('add_ssl: a chain is kept leaf first, text around the PEM blocks dropped; an EC key works', (t) => {
  const e = ok(sslDoc(`subject=junk\n${tls('a.crt')}extra text\n${tls('b.crt')}`, tls('a.key'), "''"));
  if (e.action !== 'add_ssl') throw new Error();
  t.is((e.cert.match(/BEGIN CERTIFICATE/g) ?? []).length, 2);
  t.false(e.cert.includes('junk'));
  t.truthy(ok(sslDoc(tls('b.crt'), tls('b.key'), "''")));
  // pass_phrase may be absent or nil for an unencrypted key
  t.truthy(ok(sslDoc(tls('b.crt'), tls('b.key'), "''").replace(":pass_phrase: ''\n", '')));
  t.truthy(ok(sslDoc(tls('b.crt'), tls('b.key'), '')));
});

test('maxTextBytes caps a whole body (several documents) before splitting; without it each document is capped', (t) => {
  const doc = psych({ action: ':add_alias', app_name: 'shop', namespace: 'acme', alias: 'a.example.org' });
  const body = doc.repeat(20);
  t.true(parseSpiStream(body, { maxBodyBytes: 200 }).every((d) => d.ok));
  const capped = parseSpiStream(body, { maxBodyBytes: 200, maxTextBytes: 1000 });
  t.is(capped.length, 1);
  t.false(capped[0]!.ok);
  if (!capped[0]!.ok) t.regex(capped[0]!.rejection.reason, /^message of \d+ bytes is over the 1000-byte limit$/);
  t.is(parseSpiStream('', { maxBodyBytes: 200 })[0]?.ok, false, 'an empty body is a rejection, not nothing');
});

test('app flags: nil means false; delete_application needs no flags; create_application does', (t) => {
  t.deepEqual(ok(psych({ action: ':create_application', app_name: 'shop', namespace: 'acme', scalable: 'true', ha: '' })), { action: 'create_application', ...app, scalable: true, ha: false });
  t.deepEqual(ok(psych({ action: ':delete_application', app_name: 'shop', namespace: 'acme' })), { action: 'delete_application', ...app, scalable: false, ha: false });
  t.is(reason(psych({ action: ':create_application', app_name: 'shop', namespace: 'acme', scalable: 'true' })), 'create_application: missing field ha');
});
