// The rejects log must never carry key material or a pass phrase, whatever YAML style the message used.
import test from 'ava';
import { redactKeyMaterial } from '../../../generator/src/spi/redact.js';
import { parseSpiDocument } from '../../../generator/src/spi/parse.js';
import { tls } from '../../fixtures/helpers.js';

const styles: Array<[string, string]> = [
  ['plain', ':pass_phrase: s3cr3t\n:alias: www.example.com\n'],
  ['folded block', ':pass_phrase: >-\n  s3c\n  r3t\n:alias: www.example.com\n'],
  ['literal block', ':pass_phrase: |\n  s3cr3t\n:alias: www.example.com\n'],
  ['multi-line double quotes', ':pass_phrase: "s3c\n  r3t"\n:alias: www.example.com\n'],
  ['flow mapping', '{:action: :add_ssl, :pass_phrase: s3cr3t, :alias: www.example.com}'],
  ['flow mapping, quoted with a comma', "{:pass_phrase: 's3c, r3t', :alias: www.example.com}"],
];

for (const [style, text] of styles) {
  test(`pass phrase redacted: ${style}`, (t) => {
    const out = redactKeyMaterial(text);
    t.false(/s3c|r3t/.test(out), out);
    t.true(out.includes(':pass_phrase: [REDACTED]'));
    t.true(out.includes('www.example.com'), 'the rest of the message is kept');
  });
}

test('private key blocks are redacted, certificates kept', (t) => {
  const key = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----';
  const cert = '-----BEGIN CERTIFICATE-----\nMIIDFTCCAf2g\n-----END CERTIFICATE-----';
  const out = redactKeyMaterial(`:ssl: |\n  ${cert}\n:private_key: |\n  ${key}\n`);
  t.false(out.includes('MIIEvQIBADANBg'));
  t.true(out.includes('MIIDFTCCAf2g'));
});

// What the rejects log keeps of a document that does not parse: its skeleton, never a value it cannot vouch for.
const broken = (body: string) => `---\n:action: :add_ssl\n:app_name: shop\n:namespace: acme\n${body}\n:oops: [unclosed\n`;

test('unparsed documents: known fields with valid values kept, the rest elided, whatever follows a secret field skipped', (t) => {
  const out = redactKeyMaterial(broken(':alias: www.example.com\n:pass_phrase: |\n  s3cr3t\n  :alias: looks.like.a.field\n:gear_id: "quoted ok"\n:deprecated: free text here'));
  t.true(out.startsWith('# not parsed'), out);
  t.true(out.includes(':action: :add_ssl\n:app_name: shop\n:namespace: acme\n:alias: www.example.com\n:pass_phrase: [REDACTED]\n'), out);
  t.false(/s3cr3t|looks\.like|free text|quoted ok/.test(out), out);
  t.true(out.includes(':deprecated: […]'));
});

test('unparsed documents: quoted scalars spanning lines, flow collections, tags and anchors are never kept', (t) => {
  const out = redactKeyMaterial(broken(':private_key: "-----BEGIN PRIVATE KEY-----\n:alias: inside.the.quote\nMIIE"\n:x: !binary |\n  TUlJRXZR\n:y: &a [1, 2]\n{:pass_phrase: s3cr3t}'));
  t.false(/inside\.the\.quote|MIIE|TUlJRXZR|s3cr3t/.test(out), out);
  t.true(out.includes(':private_key: [REDACTED PRIVATE KEY]'));
});

test('unparsed documents: certificates that parse are kept; a key in certificate armor is not', (t) => {
  const cert = tls('a.crt');
  const key = tls('a.key');
  const fake = key.replace(/PRIVATE KEY/g, 'CERTIFICATE');
  const out = redactKeyMaterial(broken(`:ssl: |\n${(cert + fake).trimEnd().split('\n').map((l) => `  ${l}`).join('\n')}`));
  t.true(out.includes(cert.split('\n')[1]!), 'the certificate body is kept');
  t.false(out.includes(key.split('\n')[1]!), out);
  t.false(out.includes(key.split('\n')[5]!), out);
});

test('a pass phrase reused in another field is scrubbed from the reason as it was echoed (a masked run shifted the echo past 64 characters)', (t) => {
  const pass = 'abcdefgh12345678 correct horse battery staple and then some more secretwords end';
  const d = parseSpiDocument(`---\n:action: :add_ssl\n:app_name: &p "${pass}"\n:namespace: acme\n:alias: x.example.org\n:ssl: x\n:private_key: y\n:pass_phrase: *p\n`, 0, { maxBodyBytes: 1048576 });
  t.false(d.ok);
  const reason = d.ok ? '' : d.rejection.reason;
  t.is(reason, 'add_ssl: app_name "[REDACTED]" must be 1-32 lowercase letters or digits');
  for (const word of pass.split(' ')) t.false(reason.includes(word), word);
});
