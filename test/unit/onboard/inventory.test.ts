import test from 'ava';
import yaml from 'js-yaml';
import {
  addHostToGroup, removeHostFromGroup, groupHosts, setGroupVar, allHosts, groupVars, overlayInventory,
} from '../../../generator/src/onboard/inventory.js';
import { groupHosts as runnerGroupHosts } from '../../../generator/src/runner/inventory.js';
import { OPERATOR } from '../../fixtures/inventory.js';


test('a no-op round trip is byte-identical (comments, order, quoting, folded scalars)', (t) => {
  // setGroupVar with the same value keeps the node, so use a read-only API and a real edit + undo
  const added = addHostToGroup(OPERATOR, 'proxies', 'proxy3.example.com', { vars: { ansible_host: '192.0.2.13' } });
  const back = removeHostFromGroup(added, 'proxies', 'proxy3.example.com');
  t.is(back, OPERATOR);
});

test('adding a host appends it at the end of the group, keeping every comment and the rest byte for byte', (t) => {
  const out = addHostToGroup(OPERATOR, 'proxies', 'proxy3.example.com', {
    vars: { ansible_host: '192.0.2.13' }, comment: 'added by paas-rproxy onboard',
  });
  t.deepEqual(groupHosts(out, 'proxies'), ['proxy1.example.com', 'proxy2.example.com', 'proxy3.example.com']);
  t.deepEqual(runnerGroupHosts(out, 'proxies'), ['proxy1.example.com', 'proxy2.example.com', 'proxy3.example.com']);
  for (const c of ['# Production inventory', '# root everywhere', '# the front tier: ORDER MATTERS', '# rack A', '# rack B', '# primary', '# trailing note']) {
    t.true(out.includes(c), c);
  }
  t.true(out.includes('ansible_host: "192.0.2.12"'), 'quoting kept');
  t.true(out.includes('keepalived_vrrp_vips: [192.0.2.201/24, 192.0.2.202/24]'), 'flow style kept');
  t.regex(out, /proxy2\.example\.com:\n\s+ansible_host: "192\.0\.2\.12"\n\s+# added by paas-rproxy onboard\n\s+proxy3\.example\.com:\n\s+ansible_host: 192\.0\.2\.13\n\s+vars:/);
  // only lines were added
  const before = OPERATOR.split('\n');
  const after = out.split('\n');
  t.is(after.length, before.length + 3);
  t.deepEqual(after.filter((l) => !/proxy3|192\.0\.2\.13|added by paas-rproxy/.test(l)), before);
  const doc = yaml.load(out) as any;
  t.deepEqual(doc.all.children.proxies.hosts['proxy3.example.com'], { ansible_host: '192.0.2.13' });
  t.is(doc.all.vars.ansible_ssh_common_args, '-o UserKnownHostsFile=/etc/rproxy/known_hosts -o StrictHostKeyChecking=yes');
});

test('removing a host removes its entry (and its own comment) only', (t) => {
  const out = removeHostFromGroup(OPERATOR, 'proxies', 'proxy1.example.com');
  t.deepEqual(groupHosts(out, 'proxies'), ['proxy2.example.com']);
  t.false(out.includes('192.0.2.11'));
  for (const c of ['# Production inventory', '# root everywhere', '# the front tier', '# rack B', '# trailing note']) t.true(out.includes(c), c);
  const out2 = removeHostFromGroup(OPERATOR, 'proxies', 'proxy2.example.com');
  t.deepEqual(groupHosts(out2, 'proxies'), ['proxy1.example.com']);
  t.true(out2.includes('# rack A') && out2.includes('# primary'));
  t.false(out2.includes('192.0.2.12'));
});

test('removing the last host leaves an empty hosts mapping that Ansible accepts', (t) => {
  let out = removeHostFromGroup(OPERATOR, 'proxies', 'proxy1.example.com');
  out = removeHostFromGroup(out, 'proxies', 'proxy2.example.com');
  t.deepEqual(groupHosts(out, 'proxies'), []);
  const doc = yaml.load(out) as any;
  t.deepEqual(doc.all.children.proxies.hosts, {});
  t.deepEqual(doc.all.children.proxies.vars.keepalived_vrrp_vips, ['192.0.2.201/24', '192.0.2.202/24']);
  // and a host can be added again
  out = addHostToGroup(out, 'proxies', 'p9', { vars: { ansible_host: '192.0.2.19' } });
  t.deepEqual(groupHosts(out, 'proxies'), ['p9']);
});

test('errors: adding a present host, removing an absent one, broken YAML', (t) => {
  t.throws(() => addHostToGroup(OPERATOR, 'proxies', 'proxy1.example.com'), { message: /already in group proxies/ });
  t.throws(() => removeHostFromGroup(OPERATOR, 'proxies', 'nope'), { message: /not a host of group proxies/ });
  t.throws(() => groupHosts('all: [', 'proxies'), { message: /not valid YAML/ });
  t.throws(() => groupHosts('- a\n- b\n', 'proxies'), { message: /must be a mapping/ });
});

test('groups defined at the top level, with null values, nested children, or missing', (t) => {
  const top = 'proxies:\n  hosts:\n    a:\n';
  t.deepEqual(groupHosts(addHostToGroup(top, 'proxies', 'b'), 'proxies'), ['a', 'b']);
  const nullGroup = 'all:\n  children:\n    proxies:\n';
  const o1 = addHostToGroup(nullGroup, 'proxies', 'b', { vars: { ansible_host: '10.0.0.2' } });
  t.deepEqual((yaml.load(o1) as any).all.children.proxies, { hosts: { b: { ansible_host: '10.0.0.2' } } });
  const nullHosts = 'all:\n  children:\n    proxies:\n      hosts:\n      vars:\n        x: 1\n';
  const o2 = addHostToGroup(nullHosts, 'proxies', 'b');
  t.deepEqual((yaml.load(o2) as any).all.children.proxies, { hosts: { b: null }, vars: { x: 1 } });
  const nested = 'all:\n  children:\n    proxies:\n      children:\n        dc1:\n          hosts:\n            a:\n        dc2:\n          hosts:\n            b:\n';
  t.deepEqual(groupHosts(nested, 'proxies'), ['a', 'b']);
  t.deepEqual(groupHosts(removeHostFromGroup(nested, 'dc1', 'a'), 'proxies'), ['b']);
  const missing = 'all:\n  vars:\n    x: 1\n';
  const o3 = addHostToGroup(missing, 'proxies', 'a');
  t.deepEqual(yaml.load(o3), { all: { vars: { x: 1 }, children: { proxies: { hosts: { a: null } } } } });
  t.deepEqual(groupHosts(addHostToGroup('', 'proxies', 'a'), 'proxies'), ['a']);
});

test('allHosts, groupVars, setGroupVar and the overlay inventory', (t) => {
  const hosts = allHosts(OPERATOR);
  t.deepEqual([...hosts.keys()], ['broker1.example.com', 'proxy1.example.com', 'proxy2.example.com']);
  t.deepEqual(hosts.get('proxy2.example.com'), { ansible_host: '192.0.2.12' });
  t.deepEqual(groupVars(OPERATOR, 'proxies'), { keepalived_vrrp_vips: ['192.0.2.201/24', '192.0.2.202/24'] });
  const out = setGroupVar(OPERATOR, 'proxies', 'keepalived_vrrp_vips', ['192.0.2.201', '192.0.2.202', '192.0.2.203']);
  t.deepEqual(groupVars(out, 'proxies').keepalived_vrrp_vips, ['192.0.2.201', '192.0.2.202', '192.0.2.203']);
  t.true(out.includes('# rack B') && out.includes('# trailing note'));
  const ov = overlayInventory({ proxies: [{ name: 'rp3', vars: { ansible_host: '198.51.100.13' } }], next: [{ name: 'rp1' }, { name: 'rp2' }] });
  t.deepEqual(yaml.load(ov), { all: { children: { proxies: { hosts: { rp3: { ansible_host: '198.51.100.13' } } }, next: { hosts: { rp1: null, rp2: null } } } } });
});
