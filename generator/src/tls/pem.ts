/**
 * Certificate and key checks for add_ssl (pure: node:crypto only). The outputs are re-encoded PEM, so nothing
 * but the parsed certificate chain and key ever reaches a file.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;
const KEY_BLOCK = /-----BEGIN ((?:RSA |EC |ENCRYPTED |DSA )?PRIVATE KEY)-----[\s\S]*?-----END \1-----/g;

export type TlsResult = { ok: true; cert: string; key: string } | { ok: false; field: 'ssl' | 'private_key' | 'pass_phrase'; reason: string };

/** Parses the chain (leaf first), decrypts the key if needed and checks that the leaf matches the key. */
export function checkCertAndKey(ssl: string, privateKey: string, passPhrase: string): TlsResult {
  const blocks = ssl.match(CERT_BLOCK) ?? [];
  if (blocks.length === 0) return { ok: false, field: 'ssl', reason: 'ssl is not a PEM certificate' };
  if (blocks.length > 16) return { ok: false, field: 'ssl', reason: 'ssl holds more than 16 certificates' };
  const certs: X509Certificate[] = [];
  for (const [i, b] of blocks.entries()) {
    try {
      certs.push(new X509Certificate(b));
    } catch {
      return { ok: false, field: 'ssl', reason: `ssl certificate #${i + 1} does not parse` };
    }
  }
  const keyBlocks = privateKey.match(KEY_BLOCK) ?? [];
  if (keyBlocks.length !== 1) {
    return { ok: false, field: 'private_key', reason: keyBlocks.length === 0 ? 'private_key is not a PEM private key' : 'private_key holds more than one key' };
  }
  const keyPem = keyBlocks[0] as string;
  const encrypted = keyPem.startsWith('-----BEGIN ENCRYPTED') || /Proc-Type:\s*4,ENCRYPTED/.test(keyPem);
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
  return { ok: true, cert, key: keyOut };
}

function shortCryptoError(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  // OpenSSL messages never contain key bytes, but keep them to one short line
  return msg.split('\n')[0]!.slice(0, 120);
}

/** Replaces private key blocks (complete or truncated) and pass phrases in a raw message, for logs. */
export function redactKeyMaterial(text: string): string {
  return text
    .replace(/-----BEGIN ([A-Z ]*)PRIVATE KEY-----[\s\S]*?(-----END \1PRIVATE KEY-----|$)/g, '[REDACTED PRIVATE KEY]')
    // the rest of the line and every more-indented continuation line (block scalars | or >, folded quotes)
    .replace(/^(\s*:?pass_phrase:)[^\n]*(?:\n[ \t]+[^\n]*)*/gm, '$1 [REDACTED]')
    // flow style: {..., :pass_phrase: x, ...}
    .replace(/(:?pass_phrase:)[ \t]*(?:"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^,}\n]*)/g, '$1 [REDACTED]');
}
