/**
 * Preflight of a proxy host before anything is touched: SSH with the controller's key and a host key
 * verified against known_hosts, root or passwordless sudo, python3, free disk, ports 80/443 free or already
 * nginx's, apt-get (the roles install with apt). Each failed check says what failed and how to fix it.
 * The evaluators are pure (unit-tested); runPreflight() is the SSH edge.
 */
import { promises as fs } from 'node:fs';
import { execFile } from 'node:child_process';
import type { Connection } from './connection.js';
import { connectSsh, SshConnectError, shq, type SshSession } from './ssh.js';

export type CheckName = 'known_hosts' | 'ssh' | 'privilege' | 'python3' | 'disk' | 'ports' | 'apt';

export interface CheckResult {
  check: CheckName;
  ok: boolean;
  /** what was found */
  detail: string;
  /** how to fix it (failed checks) */
  fix?: string;
}

export interface PreflightReport {
  host: string;
  address: string;
  ok: boolean;
  checks: CheckResult[];
  /** the controller's key was installed with the one-time password */
  bootstrapped: boolean;
  durationMs: number;
}

export interface PreflightOptions {
  /** minimum free space on / and /var (MiB), default 512 */
  minFreeMiB?: number;
  /** one-time password (first line of the file) to install the controller's public key */
  passwordFile?: string;
  /** ports that must be free or nginx's; default [80, 443] */
  ports?: number[];
}

// ------------------------------------------------------------------------------------------- pure: SSH failures
/** The check result for a failed SSH connection. */
export function sshFailureResult(conn: Connection, e: SshConnectError, opts: { passwordFile?: string } = {}): CheckResult {
  const target = `${conn.user}@${conn.address}${conn.port === 22 ? '' : `:${conn.port}`}`;
  const kh = conn.knownHostsFiles[0] ?? '~/.ssh/known_hosts';
  const scan = `ssh-keyscan -p ${conn.port} -t ed25519 ${conn.address}`;
  switch (e.kind) {
    case 'known_hosts_missing':
    case 'host_key_unknown':
      return {
        check: 'known_hosts', ok: false,
        detail: `${e.message}: the host key of ${conn.address} is not known, and it is never accepted blindly`,
        fix: `compare the key with the host's console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then add it: ${scan} >> ${kh}`,
      };
    case 'host_key_mismatch':
    case 'host_key_revoked':
      return {
        check: 'known_hosts', ok: false,
        detail: `${e.message}: possibly another machine at this address, or a reinstalled host`,
        fix: `if the host was reinstalled, check the new key on its console, then: ssh-keygen -R ${conn.address} -f ${kh} && ${scan} >> ${kh}`,
      };
    case 'unreachable':
      return {
        check: 'ssh', ok: false,
        detail: `sshd does not answer at ${conn.address}:${conn.port} (${String(e.detail.code ?? e.message)})`,
        fix: `start sshd on the host (service ssh start) and check that ${conn.address}:${conn.port} is reachable from this controller (address, firewall)`,
      };
    case 'auth':
      return {
        check: 'ssh', ok: false,
        detail: `${e.message}`,
        fix: opts.passwordFile
          ? `the password in ${opts.passwordFile} was refused too: check it, or add the controller's public key to ~${conn.user}/.ssh/authorized_keys on the host`
          : `add the controller's public key (${conn.privateKeyFile ?? '~/.ssh/id_ed25519'}.pub) to ~${conn.user}/.ssh/authorized_keys on the host, or run once with --password-file FILE to install it`,
      };
    case 'key_file':
      return { check: 'ssh', ok: false, detail: e.message, fix: 'set ansible_ssh_private_key_file in the inventory to the controller key Ansible uses' };
    default:
      return { check: 'ssh', ok: false, detail: `ssh to ${target} failed: ${e.message}`, fix: `try: ssh -p ${conn.port} ${target} true` };
  }
}

// ------------------------------------------------------------------------------------------- pure: the probe
/** One shell script, one SSH round trip: prints key=value lines and prefixed df/ss lines. */
export function probeScript(python: string): string {
  return [
    'u=$(id -u); echo "uid=$u"; echo "user=$(id -un)"',
    'S=""',
    'if [ "$u" != 0 ]; then if sudo -n true >/dev/null 2>&1; then echo sudo=yes; S="sudo -n"; else echo sudo=no; fi; fi',
    `p=${shq(python)}`,
    'if pp=$(command -v "$p" 2>/dev/null) && [ -n "$pp" ]; then echo "python=$pp"; "$pp" -c \'import sys; print("pyver=%d.%d.%d" % sys.version_info[:3])\' 2>/dev/null; else echo python=; fi',
    'echo "apt=$(command -v apt-get 2>/dev/null)"',
    'df -Pk / /var 2>/dev/null | tail -n +2 | sed "s/^/df /"',
    'if command -v ss >/dev/null 2>&1; then echo ss=yes; $S ss -Hltnp 2>/dev/null | sed "s/^/ss /"; else echo ss=no; fi',
    'exit 0',
  ].join('\n');
}

export interface Probe {
  uid: number | null;
  user: string;
  sudo: boolean | null; // null when root (not asked)
  python: string; // '' = absent
  pyver: string;
  apt: string;
  df: Array<{ mount: string; availKiB: number; fs: string }>;
  ss: boolean;
  listeners: Array<{ local: string; port: number; process: string }>;
}

export function parseProbe(out: string): Probe {
  const p: Probe = { uid: null, user: '', sudo: null, python: '', pyver: '', apt: '', df: [], ss: false, listeners: [] };
  for (const line of out.split('\n')) {
    if (line.startsWith('df ')) {
      const f = line.slice(3).trim().split(/\s+/);
      if (f.length >= 6) p.df.push({ fs: f[0] as string, availKiB: Number(f[3]), mount: f.slice(5).join(' ') });
      continue;
    }
    if (line.startsWith('ss ')) {
      const f = line.slice(3).trim().split(/\s+/);
      // State Recv-Q Send-Q Local:Port Peer:Port [Process]
      const local = f[3] ?? '';
      const port = Number(local.slice(local.lastIndexOf(':') + 1));
      const proc = /users:\(\("([^"]+)"/.exec(line)?.[1] ?? '';
      if (Number.isInteger(port) && port > 0) p.listeners.push({ local, port, process: proc });
      continue;
    }
    const m = /^(\w+)=(.*)$/.exec(line);
    if (!m) continue;
    const [, k, v = ''] = m;
    if (k === 'uid') p.uid = /^\d+$/.test(v) ? Number(v) : null;
    else if (k === 'user') p.user = v;
    else if (k === 'sudo') p.sudo = v === 'yes';
    else if (k === 'python') p.python = v;
    else if (k === 'pyver') p.pyver = v;
    else if (k === 'apt') p.apt = v;
    else if (k === 'ss') p.ss = v === 'yes';
  }
  return p;
}

/** The checks that follow from a probe. */
export function evaluateProbe(conn: Connection, p: Probe, opts: { minFreeMiB?: number; ports?: number[] } = {}): CheckResult[] {
  const out: CheckResult[] = [];
  // privilege
  if (p.uid === 0) out.push({ check: 'privilege', ok: true, detail: `${p.user || conn.user} is root` });
  else if (p.sudo && conn.become) out.push({ check: 'privilege', ok: true, detail: `${p.user} has passwordless sudo (ansible_become is set)` });
  else if (p.sudo) {
    out.push({ check: 'privilege', ok: false, detail: `${p.user} has passwordless sudo but ansible_become is not set for this host`, fix: 'set ansible_become: true for the proxies group (inventory), or connect as root (ansible_user: root)' });
  } else {
    out.push({
      check: 'privilege', ok: false, detail: `${p.user || conn.user} (uid ${p.uid ?? '?'}) is not root and has no passwordless sudo`,
      fix: `connect as root (ansible_user: root), or give ${p.user || conn.user} passwordless sudo ("${p.user || conn.user} ALL=(ALL) NOPASSWD: ALL" in /etc/sudoers.d/) and set ansible_become: true`,
    });
  }
  // python3
  const major = Number(p.pyver.split('.')[0]);
  const minor = Number(p.pyver.split('.')[1]);
  if (!p.python) {
    out.push({ check: 'python3', ok: false, detail: `${conn.python} is not installed on the host (Ansible's modules need it)`, fix: 'install it on the host: apt-get install -y python3 (or point ansible_python_interpreter at an installed python3)' });
  } else if (!(major === 3 && minor >= 5)) {
    out.push({ check: 'python3', ok: false, detail: `${p.python} is Python ${p.pyver || 'of unknown version'}; ansible-core 2.14 needs Python 3.5 or later on the host`, fix: 'install python3 (apt-get install -y python3) and set ansible_python_interpreter: /usr/bin/python3' });
  } else out.push({ check: 'python3', ok: true, detail: `${p.python} (Python ${p.pyver})` });
  // disk
  const min = opts.minFreeMiB ?? 512;
  if (p.df.length === 0) out.push({ check: 'disk', ok: false, detail: 'df -Pk / /var printed nothing', fix: 'check that df (coreutils) works on the host' });
  else {
    const seen = new Set<string>();
    const low = p.df.filter((d) => { if (seen.has(d.mount)) return false; seen.add(d.mount); return d.availKiB < min * 1024; });
    const fmt = (d: { mount: string; availKiB: number }) => `${d.mount} ${Math.floor(d.availKiB / 1024)} MiB free`;
    if (low.length) out.push({ check: 'disk', ok: false, detail: `${low.map(fmt).join(', ')} (need ${min} MiB)`, fix: `free space on ${low.map((d) => d.mount).join(' and ')} (apt-get clean, old logs under /var/log)` });
    else out.push({ check: 'disk', ok: true, detail: [...new Map(p.df.map((d) => [d.mount, d])).values()].map(fmt).join(', ') });
  }
  // ports
  const ports = opts.ports ?? [80, 443];
  if (!p.ss) out.push({ check: 'ports', ok: false, detail: 'ss (iproute2) is not installed: cannot tell whether ports 80/443 are free', fix: 'install iproute2 on the host (apt-get install -y iproute2)' });
  else {
    const busy = p.listeners.filter((l) => ports.includes(l.port));
    const foreign = busy.filter((l) => l.process !== 'nginx');
    if (foreign.length) {
      const who = foreign.map((l) => `${l.local} by ${l.process || 'an unknown process (run the check as root to see it)'}`);
      out.push({ check: 'ports', ok: false, detail: `port ${[...new Set(foreign.map((l) => l.port))].join(' and ')} in use: ${who.join(', ')}`, fix: `stop and disable that service on the host (e.g. systemctl disable --now apache2), so nginx can listen on ${ports.join('/')}` });
    } else if (busy.length) out.push({ check: 'ports', ok: true, detail: `${[...new Set(busy.map((l) => l.port))].join('/')} already served by nginx` });
    else out.push({ check: 'ports', ok: true, detail: `${ports.join(' and ')} free` });
  }
  // apt
  if (p.apt) out.push({ check: 'apt', ok: true, detail: p.apt });
  else out.push({ check: 'apt', ok: false, detail: 'apt-get not found: the roles install nginx and keepalived with apt', fix: 'use a Debian or Ubuntu host' });
  return out;
}

/** Human-readable report: one line per check, then what to fix. */
export function formatPreflight(r: PreflightReport): string {
  const lines = [`preflight of ${r.host} (${r.address}): ${r.ok ? 'passed' : 'FAILED'} in ${(r.durationMs / 1000).toFixed(1)} s`];
  for (const c of r.checks) lines.push(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.check.padEnd(11)} ${c.detail}`);
  const bad = r.checks.filter((c) => !c.ok);
  if (bad.length) {
    lines.push('to fix:');
    for (const c of bad) lines.push(`  ${c.check}: ${c.fix ?? 'see above'}`);
  }
  return lines.join('\n') + '\n';
}

/** Failed check names, for messages: "known_hosts, ssh". */
export function failedChecks(r: PreflightReport): string {
  return r.checks.filter((c) => !c.ok).map((c) => c.check).join(', ');
}

// ------------------------------------------------------------------------------------------- edge
async function publicKeyOf(privateKeyFile: string): Promise<string> {
  try {
    return (await fs.readFile(`${privateKeyFile}.pub`, 'utf8')).trim();
  } catch {
    return new Promise((resolve, reject) => execFile('ssh-keygen', ['-y', '-f', privateKeyFile], (e, out) => (e ? reject(e) : resolve(out.trim()))));
  }
}

/** Installs the controller's public key with a one-time password (host key still verified). */
async function bootstrapKey(conn: Connection, passwordFile: string): Promise<void> {
  const password = (await fs.readFile(passwordFile, 'utf8')).split('\n')[0] ?? '';
  if (!conn.privateKeyFile) throw new SshConnectError('key_file', 'no explicit private key to install: set ansible_ssh_private_key_file');
  const pub = await publicKeyOf(conn.privateKeyFile);
  const s = await connectSsh(conn, { password });
  try {
    const r = await s.exec('umask 077; mkdir -p ~/.ssh && touch ~/.ssh/authorized_keys && IFS= read -r k && { grep -qxF "$k" ~/.ssh/authorized_keys || printf "%s\\n" "$k" >> ~/.ssh/authorized_keys; }', { stdin: pub + '\n', timeoutMs: 15_000 });
    if (r.code !== 0) throw new SshConnectError('other', `installing the key failed: ${r.stderr.trim() || `exit ${r.code}`}`);
  } finally {
    s.dispose();
  }
}

/**
 * Runs every check. Never changes anything on the host (except installing the controller's public key
 * when a password file is given and the key is refused). Resolves with the report; never throws for a
 * failed check.
 */
export async function runPreflight(conn: Connection, opts: PreflightOptions = {}): Promise<PreflightReport> {
  const t0 = performance.now();
  const checks: CheckResult[] = [];
  let bootstrapped = false;
  const done = (): PreflightReport => ({ host: conn.host, address: conn.address, ok: checks.every((c) => c.ok), checks, bootstrapped, durationMs: Math.round(performance.now() - t0) });
  let session: SshSession | null = null;
  try {
    try {
      session = await connectSsh(conn);
    } catch (e) {
      if (!(e instanceof SshConnectError)) throw e;
      if (e.kind === 'auth' && opts.passwordFile) {
        try {
          await bootstrapKey(conn, opts.passwordFile);
          bootstrapped = true;
          session = await connectSsh(conn);
        } catch (e2) {
          if (!(e2 instanceof SshConnectError)) throw e2;
          checks.push(sshFailureResult(conn, e2, opts));
          return done();
        }
      } else {
        checks.push(sshFailureResult(conn, e, opts));
        if (e.kind === 'known_hosts_missing' || e.kind === 'host_key_unknown' || e.kind.startsWith('host_key')) {
          // the host key is the first thing checked: ssh was not attempted further
          checks.push({ check: 'ssh', ok: false, detail: 'not attempted (the host key cannot be verified)', fix: 'fix known_hosts first' });
        }
        return done();
      }
    }
    checks.push({ check: 'known_hosts', ok: true, detail: `host key of ${conn.address} matches ${conn.knownHostsFiles.join(' or ')}` });
    checks.push({ check: 'ssh', ok: true, detail: `${conn.user}@${conn.address}:${conn.port} with ${conn.privateKeyFile ?? 'the default key'}${bootstrapped ? ' (key installed with the one-time password)' : ''}` });
    const r = await session.exec(probeScript(conn.python), { timeoutMs: 20_000 });
    if (r.code === null) {
      checks.push({ check: 'ssh', ok: false, detail: `the probe did not finish: ${r.stderr}`, fix: 'check the host (load, a blocking login script)' });
      return done();
    }
    checks.push(...evaluateProbe(conn, parseProbe(r.stdout), opts));
    return done();
  } finally {
    session?.dispose();
  }
}
