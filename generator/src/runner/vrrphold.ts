// The VRRP hold: a proxy that missed routing changes ("stale") must not re-master a VIP until the runner has
// caught it up. The stale proxy cannot know it missed anything (it was cut off), but the runner knows the
// moment a pass leaves a proxy lacking apps. It then writes the hold file of the up-to-date proxies
// (`--tags keepalived_vrrp_hold -e keepalived_vrrp_hold=true`): keepalived adds each instance's hold_weight
// (layout/vrrp.ts), which lifts them above every stale proxy, so a returning stale proxy stays backup. Once no
// proxy is stale any more, the same run with `false` lifts the hold and the planned masters preempt again.
//
// The only state kept here is what was last written to each proxy (<state_dir>/vrrp-hold.json): staleness is
// recomputed from the applied digests inside the playbook lock, so a restart of the listener, or a `sync` from
// another process in between, never leaves a hold behind or lifts one too early.
import { promises as fs } from 'node:fs';
import { writeFileAtomic } from '../io/atomic.js';
import { playbookLockFile, vrrpHoldFile } from '../io/statedir.js';
import { holdCommand, type PlaybookSettings } from './command.js';
import { hasPending, type Digests, type DigestView } from './pending.js';
import { AppliedCache } from './applied.js';
import { runPlaybookPlanned, type SpawnResult } from './spawn.js';
import type { WarmController } from './warm.js';

/** host -> the hold value last written to it; a host missing here has never been written (keepalived created 0). */
export interface HoldRecord { schema: 1; written: Record<string, boolean>; updatedAt?: string }

/** The record; null when it exists but cannot be read (every proxy is then written again). */
export async function readHold(stateDir: string): Promise<HoldRecord | null> {
  let text: string;
  try { text = await fs.readFile(vrrpHoldFile(stateDir), 'utf8'); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { schema: 1, written: {} };
    throw e;
  }
  try {
    const j = JSON.parse(text) as Partial<HoldRecord>;
    if (j.schema !== 1 || typeof j.written !== 'object' || j.written === null || Array.isArray(j.written)) return null;
    const written: Record<string, boolean> = {};
    for (const [h, v] of Object.entries(j.written)) if (typeof v === 'boolean') written[h] = v;
    return { schema: 1, written };
  } catch { return null; }
}

export async function writeHold(stateDir: string, rec: HoldRecord): Promise<void> {
  await fs.mkdir(stateDir, { recursive: true });
  const sorted: Record<string, boolean> = {};
  for (const h of Object.keys(rec.written).sort()) sorted[h] = rec.written[h] as boolean;
  await writeFileAtomic(vrrpHoldFile(stateDir), JSON.stringify({ schema: 1, written: sorted, updatedAt: new Date().toISOString() }, null, 1) + '\n');
}

/** Pure: the candidates (proxies a pass left lagging) that still lack apps now. */
export function staleHosts(candidates: readonly string[], current: Digests | DigestView, applied: ReadonlyMap<string, Digests | DigestView | null>): string[] {
  return candidates.filter((h) => {
    const a = applied.get(h);
    return a === null || a === undefined || hasPending(current, a);
  }).sort();
}

export interface HoldPlan {
  /** the value every up-to-date proxy must have: true while any proxy is stale */
  hold: boolean;
  /** up-to-date proxies whose file differs from `hold` (or is unknown): the hold run's --limit */
  hosts: string[];
}

/** Pure: which proxies to write. Stale proxies are never targeted (they are unreachable or failing). */
export function holdPlan(proxies: readonly string[], stale: readonly string[], written: Readonly<Record<string, boolean>> | null): HoldPlan {
  const hold = stale.length > 0;
  const hosts = proxies.filter((h) => !stale.includes(h) && (written === null ? true : (written[h] ?? false) !== hold));
  return { hold, hosts: [...hosts].sort() };
}

export interface HoldRunResult {
  plan: HoldPlan;
  stale: string[];
  /** the playbook run, when one was needed */
  spawn: SpawnResult | null;
  /** hosts whose write failed (retry them) */
  failed: string[];
}

/**
 * After a pass: recompute the stale proxies among `candidates` and bring the hold files of the others in line.
 * Decided after taking the playbook lock, so concurrent runners (the listener, `paas-rproxy sync`) agree.
 */
export async function syncHold(opts: {
  stateDir: string; playbook: PlaybookSettings; lockTimeoutMs: number; signal?: AbortSignal | undefined;
  proxies: readonly string[]; candidates: readonly string[]; digests: () => Promise<Digests | DigestView>; warm?: WarmController | undefined;
  /** the runner's applied digests (absent: read from the files) */
  applied?: AppliedCache | undefined;
}): Promise<HoldRunResult> {
  const appliedCache = opts.applied ?? new AppliedCache(opts.stateDir);
  let plan: HoldPlan = { hold: false, hosts: [] };
  let stale: string[] = [];
  let written: Record<string, boolean> = {};
  const spawn = await runPlaybookPlanned(async () => {
    const record = await readHold(opts.stateDir);
    written = { ...(record?.written ?? {}) };
    if (opts.candidates.length === 0 && record !== null && !Object.values(record.written).some(Boolean)) return null; // nothing held, nothing stale
    const applied = new Map<string, ReadonlyMap<string, string> | null>();
    for (const h of opts.candidates) applied.set(h, await appliedCache.get(h));
    const current = await opts.digests(); // a live view: read with no await in between
    stale = staleHosts(opts.candidates.filter((h) => opts.proxies.includes(h)), current, applied);
    plan = holdPlan(opts.proxies, stale, record?.written ?? null);
    return plan.hosts.length ? holdCommand(opts.playbook, plan.hosts, plan.hold) : null;
  }, { lockFile: playbookLockFile(opts.stateDir), lockTimeoutMs: opts.lockTimeoutMs, warm: opts.warm, ...(opts.signal ? { signal: opts.signal } : {}) });
  if (spawn === null) return { plan, stale, spawn: null, failed: [] };
  const failed: string[] = [];
  for (const h of plan.hosts) {
    if (!spawn.aborted && spawn.outcomes.get(h) === 'ok') written[h] = plan.hold;
    else { failed.push(h); delete written[h]; } // unknown now: written again at the next pass
  }
  for (const h of Object.keys(written)) if (!opts.proxies.includes(h)) delete written[h];
  await writeHold(opts.stateDir, { schema: 1, written });
  return { plan, stale, spawn, failed };
}
