// Per-host applied digests: <state_dir>/applied/<host>.json = {appId: digest}, written atomically.
import { promises as fs } from 'node:fs';
import type { Digests } from './pending.js';
import { writeFileAtomic } from '../io/atomic.js';
import { appliedDir, appliedFile } from '../io/statedir.js';

export async function readApplied(stateDir: string, host: string): Promise<Digests | null> {
  try {
    const j = JSON.parse(await fs.readFile(appliedFile(stateDir, host), 'utf8')) as unknown;
    if (!j || typeof j !== 'object' || Array.isArray(j)) return null;
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(j as object)) if (typeof v === 'string') out[k] = v;
    return out;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    if (e instanceof SyntaxError) return null; // unreadable → treat as unknown: a full run repairs it
    throw e;
  }
}

export async function writeApplied(stateDir: string, host: string, digests: Digests): Promise<void> {
  await fs.mkdir(appliedDir(stateDir), { recursive: true });
  const sorted: Record<string, string> = {};
  for (const k of Object.keys(digests).sort()) sorted[k] = digests[k] as string;
  await writeFileAtomic(appliedFile(stateDir, host), JSON.stringify(sorted, null, 1) + '\n', { mode: 0o644 });
}

/** A proxy leaves the fleet (offboarding): what it applied is forgotten. */
export async function removeApplied(stateDir: string, host: string): Promise<void> {
  await fs.rm(appliedFile(stateDir, host), { force: true });
}
