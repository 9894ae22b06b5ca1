/**
 * Safe loading of one SPI document: size cap before parsing, a schema without floats/timestamps (so a gear id
 * like `5e1234…` stays a string as Psych meant it), no custom tags (`!ruby/...` fails), duplicate keys fail,
 * and a bounded walk (node count, depth, and bytes of strings read) that defuses alias bombs and deep nesting.
 */
import yaml from 'js-yaml';
import { echoText } from './fields.js';
import type { SpiRejection } from './types.js';

/** Psych output needs only strings, sequences, mappings, booleans, integers and null. */
const { types } = yaml as unknown as { types: Record<'null' | 'bool' | 'int', yaml.Type> }; // js-yaml exports them; @types lacks it
const SPI_SCHEMA = yaml.FAILSAFE_SCHEMA.extend({ implicit: [types.null, types.bool, types.int] });

export const MAX_NODES = 10_000;
export const MAX_DEPTH = 12;
/** Nodes js-yaml may build (keys and values, aliases once): the walk below then bounds what aliases expand to. */
export const MAX_PARSED_NODES = 2 * MAX_NODES;
class TooManyNodes extends Error {}
class TooManyBytes extends Error {}
/**
 * Bytes of strings (keys and values) the walk may read, as a multiple of the document's own size: aliases let a
 * small document name one large string thousands of times, and every later reader would pay for each mention.
 */
export const MAX_EXPANSION = 2;
const TEMPLATE_MARKER = /\{\{|\{%|\{#/;
/** Text from the input inside a reason: bounded, encoded-looking runs masked, no control characters. */
// eslint-disable-next-line no-control-regex
const inline = (text: string, max = 64): string => echoText(text, max).replace(/[\x00-\x1f\x7f]/g, '?');
/** A key as a path segment of a reason. */
const segment = (name: string): string => inline(name, 40);

export type LoadResult = { ok: true; value: unknown; templateAt?: string } | { ok: false; rejection: SpiRejection };

const yamlReject = (reason: string): LoadResult => ({ ok: false, rejection: { code: 'ERR_SPI_YAML', reason } });

export function loadSpiDocument(text: string, maxBodyBytes: number): LoadResult {
  const size = Buffer.byteLength(text, 'utf8');
  if (size > maxBodyBytes) {
    return { ok: false, rejection: { code: 'ERR_SPI_TOO_LARGE', reason: `message of ${size} bytes is over the ${maxBodyBytes}-byte limit` } };
  }
  let value: unknown;
  const maxBytes = MAX_EXPANSION * Math.max(text.length, 65536);
  const tooMuch = () => yamlReject(`document expands to more than ${maxBytes} bytes of strings through aliases (alias bomb?)`);
  // js-yaml stops as soon as the document has too many nodes (keys count too) or nests too deep, so a 1 MiB
  // list of a million items costs what its first 20,000 cost. Sequences are measured as js-yaml closes them
  // (aliases included), before it can use one as a key: it joins a sequence key into one string, so `? [*big, 1]`,
  // `? [*big, 2]`… would build (and hash, and compare) a copy of a large anchored string per key.
  let parsed = 0;
  let seqBytes = 0;
  const listener = (event: string, state: { result: unknown }): void => {
    if (event === 'open' && ++parsed > MAX_PARSED_NODES) throw new TooManyNodes();
    if (event === 'close' && Array.isArray(state.result)) {
      for (const x of state.result) if ((seqBytes += typeof x === 'string' ? x.length + 1 : 1) > maxBytes) throw new TooManyBytes();
    }
  };
  try {
    value = yaml.load(text, { schema: SPI_SCHEMA, maxDepth: MAX_DEPTH + 2, listener } as yaml.LoadOptions);
  } catch (e) {
    if (e instanceof TooManyNodes) return yamlReject(`document has more than ${MAX_PARSED_NODES} YAML nodes`);
    if (e instanceof TooManyBytes) return tooMuch();
    if (e instanceof RangeError) return yamlReject('YAML nesting is too deep');
    if (e instanceof yaml.YAMLException && e.reason.startsWith('nesting exceeded maxDepth')) return yamlReject(`YAML nesting is deeper than ${MAX_DEPTH} levels`);
    if (e instanceof yaml.YAMLException) {
      // js-yaml's reasons may quote the input (tag and alias names): only a bounded, masked part of it is echoed
      const reason = e.reason.length > 512 ? e.reason.slice(0, 512) : e.reason;
      const tag = /unknown tag !<([^>]*)>/.exec(reason);
      if (tag) return yamlReject(`YAML tag !<${inline(tag[1]!)}> is not accepted (only plain data: no !ruby/... objects)`);
      // some js-yaml errors have no mark (more than one document in the text)
      const at = e.mark ? ` at line ${e.mark.line + 1}` : '';
      if (reason.includes('duplicated mapping key')) return yamlReject(`malformed YAML: duplicated key${at}`);
      return yamlReject(`malformed YAML: ${inline(reason, 160)}${at}`);
    }
    return yamlReject(`malformed YAML: ${inline((e as Error).message.split('\n')[0] ?? '', 160)}`);
  }
  // Walk the tree once: bounded work whatever the aliases (nodes and bytes read), and find template markers
  // anywhere (keys too). Paths are built from bounded segments, and only while no marker has been found.
  let nodes = 0;
  let bytes = 0;
  let templateAt: string | undefined;
  const stack: Array<[unknown, number, string]> = [[value, 0, '']];
  while (stack.length > 0) {
    const [v, depth, path] = stack.pop()!;
    if (++nodes > MAX_NODES) return yamlReject(`document expands to more than ${MAX_NODES} nodes (alias bomb?)`);
    if (depth > MAX_DEPTH) return yamlReject(`YAML nesting is deeper than ${MAX_DEPTH} levels`);
    if (typeof v === 'string') {
      if ((bytes += v.length) > maxBytes) return tooMuch();
      if (templateAt === undefined && TEMPLATE_MARKER.test(v)) templateAt = path || '(document)';
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], depth + 1, templateAt === undefined && path.length < 200 ? `${path}[${i}]` : path]);
    } else if (typeof v === 'object' && v !== null) {
      for (const [k, child] of Object.entries(v)) {
        if ((bytes += k.length) > maxBytes) return tooMuch();
        const name = k.startsWith(':') ? k.slice(1) : k;
        const childPath = templateAt !== undefined || path.length >= 200 ? path : path ? `${path}.${segment(name)}` : segment(name);
        if (templateAt === undefined && TEMPLATE_MARKER.test(k)) templateAt = childPath;
        stack.push([child, depth + 1, childPath]);
      }
    }
  }
  return templateAt === undefined ? { ok: true, value } : { ok: true, value, templateAt };
}
