/**
 * The bad-input corpus: every kind of hostile or broken message is rejected with its own reason, recorded in
 * the rejects log with key material redacted, and the state files stay byte for byte (and inode) the same.
 */
import test from 'ava';
import { readFile } from 'node:fs/promises';
import { routesDir } from '../../../generator/src/vars/paths.js';
import { StateStore } from '../../../generator/src/vars/store.js';
import { samplesDocs, snapshotTree, tmpConfig, tls, psych, block } from '../../fixtures/helpers.js';

const base = { action: ':add_alias', app_name: 'shop', namespace: 'acme', alias: 'x.example.org' };
const alias = (v: string) => psych({ ...base, alias: v });
const ep = (over: Record<string, string>) => psych({
  action: ':add_public_endpoint', app_name: 'shop', namespace: 'acme', gear_id: '5a1f00c0e4b0aa0001000009', public_port_name: 'php',
  public_address: '198.51.100.39', public_port: '35539', protocols: '\n- http', types: '\n- web_framework', mappings: '[]', ...over,
});
const ssl = (cert: string, key: string, pass = "''", a = 'www.example.com') =>
  psych({ action: ':add_ssl', app_name: 'shop', namespace: 'acme', alias: a, ssl: block(cert), private_key: block(key), pass_phrase: pass });
const bomb = '---\na: &a ["x","x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n' +
  'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n';

/** [kind, document, expected reason (regex)] */
const CORPUS: Array<[string, string, RegExp]> = [
  ['malformed YAML', '---\n:action: :add_alias\n:app_name: [shop\n', /^malformed YAML: .* at line \d+/],
  ['bad indentation', '---\n:action: :add_alias\n  :app_name: shop\n :x: 1\n', /^malformed YAML/],
  ['non-mapping (scalar)', '--- just a string\n', /^message is not a mapping \(got string\)/],
  ['non-mapping (list)', '---\n- :action\n- :add_alias\n', /^message is not a mapping \(got a list\)/],
  ['empty message', '--- \n', /^message is empty \(no YAML document\)$/],
  ['null document', '--- ~\n', /^message is not a mapping \(got an empty document\)/],
  ['missing action', '---\n:app_name: shop\n:namespace: acme\n', /^missing field action$/],
  ['unknown action', psych({ ...base, action: ':add_cname' }), /^unknown action ":add_cname"$/],
  ['action not a symbol', psych({ ...base, action: '[1]' }), /^action must be a symbol/],
  ['missing field', psych({ action: ':add_alias', app_name: 'shop', namespace: 'acme' }), /^add_alias: missing field alias$/],
  ['unknown field', psych({ ...base, extra: 'x' }), /^add_alias: unknown field "extra"$/],
  ['app_name wrong type', psych({ ...base, app_name: '[a]' }), /^add_alias: app_name must be a string, got a list$/],
  ['scalable not boolean', psych({ action: ':create_application', app_name: 'shop', namespace: 'acme', scalable: "'yes'", ha: 'false' }), /^create_application: scalable must be true or false/],
  ['app_name with ;', psych({ ...base, app_name: "'shop;rm'" }), /^add_alias: app_name "shop;rm" must be 1-32 lowercase letters or digits$/],
  ['app_name with {', psych({ ...base, app_name: "'shop{'" }), /^add_alias: app_name "shop\{" must be/],
  ['app_name with space', psych({ ...base, app_name: "'my shop'" }), /^add_alias: app_name "my shop" must be/],
  ['app_name with newline', psych({ ...base, app_name: '"shop\\nx"' }), /^add_alias: app_name "shop\\nx" must be/],
  ['app_name uppercase', psych({ ...base, app_name: 'Shop' }), /^add_alias: app_name "Shop" must be 1-32 lowercase/],
  ['app_name over 32', psych({ ...base, app_name: 'a'.repeat(33) }), /^add_alias: app_name "a{33}" must be 1-32/],
  ['namespace over 16', psych({ ...base, namespace: 'n'.repeat(17) }), /^add_alias: namespace "n{17}" must be 1-16 lowercase/],
  ['alias with space', alias("'a b'"), /^add_alias: alias "a b" is not a DNS host name$/],
  ['alias with ..', alias('www..example.com'), /^add_alias: alias "www\.\.example\.com" is not a DNS host name \(empty label ".."\)$/],
  ['alias with * in the middle', alias("'www.*.example.com'"), /^add_alias: alias "www\.\*\.example\.com" is not a DNS host name \(wildcards are not accepted\)$/],
  ['alias wildcard first label', alias("'*.example.com'"), /wildcards are not accepted/],
  ['alias over 253', alias(`${'a'.repeat(60)}.`.repeat(4) + 'example.com'), /is not a DNS host name \(longer than 253 characters\)$/],
  ['alias label over 63', alias(`${'a'.repeat(64)}.example.com`), /a label is longer than 63 characters/],
  ['alias with $', alias("'www$.example.com'"), /^add_alias: alias "www\$\.example\.com" is not a DNS host name$/],
  ['alias single label', alias('localhost'), /needs at least two labels/],
  ['alias numeric (IP-like)', alias('10.0.0.1'), /the last label is numeric/],
  ['alias inside the cloud domain', alias('evil.apps.example.com'), /^add_alias: alias "evil\.apps\.example\.com" is inside the cloud domain apps\.example\.com/],
  ['address not an IP', ep({ public_address: 'gear1.example.com' }), /^add_public_endpoint: public_address "gear1\.example\.com" is not an IP address$/],
  ['address with port', ep({ public_address: "'198.51.100.1:80'" }), /public_address "198\.51\.100\.1:80" is not an IP address/],
  ['address with an IPv6 zone id', ep({ public_address: "'fe80::1%eth0'" }), /public_address "fe80::1%eth0" is not an IP address/],
  ['loopback address', ep({ public_address: '127.0.0.1' }), /public_address "127\.0\.0\.1" is a loopback or unspecified address/],
  ['IPv6 loopback address', ep({ public_address: "'::1'" }), /public_address "::1" is a loopback or unspecified address/],
  ['unspecified address', ep({ public_address: '0.0.0.0' }), /public_address "0\.0\.0\.0" is a loopback or unspecified address/],
  ['port 0', ep({ public_port: '0' }), /^add_public_endpoint: public_port "0" is not a port number \(an integer 1-65535\)$/],
  ['port 65536', ep({ public_port: '65536' }), /public_port "65536" is not a port number/],
  ['port "80; x"', ep({ public_port: "'80; x'" }), /public_port "80; x" is not a port number/],
  ['port as string', ep({ public_port: "'80'" }), /public_port "80" is not a port number/],
  ['protocol with space', ep({ protocols: '\n- http x' }), /^add_public_endpoint: protocols entry "http x" must be a lowercase name/],
  ['types not a list', ep({ types: 'web_framework' }), /^add_public_endpoint: types must be a list, got a string$/],
  ['mapping with ;', ep({ mappings: "\n- frontend: '/a;b'\n  backend: ''" }), /^add_public_endpoint: mappings\[0\]\.frontend "\/a;b" must be empty or a URI path/],
  ['mapping with space', ep({ mappings: "\n- frontend: '/a b'\n  backend: ''" }), /mappings\[0\]\.frontend "\/a b"/],
  ['mapping relative', ep({ mappings: "\n- frontend: 'health'\n  backend: ''" }), /mappings\[0\]\.frontend "health"/],
  ['gear_id with /', ep({ gear_id: "'../../etc'" }), /^add_public_endpoint: gear_id "\.\.\/\.\.\/etc" must be 1-64 letters/],
  ['garbage certificate', ssl('-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n', tls('a.key')), /^add_ssl: alias "www\.example\.com": ssl certificate #1 does not parse$/],
  ['no certificate', ssl('hello', tls('a.key')), /^add_ssl: alias "www\.example\.com": ssl is not a PEM certificate$/],
  ['garbage key', ssl(tls('a.crt'), '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'), /^add_ssl: alias "www\.example\.com": private_key does not parse/],
  ['mismatched certificate and key', ssl(tls('a.crt'), tls('b.key')), /^add_ssl: alias "www\.example\.com": private_key does not match the ssl certificate$/],
  ['wrong pass_phrase', ssl(tls('a.crt'), tls('a.enc.key'), 'Wr0ngPassw0rd'), /^add_ssl: alias "www\.example\.com": pass_phrase does not decrypt private_key$/],
  ['encrypted key, no pass_phrase', ssl(tls('a.crt'), tls('a.enc.key'), "''"), /private_key is encrypted and pass_phrase is empty/],
  ['add_ssl for an alias the app lacks', ssl(tls('a.crt'), tls('a.key'), "''", 'other.example.com'), /^add_ssl: alias "other\.example\.com" is not an alias of app shop-acme \(send add_alias first\)$/],
  ['alias bomb', bomb, /^document expands to more than 10000 nodes \(alias bomb\?\)$/],
  ['deep nesting', `---\n:action: ${'['.repeat(40)}${']'.repeat(40)}\n`, /nesting is deeper than 12 levels|nesting is too deep/],
  ['oversized body', psych({ ...base, alias: 'a'.repeat(9000) }), /^message of \d+ bytes is over the 8192-byte limit$/],
  ['!ruby/object tag', '--- !ruby/object:OpenStruct\ntable:\n  :action: :add_alias\n', /^YAML tag !<!ruby\/object:OpenStruct> is not accepted/],
  ['!ruby/symbol tag', psych({ ...base, action: '!ruby/symbol add_alias' }), /^YAML tag !<!ruby\/symbol> is not accepted/],
  ['!!binary tag', psych({ ...base, alias: '!binary |-\n  d3d3LmV4YW1wbGUuY29t' }), /^YAML tag .*binary.* is not accepted/],
  ['duplicate keys', '---\n:action: :add_alias\n:app_name: shop\n:app_name: evil\n:namespace: acme\n:alias: x.example.org\n', /^malformed YAML: duplicated key at line \d+$/],
  ['{{ }} in a string field', alias("'{{ lookup(\"pipe\", \"id\") }}.example.org'"), /^add_alias: alias contains a template marker/],
  ['{% %} in a mapping path', ep({ mappings: "\n- frontend: '/{% raw %}'\n  backend: ''" }), /^add_public_endpoint: mappings\[0\]\.frontend contains a template marker/],
  ['{{ in a key', '---\n:action: :add_alias\n:app_name: shop\n:namespace: acme\n:alias: x.example.org\n"{{x}}": 1\n', /^add_alias: \{\{x\}\} contains a template marker/],
  ['{{ in the deprecated text', psych({ ...base, action: ':delete_gear', gear_id: 'g1', public_address: '198.51.100.1', public_port: '80', deprecated: "'{{ 7*7 }}'", alias: '' }).replace(':alias: \n', ''), /^delete_gear: deprecated contains a template marker/],
  ['{# in pass_phrase', ssl(tls('a.crt'), tls('a.key'), "'{# x #}'"), /^add_ssl: pass_phrase contains a template marker/],
  ['alias claimed by another app', psych({ ...base, app_name: 'other', alias: 'www.example.com' }), /^add_alias: alias "www\.example\.com" already belongs to app shop-acme$/],
];

test(`bad-input corpus: ${CORPUS.length} kinds, each rejected with its reason, state files unchanged`, async (t) => {
  t.true(CORPUS.length >= 25);
  const cfg = await tmpConfig('max_body_bytes: 8192\n');
  // A state with an app, endpoints, an alias and a certificate (max_body_bytes is small only for the corpus).
  const store0 = await StateStore.open({ ...cfg, max_body_bytes: 1048576 });
  const setup = await store0.applyText(samplesDocs().slice(0, 11).join(''));
  t.is(setup.rejected.length, 0);
  const store = await StateStore.open(cfg);
  const before = await snapshotTree(routesDir(cfg));
  t.true(Object.keys(before).some((p) => p.endsWith('.key')));
  for (const [kind, doc, expected] of CORPUS) {
    const r = await store.applyText(doc, { source: kind });
    t.is(r.rejected.length, 1, `${kind}: rejected`);
    t.is(r.applied, 0, kind);
    t.regex(r.rejected[0]?.reason ?? '(accepted)', expected, kind);
    t.true(['ERR_SPI_INVALID', 'ERR_SPI_YAML', 'ERR_SPI_TOO_LARGE', 'ERR_SPI_CONFLICT'].includes(r.rejected[0]?.code ?? ''), kind);
  }
  t.deepEqual(await snapshotTree(routesDir(cfg)), before, 'vars and TLS files byte for byte (and inode) unchanged');
  const log = (await readFile(`${cfg.state_dir}/rejects.jsonl`, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
  t.is(log.length, CORPUS.length);
  for (const [i, rec] of log.entries()) {
    t.is(rec.source, CORPUS[i]![0]);
    t.truthy(Date.parse(rec.time));
    t.regex(rec.reason, CORPUS[i]![2]);
    t.truthy(rec.code);
  }
  const all = JSON.stringify(log);
  t.false(all.includes(tls('a.key').split('\n')[1]!), 'private key bytes never reach the log');
  t.false(all.includes(tls('a.enc.key').split('\n')[1]!));
  t.false(all.includes('Wr0ngPassw0rd'), 'pass phrases never reach the log');
  t.true(all.includes('[REDACTED PRIVATE KEY]'));
});
