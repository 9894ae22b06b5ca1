import test from 'ava';
import {
  assignMasters,
  computeVrrpLayout,
  VrrpLayoutError,
  vrrpAddress,
  type VrrpLayout,
  type VrrpLayoutInput,
} from '../../../generator/src/layout/vrrp.js';
import { parseFlagsInput, parseStdinInput } from '../../../generator/src/cli/vrrp-layout.js';
import type { ErrorCode } from '../../../generator/src/errors.js';

function input(n: number, k: number): VrrpLayoutInput {
  return {
    hosts: Array.from({ length: n }, (_, i) => ({ name: `rp${i + 1}`, address: `198.51.100.${11 + i}` })),
    vips: Array.from({ length: k }, (_, i) => `198.51.100.${201 + i}/24`),
  };
}

function mastersOf(l: VrrpLayout): Map<string, string> {
  return new Map(l.vips.map((v) => [v.vip, v.master]));
}

const SIZES: Array<[number, number]> = [];
for (let n = 1; n <= 8; n++) for (let k = 1; k <= 16; k++) SIZES.push([n, k]);

test('every VIP has exactly one master, and it is the host with the highest priority', (t) => {
  for (const [n, k] of SIZES) {
    const l = computeVrrpLayout(input(n, k));
    t.is(l.vips.length, k);
    for (const v of l.vips) {
      const flagged = Object.values(l.hosts).filter((h) => h.instances.some((i) => i.vip === v.vip && i.master));
      t.is(flagged.length, 1, `n=${n} k=${k} ${v.vip}`);
      const best = Object.entries(v.priorities).sort((a, b) => b[1] - a[1])[0];
      t.is(best?.[0], v.master, `n=${n} k=${k}`);
      t.true(l.hosts[v.master]?.instances.find((i) => i.vip === v.vip)?.master);
    }
  }
});

test('masters are spread evenly (max - min <= 1)', (t) => {
  for (const [n, k] of SIZES) {
    const l = computeVrrpLayout(input(n, k));
    const counts = Object.values(l.hosts).map((h) => h.instances.filter((i) => i.master).length);
    t.is(counts.length, n);
    t.true(Math.max(...counts) - Math.min(...counts) <= 1, `n=${n} k=${k}: ${counts.join(',')}`);
    t.is(counts.reduce((a, b) => a + b, 0), k);
  }
});

test('priorities are distinct per VIP, cover every host, and lie in 1..254', (t) => {
  for (const [n, k] of SIZES) {
    const l = computeVrrpLayout(input(n, k));
    for (const v of l.vips) {
      const ps = Object.values(v.priorities);
      t.is(ps.length, n);
      t.is(new Set(ps).size, n, `n=${n} k=${k}`);
      for (const p of ps) t.true(p >= 1 && p <= 254, `priority ${p}`);
    }
    // the per-host view agrees with the per-VIP view
    for (const [host, h] of Object.entries(l.hosts)) {
      for (const i of h.instances) {
        t.is<number | undefined, number | undefined>(i.priority, l.vips.find((v) => v.vip === i.vip)?.priorities[host]);
      }
    }
  }
});

test('the tracking weight moves every VIP off a failed host, failed hosts stay distinct and >= 1', (t) => {
  for (const [n, k] of SIZES) {
    const l = computeVrrpLayout(input(n, k));
    t.true(l.track_weight < 0 && l.track_weight >= -253);
    const names = Object.keys(l.hosts);
    // every single failure and, for small n, every subset of failures (not all)
    const subsets: string[][] = [];
    for (let mask = 1; mask < 1 << n; mask++) {
      const s = names.filter((_, i) => mask & (1 << i));
      if (s.length < n) subsets.push(s);
    }
    for (const failed of subsets) {
      for (const v of l.vips) {
        const eff = Object.entries(v.priorities).map(([h, p]) => [h, failed.includes(h) ? p + l.track_weight : p] as const);
        const winner = [...eff].sort((a, b) => b[1] - a[1])[0];
        t.false(failed.includes(winner?.[0] ?? ''), `n=${n} k=${k} failed=${failed.join('+')}`);
        if (!failed.includes(v.master)) t.is(winner?.[0], v.master, 'a healthy master keeps its VIP');
        const vals = eff.map((e) => e[1]);
        t.is(new Set(vals).size, n);
        for (const p of vals) t.true(p >= 1 && p <= 254);
      }
    }
  }
});

test('the hold weight: while up to three proxies are stale, every other proxy outranks them and keeps its order', (t) => {
  for (const [n, k] of SIZES) {
    const l = computeVrrpLayout(input(n, k));
    const names = Object.keys(l.hosts);
    for (let mask = 1; mask < 1 << n; mask++) {
      const stale = names.filter((_, i) => mask & (1 << i));
      if (stale.length === n || stale.length > 3) continue;
      for (const v of l.vips) {
        // non-stale hosts have their hold file at 1: priority + hold_weight, capped at 254 by keepalived
        const eff = names.map((h) => {
          const i = l.hosts[h]!.instances.find((x) => x.vip === v.vip)!;
          t.true(i.hold_weight > 0 && i.hold_weight <= 253);
          return [h, stale.includes(h) ? i.priority : Math.min(254, i.priority + i.hold_weight)] as const;
        });
        const winner = [...eff].sort((a, b) => b[1] - a[1])[0]!;
        t.false(stale.includes(winner[0]), `n=${n} k=${k} stale=${stale.join('+')}`);
        for (const [, p] of eff) t.true(p >= 1 && p <= 254);
        const fresh = eff.filter(([h]) => !stale.includes(h));
        t.is(new Set(fresh.map(([, p]) => p)).size, fresh.length, 'held priorities stay distinct');
        // the held order is the base order: a held proxy never takes a VIP from another held proxy
        const baseOrder = fresh.map(([h]) => h).sort((a, b) => (v.priorities[b] ?? 0) - (v.priorities[a] ?? 0));
        t.deepEqual([...fresh].sort((a, b) => b[1] - a[1]).map(([h]) => h), baseOrder);
        const best = Math.max(...fresh.map(([, p]) => p));
        for (const h of stale) t.true(best > (v.priorities[h] ?? 0), 'strictly above every stale proxy: no tie for the address to break');
      }
    }
  }
});

test('virtual_router_id is unique, in 1..255, and instance names match on every host', (t) => {
  for (const [n, k] of SIZES) {
    const l = computeVrrpLayout(input(n, k));
    const ids = l.vips.map((v) => v.virtual_router_id);
    t.is(new Set(ids).size, k);
    for (const id of ids) t.true(id >= 1 && id <= 255);
    for (const h of Object.values(l.hosts)) {
      t.deepEqual(h.instances.map((i) => i.name), l.vips.map((v) => v.name));
      t.deepEqual(h.instances.map((i) => i.virtual_router_id), ids);
    }
  }
});

test('appending one host moves as few masters as possible, all of them to the new host', (t) => {
  for (let n = 2; n <= 8; n++) {
    for (let k = 1; k <= 16; k++) {
      const before = mastersOf(computeVrrpLayout(input(n - 1, k)));
      const after = mastersOf(computeVrrpLayout(input(n, k)));
      const moved = [...after].filter(([vip, m]) => before.get(vip) !== m);
      // lower bound: the new host must master at least floor(k / n) VIPs for max - min <= 1
      t.is(moved.length, Math.floor(k / n), `n=${n} k=${k}`);
      for (const [, m] of moved) t.is(m, `rp${n}`, 'only the appended host gains VIPs');
    }
  }
});

test('layout(hosts) is layout(hosts minus last) rebalanced: assignMasters is a prefix-stable process', (t) => {
  for (let k = 1; k <= 16; k++) {
    let prev = assignMasters(1, k);
    t.deepEqual(prev, new Array(k).fill(0));
    for (let n = 2; n <= 8; n++) {
      const cur = assignMasters(n, k);
      const changed = cur.filter((m, v) => m !== prev[v]);
      t.true(changed.every((m) => m === n - 1));
      prev = cur;
    }
  }
});

test('backups are rotated: the VIPs one host masters fall to different first backups', (t) => {
  for (const [n, k] of SIZES) {
    if (n < 2) continue;
    const l = computeVrrpLayout(input(n, k));
    for (const host of Object.keys(l.hosts)) {
      const mine = l.vips.filter((v) => v.master === host);
      const firstBackups = mine.map((v) => Object.entries(v.priorities).sort((a, b) => b[1] - a[1])[1]?.[0]);
      const distinct = new Set(firstBackups).size;
      t.is(distinct, Math.min(mine.length, n - 1), `n=${n} k=${k} host=${host}`);
    }
  }
});

test('lab layout: rp1 masters .201, rp2 masters .202, unicast peers are the other hosts', (t) => {
  const l = computeVrrpLayout(input(2, 2));
  t.is(l.vips[0]?.master, 'rp1');
  t.is(l.vips[1]?.master, 'rp2');
  t.deepEqual(l.hosts.rp1?.instances[0]?.unicast_peers, ['198.51.100.12']);
  t.is(l.hosts.rp2?.instances[0]?.unicast_src_ip, '198.51.100.12');
  t.is(l.vips[0]?.virtual_router_id, 51);
});

test('router id overrides and base are honoured; duplicates are rejected', (t) => {
  const l = computeVrrpLayout({ ...input(2, 2), vips: [{ address: '198.51.100.201', router_id: 7 }, '198.51.100.202'], router_id_base: 10 });
  t.deepEqual(l.vips.map((v) => v.virtual_router_id), [7, 12]);
  const err = t.throws(() => computeVrrpLayout({ ...input(2, 2), vips: [{ address: '198.51.100.201', router_id: 52 }, '198.51.100.202'] }));
  t.true(err instanceof VrrpLayoutError);
  t.is((err as VrrpLayoutError).code, 'ERR_VRRP_BAD_ROUTER_ID');
});

test('bad input is rejected with a code', (t) => {
  const cases: Array<[VrrpLayoutInput, ErrorCode]> = [
    [{ hosts: [], vips: ['198.51.100.201'] }, 'ERR_VRRP_NO_HOSTS'],
    [{ hosts: [{ name: 'rp1' }], vips: [] }, 'ERR_VRRP_NO_VIPS'],
    [{ hosts: [{ name: 'rp1' }], vips: ['not-an-ip'] }, 'ERR_VRRP_BAD_VIP'],
    [{ hosts: [{ name: 'rp1' }], vips: ['198.51.100.201/33'] }, 'ERR_VRRP_BAD_VIP'],
    [{ hosts: [{ name: 'rp1' }], vips: ['198.51.100.201', '198.51.100.201/24'] }, 'ERR_VRRP_DUPLICATE_VIP'],
    [{ hosts: [{ name: 'rp1' }, { name: 'rp1' }], vips: ['198.51.100.201'] }, 'ERR_VRRP_DUPLICATE_HOST'],
    [{ hosts: [{ name: 'rp1', address: '1.2.3' }], vips: ['198.51.100.201'] }, 'ERR_VRRP_BAD_HOST'],
    [{ hosts: [{ name: 'a b' }], vips: ['198.51.100.201'] }, 'ERR_VRRP_BAD_HOST'],
    [{ hosts: [{ name: 'rp1' }], vips: ['198.51.100.201'], router_id_base: 255 }, 'ERR_VRRP_BAD_ROUTER_ID'],
  ];
  for (const [inp, code] of cases) {
    const err = t.throws(() => computeVrrpLayout(inp));
    t.is((err as VrrpLayoutError).code, code, JSON.stringify(inp));
  }
});

test('deterministic: the same input gives the same layout', (t) => {
  t.deepEqual(computeVrrpLayout(input(5, 11)), computeVrrpLayout(input(5, 11)));
});

test('addresses: a raw ansible_host that is not an IP is not used without unicast, and an error naming the host with it', (t) => {
  const hosts = [{ name: 'rp1', ansible_host: '198.51.100.11' }, { name: 'rp2', ansible_host: 'rp2.example.net' }, { name: 'rp3' }];
  const l = computeVrrpLayout({ hosts, vips: ['198.51.100.201'] });
  t.deepEqual(Object.values(l.hosts).map((h) => h.address), ['198.51.100.11', null, null]);
  t.deepEqual(l.hosts.rp2?.instances[0]?.unicast_peers, ['198.51.100.11']);
  const err = t.throws(() => computeVrrpLayout({ hosts, vips: ['198.51.100.201'], unicast: true })) as VrrpLayoutError;
  t.is(err.code, 'ERR_VRRP_UNICAST_ADDRESS');
  t.regex(err.message, /host "rp2": unicast VRRP needs an IP address, but ansible_host is "rp2\.example\.net"/);
  const err3 = t.throws(() => computeVrrpLayout({ hosts: [hosts[0]!, hosts[2]!], vips: ['198.51.100.201'], unicast: true })) as VrrpLayoutError;
  t.regex(err3.message, /host "rp3": unicast VRRP needs an IP address, and the host has none/);
  // unicast with IP addresses everywhere: every instance has a source and the other hosts as peers
  const ok = computeVrrpLayout({ hosts: [hosts[0]!, { name: 'rp2', ansible_host: 'rp2.example.net', address: '2001:db8::12' }], vips: ['198.51.100.201'], unicast: true });
  t.is(ok.hosts.rp2?.instances[0]?.unicast_src_ip, '2001:db8::12', 'keepalived_vrrp_address wins over ansible_host');
  t.deepEqual(ok.hosts.rp1?.instances[0]?.unicast_peers, ['2001:db8::12']);
  for (const h of Object.values(ok.hosts)) for (const i of h.instances) t.truthy(i.unicast_src_ip);
});

test('addresses: an explicit address must be an IP (always); loose IPv6-looking strings are not IPs', (t) => {
  for (const address of ['rp1.example.net', '1.2.3', '::::', 'abc:']) {
    const err = t.throws(() => computeVrrpLayout({ hosts: [{ name: 'rp1', address }], vips: ['198.51.100.201'] })) as VrrpLayoutError;
    t.is(err.code, 'ERR_VRRP_BAD_HOST', address);
    t.regex(err.message, /host "rp1"/);
  }
  t.is(vrrpAddress({ name: 'rp1', ansible_host: '::::' }, false), null);
  t.is(vrrpAddress({ name: 'rp1', ansible_host: '' }, false), null);
  t.is(vrrpAddress({ name: 'rp1', address: null, ansible_host: '198.51.100.9' }, true), '198.51.100.9');
  t.throws(() => vrrpAddress({ name: 'rp1', ansible_host: 42 as unknown as string }, false), { message: /not a string/ });
  // the same IP used by two hosts (one explicit, one ansible_host) is caught
  const dup = t.throws(() => computeVrrpLayout({ hosts: [{ name: 'a', address: '198.51.100.1' }, { name: 'b', ansible_host: '198.51.100.1' }], vips: ['198.51.100.201'] })) as VrrpLayoutError;
  t.is(dup.code, 'ERR_VRRP_DUPLICATE_HOST');
});

test('vrrp-layout --stdin input: raw hosts, unicast flag from JSON or --unicast, router_id_base as string', (t) => {
  const doc = (extra: object) => JSON.stringify({ hosts: [{ name: 'rp1', address: null, ansible_host: 'rp1.lan' }], vips: ['198.51.100.201'], ...extra });
  t.false(parseStdinInput(doc({})).unicast);
  t.true(parseStdinInput(doc({ unicast: true })).unicast);
  t.true(parseStdinInput(doc({ unicast: 'yes' })).unicast, 'an -e key=value string');
  t.false(parseStdinInput(doc({ unicast: 'False' })).unicast);
  t.true(parseStdinInput(doc({ unicast: false }), { unicast: true }).unicast, '--unicast');
  t.is(parseStdinInput(doc({ router_id_base: '60' })).router_id_base, 60);
  t.throws(() => parseStdinInput(doc({ unicast: 'maybe' })), { message: /"unicast" must be a boolean/ });
  t.throws(() => parseStdinInput(JSON.stringify({ hosts: ['rp1'], vips: [] })), { message: /must be an object/ });
  t.is(computeVrrpLayout(parseStdinInput(doc({}))).hosts.rp1?.address, null);
  const err = t.throws(() => computeVrrpLayout(parseStdinInput(doc({ unicast: true })))) as VrrpLayoutError;
  t.regex(err.message, /host "rp1".*"rp1\.lan"/);
  t.true(parseFlagsInput({ host: ['rp1=198.51.100.11'], vip: ['198.51.100.201'], unicast: true }).unicast);
});
