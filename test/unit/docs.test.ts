// The operator's handbook (docs/) stays true to the code, without a lab: every `paas-rproxy` command and option it
// mentions exists in the CLI's help, every shell block parses, every YAML block loads, every Ansible variable it names
// exists in the roles, the inventory or site.yml, every repository path and link points at something that exists.
// (test/integration/handbook.test.ts runs the blocks marked "sh lab" against the lab.)
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import yaml from 'js-yaml';
import { REPO } from '../fixtures/helpers.js';
import { readDocs, isLabBlock, isShellBlock, LAB_MAPPED_PATHS, type Doc } from '../fixtures/handbook.js';

const BIN = path.join(REPO, 'dist/cli/main.js');
const docs: Doc[] = readDocs();

test.before(() => {
  // `npm run test:unit` builds first; build here only when run alone on a fresh checkout.
  if (!existsSync(BIN)) execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: REPO, stdio: 'inherit' });
});

// ------------------------------------------------------------------------------------------------ the CLI's help
function help(args: string[]): string {
  const r = spawnSync(process.execPath, [BIN, ...args, '--help'], { encoding: 'utf8', env: { ...process.env, PAAS_RPROXY_CONFIG: '' } });
  if (r.status !== 0) throw new Error(`paas-rproxy ${args.join(' ')} --help: exit ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** The options a help text lists (its "Options:" section). */
export function optionsOf(helpText: string): Set<string> {
  const out = new Set<string>();
  let inOptions = false;
  for (const l of helpText.split('\n')) {
    if (/^Options:/.test(l)) { inOptions = true; continue; }
    if (/^\S/.test(l)) inOptions = false;
    const m = inOptions ? /^\s+(?:-\w, )?(--[a-z][a-z0-9-]*)/.exec(l) : null;
    if (m) out.add(m[1]!);
  }
  return out;
}

interface Cli { commands: Map<string, Set<string>>; globals: Set<string> }
let cliCache: Cli | undefined;
function cliModel(): Cli {
  if (cliCache) return cliCache;
  const top = help([]);
  const commands = new Map<string, Set<string>>();
  for (const m of top.matchAll(/^ {2}paas-rproxy ([a-z][a-z-]*)/gm)) commands.set(m[1]!, optionsOf(help([m[1]!])));
  cliCache = { commands, globals: optionsOf(top) };
  return cliCache;
}

// ------------------------------------------------------------------------------------------------ commands in the docs
const SEPARATORS = new Set(['|', '||', '&&', ';', '(', ')', '$(', '`', '{', '}', '!']);

/** Shell-like words of a command line: quotes kept together, separators as their own words, comments dropped. */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  let cur = '';
  let quote: string | null = null;
  const flush = () => { if (cur) words.push(cur); cur = ''; };
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) { if (c === quote) quote = null; else cur += c; continue; }
    if (c === "'" || c === '"') { quote = c; continue; }
    if (c === '#' && cur === '') break;
    if (/\s/.test(c)) { flush(); continue; }
    const two = line.slice(i, i + 2);
    if (two === '||' || two === '&&' || two === '$(') { flush(); words.push(two); i++; continue; }
    if ('|;()`{}'.includes(c)) { flush(); words.push(c); continue; }
    cur += c;
  }
  flush();
  return words;
}

export interface Mention { command: string | null; options: string[] }

/** The CLI invocations of a line: `paas-rproxy ...` or `node .../dist/cli/main.js ...` at a command position. */
export function cliMentions(line: string): Mention[] {
  const w = shellWords(line);
  const out: Mention[] = [];
  let commandPos = true;
  for (let i = 0; i < w.length; i++) {
    const word = w[i]!;
    if (SEPARATORS.has(word)) { commandPos = true; continue; }
    const isCli = commandPos && (word === 'paas-rproxy'
      || (/(^|\/)node$/.test(word) && /dist\/cli\/main\.js$/.test(w[i + 1] ?? '')));
    if (!isCli) {
      // env assignments and sudo/env wrappers keep the command position
      commandPos = commandPos && (/^[A-Z_][A-Z0-9_]*=/.test(word) || word === 'sudo' || word === 'env' || word === 'exec');
      continue;
    }
    if (word !== 'paas-rproxy') i++;
    let j = i + 1;
    const globalOpts: string[] = [];
    while (j < w.length && w[j]!.startsWith('--')) { globalOpts.push(w[j]!.split('=')[0]!); j += w[j]!.includes('=') ? 1 : 2; }
    const sub = w[j];
    if (sub === undefined || SEPARATORS.has(sub) || !/^[a-z][a-z-]*$/.test(sub)) { out.push({ command: null, options: globalOpts }); commandPos = false; continue; }
    const options = [...globalOpts];
    let k = j + 1;
    for (; k < w.length && !SEPARATORS.has(w[k]!); k++) if (/^--[a-z]/.test(w[k]!)) options.push(w[k]!.split('=')[0]!);
    out.push({ command: sub, options });
    i = k - 1;
    commandPos = false;
  }
  return out;
}

/** Every command line of the docs: shell blocks (continuations joined) and inline code spans. */
function commandLines(): Array<{ where: string; line: string }> {
  const out: Array<{ where: string; line: string }> = [];
  for (const d of docs) {
    for (const b of d.blocks.filter(isShellBlock)) {
      const lines = b.text.replace(/\\\n\s*/g, ' ').split('\n');
      lines.forEach((l, i) => out.push({ where: `${b.file}:${b.line + 1 + i}`, line: l }));
    }
    for (const s of d.spans) out.push({ where: `${s.file}:${s.line}`, line: s.text });
  }
  return out;
}

test('the CLI model is read from its help', (t) => {
  const { commands, globals } = cliModel();
  for (const c of ['apply', 'routes', 'sync', 'listen', 'status', 'vrrp-layout', 'onboard', 'offboard', 'migrate', 'dns']) t.true(commands.has(c), c);
  t.true(globals.has('--state-dir'));
  t.true(commands.get('status')!.has('--lag-grace'));
  t.false(commands.get('status')!.has('--full'));
});

test('the command parser finds commands at command positions only', (t) => {
  t.deepEqual(cliMentions('paas-rproxy status --json | jq -r ".problems[]"'), [{ command: 'status', options: ['--json'] }]);
  t.deepEqual(cliMentions("alias paas-rproxy='sudo -u paas-rproxy /usr/bin/node /opt/paas-rproxy/dist/cli/main.js'"), []);
  t.deepEqual(cliMentions('sudo -u paas-rproxy ssh-keygen -f x'), []);
  t.deepEqual(cliMentions('/usr/bin/node /opt/paas-rproxy/dist/cli/main.js --state-dir "$check" routes > /dev/null'),
    [{ command: 'routes', options: ['--state-dir'] }]);
  t.deepEqual(cliMentions('jq . f | paas-rproxy apply --sync -'), [{ command: 'apply', options: ['--sync'] }]);
  t.deepEqual(cliMentions('paas-rproxy dns --format zone --ns a=b > db # paas-rproxy nothing'), [{ command: 'dns', options: ['--format', '--ns'] }]);
});

test('every paas-rproxy command and option the handbook mentions exists in the CLI', (t) => {
  const { commands, globals } = cliModel();
  let seen = 0;
  const bad: string[] = [];
  for (const { where, line } of commandLines()) {
    for (const m of cliMentions(line)) {
      seen++;
      if (m.command === null) continue;
      const opts = commands.get(m.command);
      if (!opts) { bad.push(`${where}: no command "${m.command}" (${line.trim()})`); continue; }
      for (const o of m.options) {
        const known = (x: string) => opts.has(x) || globals.has(x);
        if (!known(o) && !(o.startsWith('--no-') && known(`--${o.slice(5)}`))) bad.push(`${where}: "paas-rproxy ${m.command}" has no option ${o}`);
      }
    }
  }
  t.deepEqual(bad, []);
  t.true(seen >= 30, `only ${seen} CLI invocations found: the parser lost them?`);
});

// ------------------------------------------------------------------------------------------------ blocks
test('every shell block parses (bash -n), every YAML block loads', (t) => {
  let shells = 0;
  let yamls = 0;
  for (const d of docs) {
    for (const b of d.blocks) {
      if (isShellBlock(b)) {
        shells++;
        const r = spawnSync('bash', ['-n'], { input: b.text, encoding: 'utf8' });
        t.is(r.status, 0, `${b.file}:${b.line}: ${r.stderr}`);
      } else if (b.info[0] === 'yaml') {
        yamls++;
        t.notThrows(() => yaml.load(b.text), `${b.file}:${b.line}`);
      } else {
        t.true(['text'].includes(b.info[0] ?? ''), `${b.file}:${b.line}: a block without a known language (${b.info.join(' ') || 'none'})`);
      }
    }
  }
  t.true(shells >= 20 && yamls >= 5, `${shells} shell and ${yamls} YAML blocks`);
});

test('the handbook marks runnable examples (sh lab) on every page that has commands the lab can run', (t) => {
  const lab = docs.flatMap((d) => d.blocks.filter(isLabBlock));
  t.true(lab.length >= 15, `only ${lab.length} blocks marked "sh lab"`);
  for (const b of lab) t.regex(b.text, /\S/, `${b.file}:${b.line}: empty`);
  for (const page of ['docs/operations.md', 'docs/failures.md', 'docs/backup.md', 'docs/upgrade.md', 'docs/troubleshooting.md']) {
    t.true(lab.some((b) => b.file === page), `${page} has no "sh lab" block`);
  }
});

test('docs/README.md lists every path the integration test maps to the lab', (t) => {
  const index = docs.find((d) => d.file === 'docs/README.md')!;
  const section = index.text.slice(index.text.indexOf('## How the examples are checked'));
  const rows = section.split('\n').filter((l) => l.startsWith('| `'));
  for (const p of LAB_MAPPED_PATHS) t.true(rows.some((r) => r.startsWith(`| \`${p}\``)), `${p} is not in the table`);
  t.is(rows.length, LAB_MAPPED_PATHS.length + 1, 'the table lists the mapped paths and the paas-rproxy alias, nothing else');
});

// ------------------------------------------------------------------------------------------------ Ansible variables
const VAR_RE = /\b(?:nginx_rproxy|keepalived_vrrp|activemq_routinginfo|rproxy)_[a-z0-9_]*[a-z0-9]\b/g;

function filesUnder(dir: string, exts: RegExp): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p, exts));
    else if (exts.test(e.name)) out.push(p);
  }
  return out;
}

test('every Ansible variable or tag the handbook names exists in the roles, the inventory or site.yml', (t) => {
  const known = new Set<string>();
  for (const dir of ['roles', 'ansible', 'inventory']) {
    for (const f of filesUnder(path.join(REPO, dir), /\.(ya?ml|j2|py|sh|cfg)$/)) {
      for (const m of readFileSync(f, 'utf8').matchAll(VAR_RE)) known.add(m[0]);
    }
  }
  t.true(known.has('keepalived_vrrp_vips') && known.has('rproxy_dns_mode'));
  const bad: string[] = [];
  let seen = 0;
  for (const d of docs) {
    const texts = [...d.blocks.map((b) => ({ where: `${b.file}:${b.line}`, text: b.text })), ...d.spans.map((s) => ({ where: `${s.file}:${s.line}`, text: s.text }))];
    for (const { where, text } of texts) {
      for (const m of text.matchAll(VAR_RE)) {
        seen++;
        if (!known.has(m[0])) bad.push(`${where}: ${m[0]}`);
      }
    }
  }
  t.deepEqual(bad, []);
  t.true(seen >= 40, `only ${seen} variable mentions`);
});

// ------------------------------------------------------------------------------------------------ paths and links
const TOP = '(?:generator|roles|ansible|inventory|test|docs|dist)/';
const ROOT_FILES = new Set(['README.md', 'config.example.yml', 'package.json', 'package-lock.json', 'tsconfig.json']);

/** Does a repository path exist? `*` matches within one name; `<...>` placeholders: the part before them exists. */
export function repoPathExists(p: string): boolean {
  const clean = p.replace(/:\d+$/, '').replace(/\/$/, '');
  const ph = clean.indexOf('<');
  if (ph >= 0) return existsSync(path.join(REPO, clean.slice(0, ph).replace(/[^/]*$/, '')));
  if (!clean.includes('*')) return existsSync(path.join(REPO, clean));
  const dir = path.dirname(clean);
  const re = new RegExp(`^${path.basename(clean).split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*')}$`);
  return existsSync(path.join(REPO, dir)) && readdirSync(path.join(REPO, dir)).some((n) => re.test(n));
}

/** Repository paths in a text: tokens under a top-level directory, or the root files; installed copies count. */
export function repoPaths(text: string): string[] {
  const out: string[] = [];
  const re = new RegExp(`(?:^|[\\s'"=(\\[])((?:/opt/paas-rproxy/)?${TOP}[\\w./*<>@-]*)`, 'g');
  for (const m of text.matchAll(re)) {
    const p = m[1]!.replace(/^\/opt\/paas-rproxy\//, '').replace(/[.,;:)]+$/, '');
    if (/^(?:docs|inventory|test)\/$/.test(p) || p.endsWith('/.')) continue;
    out.push(p);
  }
  for (const w of text.split(/[\s`'"()[\],]+/)) if (ROOT_FILES.has(w)) out.push(w);
  return out;
}

test('every repository path the handbook names exists', (t) => {
  const bad: string[] = [];
  let seen = 0;
  for (const d of docs) {
    const texts = [...d.blocks.filter(isShellBlock).map((b) => ({ where: `${b.file}:${b.line}`, text: b.text })),
      ...d.spans.map((s) => ({ where: `${s.file}:${s.line}`, text: s.text }))];
    for (const { where, text } of texts) {
      for (const p of repoPaths(text)) {
        seen++;
        if (!repoPathExists(p)) bad.push(`${where}: ${p}`);
      }
    }
  }
  t.deepEqual(bad, []);
  t.true(seen >= 20, `only ${seen} paths found`);
});

test('every relative link of the handbook points at a file, and its anchor at a heading', (t) => {
  const byFile = new Map(docs.map((d) => [d.file, d]));
  const bad: string[] = [];
  let seen = 0;
  for (const d of docs) {
    for (const l of d.links) {
      if (/^[a-z]+:/.test(l.text)) continue;
      seen++;
      const [target, anchor] = l.text.split('#') as [string, string | undefined];
      const file = target ? path.posix.normalize(path.posix.join(path.posix.dirname(d.file), target)) : d.file;
      if (!existsSync(path.join(REPO, file))) { bad.push(`${l.file}:${l.line}: ${l.text} (no ${file})`); continue; }
      if (anchor !== undefined) {
        const doc = byFile.get(file);
        if (doc && !doc.anchors.has(anchor)) bad.push(`${l.file}:${l.line}: ${l.text} (no heading #${anchor} in ${file})`);
        else if (!doc && !statSync(path.join(REPO, file)).isFile()) bad.push(`${l.file}:${l.line}: ${l.text}`);
      }
    }
  }
  t.deepEqual(bad, []);
  t.true(seen >= 30, `only ${seen} links`);
});

test('the repository README links the handbook', (t) => {
  t.regex(readFileSync(path.join(REPO, 'README.md'), 'utf8'), /\]\(docs\/README\.md\)/);
});
