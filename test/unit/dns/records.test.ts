// The cloud domain's records, pure: validation, canonical addresses, serial, and the two rendered texts.
import test from 'ava';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DEFAULT_DNS_SETTINGS, canonicalIp, dateSerial, nextSerial, sameWildcard, serialGreater, soaRname, vipRecords,
  wildcardRecords, zoneRecords, type DnsSettings,
} from '../../../generator/src/dns/records.js';
import { renderNsupdate, renderZone } from '../../../generator/src/dns/render.js';
import { zoneSerial, dnsSerialPath } from '../../../generator/src/dns/serial.js';
import { defaultConfig } from '../../../generator/src/config.js';
import { isRproxyError } from '../../../generator/src/errors.js';

const D = 'apps.example.com';
const settings = (over: Partial<DnsSettings> = {}): DnsSettings => ({
  ...DEFAULT_DNS_SETTINGS(D),
  nameservers: [{ name: `ns1.${D}`, addresses: ['198.51.100.1'] }],
  ...over,
});
const invalid = (t: { true: (v: boolean, m?: string) => void }, fn: () => unknown, re: RegExp) => {
  try {
    fn();
    t.true(false, `expected ERR_DNS_INVALID matching ${re}`);
  } catch (e) {
    t.true(isRproxyError(e, 'ERR_DNS_INVALID'), String(e));
    t.true(re.test((e as Error).message), (e as Error).message);
  }
};

test('canonical addresses: IPv4 as is, IPv6 per RFC 5952; zone ids and non-addresses refused', (t) => {
  t.deepEqual(canonicalIp('198.51.100.201'), { family: 4, address: '198.51.100.201' });
  t.is(canonicalIp('2001:0DB8:0000:0000:0000:ff00:0042:8329')?.address, '2001:db8::ff00:42:8329');
  t.is(canonicalIp('2001:db8:0:0:1:0:0:1')?.address, '2001:db8::1:0:0:1'); // first of two equal runs
  t.is(canonicalIp('2001:db8::')?.address, '2001:db8::');
  t.is(canonicalIp('::ffff:192.0.2.1')?.address, '::ffff:c000:201');
  t.is(canonicalIp('fe80::1%eth0'), null);
  t.is(canonicalIp('apps.example.com'), null);
  t.is(canonicalIp('1.2.3'), null);
});

test('VIPs: inventory forms (prefix, {address}), sorted A then AAAA, order-independent', (t) => {
  const a = vipRecords(['2001:db8::202/64', '198.51.100.202/24', { address: '198.51.100.201', router_id: 60 }, '2001:DB8::201']);
  t.deepEqual(a, [
    { type: 'A', address: '198.51.100.201' }, { type: 'A', address: '198.51.100.202' },
    { type: 'AAAA', address: '2001:db8::201' }, { type: 'AAAA', address: '2001:db8::202' },
  ]);
  t.deepEqual(vipRecords(['198.51.100.202', '198.51.100.9']), [{ type: 'A', address: '198.51.100.9' }, { type: 'A', address: '198.51.100.202' }]);
});

test('VIPs: every bad value is an error naming it', (t) => {
  invalid(t, () => vipRecords([]), /no VIPs/);
  invalid(t, () => vipRecords(['198.51.100.300']), /"198\.51\.100\.300" is not an IP address/);
  invalid(t, () => vipRecords(['198.51.100.1/33']), /not an IP address/);
  invalid(t, () => vipRecords(['2001:db8::1/129']), /not an IP address/);
  invalid(t, () => vipRecords(['198.51.100.1/24/1']), /not an IP address/);
  invalid(t, () => vipRecords(['vip.example.com']), /not an IP address/);
  invalid(t, () => vipRecords([42]), /neither/);
  invalid(t, () => vipRecords(['127.0.0.1']), /loopback/);
  invalid(t, () => vipRecords(['::1']), /loopback/);
  invalid(t, () => vipRecords(['0.0.0.0']), /unspecified/);
  invalid(t, () => vipRecords(['224.0.0.18']), /multicast/);
  invalid(t, () => vipRecords(['ff02::12']), /multicast/);
  invalid(t, () => vipRecords(['fe80::1']), /link-local/);
  invalid(t, () => vipRecords(['::ffff:198.51.100.1']), /IPv4-mapped/);
  invalid(t, () => vipRecords(['198.51.100.1', '198.51.100.1/24']), /listed twice/);
  invalid(t, () => vipRecords(['2001:db8::1', '2001:DB8:0::1']), /listed twice/);
  // a value that would inject a record line is refused before any text is rendered
  invalid(t, () => vipRecords(['198.51.100.1\n* IN A 203.0.113.1']), /not an IP address/);
});

test('domain, TTL, name servers and SOA mailbox are checked', (t) => {
  invalid(t, () => wildcardRecords('apps', ['198.51.100.1'], 300), /domain "apps"/);
  invalid(t, () => wildcardRecords('*.apps.example.com', ['198.51.100.1'], 300), /wildcards/);
  invalid(t, () => wildcardRecords('apps.example.com\n@ IN NS x.', ['198.51.100.1'], 300), /domain/);
  invalid(t, () => wildcardRecords(D, ['198.51.100.1'], 0), /ttl must be an integer 1\.\.604800/);
  invalid(t, () => wildcardRecords(D, ['198.51.100.1'], 1.5), /ttl/);
  invalid(t, () => wildcardRecords(D, ['198.51.100.1'], 604801), /ttl/);
  invalid(t, () => zoneRecords(D, ['198.51.100.1'], settings({ nameservers: [] })), /at least one name server/);
  invalid(t, () => zoneRecords(D, ['198.51.100.1'], settings({ nameservers: [{ name: `ns1.${D}`, addresses: [] }] })), /lies inside .*give its address/);
  invalid(t, () => zoneRecords(D, ['198.51.100.1'], settings({ nameservers: [{ name: 'ns.example.net', addresses: ['192.0.2.1'] }] })), /outside .*drop them/);
  invalid(t, () => zoneRecords(D, ['198.51.100.1'], settings({ nameservers: [{ name: `ns1.${D}`, addresses: ['x'] }] })), /not an IP address/);
  invalid(t, () => zoneRecords(D, ['198.51.100.1'], settings({ nameservers: [{ name: 'ns.example.net', addresses: [] }, { name: 'ns.example.net.', addresses: [] }] })), /listed twice/);
  invalid(t, () => zoneRecords(D, ['198.51.100.1'], settings({ soa: { ...settings().soa, email: 'no-at-sign' } })), /mailbox/);
  invalid(t, () => zoneRecords(D, ['198.51.100.1'], settings({ soa: { ...settings().soa, negative_ttl: 86401 } })), /negative_ttl/);
  t.is(soaRname('john.doe@Example.COM'), 'john\\.doe.example.com');
});

test('zone: SOA, NS, in-zone name server addresses, wildcard A and AAAA (named-checkzone loads it: test/integration/lab-dns.test.ts)', (t) => {
  const z = zoneRecords(D, ['198.51.100.202/24', '198.51.100.201/24', '2001:db8::201/64'], settings({
    ttl: 120,
    nameservers: [{ name: `ns1.${D}`, addresses: ['198.51.100.1', '2001:db8::53'] }, { name: 'ns.example.net', addresses: [] }],
  }));
  const text = renderZone(z, 2026120105);
  t.regex(text, /^\$ORIGIN apps\.example\.com\.$/m);
  t.regex(text, /^\$TTL 120$/m);
  t.regex(text, /^@\tIN\tSOA\tns1\.apps\.example\.com\. hostmaster\.apps\.example\.com\. \($/m);
  t.regex(text, /^\t\t2026120105\t; serial/m);
  t.regex(text, /^@\tIN\tNS\tns1\.apps\.example\.com\.$/m);
  t.regex(text, /^@\tIN\tNS\tns\.example\.net\.$/m);
  t.regex(text, /^ns1\tIN\tA\t198\.51\.100\.1$/m);
  t.regex(text, /^ns1\tIN\tAAAA\t2001:db8::53$/m);
  const wild = text.split('\n').filter((l) => l.startsWith('*'));
  t.deepEqual(wild, ['*\tIN\tA\t198.51.100.201', '*\tIN\tA\t198.51.100.202', '*\tIN\tAAAA\t2001:db8::201']);
  t.false(text.includes('&'), 'nothing HTML-escaped');
  t.false(/^\s*$/m.test(text.trimEnd()), 'no blank lines left by the template blocks');
});

test('digest: same records in any VIP order = same digest; any published change = another one', (t) => {
  const base = zoneRecords(D, ['198.51.100.201', '198.51.100.202'], settings()).digest;
  t.is(zoneRecords(D, ['198.51.100.202/24', '198.51.100.201/24'], settings()).digest, base);
  t.not(zoneRecords(D, ['198.51.100.201'], settings()).digest, base);
  t.not(zoneRecords(D, ['198.51.100.201', '198.51.100.202'], settings({ ttl: 600 })).digest, base);
  t.not(zoneRecords(D, ['198.51.100.201', '198.51.100.202'], settings({ soa: { ...settings().soa, retry: 901 } })).digest, base);
  t.not(zoneRecords(D, ['198.51.100.201', '198.51.100.202'], settings({ nameservers: [{ name: 'ns.example.net', addresses: [] }] })).digest, base);
});

test('serial: YYYYMMDDnn, stable for the same records, greater for changed ones (RFC 1982)', (t) => {
  const day = new Date('2026-12-01T10:00:00Z');
  t.is(dateSerial(day), 2026120100);
  t.is(nextSerial(null, 'a', day), 2026120100);
  t.is(nextSerial({ serial: 2026120100, digest: 'a' }, 'a', day), 2026120100, 'unchanged records keep the serial');
  t.is(nextSerial({ serial: 2026120100, digest: 'a' }, 'b', day), 2026120101, 'same day: + 1');
  t.is(nextSerial({ serial: 2026120101, digest: 'b' }, 'a', new Date('2026-12-02T00:00:00Z')), 2026120200, 'a later day: its first serial');
  t.is(nextSerial({ serial: 2026120199, digest: 'b' }, 'a', day), 2026120200, 'the 100th change of a day borrows the next day');
  t.is(nextSerial({ serial: 4294967295, digest: 'b' }, 'a', day), 2026120100, 'far ahead in serial arithmetic: today is greater');
  t.is(nextSerial({ serial: 2026120500, digest: 'b' }, 'a', day), 2026120501, 'a serial ahead of the clock only grows');
  t.true(serialGreater(0, 4294967295));
  t.false(serialGreater(5, 5));
  t.true(serialGreater(2026120101, 2026120100));
});

test('serial store: <state_dir>/dns.json keeps the serial per domain, rewritten only on change', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'rproxy-dns-'));
  const config = { ...defaultConfig(), state_dir: dir };
  const day = new Date('2026-12-01T10:00:00Z');
  t.is(await zoneSerial(config, D, 'a', day), 2026120100);
  const first = await readFile(dnsSerialPath(config), 'utf8');
  t.is(await zoneSerial(config, D, 'a', new Date('2026-12-03T00:00:00Z')), 2026120100, 'same digest days later: same serial');
  t.is(await readFile(dnsSerialPath(config), 'utf8'), first, 'file untouched');
  t.is(await zoneSerial(config, D, 'b', day), 2026120101);
  t.is(await zoneSerial(config, 'other.example.net', 'a', day), 2026120100, 'domains are independent');
  t.is(await zoneSerial(config, D, 'b', day), 2026120101);
  await writeFile(dnsSerialPath(config), '{"zones": {"x": {"serial": -1}}}');
  const e = await t.throwsAsync(zoneSerial(config, D, 'b', day));
  t.true(isRproxyError(e, 'ERR_STATE_CORRUPT'));
  t.regex(e!.message, /dns\.json.*Remove it/);
});

test('nsupdate batch: one atomic update replacing the wildcard A/AAAA records; server, port, zone', (t) => {
  const w = wildcardRecords(D, ['198.51.100.201', '2001:db8::201'], 60);
  const text = renderNsupdate(w, { server: '2001:DB8::53', port: 5353, zone: 'example.com.' });
  t.deepEqual(text.split('\n').filter((l) => l && !l.startsWith(';')), [
    'server 2001:db8::53 5353',
    'zone example.com.',
    'update delete *.apps.example.com. A',
    'update delete *.apps.example.com. AAAA',
    'update add *.apps.example.com. 60 A 198.51.100.201',
    'update add *.apps.example.com. 60 AAAA 2001:db8::201',
    'send',
  ]);
  t.false(/^server/m.test(renderNsupdate(w, { server: null, port: 53, zone: D })), 'no server: nsupdate asks the SOA');
  invalid(t, () => renderNsupdate(w, { server: null, port: 53, zone: 'example.org' }), /does not contain/);
  invalid(t, () => renderNsupdate(w, { server: 'dns.example.com', port: 53, zone: D }), /server/);
  invalid(t, () => renderNsupdate(w, { server: '192.0.2.1', port: 0, zone: D }), /port/);
});

test('sameWildcard: a server answer equals the records only with the same addresses and TTL', (t) => {
  const w = wildcardRecords(D, ['198.51.100.201', '198.51.100.202'], 300);
  const ans = [{ type: 'A' as const, address: '198.51.100.202', ttl: 300 }, { type: 'A' as const, address: '198.51.100.201', ttl: 300 }];
  t.true(sameWildcard(w, ans));
  t.false(sameWildcard(w, ans.slice(1)));
  t.false(sameWildcard(w, [...ans, { type: 'AAAA', address: '2001:db8::1', ttl: 300 }]));
  t.false(sameWildcard(w, ans.map((a) => ({ ...a, ttl: 60 }))));
  t.false(sameWildcard(w, [ans[0]!, ans[0]!]));
  t.false(sameWildcard(w, []));
});

test('canonicalIp: the one address parser, with an IPv4-mapped address kept as the AAAA value it is written as', (t) => {
  t.deepEqual(canonicalIp('198.51.100.7'), { family: 4, address: '198.51.100.7' });
  t.deepEqual(canonicalIp('2001:DB8:0:0::1'), { family: 6, address: '2001:db8::1' });
  t.deepEqual(canonicalIp('::ffff:198.51.100.7'), { family: 6, address: '::ffff:c633:6407' });
  for (const bad of ['fe80::1%eth0', '010.0.0.1', '1.2.3', 'example.org', '']) t.is(canonicalIp(bad), null, bad);
  // AAAA records sort by address value, not by text
  const r = wildcardRecords('apps.example.com', ['2001:db8::10', '2001:db8::9', '192.0.2.1'], 60).records;
  t.deepEqual(r.map((x) => x.address), ['192.0.2.1', '2001:db8::9', '2001:db8::10']);
});
