/** The routing table as the CLI shows it (`paas-rproxy routes`). Pure. */
import type { State } from './state/types.js';
import { deriveRoute } from './state/route.js';

export interface RouteRow {
  app: string;
  namespace: string;
  fqdn: string;
  aliases: string[];
  backends: string[];
  websocket: boolean;
  tls: string[];
}

export function routingTable(state: State, cloudDomain: string): RouteRow[] {
  const rows = [...state.apps.values()].map((app) => {
    const r = deriveRoute(app, cloudDomain);
    return {
      app: app.app_name, namespace: app.namespace, fqdn: r.server_names[0]!, aliases: [...app.aliases],
      backends: r.backends, websocket: r.websocket, tls: app.tls.map((t) => t.alias),
    };
  });
  return rows.sort((a, b) => (a.fqdn < b.fqdn ? -1 : a.fqdn > b.fqdn ? 1 : 0));
}

/** Human-readable table: one line per app, then its aliases and backends. */
export function formatTable(rows: RouteRow[]): string {
  if (rows.length === 0) return 'no applications\n';
  const out: string[] = [];
  for (const r of rows) {
    const flags = [r.websocket ? 'websocket' : '', r.tls.length ? `tls: ${r.tls.join(' ')}` : ''].filter(Boolean).join(', ');
    out.push(`${r.fqdn}${flags ? `  (${flags})` : ''}`);
    if (r.aliases.length) out.push(`  aliases:  ${r.aliases.join(' ')}`);
    out.push(`  backends: ${r.backends.length ? r.backends.join(' ') : '(none: answers 503)'}`);
  }
  return out.join('\n') + '\n';
}
