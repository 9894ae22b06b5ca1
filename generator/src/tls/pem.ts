/**
 * Certificate and key checks for add_ssl (pure: node:crypto only). The outputs are re-encoded PEM, so nothing
 * but the parsed certificate chain and key ever reaches a file. Every scan here is linear in its input: PEM
 * blocks are found with indexOf (no regular expression over the input), and an encrypted key's derivation cost
 * is read and bounded before OpenSSL is asked to decrypt it.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { encryptedPkcs8Algorithm, hasPrivateKeyShape, pkcs8KdfIterations } from './der.js';

/** At most this many PBKDF2 (or PBES1 / PKCS#12) iterations are run for one key: about 0.2 s of CPU here. */
export const MAX_KDF_ITERATIONS = 600_000;
export const MAX_CHAIN = 16;

const KEY_LABELS = new Set(['PRIVATE KEY', 'RSA PRIVATE KEY', 'EC PRIVATE KEY', 'ENCRYPTED PRIVATE KEY', 'DSA PRIVATE KEY']);
const CERT_LABELS = new Set(['CERTIFICATE']);

export interface PemBlock {
  label: string;
  /** offset of the BEGIN line in the scanned text */
  start: number;
  /** the whole block, BEGIN line to END line */
  text: string;
}

/**
 * The PEM blocks of `text` whose label is in `labels`, in order, at most `max` (+1, so "too many" is visible).
 * A block runs from "-----BEGIN L-----" to the first "-----END L-----" after it. Linear: when a label has no END
 * after some BEGIN, none of its later BEGINs can have one either, so each label's END is searched for at most
 * once past the last END found.
 */
export function pemBlocks(text: string, labels: ReadonlySet<string>, max: number): PemBlock[] {
  const out: PemBlock[] = [];
  const noEndAfter = new Map<string, number>(); // label → position from which no END exists
  let pos = 0;
  while (out.length <= max) {
    const begin = text.indexOf('-----BEGIN ', pos);
    if (begin < 0) break;
    const labelStart = begin + 11;
    const labelEnd = text.indexOf('-----', labelStart);
    const label = labelEnd > labelStart && labelEnd - labelStart <= 32 ? text.slice(labelStart, labelEnd) : null;
    if (label === null || !labels.has(label)) {
      pos = labelStart;
      continue;
    }
    const after = labelEnd + 5;
    const endMarker = `-----END ${label}-----`;
    const known = noEndAfter.get(label);
    const end = known !== undefined && after >= known ? -1 : text.indexOf(endMarker, after);
    if (end < 0) {
      noEndAfter.set(label, Math.min(after, known ?? after));
      pos = after;
      continue;
    }
    out.push({ label, start: begin, text: text.slice(begin, end + endMarker.length) });
    pos = end + endMarker.length;
  }
  return out;
}

/** The base64 body of a PEM block as bytes (RFC 1421 header lines such as Proc-Type are skipped). */
export function pemBody(block: string): Buffer {
  const lines = block.split('\n');
  const body = lines.slice(1, -1).filter((l) => !l.includes(':')).join('');
  return Buffer.from(body, 'base64');
}

/** `overBudget`: refused only because the TlsBudget it was given is spent. */
export type TlsResult = { ok: true; cert: string; key: string } | { ok: false; field: 'ssl' | 'private_key' | 'pass_phrase'; reason: string; overBudget?: true };

/**
 * What the add_ssl checks of one text may cost together (the listener: one STOMP message), decremented as they
 * run: certificates parsed and loaded (about 1 ms each), and key derivation iterations of encrypted keys (600,000
 * take 0.2 s). Without it, a 1 MiB message of small add_ssl documents costs seconds of CPU.
 */
export interface TlsBudget {
  certificates: number;
  kdfIterations: number;
}
/** The budget of one STOMP message (which the broker fills with one document): two full chains, one costly key. */
export const MESSAGE_TLS_BUDGET: Readonly<TlsBudget> = { certificates: 2 * MAX_CHAIN, kdfIterations: MAX_KDF_ITERATIONS };
const budgetReason = (what: string) =>
  `this message has spent its budget of ${what} (${MESSAGE_TLS_BUDGET.certificates} certificates and ${MESSAGE_TLS_BUDGET.kdfIterations} key derivation iterations per message; the broker sends one add_ssl per message)`;

/**
 * Parses the chain (leaf first), decrypts the key if needed and checks that the leaf matches the key and that nginx
 * can serve them. With a budget, refuses (overBudget) what the budget no longer covers, and charges what it runs.
 */
export function checkCertAndKey(ssl: string, privateKey: string, passPhrase: string, budget?: TlsBudget): TlsResult {
  const blocks = pemBlocks(ssl, CERT_LABELS, MAX_CHAIN);
  if (blocks.length === 0) return { ok: false, field: 'ssl', reason: 'ssl is not a PEM certificate' };
  if (blocks.length > MAX_CHAIN) return { ok: false, field: 'ssl', reason: `ssl holds more than ${MAX_CHAIN} certificates` };
  if (budget) {
    if (blocks.length > budget.certificates) return { ok: false, field: 'ssl', reason: budgetReason('certificate checks'), overBudget: true };
    budget.certificates -= blocks.length;
  }
  const certs: X509Certificate[] = [];
  for (const [i, b] of blocks.entries()) {
    try {
      certs.push(new X509Certificate(b.text));
    } catch {
      return { ok: false, field: 'ssl', reason: `ssl certificate #${i + 1} does not parse` };
    }
  }
  const keyBlocks = pemBlocks(privateKey, KEY_LABELS, 1);
  if (keyBlocks.length !== 1) {
    return { ok: false, field: 'private_key', reason: keyBlocks.length === 0 ? 'private_key is not a PEM private key' : 'private_key holds more than one key' };
  }
  const keyPem = keyBlocks[0]!.text;
  // Whatever the label says: bytes that are an encrypted PKCS#8 key have their derivation cost checked first.
  const body = pemBody(keyPem);
  const pkcs8Encrypted = encryptedPkcs8Algorithm(body) !== null;
  if (pkcs8Encrypted) {
    const kdf = pkcs8KdfIterations(body);
    if ('refused' in kdf) return { ok: false, field: 'private_key', reason: `private_key is encrypted, but ${kdf.refused}` };
    if (kdf.iterations > MAX_KDF_ITERATIONS) {
      return { ok: false, field: 'private_key', reason: `private_key is encrypted with ${kdf.iterations} key derivation iterations, more than the ${MAX_KDF_ITERATIONS} accepted` };
    }
    if (budget) {
      if (kdf.iterations > budget.kdfIterations) return { ok: false, field: 'private_key', reason: budgetReason('key derivation iterations'), overBudget: true };
      budget.kdfIterations -= kdf.iterations;
    }
  }
  const encrypted = pkcs8Encrypted || keyPem.startsWith('-----BEGIN ENCRYPTED') || /Proc-Type:[ \t]*4,ENCRYPTED/.test(keyPem);
  if (encrypted && passPhrase === '') {
    return { ok: false, field: 'pass_phrase', reason: 'private_key is encrypted and pass_phrase is empty' };
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(encrypted ? { key: keyPem, format: 'pem', passphrase: passPhrase } : { key: keyPem, format: 'pem' });
  } catch (e) {
    if (encrypted) return { ok: false, field: 'pass_phrase', reason: 'pass_phrase does not decrypt private_key' };
    return { ok: false, field: 'private_key', reason: `private_key does not parse (${shortCryptoError(e)})` };
  }
  const leaf = certs[0] as X509Certificate;
  let match = false;
  try {
    match = leaf.checkPrivateKey(key);
  } catch {
    match = false;
  }
  if (!match) return { ok: false, field: 'private_key', reason: 'private_key does not match the ssl certificate' };
  const cert = certs.map((c) => c.toString().trim() + '\n').join('');
  const keyOut = key.export({ type: 'pkcs8', format: 'pem' }) as string;
  const unservable = servingProblem(cert, keyOut, key);
  if (unservable) return { ok: false, field: 'ssl', reason: unservable };
  return { ok: true, cert, key: keyOut };
}

/** RSA keys above this make every TLS handshake with the alias expensive for the proxies (15360 bits: 176 ms of CPU). */
export const MAX_RSA_BITS = 4096;
/** What nginx on the proxies loads (Debian's OpenSSL 3 defaults): weaker material makes `nginx -t` fail there. */
const SERVER_CIPHERS = 'DEFAULT:@SECLEVEL=2';

/**
 * Why nginx could not serve this chain and key, or null. A chain nginx refuses to load fails `nginx -t` on every
 * proxy, and with it every later run that includes the app: OpenSSL is asked here, as nginx will (keys under 2048
 * bits or on weak curves, SHA-1/MD5 signatures, keys that cannot sign such as X25519, weak chain certificates).
 */
function servingProblem(cert: string, key: string, keyObject: KeyObject): string | null {
  const bits = keyObject.asymmetricKeyDetails?.modulusLength;
  if ((keyObject.asymmetricKeyType === 'rsa' || keyObject.asymmetricKeyType === 'rsa-pss') && bits !== undefined && bits > MAX_RSA_BITS) {
    return `private_key is a ${bits}-bit RSA key, more than the ${MAX_RSA_BITS} bits accepted (each TLS handshake would cost the proxies too much CPU)`;
  }
  try {
    createSecureContext({ cert, key, ciphers: SERVER_CIPHERS });
  } catch (e) {
    const why = shortCryptoError(e).replace(/^error:[0-9A-F]+:[^:]*::?/, '');
    return `nginx would refuse this certificate and key (${why}; OpenSSL security level 2: RSA and DSA keys of 2048 bits or more, no SHA-1 or MD5 signatures, a key that can sign)`;
  }
  return null;
}

function shortCryptoError(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  // OpenSSL messages never contain key bytes, but keep them to one short line
  return msg.split('\n')[0]!.slice(0, 120);
}

/**
 * Why the leaf certificate of a chain (as checkCertAndKey returns it) is not valid for `alias` at `now`, or null:
 * expired, not yet valid, or its names (subjectAltName DNS names; the subject CN when there are none; wildcards
 * cover one label) do not cover the alias.
 */
export function certProblem(chainPem: string, alias: string, now: number): string | null {
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(pemBlocks(chainPem, CERT_LABELS, 1)[0]?.text ?? '');
  } catch {
    return 'the certificate does not parse';
  }
  const notAfter = Date.parse(leaf.validTo);
  const notBefore = Date.parse(leaf.validFrom);
  // OpenSSL prints an invalid time (month 13, say) as "Bad time value": no date to compare with, or to print
  if (Number.isNaN(notAfter) || Number.isNaN(notBefore)) return 'the certificate\'s validity dates do not parse';
  if (!(now <= notAfter)) return `the certificate expired on ${new Date(notAfter).toISOString()}`;
  if (!(now >= notBefore)) return `the certificate is not valid before ${new Date(notBefore).toISOString()}`;
  if (leaf.checkHost(alias) === undefined) {
    const names = leaf.subjectAltName ?? leaf.subject.split('\n').find((l) => l.startsWith('CN=')) ?? '(no names)';
    return `the certificate's names (${names.length > 120 ? names.slice(0, 120) + '…' : names}) do not cover ${JSON.stringify(alias)}`;
  }
  return null;
}

const B64 = /^[A-Za-z0-9+/_-]+={0,2}$/;
const HEX = /^[0-9A-Fa-f]+$/;

/** Bytes decoded from `s` when, whitespace (and hex ':' separators) aside, it is one base64 or hex blob. */
function decodeBlob(s: string): Buffer | null {
  const compact = s.replace(/\s+/g, '');
  if (compact.length < 40) return null;
  const hex = compact.includes(':') ? compact.replace(/:/g, '') : compact;
  if (HEX.test(hex) && hex.length % 2 === 0) return Buffer.from(hex, 'hex');
  if (B64.test(compact)) return Buffer.from(compact, 'base64'); // node's base64 decoder takes the url alphabet too
  return null;
}

/**
 * Whether a value is private key material, whatever its encoding: PEM armor of a private or encrypted key in
 * any letter case (even without its END line), or, whitespace aside, base64 / base64url / hex of a DER private
 * key (by its shape: tls/der.ts). Linear in `s` (one lowercase copy, one compaction, one read of the DER's shape).
 */
export function isPrivateKeyMaterial(s: string | Uint8Array): boolean {
  if (typeof s !== 'string') return hasPrivateKeyShape(s) || isPrivateKeyMaterial(Buffer.from(s).toString('latin1'));
  const lower = s.toLowerCase();
  const armor = lower.indexOf('-----begin');
  if (armor >= 0) {
    const line = lower.slice(armor, armor + 80);
    if (line.includes('private') || line.includes('encrypted') || line.includes(' key')) return true;
  }
  const blob = decodeBlob(s);
  return blob !== null && hasPrivateKeyShape(blob);
}
