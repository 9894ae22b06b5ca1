// Pure: what each host still lacks, from the current per-app digests and the host's applied digests.

export type Digests = Readonly<Record<string, string>>;

/**
 * Per-app digests, read-only: a Map, or the listener's live view of its store (runner/ports.ts: no copy of
 * 10,000 digests per pass). A live view changes when the store commits: read it synchronously.
 */
export interface DigestView {
  readonly size: number;
  get(id: string): string | undefined;
  keys(): IterableIterator<string>;
}

/** A plain object seen as a DigestView (its own keys only). */
export function digestView(d: Digests | DigestView): DigestView {
  if (isView(d)) return d;
  const keys = Object.keys(d);
  return { size: keys.length, get: (id) => (Object.hasOwn(d, id) ? d[id] : undefined), keys: () => keys[Symbol.iterator]() };
}

function isView(d: Digests | DigestView): d is DigestView {
  return typeof (d as DigestView).get === 'function' && typeof (d as DigestView).keys === 'function';
}

/** Apps whose digest differs from what the host last applied, plus apps the host has that are gone. Sorted. */
export function pendingApps(current: Digests | DigestView, applied: Digests | DigestView): string[] {
  const c = digestView(current);
  const a = digestView(applied);
  const out: string[] = [];
  for (const app of c.keys()) if (a.get(app) !== c.get(app)) out.push(app);
  for (const app of a.keys()) if (c.get(app) === undefined) out.push(app);
  return out.sort();
}

/** Whether the host lacks anything (pendingApps non-empty), without listing it. */
export function hasPending(current: Digests | DigestView, applied: Digests | DigestView): boolean {
  const c = digestView(current);
  const a = digestView(applied);
  if (c.size !== a.size) return true;
  for (const app of c.keys()) if (a.get(app) !== c.get(app)) return true;
  return false;
}

export interface RunPlan {
  /** hosts that never recorded an applied state: full run (also removes stale files) */
  fullHosts: string[];
  /** hosts with pending apps: one targeted run over the union */
  targetedHosts: string[];
  apps: string[];
  perHost: Record<string, string[]>;
}

export function planRun(current: Digests | DigestView, appliedByHost: ReadonlyMap<string, Digests | DigestView | null>): RunPlan {
  const cur = digestView(current);
  const fullHosts: string[] = [];
  const targetedHosts: string[] = [];
  const union = new Set<string>();
  const perHost: Record<string, string[]> = {};
  let all: string[] | null = null;
  for (const [host, applied] of [...appliedByHost.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (applied === null) { fullHosts.push(host); perHost[host] = all ??= [...cur.keys()].sort(); continue; }
    const p = pendingApps(cur, applied);
    perHost[host] = p;
    if (p.length) { targetedHosts.push(host); p.forEach((a) => union.add(a)); }
  }
  return { fullHosts, targetedHosts, apps: [...union].sort(), perHost };
}

/**
 * What a successful run records, taken with the plan (synchronously: the same snapshot): for the targeted hosts,
 * each planned app's digest (null: the app is gone), which brings what the host applied to the snapshot; for the
 * full hosts, the whole snapshot (null when there are none).
 */
export interface PlanSnapshot {
  changes: ReadonlyMap<string, string | null>;
  full: ReadonlyMap<string, string> | null;
}

export function snapshotOf(current: Digests | DigestView, plan: RunPlan): PlanSnapshot {
  const cur = digestView(current);
  const changes = new Map<string, string | null>();
  for (const app of plan.apps) changes.set(app, cur.get(app) ?? null);
  let full: Map<string, string> | null = null;
  if (plan.fullHosts.length) {
    full = new Map();
    for (const app of cur.keys()) full.set(app, cur.get(app) as string);
  }
  return { changes, full };
}

export function pendingCount(plan: RunPlan): number {
  return new Set(Object.values(plan.perHost).flat()).size;
}
