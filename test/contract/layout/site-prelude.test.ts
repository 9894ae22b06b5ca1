/**
 * ansible/site.yml's VRRP pre_tasks, run by real ansible-playbook (the two tasks taken from site.yml as they are,
 * against a temp inventory; the CLI through tsx so no build is needed): the inventory's addresses reach
 * `vrrp-layout --stdin` raw and TypeScript decides. A DNS name as ansible_host is not used without unicast, and
 * with keepalived_vrrp_unicast the run fails naming the host (no more `unicast_src_ip None`).
 */
import { needs, ANSIBLE } from '../helpers/tools.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { chmod, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import yaml from 'js-yaml';

const test = needs(ANSIBLE);

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '../../..');
// Results are read from the project's own callback plugin (ansible-core ships no json callback).
const ENV = {
  ...process.env, ANSIBLE_NOCOLOR: '1', ANSIBLE_LOCALHOST_WARNING: '0', ANSIBLE_HOST_KEY_CHECKING: '0',
  ANSIBLE_CALLBACK_PLUGINS: join(REPO, 'ansible/callback_plugins'), ANSIBLE_CALLBACKS_ENABLED: 'rproxy_results',
};

type Play = { vars: Record<string, unknown>; pre_tasks: Array<Record<string, unknown>> };

type TaskLine = { event: 'task'; host: string; task: string; result?: { msg?: unknown } };

async function prelude(hostVars: Record<string, Record<string, unknown>>, groupVars: Record<string, unknown>): Promise<{ ok: boolean; out: TaskLine[]; text: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'rproxy-site-'));
  const site = yaml.load(await readFile(join(REPO, 'ansible/site.yml'), 'utf8')) as Play[];
  const play = site[0]!;
  const node = join(dir, 'node-tsx');
  const tsx = pathToFileURL(join(REPO, 'node_modules/tsx/dist/loader.mjs')).href;
  await writeFile(node, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} --import ${tsx} "$@"\n`);
  await chmod(node, 0o755);
  const pb = [{
    name: 'site.yml VRRP pre_tasks', hosts: 'proxies', gather_facts: false,
    vars: { ...play.vars, rproxy_node: node, rproxy_cli: join(REPO, 'generator/src/cli/main.ts') },
    pre_tasks: play.pre_tasks,
    tasks: [{ 'ansible.builtin.debug': { msg: { instances: '{{ keepalived_vrrp_instances }}', weight: '{{ keepalived_vrrp_track_weight }}' } } }],
  }];
  await writeFile(join(dir, 'play.yml'), yaml.dump(pb));
  const hosts = Object.fromEntries(Object.entries(hostVars).map(([h, v]) => [h, { ansible_connection: 'local', ansible_python_interpreter: '/usr/bin/python3', ...v }]));
  await writeFile(join(dir, 'hosts.yml'), yaml.dump({ all: { children: { proxies: { hosts, vars: groupVars } } } }));
  try {
    const results = join(dir, 'results.jsonl');
    const { stdout } = await run('ansible-playbook', ['-i', join(dir, 'hosts.yml'), join(dir, 'play.yml')], { env: { ...ENV, RPROXY_RESULTS_FILE: results }, cwd: REPO, maxBuffer: 16 << 20 });
    const lines = (await readFile(results, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { event: string });
    return { ok: true, out: lines.filter((l): l is TaskLine => l.event === 'task'), text: stdout };
  } catch (e) {
    const stdout = (e as { stdout?: string }).stdout ?? '';
    return { ok: false, out: [], text: stdout + ((e as { stderr?: string }).stderr ?? '') };
  }
}

/** host -> the debug task's msg (the play's last task) */
const msgs = (out: TaskLine[]): Record<string, { instances: any[]; weight: number }> => {
  const last = out[out.length - 1]!.task;
  return Object.fromEntries(out.filter((l) => l.task === last).map((l) => [l.host, l.result?.msg as { instances: any[]; weight: number }]));
};

const VIPS = { keepalived_vrrp_vips: ['198.51.100.201/24', '198.51.100.202/24'] };

test('multicast: an ansible_host that is a DNS name is simply not used (null), IP addresses are', async (t) => {
  const r = await prelude({ rp1: { ansible_host: '198.51.100.11' }, rp2: { ansible_host: 'rp2.example.net' } }, VIPS);
  t.true(r.ok, r.text);
  const m = msgs(r.out);
  t.is(m.rp1!.instances[0].unicast_src_ip, '198.51.100.11');
  t.deepEqual(m.rp1!.instances[0].unicast_peers, []);
  t.is(m.rp2!.instances[0].unicast_src_ip, null);
  t.deepEqual(m.rp2!.instances[0].unicast_peers, ['198.51.100.11']);
  t.deepEqual([m.rp1!.instances[0].master, m.rp2!.instances[1].master], [true, true]);
});

test('unicast: a host without an IP address fails the run, naming the host', async (t) => {
  const r = await prelude({ rp1: { ansible_host: '198.51.100.11' }, rp2: { ansible_host: 'rp2.example.net' } }, { ...VIPS, keepalived_vrrp_unicast: true });
  t.false(r.ok);
  t.regex(r.text, /host \\?"rp2\\?": unicast VRRP needs an IP address, but ansible_host is \\?"rp2\.example\.net\\?"/);
  t.regex(r.text, /ERR_VRRP_UNICAST_ADDRESS/);
});

test('unicast: keepalived_vrrp_address wins over ansible_host; IPv6 ansible_host is used', async (t) => {
  const r = await prelude({
    rp1: { ansible_host: '2001:db8::11' },
    rp2: { ansible_host: 'rp2.example.net', keepalived_vrrp_address: '198.51.100.12' },
  }, { ...VIPS, keepalived_vrrp_unicast: true });
  t.true(r.ok, r.text);
  const m = msgs(r.out);
  t.is(m.rp1!.instances[0].unicast_src_ip, '2001:db8::11');
  t.deepEqual(m.rp1!.instances[0].unicast_peers, ['198.51.100.12']);
  t.is(m.rp2!.instances[0].unicast_src_ip, '198.51.100.12');
});
