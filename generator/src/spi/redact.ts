/**
 * What the rejects log keeps of a rejected document (pure). Key material never reaches it, whatever its
 * encoding (PEM in any letter case, base64 or hex DER, `!binary`), tag or quoting, because redaction works on
 * fields and values, never on armor found by a pattern:
 *
 * - A document that parses is logged as its parsed tree, re-printed: values of secret fields (`private_key`,
 *   `pass_phrase`, any name with "private", "pass" or "secret") are replaced whole, whatever their type; `ssl`
 *   keeps only its certificates; any other string that is private key material (tls/pem.ts) is replaced; a value
 *   that passes its field's rule is kept verbatim (it is what a vars file could hold), any other value only as
 *   a reason echoes it (64 characters at most, encoded-looking runs masked).
 * - A document that does not parse (malformed YAML, unknown tag such as `!binary`, alias bomb, over the size cap)
 *   cannot be split into fields reliably, so only its skeleton is kept: top-level lines of known SPI fields whose
 *   value passes that field's rule, list items of `protocols`/`types`, mapping entries, and certificate blocks
 *   that parse as certificates. Every other line (block and quoted scalars, flow collections, tags, anchors,
 *   comments, whatever follows a secret field) is elided.
 *
 * Both are linear in the document and bounded to MAX_LOGGED characters.
 */
import { X509Certificate } from 'node:crypto';
import { echoString, echoText, maskEncodedRuns, passesFieldRule } from './fields.js';
import { loadSpiDocument } from './load.js';
import { isPrivateKeyMaterial, pemBlocks, pemBody } from '../tls/pem.js';
import type { SpiEvent } from './types.js';

export const MAX_LOGGED = 65536;
/** What the log keeps of a parsed document is at most twice its text, plus this (redaction markers are longer than `*k`). */
const LOGGED_SLACK = 256;
/** The most the log keeps of a document of `textLength` characters. */
export const loggedMax = (textLength: number): number => Math.min(MAX_LOGGED, 2 * textLength + LOGGED_SLACK);
const REDACTED = '[REDACTED]';
const REDACTED_KEY = '[REDACTED PRIVATE KEY]';
const CERT = new Set(['CERTIFICATE']);

/** The field name of a key: Psych's colon stripped, lowercase. */
const fieldOf = (k: string): string => (k.length > 64 ? '' : (k.startsWith(':') ? k.slice(1) : k).trim().toLowerCase());

export function isSecretField(field: string): boolean {
  return field.includes('private') || field.includes('pass') || field.includes('secret') || field === 'key' || field.endsWith('_key');
}

const PLAIN = /^[A-Za-z0-9:_./@+-]{1,1024}$/;
const printable = (s: string): string => (PLAIN.test(s) ? s : JSON.stringify(s));

/** A key as the log prints it. */
function keyText(k: string): string {
  if (/^:?[A-Za-z0-9_]{1,40}$/.test(k)) return k;
  return k.length >= 40 && isPrivateKeyMaterial(k) ? JSON.stringify(REDACTED_KEY) : echoString(k);
}

const nonSpace = (s: string): number => {
  let n = 0;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 32) n++;
  return n;
};

/** The certificate blocks of `s` the log may keep: re-encoded when they parse, as sent when too small to hide a key in. */
function keptCertificates(s: string): Array<{ start: number; end: number; lines: string[]; chars: number }> {
  const out = [];
  for (const b of pemBlocks(s, CERT, 16).slice(0, 16)) {
    let text: string | null = null;
    try {
      // a block inside a YAML block scalar is indented: OpenSSL reads it without the indentation
      text = new X509Certificate(b.text.replace(/\n[ \t]+/g, '\n')).toString().trim();
    } catch {
      // a stub or a test fixture; larger blocks that do not parse are not kept
      if (pemBody(b.text).length < 32 && !isPrivateKeyMaterial(b.text)) text = b.text;
    }
    if (text !== null) out.push({ start: b.start, end: b.start + b.text.length, lines: text.split('\n').map((l) => l.trim()), chars: nonSpace(b.text) });
  }
  return out;
}

/** An `ssl` value: its certificates, everything else counted, not kept. */
function sslLines(s: string): string[] {
  const certs = keptCertificates(s);
  const out = certs.flatMap((c) => c.lines);
  const other = nonSpace(s) - certs.reduce((n, c) => n + c.chars, 0);
  if (other > 0) out.push(`[${other} other characters redacted]`);
  return out;
}

/**
 * The string values of a document's secret fields (at any depth). Another field holding the same text (a YAML
 * alias of the pass phrase, say) is redacted as well; `long` are the ones looked for inside other values.
 */
export interface Secrets {
  all: Set<string>;
  long: string[];
}

export function collectSecrets(value: unknown): Secrets {
  const out: Secrets = { all: new Set(), long: [] };
  const stack: Array<[unknown, boolean]> = [[value, false]];
  let nodes = 0;
  while (stack.length > 0 && nodes++ < 100_000) {
    const [v, secret] = stack.pop()!;
    if (typeof v === 'string') {
      if (secret && v !== '') {
        out.all.add(v);
        if (v.length >= 6 && out.long.length < 8) out.long.push(v);
      }
    } else if (Array.isArray(v)) {
      for (const x of v) stack.push([x, secret]);
    } else if (typeof v === 'object' && v !== null) {
      for (const [k, x] of Object.entries(v)) stack.push([x, secret || isSecretField(fieldOf(k))]);
    }
  }
  return out;
}

const NO_SECRETS: Secrets = { all: new Set(), long: [] };
const holdsSecret = (s: string, secrets: Secrets): boolean => secrets.all.has(s) || secrets.long.some((x) => s.includes(x));

/** A reason with every echo of a secret value replaced (an invalid field holding the pass phrase through an alias). */
export function scrubReason(reason: string, secrets: Secrets): string {
  let out = reason;
  for (const s of secrets.all) {
    if (s.length < 3) continue;
    // the echo exactly as a reason printed it first (a masked run shifts what the first 64 characters show)
    for (const echoed of [JSON.stringify(echoText(s)).slice(1, -1), JSON.stringify(maskEncodedRuns(s.slice(0, 64))).slice(1, -1)]) {
      if (out.includes(echoed)) out = out.split(echoed).join(REDACTED);
    }
  }
  return out;
}

/** A string value under `field`, as one printed scalar. */
function scalarText(field: string, s: string, secrets: Secrets): string {
  if (holdsSecret(s, secrets)) return REDACTED;
  if (s.length >= 40 && isPrivateKeyMaterial(s)) return REDACTED_KEY;
  if (s.length <= 1024 && passesFieldRule(field, s)) return printable(s);
  return s.length === 0 ? "''" : echoString(s);
}

class Printer {
  readonly lines: string[] = [];
  private size = 0;
  full = false;
  constructor(private readonly max = MAX_LOGGED) {}
  line(indent: number, text: string): void {
    if (this.full) return;
    this.size += indent + text.length + 1;
    if (this.size > this.max) {
      this.full = true;
      this.lines.push('…[truncated]');
      return;
    }
    this.lines.push(' '.repeat(indent) + text);
  }
}

/**
 * A list of at least 16 integers 0-255 is bytes: a DER key, or a bare 32-byte EC or Ed25519 private key, written
 * as numbers (no SPI field is such a list). It is never printed.
 */
const isByteList = (v: unknown[]): boolean =>
  v.length >= 16 && v.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= 255);

function printValue(p: Printer, v: unknown, field: string, indent: number, prefix: string, secrets: Secrets): void {
  if (p.full) return;
  const lead = prefix ? prefix + ' ' : '';
  if (isSecretField(field)) return p.line(indent, `${lead}${field === 'private_key' ? REDACTED_KEY : REDACTED}`);
  if (typeof v === 'string') {
    if (field === 'ssl') {
      const lines = sslLines(v);
      p.line(indent, `${lead}|`);
      for (const l of lines) p.line(indent + 2, l);
      return;
    }
    return p.line(indent, lead + scalarText(field, v, secrets));
  }
  if (v === null || typeof v === 'number' || typeof v === 'boolean') return p.line(indent, lead + (v === null ? '~' : String(v)));
  if (v instanceof Uint8Array) return p.line(indent, `${lead}[${v.length} bytes of binary data redacted]`);
  if (Array.isArray(v)) {
    if (v.length === 0) return p.line(indent, `${lead}[]`);
    if (isByteList(v)) return p.line(indent, `${lead}[${v.length} byte values redacted]`);
    if (prefix) p.line(indent, prefix);
    for (const item of v) printValue(p, item, field, indent, '-', secrets);
    return;
  }
  if (typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>);
    if (entries.length === 0) return p.line(indent, `${lead}{}`);
    if (prefix) p.line(indent, prefix);
    for (const [k, child] of entries) printValue(p, child, fieldOf(k), prefix ? indent + 2 : indent, `${keyText(k)}:`, secrets);
    return;
  }
  p.line(indent, `${lead}(${typeof v})`);
}

/**
 * A parsed document (a value loadSpiDocument accepted: bounded nodes and bytes) as the rejects log keeps it, at
 * most `max` characters. Callers bound it by the document's own size: aliases let a 1 KB document print as 64 KB,
 * and a message of a thousand such documents would write 60 MB to the log (and spend seconds printing it).
 */
export function redactDocument(value: unknown, secrets: Secrets = collectSecrets(value), max = MAX_LOGGED): string {
  const p = new Printer(max);
  printValue(p, value, '', 0, '', secrets);
  return p.lines.join('\n') + '\n';
}

// --- documents that do not parse: the skeleton ---------------------------------------------------------------

const KEY_LINE = /^(- )?(["']?)(:?)([A-Za-z0-9_]{1,40})\2:(?: |$)/;
const KNOWN = new Set(['action', 'app_name', 'namespace', 'scalable', 'ha', 'gear_id', 'public_port_name', 'public_address',
  'public_port', 'protocols', 'types', 'mappings', 'deprecated', 'alias', 'ssl', 'private_key', 'pass_phrase']);

/** Index just past the closing quote of a scalar opened at `from` (a quote character), or -1 when unclosed. */
function closingQuote(s: string, from: number): number {
  const q = s[from];
  for (let i = from + 1; i < s.length; i++) {
    if (q === '"' && s[i] === '\\') { i++; continue; }
    if (s[i] === q) {
      if (q === "'" && s[i + 1] === "'") { i++; continue; }
      return i + 1;
    }
  }
  return -1;
}

/** The text of a one-line scalar (plain or quoted), or null when it is anything else (block, flow, tag, anchor...). */
function oneLineScalar(v: string): string | null {
  if (v === '') return '';
  const c = v[0]!;
  if (c === '"' || c === "'") {
    const end = closingQuote(v, 0);
    if (end < 0 || v.slice(end).trim() !== '') return null;
    const inner = v.slice(1, end - 1);
    if (c === "'") return inner.replace(/''/g, "'");
    return inner.includes('\\') ? null : inner;
  }
  if ('|>&*!%@`[]{},#?'.includes(c)) return null;
  const comment = v.indexOf(' #');
  return (comment >= 0 ? v.slice(0, comment) : v).trim();
}

/** Skeleton of a document that did not parse (see the module comment). */
export function redactUnparsed(text: string): string {
  const src = text.length > MAX_LOGGED ? text.slice(0, MAX_LOGGED) : text;
  const out: string[] = [`# not parsed (${Buffer.byteLength(text, 'utf8')} bytes): only known fields with valid values are kept`];
  let lastKey = '';
  /** lines being skipped: after a secret field, inside a block scalar, inside an unclosed quoted scalar */
  let skip: 'secret' | 'block' | '"' | "'" | null = null;
  const elide = (indent: number) => {
    if (!out[out.length - 1]!.endsWith('…')) out.push(' '.repeat(Math.min(indent, 8)) + '…');
  };
  const certs = keptCertificates(src);
  let cert = 0;
  let pos = 0;
  while (pos <= src.length) {
    let eol = src.indexOf('\n', pos);
    if (eol < 0) eol = src.length;
    const line = src.slice(pos, src[eol - 1] === '\r' ? eol - 1 : eol);
    const lineStart = pos;
    pos = eol + 1;
    // certificates are kept wherever they are (and whatever skipping is going on around them)
    while (cert < certs.length && certs[cert]!.end <= lineStart) cert++;
    const c = certs[cert];
    if (c && c.start < eol + 1 && c.end > lineStart) {
      if (c.start >= lineStart) out.push(...c.lines.map((l) => '  ' + l));
      continue;
    }
    let indent = 0;
    while (line.charCodeAt(indent) === 32) indent++;
    const body = line.slice(indent);
    if (skip === '"' || skip === "'") {
      // the line that closes the quote is still part of the scalar
      const q = skip;
      const probe = q + body;
      if (closingQuote(probe, 0) >= 0) skip = null;
      elide(indent);
      continue;
    }
    if (body === '') continue;
    const topLevel = indent === 0 && !body.startsWith('- ') && body !== '-';
    if (skip !== null) {
      if (!(topLevel && KEY_LINE.test(body)) && body !== '---' && !body.startsWith('--- ')) {
        elide(indent);
        continue;
      }
      skip = null;
    }
    if (body === '---' || body.startsWith('--- ') || body === '...') {
      out.push(body.startsWith('---') ? '---' : '...');
      lastKey = '';
      continue;
    }
    const m = KEY_LINE.exec(body);
    const field = m ? m[4]!.toLowerCase() : '';
    const inMappings = m !== null && lastKey === 'mappings' && (field === 'frontend' || field === 'backend') && (indent === 0 || indent === 2);
    if (m && ((indent === 0 && !m[1] && KNOWN.has(field)) || inMappings)) {
      if (indent === 0 && !m[1]) lastKey = field;
      const label = `${' '.repeat(indent)}${m[1] ?? ''}${m[2]}${m[3]}${m[4]}${m[2]}:`;
      const value = body.slice(m[0].length).trim();
      if (isSecretField(field)) {
        out.push(`${label} ${field === 'private_key' ? REDACTED_KEY : REDACTED}`);
        skip = value.startsWith('"') && closingQuote(value, 0) < 0 ? '"' : value.startsWith("'") && closingQuote(value, 0) < 0 ? "'" : 'secret';
        continue;
      }
      if (value.startsWith('|') || value.startsWith('>')) {
        out.push(`${label} [block scalar not kept]`);
        skip = 'block';
        continue;
      }
      if ((value.startsWith('"') || value.startsWith("'")) && closingQuote(value, 0) < 0) {
        out.push(`${label} […]`);
        skip = value[0] as '"' | "'";
        continue;
      }
      const scalar = oneLineScalar(value);
      const keep = scalar !== null && (scalar === '' || value === '[]' ||
        (scalar.length <= 1024 && passesFieldRule(field, scalar) && !(scalar.length >= 40 && isPrivateKeyMaterial(scalar))));
      out.push(value === '' ? label : `${label} ${keep ? value : '[…]'}`);
      continue;
    }
    if (indent === 0 && body.startsWith('- ') && (lastKey === 'protocols' || lastKey === 'types')) {
      const item = oneLineScalar(body.slice(2).trim());
      out.push(`- ${item !== null && passesFieldRule(lastKey, item) ? item : '[…]'}`);
      continue;
    }
    elide(indent);
  }
  return out.join('\n') + '\n';
}

/**
 * What the log keeps of a document: its redacted tree when it parses within the limits of loadSpiDocument, else
 * its skeleton. `maxBodyBytes` bounds the parse (a larger text is not parsed at all).
 */
export function redactKeyMaterial(text: string, maxBodyBytes = 1048576): string {
  const loaded = loadSpiDocument(text, maxBodyBytes);
  return loaded.ok ? redactDocument(loaded.value, collectSecrets(loaded.value), loggedMax(text.length)) : redactUnparsed(text);
}

/** A validated event as the rejects log keeps it (a rejection found when applying it): the key never, the chain summarized. */
export function redactEvent(e: SpiEvent): string {
  const doc: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) {
    if (k === 'key') continue;
    if (k === 'cert') {
      const certs = pemBlocks(v as string, CERT, 16);
      let leaf = '';
      try {
        const c = new X509Certificate(certs[0]?.text ?? '');
        leaf = `, leaf ${c.subject.replace(/\n/g, ', ')} valid ${c.validFrom} to ${c.validTo}`;
      } catch {
        // summary only
      }
      doc[':ssl'] = `[certificate chain: ${certs.length} certificate(s)${leaf}]`;
      doc[':private_key'] = REDACTED_KEY;
      continue;
    }
    doc[`:${k}`] = k === 'action' ? `:${String(v)}` : v;
  }
  const p = new Printer();
  for (const [k, v] of Object.entries(doc)) {
    if (k === ':ssl' || k === ':private_key') p.line(0, `${k}: ${String(v)}`);
    else printValue(p, v, fieldOf(k), 0, `${k}:`, NO_SECRETS);
  }
  return p.lines.join('\n') + '\n';
}
