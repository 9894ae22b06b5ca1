/**
 * OpenSSH known_hosts matching (pure): the keys a file lists for a host, as ssh itself would look them up
 * (plain and hashed names, [host]:port, * ? wildcards, !negation, @revoked; @cert-authority lines are not
 * host keys and are ignored). Used to verify a host key with node-ssh instead of accepting it blindly.
 */
import { createHash, createHmac } from 'node:crypto';

export interface KnownKey {
  /** key type as written (ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa, ...) */
  type: string;
  /** the raw public key blob (base64-decoded), as the server presents it */
  blob: Buffer;
  /** file:line, for messages */
  where: string;
}

export interface KnownHostsLookup {
  keys: KnownKey[];
  revoked: KnownKey[];
}

/** The name ssh looks up: `host`, or `[host]:port` for a port other than 22. */
export function lookupName(host: string, port = 22): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function globToRegExp(glob: string): RegExp {
  const re = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`, 'i');
}

function hashedMatch(pattern: string, name: string): boolean {
  // |1|base64(salt)|base64(HMAC-SHA1(salt, name))
  const parts = pattern.split('|');
  if (parts.length !== 4 || parts[1] !== '1') return false;
  const salt = Buffer.from(parts[2] ?? '', 'base64');
  const want = parts[3] ?? '';
  return createHmac('sha1', salt).update(name).digest('base64') === want;
}

/** Whether a comma-separated host pattern list matches `name` (negations win). */
export function hostPatternsMatch(patterns: string, name: string): boolean {
  if (patterns.startsWith('|')) return hashedMatch(patterns, name);
  let matched = false;
  for (const raw of patterns.split(',')) {
    if (!raw) continue;
    const neg = raw.startsWith('!');
    const p = neg ? raw.slice(1) : raw;
    const hit = /[*?]/.test(p) ? globToRegExp(p).test(name) : p.toLowerCase() === name.toLowerCase();
    if (hit && neg) return false;
    if (hit) matched = true;
  }
  return matched;
}

/** The keys `text` (one known_hosts file) lists for `name` (see lookupName). */
export function findKnownKeys(text: string, name: string, file = 'known_hosts'): KnownHostsLookup {
  const out: KnownHostsLookup = { keys: [], revoked: [] };
  text.split('\n').forEach((rawLine, i) => {
    const line = rawLine.trim();
    if (!line || line.startsWith('#')) return;
    let fields = line.split(/\s+/);
    let marker: string | null = null;
    if (fields[0]?.startsWith('@')) { marker = fields[0]; fields = fields.slice(1); }
    const [patterns, type, b64] = fields;
    if (!patterns || !type || !b64) return;
    if (marker === '@cert-authority') return;
    if (!hostPatternsMatch(patterns, name)) return;
    const key: KnownKey = { type, blob: Buffer.from(b64, 'base64'), where: `${file}:${i + 1}` };
    if (marker === '@revoked') out.revoked.push(key);
    else if (marker === null) out.keys.push(key);
  });
  return out;
}

/** ssh2 `algorithms.serverHostKey` values that can present a key of this known_hosts type. */
export function hostKeyAlgorithms(types: readonly string[]): string[] {
  const out: string[] = [];
  for (const t of types) {
    const algs = t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [t];
    for (const a of algs) if (!out.includes(a)) out.push(a);
  }
  return out;
}

export type HostKeyVerdict = { ok: true; where: string } | { ok: false; reason: 'unknown' | 'mismatch' | 'revoked' };

/** Judges a presented key blob against the lookup. */
export function verifyHostKey(lookup: KnownHostsLookup, presented: Buffer): HostKeyVerdict {
  if (lookup.revoked.some((k) => k.blob.equals(presented))) return { ok: false, reason: 'revoked' };
  const hit = lookup.keys.find((k) => k.blob.equals(presented));
  if (hit) return { ok: true, where: hit.where };
  return { ok: false, reason: lookup.keys.length === 0 ? 'unknown' : 'mismatch' };
}

/** SHA256 fingerprint as ssh-keygen -l prints it. */
export function fingerprint(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}
