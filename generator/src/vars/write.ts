/**
 * Writes a new state to disk: TLS files first (so the vars never point at missing material), then the vars
 * file (atomic, only when its bytes change), then stale TLS files are removed. Only apps whose object changed
 * are visited for TLS work. Everything lives under <state_dir>/routes (vars/paths.ts).
 */
import { unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Config } from '../config.js';
import type { AppState, State } from '../state/types.js';
import { ensureDir, fsyncDir, removePath, writeFileAtomic } from '../io/atomic.js';
import { digestChunks, renderVarsChunks } from './emit.js';
import { routesDir, tlsRelPath, tlsRoot, varsFilePath } from './paths.js';

export interface WriteResult {
  /** sha256 of the vars file now on disk */
  digest: string;
  wroteVars: boolean;
  tlsFilesWritten: number;
}

/** `prevDigest`: sha256 of the vars file on disk (null when there is none). */
export async function writeState(config: Config, prev: State, next: State, prevDigest: string | null): Promise<WriteResult> {
  const dirsToSync = new Set<string>();
  let tlsFilesWritten = 0;
  const abs = (rel: string) => join(routesDir(config), rel);

  for (const app of next.apps.values()) {
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

  const chunks = renderVarsChunks(next.apps.values(), config.cloud_domain);
  const digest = digestChunks(chunks);
  let wroteVars = false;
  if (digest !== prevDigest) {
    const file = varsFilePath(config);
    await ensureDir(dirname(file), 0o750);
    await writeFileAtomic(file, chunks);
    wroteVars = true;
  }

  // Stale TLS material: whole apps gone, or aliases whose certificate went away.
  const removed = new Set<string>();
  for (const old of prev.apps.values()) {
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
        await unlink(abs(tlsRelPath(old.id, t.alias, ext))).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'ENOENT') throw e; });
      }
      removed.add(join(tlsRoot(config), old.id));
    }
  }
  for (const d of removed) await fsyncDir(d).catch(() => undefined);
  return { digest, wroteVars, tlsFilesWritten };
}
