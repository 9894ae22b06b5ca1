import test from 'ava';
import { mkdtemp, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { defaultConfig, loadConfig, parseConfig, packageRoot } from '../../../generator/src/config.js';
import { exitCodeFor, isRproxyError, RproxyError } from '../../../generator/src/errors.js';
import { REPO } from '../../fixtures/helpers.js';

const tmp = () => mkdtemp(join(tmpdir(), 'rproxy-cfg-'));

test('defaults: contract values, absolute paths, playbook from the package root', (t) => {
  const c = defaultConfig();
  t.is(c.cloud_domain, 'apps.example.com');
  t.deepEqual(c.routed_types, ['web_framework']);
  // production places, never the current directory
  t.is(c.inventory_dir, '/etc/paas-rproxy/inventory');
  t.is(c.state_dir, '/var/lib/paas-rproxy');
  t.is(c.max_body_bytes, 1048576);
  t.is(c.ansible.playbook, join(packageRoot(), 'ansible/site.yml'));
  t.is(packageRoot(), REPO);
  t.deepEqual(c.stomp.brokers, [{ host: '127.0.0.1', port: 61613 }]);
  t.is(c.runner.quiet_ms, 0);
  t.is(c.runner.burst_quiet_ms, 250);
  t.is(parseConfig('runner:\n  burst_quiet_ms: 0\n', '/').runner.burst_quiet_ms, 0, 'burst coalescing can be turned off');
  t.true(c.ansible.warm);
  t.is(c.metrics.listen, '127.0.0.1:9464');
});

test('config.example.yml parses and documents exactly the defaults', async (t) => {
  const text = await readFile(join(REPO, 'config.example.yml'), 'utf8');
  const c = parseConfig(text, process.cwd(), 'example');
  t.deepEqual({ ...c, source: null }, defaultConfig());
});

test('STOMP over TLS: brokers[].tls and stomp.ca_file (relative to the file)', (t) => {
  const c = parseConfig('stomp:\n  brokers:\n    - {host: mq.example.net, port: 61614, tls: true}\n  ca_file: tls/ca.crt\n', '/etc/x');
  t.deepEqual(c.stomp.brokers, [{ host: 'mq.example.net', port: 61614, tls: true }]);
  t.is(c.stomp.ca_file, '/etc/x/tls/ca.crt');
  t.throws(() => parseConfig('stomp:\n  brokers:\n    - {host: a, port: 1, tls: yes please}\n', '/'), { message: /stomp\.brokers\[0\]\.tls must be true or false/ });
});

test('relative paths resolve against the config file directory', async (t) => {
  const dir = await tmp();
  await writeFile(join(dir, 'c.yml'), 'inventory_dir: ../inv\nstate_dir: data\nansible:\n  playbook: pb/site.yml\n');
  const c = await loadConfig({ file: join(dir, 'c.yml'), env: {} });
  t.is(c.inventory_dir, resolve(dir, '../inv'));
  t.is(c.state_dir, join(dir, 'data'));
  t.is(c.ansible.playbook, join(dir, 'pb/site.yml'));
  t.is(c.source, join(dir, 'c.yml'));
  t.is(c.ansible.command, 'ansible-playbook', 'other keys keep their defaults');
});

test('unknown keys anywhere are ERR_CONFIG_UNKNOWN_KEY naming the key path (exit 2)', (t) => {
  for (const [text, path] of [
    ['cloud_domian: x.example.com\n', 'cloud_domian'],
    ['runner:\n  quiet_msx: 1\n', 'runner.quiet_msx'],
    ['stomp:\n  brokers:\n    - host: a\n      port: 1\n      ssl: true\n', 'stomp.brokers[0].ssl'],
    ['metrics:\n  listen: 1.2.3.4:1\n  path: /m\n', 'metrics.path'],
  ] as const) {
    const e = t.throws(() => parseConfig(text, '/'));
    t.true(isRproxyError(e, 'ERR_CONFIG_UNKNOWN_KEY'));
    t.is(e!.message, `config: unknown key "${path}" (see config.example.yml for the valid keys)`);
    t.is(exitCodeFor(e), 2);
  }
});

test('wrong types and values are ERR_CONFIG_INVALID naming the key', (t) => {
  for (const [text, re] of [
    ['max_body_bytes: lots\n', /max_body_bytes must be an integer/],
    ['routed_types: web_framework\n', /routed_types must be a non-empty list of names/],
    ['cloud_domain: Apps.Example.com\n', /cloud_domain must be a lowercase DNS domain/],
    ['runner: 5\n', /runner must be a mapping/],
    ['stomp:\n  brokers:\n    - host: a\n      port: 70000\n', /stomp\.brokers\[0\]\.port must be an integer 1\.\.65535/],
    ['metrics:\n  listen: nowhere\n', /metrics\.listen must be HOST:PORT/],
    ['- a\n', /the file must be a YAML mapping/],
    ['a: [\n', /not valid YAML/],
  ] as const) {
    const e = t.throws(() => parseConfig(text, '/'));
    t.true(isRproxyError(e, 'ERR_CONFIG_INVALID'), text);
    t.regex(e!.message, re);
  }
  t.deepEqual(parseConfig('', '/').cloud_domain, 'apps.example.com', 'an empty file is the defaults');
  t.deepEqual(parseConfig('runner:\n', '/').runner.quiet_ms, 0, 'an empty section keeps its defaults');
});

test('selection: --config, else PAAS_RPROXY_CONFIG, else defaults; --inventory and credential env override', async (t) => {
  const dir = await tmp();
  await writeFile(join(dir, 'a.yml'), 'cloud_domain: a.example.com\n');
  await writeFile(join(dir, 'b.yml'), 'cloud_domain: b.example.com\n');
  t.is((await loadConfig({ file: join(dir, 'a.yml'), env: { PAAS_RPROXY_CONFIG: join(dir, 'b.yml') } })).cloud_domain, 'a.example.com');
  t.is((await loadConfig({ env: { PAAS_RPROXY_CONFIG: join(dir, 'b.yml') } })).cloud_domain, 'b.example.com');
  t.is((await loadConfig({ env: {} })).source, null);
  const c = await loadConfig({ env: { PAAS_RPROXY_STOMP_LOGIN: 'u', PAAS_RPROXY_STOMP_PASSCODE: 'p' }, inventory: 'rel/inv' });
  t.deepEqual([c.stomp.login, c.stomp.passcode, c.inventory_dir], ['u', 'p', resolve('rel/inv')]);
  const e = await t.throwsAsync(loadConfig({ file: join(dir, 'missing.yml'), env: {} }));
  t.true(isRproxyError(e, 'ERR_CONFIG_NOT_FOUND'));
  t.regex(e!.message, /cannot read .*missing\.yml: ENOENT/);
});

test('exit codes per contract', (t) => {
  t.is(exitCodeFor(new RproxyError('ERR_USAGE', 'x')), 2);
  t.is(exitCodeFor(new RproxyError('ERR_SPI_INVALID', 'x')), 3);
  t.is(exitCodeFor(new RproxyError('ERR_PLAYBOOK_FAILED', 'x')), 4);
  t.is(exitCodeFor(new RproxyError('ERR_STATE_LOCKED', 'x')), 1);
  t.is(exitCodeFor(new Error('x')), 1);
});

test('hostile-input policy keys: gear_networks canonical and checked, tls_require_valid boolean, limits integers', (t) => {
  const d = defaultConfig();
  t.deepEqual([d.gear_networks, d.tls_require_valid, d.limits], [[], true, { endpoints_per_app: 1000, aliases_per_app: 2000, tls_aliases_per_app: 100, mappings_per_app: 256 }]);
  const c = parseConfig('gear_networks: [10.0.0.0/8, "2001:DB8::/32", "::ffff:192.0.2.0/120"]\ntls_require_valid: false\nlimits:\n  aliases_per_app: 20000\n', '/');
  t.deepEqual(c.gear_networks, ['10.0.0.0/8', '2001:db8::/32', '192.0.2.0/24']);
  t.false(c.tls_require_valid);
  t.deepEqual(c.limits, { ...d.limits, aliases_per_app: 20000 }, 'other limits keep their defaults');
  for (const [text, re] of [
    ['gear_networks: [10.1.0.0/8]\n', /gear_networks\[0\] "10\.1\.0\.0\/8" has host bits set \(the network is 10\.0\.0\.0\/8\)/],
    ['gear_networks: [10.0.0.1]\n', /gear_networks\[0\] "10\.0\.0\.1" is not ADDRESS\/PREFIX/],
    ['gear_networks: 10.0.0.0/8\n', /gear_networks must be a list of networks/],
    ['tls_require_valid: "yes"\n', /tls_require_valid must be true or false/],
    ['limits:\n  aliases_per_app: 0\n', /limits\.aliases_per_app must be an integer 1\.\.1000000/],
  ] as const) {
    const e = t.throws(() => parseConfig(text, '/'));
    t.true(isRproxyError(e, 'ERR_CONFIG_INVALID'), text);
    t.regex(e!.message, re);
  }
  const e = t.throws(() => parseConfig('limits:\n  alias_per_app: 1\n', '/'));
  t.true(isRproxyError(e, 'ERR_CONFIG_UNKNOWN_KEY'));
  t.is(exitCodeFor(new RproxyError('ERR_SPI_LIMIT', 'x')), 3);
});
