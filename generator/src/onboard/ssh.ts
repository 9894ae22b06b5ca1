/**
 * SSH sessions with node-ssh, host key verified against the controller's known_hosts (never accepted
 * blindly), commands bounded by a timeout (node-ssh has none and never rejects on a non-zero exit).
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NodeSSH } from 'node-ssh';
import { RproxyError } from '../errors.js';
import type { Connection } from './connection.js';
import { findKnownKeys, hostKeyAlgorithms, lookupName, verifyHostKey, fingerprint, type KnownHostsLookup, type HostKeyVerdict } from './knownhosts.js';

export interface ExecResult { code: number | null; stdout: string; stderr: string }

export interface SshSession {
  exec(command: string, opts?: { timeoutMs?: number; stdin?: string }): Promise<ExecResult>;
  dispose(): void;
}

export type SshFailureKind = 'known_hosts_missing' | 'host_key_unknown' | 'host_key_mismatch' | 'host_key_revoked' | 'unreachable' | 'auth' | 'key_file' | 'other';

/** SSH to a host failed (code ERR_SSH_CONNECT); `kind` says what to fix (preflight.ts words it for the operator). */
export class SshConnectError extends RproxyError {
  override readonly name = 'SshConnectError';
  constructor(readonly kind: SshFailureKind, message: string, readonly detail: Record<string, unknown> = {}) {
    super('ERR_SSH_CONNECT', message);
  }
}

export interface KnownHostsReport { files: Array<{ file: string; exists: boolean }>; lookup: KnownHostsLookup; name: string }

/** Reads the known_hosts files and collects the keys listed for the connection's address (and port). */
export async function knownHostsFor(conn: Connection): Promise<KnownHostsReport> {
  const name = lookupName(conn.address, conn.port);
  const lookup: KnownHostsLookup = { keys: [], revoked: [] };
  const files: Array<{ file: string; exists: boolean }> = [];
  for (const file of conn.knownHostsFiles) {
    let text: string;
    try { text = await fs.readFile(file, 'utf8'); } catch { files.push({ file, exists: false }); continue; }
    files.push({ file, exists: true });
    const l = findKnownKeys(text, name, file);
    lookup.keys.push(...l.keys);
    lookup.revoked.push(...l.revoked);
  }
  return { files, lookup, name };
}

async function defaultIdentity(): Promise<string | null> {
  for (const n of ['id_ed25519', 'id_ecdsa', 'id_rsa']) {
    const f = path.join(os.homedir(), '.ssh', n);
    try { await fs.access(f); return f; } catch { /* next */ }
  }
  return null;
}

export interface ConnectOptions {
  /** use this password instead of the key (one-time bootstrap) */
  password?: string;
  readyTimeoutMs?: number;
}

/** What was known when the SSH handshake failed. */
export interface HandshakeFailure {
  conn: Pick<Connection, 'user' | 'address' | 'port'>;
  /** the known_hosts lookup name ([address]:port) and where its keys were listed */
  name: string;
  knownWhere: string[];
  /** the host key check's verdict, when the server got that far, and the key it presented */
  verdict: HostKeyVerdict | null;
  presented: Buffer | null;
  password: boolean;
  keyFile: string | null;
}

/** Pure: the SshConnectError (kind and operator message) for a failed node-ssh connect. */
export function sshFailure(e: Error & { code?: string; level?: string }, f: HandshakeFailure): SshConnectError {
  const { conn, verdict: v } = f;
  if (v && !v.ok) {
    const fp = f.presented ? fingerprint(f.presented) : '?';
    const kind = v.reason === 'revoked' ? 'host_key_revoked' : v.reason === 'mismatch' ? 'host_key_mismatch' : 'host_key_unknown';
    return new SshConnectError(kind, `the host key of ${f.name} (${fp}) ${v.reason === 'revoked' ? 'is revoked in' : 'does not match'} known_hosts (${f.knownWhere.join(', ')})`, { fingerprint: fp, name: f.name });
  }
  if (e.level === 'client-authentication') {
    return new SshConnectError('auth', `${conn.user}@${conn.address} refused ${f.password ? 'the password' : `the key ${f.keyFile}`}`, { keyFile: f.keyFile });
  }
  if (e.code && /ECONNREFUSED|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ECONNRESET|ENOTFOUND|EAI_AGAIN/.test(e.code) || /Timed out while waiting for handshake/.test(e.message)) {
    return new SshConnectError('unreachable', `${conn.address}:${conn.port}: ${e.code ?? e.message}`, { code: e.code });
  }
  return new SshConnectError('other', e.message);
}

/** Opens a session; throws SshConnectError with a kind the preflight turns into an operator message. */
export async function connectSsh(conn: Connection, opts: ConnectOptions = {}): Promise<SshSession> {
  const kh = await knownHostsFor(conn);
  if (!kh.files.some((f) => f.exists)) {
    throw new SshConnectError('known_hosts_missing', `no known_hosts file exists (${conn.knownHostsFiles.join(', ')})`, { files: conn.knownHostsFiles });
  }
  if (kh.lookup.keys.length === 0) {
    throw new SshConnectError('host_key_unknown', `no host key for ${kh.name} in ${kh.files.filter((f) => f.exists).map((f) => f.file).join(', ')}`, { name: kh.name });
  }
  let privateKey: string | undefined;
  const keyFile = conn.privateKeyFile ?? (opts.password ? null : await defaultIdentity());
  if (!opts.password) {
    if (!keyFile) throw new SshConnectError('key_file', 'no private key: set ansible_ssh_private_key_file or create ~/.ssh/id_ed25519');
    try { privateKey = await fs.readFile(keyFile, 'utf8'); } catch (e) {
      throw new SshConnectError('key_file', `cannot read the private key ${keyFile}: ${(e as Error).message}`, { keyFile });
    }
  }
  let verdict: HostKeyVerdict | null = null;
  let presented: Buffer | null = null;
  const ssh = new NodeSSH();
  try {
    await ssh.connect({
      host: conn.address,
      port: conn.port,
      username: conn.user,
      ...(opts.password ? { password: opts.password, tryKeyboard: false } : { privateKey }),
      readyTimeout: opts.readyTimeoutMs ?? 10_000,
      algorithms: { serverHostKey: hostKeyAlgorithms(kh.lookup.keys.map((k) => k.type)) as never },
      hostVerifier: ((key: Buffer) => {
        presented = key;
        verdict = verifyHostKey(kh.lookup, key);
        return verdict.ok;
      }) as never,
    });
  } catch (e) {
    ssh.dispose();
    throw sshFailure(e as Error, { conn, name: kh.name, knownWhere: kh.lookup.keys.map((k) => k.where), verdict, presented, password: Boolean(opts.password), keyFile });
  }
  return {
    exec: async (command, o = {}) => {
      const timeoutMs = o.timeoutMs ?? 30_000;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<ExecResult>((resolve) => {
        timer = setTimeout(() => resolve({ code: null, stdout: '', stderr: `timed out after ${timeoutMs} ms` }), timeoutMs);
      });
      try {
        const r = await Promise.race([
          ssh.execCommand(command, o.stdin !== undefined ? { stdin: o.stdin } : {}).then((x) => ({ code: x.code, stdout: x.stdout, stderr: x.stderr })),
          timeout,
        ]);
        return r;
      } finally {
        if (timer) clearTimeout(timer);
      }
    },
    dispose: () => ssh.dispose(),
  };
}

/** POSIX single-quote a word for a remote shell. */
export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
