// Pure: the hosts of a group from an Ansible YAML inventory document (hosts.yml), children included, in order.

export function groupHosts(doc: unknown, group: string): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const groups = new Map<string, Record<string, unknown>>();
  const index = (name: string, node: unknown): void => {
    if (!node || typeof node !== 'object') return;
    const g = node as Record<string, unknown>;
    if (!groups.has(name)) groups.set(name, g);
    const children = g.children;
    if (children && typeof children === 'object') for (const [c, n] of Object.entries(children as object)) index(c, n);
  };
  if (doc && typeof doc === 'object') for (const [name, node] of Object.entries(doc as object)) index(name, node);
  const walk = (name: string, depth: number): void => {
    const g = groups.get(name);
    if (!g || depth > 50) return;
    if (g.hosts && typeof g.hosts === 'object') for (const h of Object.keys(g.hosts as object)) if (!seen.has(h)) { seen.add(h); out.push(h); }
    if (g.children && typeof g.children === 'object') for (const c of Object.keys(g.children as object)) walk(c, depth + 1);
  };
  walk(group, 0);
  return out;
}
