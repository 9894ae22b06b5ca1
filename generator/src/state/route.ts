/** The route an app needs, derived once here so the nginx role only prints it (contracts.md `route`). */
import type { Mapping } from '../spi/types.js';
import { endpointKey, type AppState } from './types.js';

export interface Route {
  upstream: string | null;
  backends: string[];
  server_names: string[];
  websocket: boolean;
  locations: Mapping[];
  dedicated_server: boolean;
}

export function deriveRoute(app: AppState, cloudDomain: string): Route {
  const backends = [...new Set(app.endpoints.map(endpointKey))];
  const byFrontend = new Map<string, Mapping>();
  // Identity mappings ('' → '', '/x' → '/x') need no location; the first (sorted) backend wins a conflict.
  for (const e of app.endpoints) {
    for (const m of e.mappings) {
      if (m.frontend === m.backend || byFrontend.has(m.frontend)) continue;
      byFrontend.set(m.frontend, m);
    }
  }
  const locations = [...byFrontend.values()].sort((a, b) =>
    b.frontend.length - a.frontend.length || (a.frontend < b.frontend ? -1 : a.frontend > b.frontend ? 1 : 0));
  return {
    upstream: backends.length > 0 ? app.id : null,
    backends,
    server_names: [fqdn(app, cloudDomain), ...app.aliases],
    websocket: app.endpoints.some((e) => e.protocols.includes('ws')),
    locations,
    dedicated_server: app.tls.length > 0 || locations.length > 0,
  };
}

export const fqdn = (app: AppState, cloudDomain: string): string => `${app.id}.${cloudDomain}`;
