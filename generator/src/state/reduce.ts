/**
 * The reducer (pure): (state, event) → outcome. Idempotent (re-applying an event is `unchanged`) and
 * order-tolerant where the SPI allows: an add for an unknown app creates it, removing something absent is a
 * no-op. `reduce` never mutates; `commit` applies an outcome to a working state owned by the caller, so a
 * 10,000-app state is not copied per event.
 *
 * Alias events stay linear however many aliases one app has: membership is one lookup in the alias index, and in
 * batch mode (deferAliasLists) `commit` records the change instead of copying the app's sorted list; the lists
 * are merged once at the end of the batch (finishAliasLists). 20,000 add_alias for one app: one sort, not 20,000
 * copies of a growing list.
 */
import type { AddEndpointEvent, SpiEvent, SpiRejection } from '../spi/types.js';
import { certProblem } from '../tls/pem.js';
import { appId, compareEndpoints, endpointKey, type AppState, type Endpoint, type PendingAliases, type ReduceContext, type State } from './types.js';

export type Outcome =
  | { status: 'unchanged'; appId: string }
  | {
    status: 'applied'; appId: string; /** new entry, or null when the app is deleted */ app: AppState | null;
    /** the only alias added or removed, when that is the whole alias change (commit updates the index by it) */
    aliasDelta?: { added: string } | { removed: string };
  }
  | { status: 'rejected'; appId: string; rejection: SpiRejection };

/** Whether app `id` has `alias` (the alias index is kept in step by commit). */
const hasAlias = (state: State, id: string, alias: string): boolean => state.aliasOwner.get(alias) === id;

/** The pending alias changes of `app` in batch mode (for its current list), if any. */
function pendingOf(state: State, app: AppState): PendingAliases | undefined {
  const p = state.pendingAliases?.get(app.id);
  return p && p.base === app.aliases ? p : undefined;
}

/** How many aliases `app` has, pending changes included. */
function aliasCount(state: State, app: AppState): number {
  const p = pendingOf(state, app);
  return p ? app.aliases.length - p.removes.size + p.adds.size : app.aliases.length;
}

/** Distinct (frontend, backend) mappings over endpoints; equal lists are shared (interned), so each is read once. */
const mappingCounts = new WeakMap<readonly Endpoint[], number>();
function distinctMappings(endpoints: readonly Endpoint[]): number {
  const hit = mappingCounts.get(endpoints);
  if (hit !== undefined) return hit;
  const lists = new Set(endpoints.map((e) => e.mappings));
  const seen = new Set<string>();
  for (const l of lists) for (const m of l) seen.add(m.frontend + '\0' + m.backend);
  mappingCounts.set(endpoints, seen.size);
  return seen.size;
}

function newApp(id: string, app_name: string, namespace: string): AppState {
  return { id, app_name, namespace, scalable: false, ha: false, aliases: [], endpoints: [], tls: [] };
}

const sameList = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  return a.address === b.address && a.port === b.port && a.gear_id === b.gear_id && a.port_name === b.port_name &&
    sameList(a.protocols, b.protocols) && sameList(a.types, b.types) && a.mappings.length === b.mappings.length &&
    a.mappings.every((m, i) => m.frontend === b.mappings[i]!.frontend && m.backend === b.mappings[i]!.backend);
}

function toEndpoint(e: AddEndpointEvent): Endpoint {
  return { address: e.public_address, port: e.public_port, gear_id: e.gear_id, port_name: e.public_port_name, protocols: e.protocols, types: e.types, mappings: e.mappings };
}

export function reduce(state: State, event: SpiEvent, ctx: ReduceContext): Outcome {
  const id = appId(event.app_name, event.namespace);
  const cur = state.apps.get(id);
  const unchanged: Outcome = { status: 'unchanged', appId: id };
  const applied = (app: AppState | null): Outcome => ({ status: 'applied', appId: id, app });
  const reject = (reason: string, code: SpiRejection['code'] = 'ERR_SPI_CONFLICT'): Outcome =>
    ({ status: 'rejected', appId: id, rejection: { code, reason: `${event.action}: ${reason}` } });
  const overLimit = (what: string, has: number, key: keyof ReduceContext['limits']): Outcome =>
    reject(`app ${id} would have ${has} ${what}, over the limit limits.${key} = ${ctx.limits[key]}`, 'ERR_SPI_LIMIT');
  // Any add event for an unknown app creates it (order tolerance: the create may come late or never).
  const base = cur ?? newApp(id, event.app_name, event.namespace);

  switch (event.action) {
    case 'create_application':
      if (cur && cur.scalable === event.scalable && cur.ha === event.ha) return unchanged;
      return applied({ ...base, scalable: event.scalable, ha: event.ha });

    case 'delete_application':
      return cur ? applied(null) : unchanged;

    case 'add_public_endpoint':
    case 'add_gear': {
      const ep = toEndpoint(event);
      const key = endpointKey(ep);
      const routed = event.types.some((t) => ctx.routedTypes.has(t));
      const others = base.endpoints.filter((e) => endpointKey(e) !== key);
      const existing = base.endpoints.find((e) => endpointKey(e) === key);
      if (!routed) {
        // Not routed (database, load_balancer…): drop a former routed endpoint at that address, else just know the app.
        if (cur && !existing) return unchanged;
        return applied({ ...base, endpoints: others });
      }
      if (cur && existing && sameEndpoint(existing, ep)) return unchanged;
      const endpoints = [...others, ep].sort(compareEndpoints);
      if (!existing && endpoints.length > ctx.limits.endpoints_per_app) return overLimit('routed endpoints', endpoints.length, 'endpoints_per_app');
      const mappings = distinctMappings(endpoints);
      if (mappings > ctx.limits.mappings_per_app && mappings > distinctMappings(base.endpoints)) {
        return overLimit('distinct path mappings', mappings, 'mappings_per_app');
      }
      return applied({ ...base, endpoints });
    }

    case 'remove_public_endpoint':
    case 'delete_gear': {
      if (!cur) return unchanged;
      const key = endpointKey({ address: event.public_address, port: event.public_port });
      const endpoints = cur.endpoints.filter((e) => endpointKey(e) !== key);
      return endpoints.length === cur.endpoints.length ? unchanged : applied({ ...cur, endpoints });
    }

    case 'add_alias': {
      const problem = aliasProblem(state, id, event.alias, ctx);
      if (problem) return reject(problem);
      if (cur && hasAlias(state, id, event.alias)) return unchanged;
      const count = aliasCount(state, base);
      if (count >= ctx.limits.aliases_per_app) return overLimit('aliases', count + 1, 'aliases_per_app');
      return { status: 'applied', appId: id, app: base, aliasDelta: { added: event.alias } };
    }

    case 'remove_alias': {
      // Removing an alias removes its certificate too.
      if (!cur || !hasAlias(state, id, event.alias)) return unchanged;
      const tls = cur.tls.some((t) => t.alias === event.alias) ? cur.tls.filter((t) => t.alias !== event.alias) : cur.tls;
      return { status: 'applied', appId: id, app: tls === cur.tls ? cur : { ...cur, tls }, aliasDelta: { removed: event.alias } };
    }

    case 'add_ssl': {
      // A certificate belongs to an alias the app has: the broker always sends add_alias first, so a
      // certificate for an unknown alias is an error to report, not a claim to make silently.
      if (!cur || !hasAlias(state, id, event.alias)) {
        const owner = state.aliasOwner.get(event.alias);
        const hint = owner && owner !== id ? `it belongs to app ${owner}` : 'send add_alias first';
        return reject(`alias ${JSON.stringify(event.alias)} is not an alias of app ${id} (${hint})`);
      }
      if (ctx.tlsRequireValid) {
        const problem = certProblem(event.cert, event.alias, ctx.now());
        if (problem) return reject(`alias ${JSON.stringify(event.alias)}: ${problem} (tls_require_valid is on)`, 'ERR_SPI_INVALID');
      }
      const old = cur.tls.find((t) => t.alias === event.alias);
      if (old && old.cert === event.cert && old.key === event.key) return unchanged;
      if (!old && cur.tls.length >= ctx.limits.tls_aliases_per_app) {
        return overLimit('aliases with a certificate', cur.tls.length + 1, 'tls_aliases_per_app');
      }
      const tls = [...cur.tls.filter((t) => t.alias !== event.alias), { alias: event.alias, cert: event.cert, key: event.key }]
        .sort((a, b) => (a.alias < b.alias ? -1 : 1));
      return applied({ ...cur, tls });
    }

    case 'remove_ssl': {
      if (!cur || !cur.tls.some((t) => t.alias === event.alias)) return unchanged;
      return applied({ ...cur, tls: cur.tls.filter((t) => t.alias !== event.alias) });
    }
  }
}

/** Why `alias` cannot be claimed by app `id`, or null. */
function aliasProblem(state: State, id: string, alias: string, ctx: ReduceContext): string | null {
  const owner = state.aliasOwner.get(alias);
  if (owner !== undefined && owner !== id) return `alias ${JSON.stringify(alias)} already belongs to app ${owner}`;
  if (alias === ctx.cloudDomain || alias.endsWith('.' + ctx.cloudDomain)) {
    return `alias ${JSON.stringify(alias)} is inside the cloud domain ${ctx.cloudDomain} (reserved for application names)`;
  }
  return null;
}

/**
 * Applies an outcome to a working state (mutates it), keeping the alias index in step. An alias change is
 * recorded against the app's list and merged at once, or, in batch mode, at finishAliasLists.
 */
export function commit(state: State, outcome: Outcome): void {
  if (outcome.status !== 'applied') return;
  const id = outcome.appId;
  const old = state.apps.get(id);
  const app = outcome.app;
  if (app === null) {
    if (old) for (const a of effectiveAliases(state, old)) if (state.aliasOwner.get(a) === id) state.aliasOwner.delete(a);
    state.pendingAliases?.delete(id);
    state.apps.delete(id);
    return;
  }
  state.apps.set(id, app);
  const delta = outcome.aliasDelta;
  if (delta) {
    let p = pendingOf(state, app);
    if (!p) {
      p = { base: app.aliases, adds: new Set(), removes: new Set() };
      (state.pendingAliases ?? new Map<string, PendingAliases>()).set(id, p);
    }
    if ('added' in delta) {
      if (!p.removes.delete(delta.added)) p.adds.add(delta.added);
      state.aliasOwner.set(delta.added, id);
    } else {
      if (!p.adds.delete(delta.removed)) p.removes.add(delta.removed);
      if (state.aliasOwner.get(delta.removed) === id) state.aliasOwner.delete(delta.removed);
    }
    if (!state.pendingAliases) mergeAliases(state, id, p);
    return;
  }
  if (old && old.aliases === app.aliases) return;
  if (old) for (const a of effectiveAliases(state, old)) if (state.aliasOwner.get(a) === id) state.aliasOwner.delete(a);
  state.pendingAliases?.delete(id);
  for (const a of app.aliases) state.aliasOwner.set(a, id);
}

/** The aliases of `app` with its pending changes. */
function effectiveAliases(state: State, app: AppState): Iterable<string> {
  const p = pendingOf(state, app);
  return p ? [...app.aliases.filter((a) => !p.removes.has(a)), ...p.adds] : app.aliases;
}

/** Merges an app's pending alias changes into a new sorted list (one sort of the additions, one pass). */
function mergeAliases(state: State, id: string, p: PendingAliases): void {
  state.pendingAliases?.delete(id);
  const app = state.apps.get(id);
  if (!app || app.aliases !== p.base || (p.adds.size === 0 && p.removes.size === 0)) return;
  const kept = p.removes.size ? p.base.filter((a) => !p.removes.has(a)) : p.base;
  const added = [...p.adds].sort();
  const merged: string[] = [];
  let i = 0;
  let j = 0;
  while (i < kept.length || j < added.length) {
    if (j >= added.length || (i < kept.length && kept[i]! < added[j]!)) merged.push(kept[i++]!);
    else merged.push(added[j++]!);
  }
  state.apps.set(id, { ...app, aliases: merged });
}

/** Batch mode: alias changes are recorded by commit and merged by finishAliasLists (call it before reading `aliases`). */
export function deferAliasLists(state: State): void {
  state.pendingAliases ??= new Map();
}

/** Ends batch mode: every app's pending alias changes merged into its sorted list. */
export function finishAliasLists(state: State): void {
  const pending = state.pendingAliases;
  if (!pending) return;
  for (const [id, p] of [...pending]) mergeAliases(state, id, p);
  delete state.pendingAliases;
}

/** Builds the alias index of a set of apps (after loading the files). */
export function indexAliases(apps: Iterable<AppState>): Map<string, string> {
  const m = new Map<string, string>();
  for (const app of apps) for (const a of app.aliases) m.set(a, app.id);
  return m;
}
