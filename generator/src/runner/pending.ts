// Pure: what each host still lacks, from the current per-app digests and the host's applied digests.

export type Digests = Readonly<Record<string, string>>;

/** Apps whose digest differs from what the host last applied, plus apps the host has that are gone. Sorted. */
export function pendingApps(current: Digests, applied: Digests): string[] {
  const out: string[] = [];
  for (const [app, d] of Object.entries(current)) if (applied[app] !== d) out.push(app);
  for (const app of Object.keys(applied)) if (!(app in current)) out.push(app);
  return out.sort();
}

export interface RunPlan {
  /** hosts that never recorded an applied state: full run (also removes stale files) */
  fullHosts: string[];
  /** hosts with pending apps: one targeted run over the union */
  targetedHosts: string[];
  apps: string[];
  perHost: Record<string, string[]>;
}

export function planRun(current: Digests, appliedByHost: ReadonlyMap<string, Digests | null>): RunPlan {
  const fullHosts: string[] = [];
  const targetedHosts: string[] = [];
  const union = new Set<string>();
  const perHost: Record<string, string[]> = {};
  for (const [host, applied] of [...appliedByHost.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (applied === null) { fullHosts.push(host); perHost[host] = Object.keys(current).sort(); continue; }
    const p = pendingApps(current, applied);
    perHost[host] = p;
    if (p.length) { targetedHosts.push(host); p.forEach((a) => union.add(a)); }
  }
  return { fullHosts, targetedHosts, apps: [...union].sort(), perHost };
}

export function pendingCount(plan: RunPlan): number {
  return new Set(Object.values(plan.perHost).flat()).size;
}
