/**
 * appDigest: a stable fingerprint of everything a proxy needs for one app (entry + TLS contents), so the runner
 * can tell which apps a host still lacks. Independent of key order and of the cloud domain (a domain change is a
 * full run anyway). Cached per immutable app object.
 */
import { createHash } from 'node:crypto';
import type { AppState } from '../state/types.js';
import { tlsDigest } from './emit.js';

const cache = new WeakMap<AppState, string>();

export function appDigest(app: AppState): string {
  const hit = cache.get(app);
  if (hit) return hit;
  const canonical = JSON.stringify([
    app.id, app.app_name, app.namespace, app.scalable, app.ha, app.aliases,
    app.endpoints.map((e) => [e.address, e.port, e.gear_id, e.port_name, e.protocols, e.types, e.mappings.map((m) => [m.frontend, m.backend])]),
    app.tls.map((t) => [t.alias, tlsDigest(t)]),
  ]);
  const d = createHash('sha256').update(canonical).digest('hex');
  cache.set(app, d);
  return d;
}
