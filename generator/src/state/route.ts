/**
 * The route an app needs, derived once here so the nginx role only prints it (the `route` block of generator/src/vars/README.md).
 * Every nginx-specific value (upstream name with its `ws.` prefix, the map value, location paths, rewrite
 * regexes already escaped for nginx double-quoted strings) is computed here: Jinja only prints it.
 */
import type { Mapping } from '../spi/types.js';
import { endpointKey, type AppState } from './types.js';

/** One path mapping as nginx needs it: `location "<path>" { rewrite "<rewrite_regex>" "<rewrite_to>" break; }`. */
export interface RouteLocation {
  /** the location prefix: the mapping's frontend, '' normalized to '/' (printed inside double quotes) */
  path: string;
  /** the mapping's backend, '' normalized to '/' (for the comment; as sent otherwise) */
  backend: string;
  /** `^<path, PCRE-escaped>/*(.*)$`, quoted for an nginx double-quoted string */
  rewrite_regex: string;
  /** `<backend without trailing slashes>/$1`, quoted for an nginx double-quoted string */
  rewrite_to: string;
}

export interface Route {
  /** nginx upstream name: the app id, `ws.<id>` for a websocket app (the prefix selects the websocket
   *  location in the shared server); null when there is no backend (→ 503) */
  upstream: string | null;
  /** value of the app's names in `map $host $rproxy_upstream`: the upstream, or '@503' without backend */
  map_value: string;
  backends: string[];
  server_names: string[];
  websocket: boolean;
  /** non-identity path mappings, one per path, longest path first */
  locations: RouteLocation[];
  /** no location has path '/': the dedicated server needs a default `location /` */
  root_location: boolean;
  dedicated_server: boolean;
}

/** '' and '/' are the same nginx prefix: mappings are keyed and compared after this. */
export const normalizePath = (p: string): string => (p === '' ? '/' : p);

/** PCRE escape of every character Python's re.escape escapes (what the templates' regex_escape did). */
export const regexEscape = (s: string): string => s.replace(/[()[\]{}?*+\-|^$\\.&~# \t\n\r\v\f]/g, '\\$&');

/**
 * A value for an nginx double-quoted string. nginx unescapes `\"`, `\'`, `\\`, `\t`, `\r`, `\n` there and keeps
 * any other backslash pair as is, so only a backslash that would be read as one of those (or would escape the
 * closing quote) is doubled, and `"` is escaped. Regex escapes such as `\.` stay readable.
 */
export const nginxQuote = (s: string): string => s.replace(/\\(?=["'\\trn]|$)/g, '\\\\').replace(/"/g, '\\"');

/**
 * Locations of an app's mappings. Frontend and backend '' mean '/'. After that normalization:
 * - an identity mapping (frontend == backend) needs no location and decides nothing;
 * - per frontend, the FIRST non-identity mapping wins, in endpoint order (address, then port, as the state
 *   sorts them) and, within an endpoint, in the order the mappings were sent; later ones are ignored.
 * So every path gets at most one location and the rendered server is always valid for nginx.
 */
export function deriveLocations(endpoints: AppState['endpoints']): RouteLocation[] {
  const byPath = new Map<string, Mapping>();
  for (const e of endpoints) {
    for (const m of e.mappings) {
      const path = normalizePath(m.frontend);
      const backend = normalizePath(m.backend);
      if (path === backend || byPath.has(path)) continue;
      byPath.set(path, { frontend: path, backend });
    }
  }
  return [...byPath.values()]
    .sort((a, b) => b.frontend.length - a.frontend.length || (a.frontend < b.frontend ? -1 : a.frontend > b.frontend ? 1 : 0))
    .map((m) => ({
      path: nginxQuote(m.frontend),
      backend: nginxQuote(m.backend),
      // the frontend prefix (and any slashes after it) is replaced by the backend path: no double slash
      rewrite_regex: nginxQuote(`^${regexEscape(m.frontend)}/*(.*)$`),
      rewrite_to: nginxQuote(`${trimTrailingSlashes(m.backend)}/$1`),
    }));
}

/** `s` without its trailing slashes (a loop: `/\/+$/` backtracks quadratically on a run of slashes not at the end). */
function trimTrailingSlashes(s: string): string {
  let end = s.length;
  while (end > 0 && s.charCodeAt(end - 1) === 47) end--;
  return s.slice(0, end);
}

export function deriveRoute(app: AppState, cloudDomain: string): Route {
  const backends = [...new Set(app.endpoints.map(endpointKey))];
  const websocket = app.endpoints.some((e) => e.protocols.includes('ws'));
  const locations = deriveLocations(app.endpoints);
  const upstream = backends.length > 0 ? (websocket ? `ws.${app.id}` : app.id) : null;
  return {
    upstream,
    map_value: upstream ?? '@503',
    backends,
    server_names: [fqdn(app, cloudDomain), ...app.aliases],
    websocket,
    locations,
    root_location: !locations.some((l) => l.path === '/'),
    dedicated_server: app.tls.length > 0 || locations.length > 0,
  };
}

export const fqdn = (app: AppState, cloudDomain: string): string => `${app.id}.${cloudDomain}`;
