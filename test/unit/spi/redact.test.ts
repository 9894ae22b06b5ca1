// The rejects log must never carry key material or a pass phrase, whatever YAML style the message used.
import test from 'ava';
import { redactKeyMaterial } from '../../../generator/src/spi/redact.js';

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
