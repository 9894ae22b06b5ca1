/**
 * Writes a new state to disk (layout and why: vars/README.md), in an order that keeps every reader consistent:
 *   1. TLS files of changed apps (so no app file points at missing material);
 *   2. apps/<id>.json of the apps whose bytes change (temp + fsync + rename each, one fsync of apps/);
 *   3. index.json (atomic), only when its bytes change: the commit point;
 *   4. files of apps the index no longer names (deleted apps, strays of an interrupted write), then stale TLS.
 * A reader takes the app set from index.json, so it never sees an index naming a missing file; a file without an
 * index entry is ignored until step 4 of the next write removes it. Only apps whose object changed are rendered.
 */
import { unlink } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Config } from '../config.js';
import type { AppState, State } from '../state/types.js';
import { ensureDir, fsyncDir, removePath, writeFileAtomic, writeFilesAtomic } from '../io/atomic.js';
import { indexChunksFromEntries, indexEntry, renderAppFile } from './emit.js';
import { appDigest } from './digest.js';
import { appFilePath, appsDir, indexFilePath, routesDir, tlsRelPath, tlsRoot } from './paths.js';
import { emptyDisk, type DiskState, type IndexEntries } from './load.js';

export interface WriteResult {
  /** what is on disk now (the next write's `disk`) */
  disk: DiskState;
  /** index.json was rewritten (the app set or a digest changed) */
  wroteIndex: boolean;
  appFilesWritten: number;
  appFilesRemoved: number;
  tlsFilesWritten: number;
}

export interface WriteOptions {
  /** render and compare every app, not only the changed objects (after reading the files: a file written by an
   * older paas-rproxy or for another cloud domain is rewritten) */
  verify?: boolean;
  /**
   * the ids of every app whose entry may differ between `prev` and `next` (added, changed, deleted): only those are
   * looked at, and `disk` (which must then be what the last write returned, or null) is updated in place.
   * Absent: every app is compared.
   */
  changed?: Iterable<string>;
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');
const ignoreMissing = (e: NodeJS.ErrnoException): void => { if (e.code !== 'ENOENT') throw e; };

/** `disk`: what is on disk as last read or written (null: nothing, a fresh state directory). */
export async function writeState(config: Config, prev: State, next: State, disk: DiskState | null, opts: WriteOptions = {}): Promise<WriteResult> {
  const was = disk ?? emptyDisk();
  const only = opts.changed && !opts.verify ? [...new Set(opts.changed)].sort() : null;
  const files = only ? was.files : new Map(was.files);
  // the apps this write looks at, new and old (all of them without `changed`)
  const nextApps = (): Iterable<AppState> => (only ? only.flatMap((id) => next.apps.get(id) ?? []) : next.apps.values());
  const prevApps = (): Iterable<AppState> => (only ? only.flatMap((id) => prev.apps.get(id) ?? []) : prev.apps.values());
  let tlsFilesWritten = 0;
  const abs = (rel: string) => join(routesDir(config), rel);

  // 1. TLS material of changed apps
  const dirsToSync = new Set<string>();
  for (const app of nextApps()) {
    const old = prev.apps.get(app.id);
    if (old === app || app.tls.length === 0) continue;
    for (const t of app.tls) {
      const o = old?.tls.find((x) => x.alias === t.alias);
      if (o && o.cert === t.cert && o.key === t.key) continue;
      const dir = join(tlsRoot(config), app.id);
      await ensureDir(routesDir(config), 0o750);
      await ensureDir(tlsRoot(config), 0o700);
      await ensureDir(dir, 0o700);
      await writeFileAtomic(abs(tlsRelPath(app.id, t.alias, 'crt')), t.cert, { mode: 0o600, noDirSync: true });
      await writeFileAtomic(abs(tlsRelPath(app.id, t.alias, 'key')), t.key, { mode: 0o600, noDirSync: true });
      tlsFilesWritten += 2;
      dirsToSync.add(dir);
    }
  }
  for (const d of dirsToSync) await fsyncDir(d);

  // 2. app files whose bytes change, in groups of 1,024 (a bulk load writes thousands: see writeFilesAtomic; the
  // group bounds the rendered text held at once)
  let appFilesWritten = 0;
  let group: { path: string; data: string; id: string; sha: string }[] = [];
  const flush = async (): Promise<void> => {
    if (group.length === 0) return;
    if (appFilesWritten === 0) {
      await ensureDir(routesDir(config), 0o750);
      await ensureDir(appsDir(config), 0o750);
    }
    await writeFilesAtomic(group);
    for (const c of group) files.set(c.id, c.sha);
    appFilesWritten += group.length;
    group = [];
  };
  for (const app of nextApps()) {
    if (!opts.verify && prev.apps.get(app.id) === app && files.has(app.id)) continue;
    const text = renderAppFile(app, config.cloud_domain);
    const sha = sha256(text);
    if (files.get(app.id) === sha) continue;
    group.push({ path: appFilePath(config, app.id), data: text, id: app.id, sha });
    if (group.length >= 1024) await flush();
  }
  await flush();

  // 3. the index: the commit point
  const gone = (only ?? [...files.keys()]).filter((id) => files.has(id) && !next.apps.has(id));
  for (const id of gone) files.delete(id);
  const entries = only && was.index ? updateIndexEntries(was.index, only, next) : indexEntries(next);
  const index = indexChunksFromEntries(entries.ids, (id) => entries.lines.get(id)!);
  const h = createHash('sha256');
  for (const c of index) h.update(c);
  const indexSha = h.digest('hex');
  let wroteIndex = false;
  if (indexSha !== was.indexSha) {
    await ensureDir(routesDir(config), 0o750);
    await writeFileAtomic(indexFilePath(config), index);
    wroteIndex = true;
  }

  // 4. what the index no longer names: deleted apps, strays; then stale TLS material
  for (const id of gone) await unlink(appFilePath(config, id)).catch(ignoreMissing);
  for (const name of was.strays) await removePath(join(appsDir(config), name));
  const appFilesRemoved = gone.length + was.strays.length;
  if (appFilesRemoved > 0) await fsyncDir(appsDir(config)).catch(() => undefined);

  const removed = new Set<string>();
  for (const old of prevApps()) {
    const app: AppState | undefined = next.apps.get(old.id);
    if (app === old || old.tls.length === 0) continue;
    if (!app) {
      await removePath(join(tlsRoot(config), old.id));
      removed.add(tlsRoot(config));
      continue;
    }
    for (const t of old.tls) {
      if (app.tls.some((x) => x.alias === t.alias)) continue;
      for (const ext of ['crt', 'key'] as const) {
        // only "already gone" is fine: a private key that cannot be removed must not go unnoticed
        await unlink(abs(tlsRelPath(old.id, t.alias, ext))).catch(ignoreMissing);
      }
      removed.add(join(tlsRoot(config), old.id));
    }
  }
  for (const d of removed) await fsyncDir(d).catch(() => undefined);
  return { disk: { files, indexSha, strays: [], index: entries }, wroteIndex, appFilesWritten, appFilesRemoved, tlsFilesWritten };
}

const byId = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Every entry of index.json for `state` (a full render). */
function indexEntries(state: State): IndexEntries {
  const lines = new Map<string, string>();
  for (const app of state.apps.values()) lines.set(app.id, indexEntry(app.id, appDigest(app)));
  return { ids: [...lines.keys()].sort(byId), lines };
}

/**
 * `entries` (updated in place) after the apps `changed` (sorted) took their values in `next`: the entries of changed
 * apps re-rendered, ids added by one merge of two sorted lists, deleted ones filtered out. O(apps + changes), and
 * no new string for an unchanged app.
 */
export function updateIndexEntries(entries: IndexEntries, changed: readonly string[], next: State): IndexEntries {
  const added: string[] = [];
  let removed = false;
  for (const id of changed) {
    const app = next.apps.get(id);
    const had = entries.lines.has(id);
    if (!app) { if (had) { entries.lines.delete(id); removed = true; } continue; }
    if (!had) added.push(id);
    entries.lines.set(id, indexEntry(id, appDigest(app)));
  }
  if (removed) entries.ids = entries.ids.filter((id) => entries.lines.has(id));
  if (added.length) {
    const old = entries.ids;
    const merged: string[] = new Array(old.length + added.length);
    let i = 0, j = 0, k = 0;
    while (i < old.length && j < added.length) merged[k++] = byId(old[i]!, added[j]!) <= 0 ? old[i++]! : added[j++]!;
    while (i < old.length) merged[k++] = old[i++]!;
    while (j < added.length) merged[k++] = added[j++]!;
    entries.ids = merged;
  }
  return entries;
}
