// The dns section of the config file: keys, defaults, checks (config.example.yml documents them).
import test from 'ava';
import { parseConfig } from '../../../generator/src/config.js';
import { isRproxyError } from '../../../generator/src/errors.js';
import { parseNs } from '../../../generator/src/cli/dns.js';

test('dns settings: given values replace the defaults, the rest stay', (t) => {
  const c = parseConfig(`
dns:
  vips: [192.0.2.201/24, "2001:db8::201"]
  ttl: 60
  nameservers:
    - {name: ns1.apps.example.com, addresses: [192.0.2.53]}
    - {name: ns.example.net}
  soa: {email: dns@example.com}
  check: {resolvers: ["192.0.2.53:5353"], concurrency: 4}
`, '/tmp');
  t.deepEqual(c.dns.vips, ['192.0.2.201/24', '2001:db8::201']);
  t.is(c.dns.ttl, 60);
  t.deepEqual(c.dns.nameservers, [{ name: 'ns1.apps.example.com', addresses: ['192.0.2.53'] }, { name: 'ns.example.net', addresses: [] }]);
  t.deepEqual(c.dns.soa, { email: 'dns@example.com', refresh: 3600, retry: 900, expire: 1209600, negative_ttl: 300 });
  t.deepEqual(c.dns.check, { resolvers: ['192.0.2.53:5353'], concurrency: 4, timeout_ms: 2000 });
});

test('dns settings: unknown keys and bad values name the key', (t) => {
  const bad = (text: string, code: string, re: RegExp) => {
    const e = t.throws(() => parseConfig(text, '/tmp'));
    t.true(isRproxyError(e, code as never), String(e));
    t.regex(e!.message, re);
  };
  bad('dns: {ttl: 0}', 'ERR_CONFIG_INVALID', /dns\.ttl/);
  bad('dns: {nameservers: [{name: a.example.com, address: 192.0.2.1}]}', 'ERR_CONFIG_UNKNOWN_KEY', /dns\.nameservers\[0\]\.address/);
  bad('dns: {soa: {serial: 1}}', 'ERR_CONFIG_UNKNOWN_KEY', /dns\.soa\.serial/);
  bad('dns: {check: {concurrency: 0}}', 'ERR_CONFIG_INVALID', /dns\.check\.concurrency/);
  bad('dns: {vips: 192.0.2.1}', 'ERR_CONFIG_INVALID', /dns\.vips/);
});

test('--ns NAME[=ADDRESS,...]', (t) => {
  t.deepEqual(parseNs('ns.example.net'), { name: 'ns.example.net', addresses: [] });
  t.deepEqual(parseNs('ns1.apps.example.com=192.0.2.53, 2001:db8::53'), { name: 'ns1.apps.example.com', addresses: ['192.0.2.53', '2001:db8::53'] });
});
