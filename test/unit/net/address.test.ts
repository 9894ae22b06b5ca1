// The one address parser: bytes, one canonical text, and the kinds a gear address must never be, in every spelling.
import test from 'ava';
import { addressKind, cidrContains, isNetworkOrBroadcast, parseCidr, parseIp, type Cidr } from '../../../generator/src/net/address.js';

const canon = (s: string) => parseIp(s)?.text ?? null;
const kind = (s: string) => {
  const a = parseIp(s);
  if (!a) throw new Error(`not an address: ${s}`);
  return addressKind(a);
};

test('canonical text: RFC 5952 for IPv6, dotted quad for IPv4 and IPv4-mapped IPv6', (t) => {
  const same: Array<[string, string[]]> = [
    ['2001:db8::1', ['2001:DB8::1', '2001:db8:0:0:0:0:0:1', '2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::0:1', '2001:db8:0::1']],
    ['2001:db8:0:1:1:1:1:1', ['2001:db8::1:1:1:1:1']], // a single zero group is not compressed
    ['2001:db8::1:0:0:1', ['2001:db8:0:0:1:0:0:1']], // the first of two equal zero runs
    ['fe80::1:2', ['FE80:0:0:0:0:0:1:2']],
    ['::', ['0:0:0:0:0:0:0:0', '::0', '0::']],
    ['::1', ['0:0:0:0:0:0:0:1', '::0:1']],
    ['198.51.100.7', ['::ffff:198.51.100.7', '::FFFF:c633:6407', '0:0:0:0:0:ffff:c633:6407', '0:0::ffff:198.51.100.7']],
    ['127.0.0.1', ['::ffff:7f00:1', '0:0:0:0:0:ffff:127.0.0.1']],
    ['64:ff9b::7f00:1', ['64:ff9b::127.0.0.1']],
  ];
  for (const [want, spellings] of same) {
    t.is(canon(want), want, want);
    for (const s of spellings) t.is(canon(s), want, s);
  }
});

test('not addresses: zone ids, brackets, ports, leading zeros, short forms, junk, very long input', (t) => {
  for (const s of ['fe80::1%eth0', '[::1]', '198.51.100.1:80', '010.0.0.1', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1.2.3.4 ',
    ' 1.2.3.4', '0x7f.0.0.1', '2130706433', '1:2:3:4:5:6:7:8:9', '1::2::3', ':::', '1:2:3:4:5:6:7', '12345::1', 'g::1',
    '::1.2.3', '1.2.3.4::', '::ffff:1.2.3.4.5', '', ':', '1:', 'a'.repeat(1_000_000), '1.'.repeat(500_000)]) {
    t.is(parseIp(s), null, s.slice(0, 40));
  }
});

test('kinds in every spelling: loopback, unspecified, link-local, multicast, broadcast, reserved, IPv4-compatible', (t) => {
  const cases: Array<[string, string[]]> = [
    ['loopback', ['127.0.0.1', '127.255.255.254', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '::ffff:7f00:1', '0:0:0:0:0:ffff:127.0.0.1',
      '::127.0.0.1', '::7f00:1', '::ffff:0:127.0.0.1', '64:ff9b::127.0.0.1', '2002:7f00:1::1']],
    ['unspecified', ['0.0.0.0', '0.1.2.3', '::', '::ffff:0.0.0.0', '::0.0.0.0']],
    ['link-local', ['169.254.169.254', '169.254.0.1', 'fe80::1', 'FEBF::1', '::ffff:169.254.169.254', '::ffff:a9fe:a9fe', '64:ff9b::169.254.169.254']],
    ['multicast', ['224.0.0.1', '239.255.255.255', 'ff02::1', 'FF05::2', '::ffff:224.0.0.251']],
    ['broadcast', ['255.255.255.255', '::ffff:255.255.255.255']],
    ['reserved', ['240.0.0.1', '250.1.2.3']],
    ['ipv4-compatible', ['::198.51.100.7', '::c633:6407']],
    ['unicast', ['198.51.100.7', '10.0.0.1', '2001:db8::7', 'fec0::1', '::ffff:198.51.100.7', '64:ff9b::198.51.100.7', '2002:c633:6407::1', '169.253.1.1', '223.255.255.254']],
  ];
  for (const [k, spellings] of cases) for (const s of spellings) t.is(kind(s) as string, k, s);
});

test('the local-use NAT64 prefix 64:ff9b:1::/96 (RFC 8215) is judged by the IPv4 address it carries, like 64:ff9b::/96', (t) => {
  t.is(kind('64:ff9b:1::127.0.0.1') as string, 'loopback');
  t.is(kind('64:ff9b:1::7f00:1') as string, 'loopback');
  t.is(kind('64:ff9b:1::169.254.169.254') as string, 'link-local');
  t.is(kind('64:ff9b:1::198.51.100.7') as string, 'unicast');
});

test('networks: host bits refused, containment by bytes, network and broadcast addresses of an IPv4 network', (t) => {
  const net = (s: string): Cidr => {
    const c = parseCidr(s);
    if (typeof c === 'string') throw new Error(`${s} ${c}`);
    return c;
  };
  t.is(net('10.0.0.0/8').text, '10.0.0.0/8');
  t.is(net('2001:DB8:0::/32').text, '2001:db8::/32');
  t.is(net('::ffff:10.0.0.0/104').text, '10.0.0.0/8', 'an IPv4-mapped network is its IPv4 network');
  t.is(net('0.0.0.0/0').text, '0.0.0.0/0');
  t.regex(parseCidr('10.1.0.0/8') as string, /host bits set \(the network is 10\.0\.0\.0\/8\)/);
  t.regex(parseCidr('10.0.0.0/33') as string, /longer than \/32/);
  t.regex(parseCidr('10.0.0.0') as string, /ADDRESS\/PREFIX/);
  t.regex(parseCidr('10.0.0.0/08') as string, /prefix/);
  t.regex(parseCidr('x/8') as string, /ADDRESS\/PREFIX/);
  const ten = net('10.0.0.0/8');
  t.true(cidrContains(ten, parseIp('10.1.2.3')!));
  t.true(cidrContains(ten, parseIp('::ffff:10.1.2.3')!), 'any spelling');
  t.false(cidrContains(ten, parseIp('11.0.0.1')!));
  t.false(cidrContains(net('2001:db8::/32'), parseIp('10.1.2.3')!));
  t.true(cidrContains(net('2001:db8::/32'), parseIp('2001:DB8:0:0::99')!));
  const lan = net('198.51.100.0/24');
  t.true(isNetworkOrBroadcast(lan, parseIp('198.51.100.0')!));
  t.true(isNetworkOrBroadcast(lan, parseIp('198.51.100.255')!));
  t.false(isNetworkOrBroadcast(lan, parseIp('198.51.100.7')!));
  t.false(isNetworkOrBroadcast(net('198.51.100.0/31'), parseIp('198.51.100.1')!), '/31 has no broadcast address');
  const odd = net('10.0.0.0/13');
  t.true(isNetworkOrBroadcast(odd, parseIp('10.7.255.255')!));
  t.false(isNetworkOrBroadcast(odd, parseIp('10.7.255.254')!));
});
