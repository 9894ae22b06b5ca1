/**
 * Safe loading of one SPI document: size cap before parsing, a schema without floats/timestamps (so a gear id
 * like `5e1234…` stays a string as Psych meant it), no custom tags (`!ruby/...` fails), duplicate keys fail,
 * and a bounded walk (node count, depth) that defuses alias bombs and deep nesting.
 */
import yaml from 'js-yaml';
import type { SpiRejection } from './types.js';

/** Psych output needs only strings, sequences, mappings, booleans, integers and null. */
const { types } = yaml as unknown as { types: Record<'null' | 'bool' | 'int', yaml.Type> }; // js-yaml exports them; @types lacks it
const SPI_SCHEMA = yaml.FAILSAFE_SCHEMA.extend({ implicit: [types.null, types.bool, types.int] });

export const MAX_NODES = 10_000;
export const MAX_DEPTH = 12;
const TEMPLATE_MARKER = /\{\{|\{%|\{#/;

export type LoadResult = { ok: true; value: unknown; templateAt?: string } | { ok: false; rejection: SpiRejection };

const yamlReject = (reason: string): LoadResult => ({ ok: false, rejection: { code: 'ERR_SPI_YAML', reason } });

export function loadSpiDocument(text: string, maxBodyBytes: number): LoadResult {
  const size = Buffer.byteLength(text, 'utf8');
  if (size > maxBodyBytes) {
    return { ok: false, rejection: { code: 'ERR_SPI_TOO_LARGE', reason: `message of ${size} bytes is over the ${maxBodyBytes}-byte limit` } };
  }
  let value: unknown;
  try {
    value = yaml.load(text, { schema: SPI_SCHEMA });
  } catch (e) {
    if (e instanceof RangeError) return yamlReject('YAML nesting is too deep');
    if (e instanceof yaml.YAMLException) {
      const tag = /unknown tag !<([^>]*)>/.exec(e.reason);
      if (tag) return yamlReject(`YAML tag !<${tag[1]}> is not accepted (only plain data: no !ruby/... objects)`);
      if (/duplicated mapping key/.test(e.reason)) return yamlReject(`malformed YAML: duplicated key at line ${e.mark.line + 1}`);
      return yamlReject(`malformed YAML: ${e.reason} at line ${e.mark.line + 1}`);
    }
    return yamlReject(`malformed YAML: ${(e as Error).message}`);
  }
  // Walk the tree once: bounded work whatever the aliases, and find template markers anywhere (keys too).
  let nodes = 0;
  let templateAt: string | undefined;
  const stack: Array<[unknown, number, string]> = [[value, 0, '']];
  while (stack.length > 0) {
    const [v, depth, path] = stack.pop()!;
    if (++nodes > MAX_NODES) return yamlReject(`document expands to more than ${MAX_NODES} nodes (alias bomb?)`);
    if (depth > MAX_DEPTH) return yamlReject(`YAML nesting is deeper than ${MAX_DEPTH} levels`);
    if (typeof v === 'string') {
      if (templateAt === undefined && TEMPLATE_MARKER.test(v)) templateAt = path || '(document)';
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], depth + 1, `${path}[${i}]`]);
    } else if (typeof v === 'object' && v !== null) {
      for (const [k, child] of Object.entries(v)) {
        const name = k.startsWith(':') ? k.slice(1) : k;
        const childPath = path ? `${path}.${name}` : name;
        if (templateAt === undefined && TEMPLATE_MARKER.test(k)) templateAt = childPath;
        stack.push([child, depth + 1, childPath]);
      }
    }
  }
  return templateAt === undefined ? { ok: true, value } : { ok: true, value, templateAt };
}
