// Per-host applied digests: what each proxy last applied, app id -> appDigest. On disk (the durable truth):
//   <state_dir>/applied/<host>.json      the base, {appId: digest} sorted, replaced atomically;
//   <state_dir>/applied/<host>.json.log  a journal of what changed since the base, one JSON object per line
//                                        ({appId: digest, or null for an app removed}), appended and fsynced.
// What a host applied is the base with the journal's lines applied in order. A run that changed a few apps appends
// one line of those apps instead of rewriting the whole base (0.9 MB at 10,000 apps); the journal is folded into a
// new base (compaction) once it outgrows JOURNAL_MAX_BYTES, when a line would be that large itself, or after a torn
// line. `AppliedCache` keeps each host's digests in memory between passes (the listener's runner) and re-reads
// the files only when their stamps say another process wrote them.
//
// Crash safety: every state the files can be left in is one the host really had at some time, or one with fewer
// apps recorded (then they are run again): a journal line is durable (fsync) before the cache believes it; a line
// torn by a crash is ignored (its apps count as not applied) and the next record compacts; a base is replaced
// only after the journal it would supersede was removed (and that removal made durable), so a crash in between
// leaves the older base alone, never a new base with an older journal replayed over it.
import { constants, promises as fs } from 'node:fs';
import type { DigestView } from './pending.js';
import { writeFileAtomic, fsyncDir } from '../io/atomic.js';
import { appliedDir, appliedFile } from '../io/statedir.js';

/** Past this the journal is folded into the base at the next record. */
export const JOURNAL_MAX_BYTES = 256 * 1024;

export const appliedJournal = (stateDir: string, host: string): string => `${appliedFile(stateDir, host)}.log`;

type Stamp = string;
async function stampOf(file: string): Promise<Stamp> {
  const s = await fs.lstat(file, { bigint: true }).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return null;
    throw e;
  });
  return s ? `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}` : '-';
}

interface Loaded {
  /** null: no base (never synced, or its base unreadable: a full run repairs it) */
  digests: Map<string, string> | null;
  journalBytes: number;
  /** a journal line could not be read (a crash tore it): compact at the next record */
  torn: boolean;
}

function parseObject(text: string): Record<string, unknown> | null {
  try {
    const j = JSON.parse(text) as unknown;
    return j && typeof j === 'object' && !Array.isArray(j) ? (j as Record<string, unknown>) : null;
  } catch (e) {
    if (e instanceof SyntaxError) return null;
    throw e;
  }
}

async function readOrNull(file: string): Promise<string | null> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

async function load(stateDir: string, host: string): Promise<Loaded> {
  const journal = await readOrNull(appliedJournal(stateDir, host));
  const journalBytes = journal === null ? 0 : Buffer.byteLength(journal);
  const baseText = await readOrNull(appliedFile(stateDir, host));
  const base = baseText === null ? null : parseObject(baseText);
  if (base === null) return { digests: null, journalBytes, torn: false }; // unreadable → unknown: a full run repairs it
  const digests = new Map<string, string>();
  for (const [k, v] of Object.entries(base)) if (typeof v === 'string') digests.set(k, v);
  let torn = false;
  if (journal !== null) {
    for (const line of journal.split('\n')) {
      if (line === '') continue;
      const o = parseObject(line);
      if (o === null) { torn = true; continue; } // its apps keep their older digests: they are run again
      for (const [k, v] of Object.entries(o)) {
        if (typeof v === 'string') digests.set(k, v);
        else if (v === null) digests.delete(k);
      }
    }
    if (!journal.endsWith('\n')) torn = true;
  }
  return { digests, journalBytes, torn };
}

/** What `host` last applied (base + journal), as a plain object; null when never recorded or unreadable. */
export async function readApplied(stateDir: string, host: string): Promise<Record<string, string> | null> {
  const { digests } = await load(stateDir, host);
  return digests === null ? null : Object.fromEntries(digests);
}

function renderBase(digests: ReadonlyMap<string, string>): string[] {
  const ids = [...digests.keys()].sort();
  const chunks: string[] = ['{'];
  ids.forEach((id, i) => chunks.push(`\n ${JSON.stringify(id)}: ${JSON.stringify(digests.get(id))}${i < ids.length - 1 ? ',' : ''}`));
  chunks.push(ids.length ? '\n}\n' : '}\n');
  return chunks;
}

/** The journal removed, durably, then the base replaced atomically (see the crash-safety note above). */
async function writeBase(stateDir: string, host: string, digests: ReadonlyMap<string, string>): Promise<void> {
  await fs.mkdir(appliedDir(stateDir), { recursive: true });
  const removed = await fs.rm(appliedJournal(stateDir, host)).then(() => true, (e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return false;
    throw e;
  });
  if (removed) await fsyncDir(appliedDir(stateDir));
  await writeFileAtomic(appliedFile(stateDir, host), renderBase(digests), { mode: 0o644 });
}

/** Replaces what `host` applied (a full run, onboarding's provisioning): a new base, no journal. */
export async function writeApplied(stateDir: string, host: string, digests: Readonly<Record<string, string>>): Promise<void> {
  await writeBase(stateDir, host, new Map(Object.entries(digests)));
}

/** A proxy leaves the fleet (offboarding): what it applied is forgotten. */
export async function removeApplied(stateDir: string, host: string): Promise<void> {
  await fs.rm(appliedJournal(stateDir, host), { force: true });
  await fs.rm(appliedFile(stateDir, host), { force: true });
}

/** One journal line appended and fsynced (never through a symlink planted at its name). */
async function appendLine(stateDir: string, host: string, line: string): Promise<void> {
  const file = appliedJournal(stateDir, host);
  const h = await fs.open(file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o644);
  let created: boolean;
  try {
    created = (await h.stat()).size === 0;
    await h.writeFile(line);
    await h.sync();
  } finally {
    await h.close();
  }
  if (created) await fsyncDir(appliedDir(stateDir)); // the new journal's name is durable too
}

interface Entry { digests: Map<string, string> | null; journalBytes: number; torn: boolean; stamp: Stamp }

/**
 * Each host's applied digests in memory between passes. `get` returns the cached map while the files' stamps
 * (inode, size, mtime, ctime of the base and the journal) are the ones this cache last read or wrote, else it
 * reads them again (another process recorded meanwhile: `paas-rproxy sync`, onboarding). Writers (`record`,
 * `replace`) run under the playbook lock, as every writer of these files does. A failed write forgets the host's
 * entry, so the next `get` reads the disk.
 */
export class AppliedCache {
  private readonly hosts = new Map<string, Entry>();

  constructor(readonly stateDir: string) {}

  private async stamp(host: string): Promise<Stamp> {
    return `${await stampOf(appliedFile(this.stateDir, host))}|${await stampOf(appliedJournal(this.stateDir, host))}`;
  }

  private async entry(host: string): Promise<Entry> {
    const stamp = await this.stamp(host);
    const hit = this.hosts.get(host);
    if (hit && hit.stamp === stamp) return hit;
    const l = await load(this.stateDir, host);
    const e: Entry = { ...l, stamp };
    this.hosts.set(host, e);
    return e;
  }

  /** What `host` applied (do not modify; valid until the next record/replace of that host); null: never recorded. */
  async get(host: string): Promise<ReadonlyMap<string, string> | null> {
    return (await this.entry(host)).digests;
  }

  /**
   * `host` applied `changes` (app id -> its digest, null for an app it removed) on top of what it had: one journal
   * line, or a new base when the journal is due for compaction. Only for a host with a recorded state (else
   * `replace`).
   */
  async record(host: string, changes: ReadonlyMap<string, string | null>): Promise<void> {
    const e = await this.entry(host);
    if (e.digests === null) throw new Error(`applied digests of ${host}: nothing recorded to add changes to (a full run replaces them)`);
    if (changes.size === 0) return;
    const line = JSON.stringify(Object.fromEntries(changes)) + '\n';
    const bytes = Buffer.byteLength(line);
    try {
      if (e.torn || e.journalBytes + bytes > JOURNAL_MAX_BYTES) {
        const next = new Map(e.digests);
        for (const [id, d] of changes) if (d === null) next.delete(id); else next.set(id, d);
        await writeBase(this.stateDir, host, next);
        e.digests = next;
        e.journalBytes = 0;
        e.torn = false;
      } else {
        await appendLine(this.stateDir, host, line);
        for (const [id, d] of changes) if (d === null) e.digests.delete(id); else e.digests.set(id, d);
        e.journalBytes += bytes;
      }
      e.stamp = await this.stamp(host);
    } catch (err) {
      this.hosts.delete(host);
      throw err;
    }
  }

  /** `host` applied exactly `digests` (a full run): a new base, the journal gone. */
  async replace(host: string, digests: DigestView): Promise<void> {
    const next = new Map<string, string>();
    for (const id of digests.keys()) next.set(id, digests.get(id) as string);
    try {
      await writeBase(this.stateDir, host, next);
      this.hosts.set(host, { digests: next, journalBytes: 0, torn: false, stamp: await this.stamp(host) });
    } catch (err) {
      this.hosts.delete(host);
      throw err;
    }
  }
}
