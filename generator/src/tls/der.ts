/**
 * Just enough DER reading (pure) to look at a key before OpenSSL does: whether bytes are one complete DER
 * SEQUENCE, and how much work decrypting an encrypted PKCS#8 key would cost (its key derivation parameters are
 * chosen by the sender: 2^31 PBKDF2 iterations would hold the intake for hours).
 */

export interface Tlv {
  tag: number;
  /** first content byte */
  start: number;
  /** one past the last content byte (= where the next element starts) */
  end: number;
}

/** The element at `pos` (single-byte tags, definite lengths up to 4 length bytes), or null when malformed. */
export function readTlv(b: Uint8Array, pos: number, limit: number = b.length): Tlv | null {
  if (pos + 2 > limit) return null;
  const tag = b[pos]!;
  if ((tag & 0x1f) === 0x1f) return null;
  let len = b[pos + 1]!;
  let p = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || p + n > limit) return null;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[p++]!;
  }
  if (p + len > limit) return null;
  return { tag, start: p, end: p + len };
}

/** The elements inside a constructed element, or null when they do not tile it exactly. */
export function childrenOf(b: Uint8Array, t: Tlv, max = 16): Tlv[] | null {
  const out: Tlv[] = [];
  let p = t.start;
  while (p < t.end) {
    if (out.length >= max) return null;
    const c = readTlv(b, p, t.end);
    if (!c) return null;
    out.push(c);
    p = c.end;
  }
  return out;
}

/** Whether `b` is exactly one DER SEQUENCE (tag 0x30) of at least `minBytes` bytes. */
export function isDerSequence(b: Uint8Array, minBytes = 32): boolean {
  if (b.length < minBytes) return false;
  const t = readTlv(b, 0);
  return t !== null && t.tag === 0x30 && t.end === b.length;
}

const oid = (...bytes: number[]) => Buffer.from(bytes).toString('hex');
const OID_PBES2 = oid(0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d);
const OID_PBKDF2 = oid(0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0c);
/** PKCS#5 PBES1 (1.2.840.113549.1.5.x) and PKCS#12 PBE (1.2.840.113549.1.12.1.x): params {salt, iterations}. */
const PBES1_PREFIX = oid(0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05);
const PKCS12_PBE_PREFIX = oid(0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01);

const hexOf = (b: Uint8Array, t: Tlv) => Buffer.from(b.subarray(t.start, t.end)).toString('hex');

function integer(b: Uint8Array, t: Tlv | undefined): number | null {
  if (!t || t.tag !== 0x02 || t.end - t.start < 1 || t.end - t.start > 5) return null;
  let v = 0;
  for (let i = t.start; i < t.end; i++) v = v * 256 + b[i]!;
  return v;
}

/** Whether DER bytes are an EncryptedPrivateKeyInfo (PKCS#8) by their algorithm; null when not one. */
export function encryptedPkcs8Algorithm(b: Uint8Array): { oidHex: string; params: Tlv | undefined } | null {
  const top = readTlv(b, 0);
  if (!top || top.tag !== 0x30 || top.end !== b.length) return null;
  const parts = childrenOf(b, top, 2);
  if (!parts || parts.length !== 2 || parts[0]!.tag !== 0x30 || parts[1]!.tag !== 0x04) return null;
  const alg = childrenOf(b, parts[0]!, 2);
  if (!alg || alg.length < 1 || alg[0]!.tag !== 0x06) return null;
  const oidHex = hexOf(b, alg[0]!);
  if (oidHex !== OID_PBES2 && !oidHex.startsWith(PBES1_PREFIX) && !oidHex.startsWith(PKCS12_PBE_PREFIX)) return null;
  return { oidHex, params: alg[1] };
}

/**
 * The key derivation cost of an encrypted PKCS#8 key (DER): its iteration count when the scheme is PBKDF2, PBES1
 * or PKCS#12 PBE, or a reason why it is refused (scrypt, an unknown derivation, malformed parameters).
 */
export function pkcs8KdfIterations(b: Uint8Array): { iterations: number } | { refused: string } {
  const alg = encryptedPkcs8Algorithm(b);
  if (!alg || !alg.params) return { refused: 'its encryption parameters do not parse' };
  const params = childrenOf(b, alg.params, 4);
  if (!params) return { refused: 'its encryption parameters do not parse' };
  if (alg.oidHex === OID_PBES2) {
    const kdf = params[0] && params[0].tag === 0x30 ? childrenOf(b, params[0], 2) : null;
    if (!kdf || !kdf[0] || kdf[0].tag !== 0x06) return { refused: 'its encryption parameters do not parse' };
    if (hexOf(b, kdf[0]) !== OID_PBKDF2) return { refused: 'its key is derived with something else than PBKDF2 (scrypt is not accepted)' };
    const p = kdf[1] && kdf[1].tag === 0x30 ? childrenOf(b, kdf[1], 4) : null;
    const it = integer(b, p?.[1]);
    return it === null ? { refused: 'its PBKDF2 parameters do not parse' } : { iterations: it };
  }
  const it = integer(b, params[1]);
  return it === null ? { refused: 'its encryption parameters do not parse' } : { iterations: it };
}

/**
 * Whether DER bytes have the shape of a private key, read without OpenSSL (a few element reads: linear, and cheap
 * however many hostile strings ask; a DER parse by OpenSSL costs about a millisecond, even to fail):
 * EncryptedPrivateKeyInfo; PKCS#8 PrivateKeyInfo / OneAsymmetricKey {INTEGER 0|1, SEQUENCE {OID, ...},
 * OCTET STRING, ...}; SEC1 ECPrivateKey {INTEGER 1, OCTET STRING, [0]?, [1]?}; PKCS#1 RSAPrivateKey and the
 * traditional DSA key {INTEGER 0|1, at least five more INTEGERs}. Anything of that shape counts, whether or not
 * OpenSSL would load it: a value that only looks like a key is refused or redacted all the same.
 */
export function hasPrivateKeyShape(b: Uint8Array): boolean {
  if (!isDerSequence(b)) return false;
  if (encryptedPkcs8Algorithm(b) !== null) return true;
  const c = childrenOf(b, readTlv(b, 0)!, 12);
  if (!c || c.length < 2 || c[0]!.tag !== 0x02) return false;
  const version = integer(b, c[0]);
  if ((version === 0 || version === 1) && c.length >= 3 && c[1]!.tag === 0x30 && c[2]!.tag === 0x04) {
    const alg = childrenOf(b, c[1]!, 4);
    if (alg && alg.length >= 1 && alg[0]!.tag === 0x06) return true;
  }
  if (version === 1 && c[1]!.tag === 0x04 && c.slice(2).every((x) => x.tag === 0xa0 || x.tag === 0xa1)) return true;
  return (version === 0 || version === 1) && c.length >= 6 && c.slice(0, 6).every((x) => x.tag === 0x02);
}
