/**
 * The reducer (pure): (state, event) → outcome. Idempotent (re-applying an event is `unchanged`) and
 * order-tolerant where the SPI allows: an add for an unknown app creates it, removing something absent is a
 * no-op. `reduce` never mutates; `commit` applies an outcome to a working state owned by the caller, so a
 * 10,000-app state is not copied per event.
 */
import type { AddEndpointEvent, SpiEvent, SpiRejection } from '../spi/types.js';
import { appId, compareEndpoints, endpointKey, type AppState, type Endpoint, type ReduceContext, type State } from './types.js';

export type Outcome =
  | { status: 'unchanged'; appId: string }
  | { status: 'applied'; appId: string; /** new entry, or null when the app is deleted */ app: AppState | null }
  | { status: 'rejected'; appId: string; rejection: SpiRejection };

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
  const reject = (reason: string): Outcome => ({ status: 'rejected', appId: id, rejection: { code: 'ERR_SPI_CONFLICT', reason: `${event.action}: ${reason}` } });
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
      return applied({ ...base, endpoints: [...others, ep].sort(compareEndpoints) });
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
      if (cur && cur.aliases.includes(event.alias)) return unchanged;
      return applied({ ...base, aliases: [...base.aliases, event.alias].sort() });
    }

    case 'remove_alias': {
      // Removing an alias removes its certificate too.
      if (!cur || !cur.aliases.includes(event.alias)) return unchanged;
      return applied({ ...cur, aliases: cur.aliases.filter((a) => a !== event.alias), tls: cur.tls.filter((t) => t.alias !== event.alias) });
    }

    case 'add_ssl': {
      // A certificate belongs to an alias the app has: the broker always sends add_alias first, so a
      // certificate for an unknown alias is an error to report, not a claim to make silently.
      if (!cur || !cur.aliases.includes(event.alias)) {
        const owner = state.aliasOwner.get(event.alias);
        const hint = owner && owner !== id ? `it belongs to app ${owner}` : 'send add_alias first';
        return reject(`alias ${JSON.stringify(event.alias)} is not an alias of app ${id} (${hint})`);
      }
      const old = cur.tls.find((t) => t.alias === event.alias);
      if (old && old.cert === event.cert && old.key === event.key) return unchanged;
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

/** Applies an outcome to a working state (mutates it), keeping the alias index in step. */
export function commit(state: State, outcome: Outcome): void {
  if (outcome.status !== 'applied') return;
  const old = state.apps.get(outcome.appId);
  if (old) for (const a of old.aliases) if (state.aliasOwner.get(a) === old.id) state.aliasOwner.delete(a);
  if (outcome.app === null) {
    state.apps.delete(outcome.appId);
  } else {
    state.apps.set(outcome.appId, outcome.app);
    for (const a of outcome.app.aliases) state.aliasOwner.set(a, outcome.app.id);
  }
}

/** Builds the alias index of a set of apps (after loading the files). */
export function indexAliases(apps: Iterable<AppState>): Map<string, string> {
  const m = new Map<string, string>();
  for (const app of apps) for (const a of app.aliases) m.set(a, app.id);
  return m;
}
