/**
 * How the controller reaches a host, exactly as Ansible would: the host's effective inventory variables
 * (ansible-inventory --host, group_vars included) → address, port, user, private key, known_hosts files.
 * connectionFromVars() is pure; resolveConnection() runs ansible-inventory (with an overlay inventory source
 * when the host is not in the real inventory yet).
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Config } from '../config.js';
import { RproxyError } from '../errors.js';
import { overlayInventory } from './inventory.js';

export interface Connection {
  host: string;
  address: string;
  port: number;
  user: string;
  /** explicit private key file (ansible_ssh_private_key_file / -i); null = ssh's default identities */
  privateKeyFile: string | null;
  /** known_hosts files ssh would read (UserKnownHostsFile / GlobalKnownHostsFile, else the defaults) */
  knownHostsFiles: string[];
  /** StrictHostKeyChecking=no in the ssh args: Ansible would accept any key (reported as a warning) */
  hostKeyCheckingDisabled: boolean;
  become: boolean;
  /** interpreter Ansible will use on the host */
  python: string;
}

/** Splits an ssh argument string like a shell would (quotes, backslashes); enough for ssh option strings. */
export function splitArgs(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let has = false;
  let q: '"' | "'" | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (q) {
      if (c === q) q = null;
      else if (c === '\\' && q === '"' && i + 1 < s.length) cur += s[++i];
      else cur += c;
    } else if (c === '"' || c === "'") { q = c; has = true; }
    else if (c === '\\' && i + 1 < s.length) { cur += s[++i]; has = true; }
    else if (/\s/.test(c)) { if (has || cur) out.push(cur); cur = ''; has = false; }
    else cur += c;
  }
  if (has || cur) out.push(cur);
  return out;
}

/** `-o Key=Value` / `-oKey=Value` / `-o Key Value` options, `-i FILE`, `-p PORT` from ssh args. */
export function sshOptions(args: string[]): { options: Map<string, string>; identity: string | null; port: number | null } {
  const options = new Map<string, string>();
  let identity: string | null = null;
  let port: number | null = null;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    let opt: string | null = null;
    if (a === '-o') opt = args[++i] ?? null;
    else if (a.startsWith('-o')) opt = a.slice(2);
    else if (a === '-i') identity = args[++i] ?? identity;
    else if (a.startsWith('-i') && a.length > 2) identity = a.slice(2);
    else if (a === '-p') port = Number(args[++i]);
    if (opt === null) continue;
    const m = /^([A-Za-z]+)\s*(?:=|\s)\s*(.*)$/.exec(opt);
    if (m && m[1]) {
      const key = m[1].toLowerCase();
      if (!options.has(key)) options.set(key, m[2] ?? ''); // ssh: the first value wins
    } else if (/^[A-Za-z]+$/.test(opt) && i + 1 < args.length) {
      const key = opt.toLowerCase();
      const val = args[++i] as string;
      if (!options.has(key)) options.set(key, val);
    }
  }
  return { options, identity, port };
}

function expandHome(p: string, home: string): string {
  return p === '~' ? home : p.startsWith('~/') ? path.join(home, p.slice(2)) : p;
}

const str = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : typeof v === 'number' ? String(v) : null);
const bool = (v: unknown): boolean => v === true || (typeof v === 'string' && /^(yes|true|1|on)$/i.test(v));

/** Pure: the connection Ansible would make to `host` given its effective variables. */
export function connectionFromVars(host: string, vars: Record<string, unknown>, env: { home: string; user: string }): Connection {
  const sshArgs = [vars.ansible_ssh_common_args, vars.ansible_ssh_extra_args, vars.ansible_ssh_args]
    .map((v) => str(v))
    .filter((v): v is string => v !== null)
    .flatMap(splitArgs);
  const { options, identity, port: argPort } = sshOptions(sshArgs);
  const known: string[] = [];
  const user = options.get('userknownhostsfile');
  const global = options.get('globalknownhostsfile');
  if (user && user.toLowerCase() !== 'none') known.push(...splitArgs(user).map((f) => expandHome(f, env.home)));
  else if (!user) known.push(path.join(env.home, '.ssh/known_hosts'), path.join(env.home, '.ssh/known_hosts2'));
  if (global && global.toLowerCase() !== 'none') known.push(...splitArgs(global).map((f) => expandHome(f, env.home)));
  else if (!global) known.push('/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2');
  const key = str(vars.ansible_ssh_private_key_file) ?? str(vars.ansible_private_key_file) ?? identity ?? options.get('identityfile') ?? null;
  const portVar = str(vars.ansible_port) ?? str(vars.ansible_ssh_port);
  return {
    host,
    address: str(vars.ansible_host) ?? str(vars.ansible_ssh_host) ?? host,
    port: portVar ? Number(portVar) : argPort ?? 22,
    user: str(vars.ansible_user) ?? str(vars.ansible_ssh_user) ?? env.user,
    privateKeyFile: key ? expandHome(key, env.home) : null,
    knownHostsFiles: known,
    hostKeyCheckingDisabled: options.get('stricthostkeychecking')?.toLowerCase() === 'no' || vars.ansible_host_key_checking === false,
    become: bool(vars.ansible_become),
    python: str(vars.ansible_python_interpreter)?.replace(/^auto.*$/, 'python3') ?? 'python3',
  };
}

function ansibleEnv(config: Config): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ANSIBLE_NOCOLOR: '1' };
  if (!env.ANSIBLE_CONFIG) env.ANSIBLE_CONFIG = path.join(path.dirname(config.ansible.playbook), 'ansible.cfg');
  return env;
}

/** ansible-inventory beside ansible-playbook (same directory when the command is a path). */
export function ansibleInventoryCommand(config: Config): string {
  const c = config.ansible.command;
  return c.includes('/') ? path.join(path.dirname(c), 'ansible-inventory') : 'ansible-inventory';
}

/** The host's effective variables (ansible-inventory --host), with optional extra inventory sources. */
export async function hostVars(config: Config, host: string, extraSources: string[] = []): Promise<Record<string, unknown>> {
  const args = ['-i', config.inventory_dir, ...extraSources.flatMap((s) => ['-i', s]), '--host', host];
  const out = await new Promise<string>((resolve, reject) => {
    execFile(ansibleInventoryCommand(config), args, { env: ansibleEnv(config), maxBuffer: 512 << 20, timeout: 120_000 }, (e, stdout, stderr) =>
      e ? reject(new RproxyError('ERR_CONFIG_INVALID', `ansible-inventory ${args.join(' ')} failed: ${(stderr || e.message).trim().split('\n').slice(-3).join(' ')}`)) : resolve(stdout));
  });
  try {
    return JSON.parse(out) as Record<string, unknown>;
  } catch {
    throw new RproxyError('ERR_CONFIG_INVALID', `ansible-inventory --host ${host}: output is not JSON`);
  }
}

/**
 * A temporary overlay inventory source, as a hidden file INSIDE the inventory directory: Ansible skips dot
 * entries when it reads the directory (so other runs never see it), and hosts defined in it get the real
 * inventory_dir (relative paths in the vars, such as the TLS files, resolve as for every other proxy).
 * Removed when fn settles.
 */
export async function withOverlay<T>(inventoryDir: string, content: string, fn: (file: string) => Promise<T>): Promise<T> {
  const file = path.join(inventoryDir, `.paas-rproxy-overlay-${process.pid}-${randomBytes(4).toString('hex')}.yml`);
  try {
    await fs.writeFile(file, content, { mode: 0o600, flag: 'wx' });
    return await fn(file);
  } finally {
    await fs.rm(file, { force: true });
  }
}

/**
 * Connection settings for `host`. When `address` is given the host is not expected in the inventory yet:
 * it is added through an overlay source (group `group`, ansible_host = address), so the group's variables
 * (ssh user, key, known_hosts) apply exactly as they will once it is in the inventory.
 */
export async function resolveConnection(config: Config, host: string, opts: { address?: string; group?: string } = {}): Promise<{ conn: Connection; vars: Record<string, unknown> }> {
  const env = { home: os.homedir(), user: os.userInfo().username };
  const vars = opts.address
    ? await withOverlay(config.inventory_dir, overlayInventory({ [opts.group ?? config.proxies_group]: [{ name: host, vars: { ansible_host: opts.address } }] }),
      (f) => hostVars(config, host, [f]))
    : await hostVars(config, host);
  return { conn: connectionFromVars(host, vars, env), vars };
}
