/**
 * Does a freshly provisioned proxy serve the current routes on its own address? HTTP requests with Host
 * headers straight to its address (no VIP involved), compared with a proxy already in service when there
 * is one (same status per host name), else judged alone (an app with backends must not fall to the
 * default server's 404; an app without any must answer 503). An unknown host name must get the 404.
 */
import http from 'node:http';
import type { State } from '../state/types.js';
import { deriveRoute } from '../state/route.js';

export interface VerifyTarget { app: string; name: string; hasBackends: boolean }
export interface VerifyFailure { app: string; name: string; status: number | string; expected: string }
export interface VerifyResult {
  ok: boolean;
  apps: number; // apps in the state
  checkedApps: number;
  requests: number;
  reference: string | null;
  failures: VerifyFailure[];
  durationMs: number;
}

export const UNKNOWN_HOST = 'paas-rproxy-onboarding-check.invalid';

/** Pure: which host names to request (every server name of up to `max` apps, spread over the sorted ids). */
export function verifyTargets(state: State, cloudDomain: string, max: number): { targets: VerifyTarget[]; checkedApps: number } {
  const ids = [...state.apps.keys()].sort();
  const pick: string[] = [];
  if (ids.length <= max) pick.push(...ids);
  else for (let i = 0; i < max; i++) pick.push(ids[Math.floor((i * ids.length) / max)] as string);
  const targets: VerifyTarget[] = [];
  for (const id of pick) {
    const app = state.apps.get(id);
    if (!app) continue;
    const r = deriveRoute(app, cloudDomain);
    for (const name of r.server_names) targets.push({ app: id, name, hasBackends: r.backends.length > 0 });
  }
  return { targets, checkedApps: pick.length };
}

/** Pure: the verdict for one target given the new proxy's status and the reference's (or null). */
export function judge(t: VerifyTarget, status: number | string, reference: number | string | null): VerifyFailure | null {
  if (reference !== null && typeof reference === 'number') {
    return status === reference ? null : { app: t.app, name: t.name, status, expected: `${reference} (as the proxy in service answers)` };
  }
  if (typeof status !== 'number') return { app: t.app, name: t.name, status, expected: t.hasBackends ? 'an answer from a backend' : '503' };
  if (t.hasBackends) return status === 404 || status === 503 ? { app: t.app, name: t.name, status, expected: 'an answer routed to a backend (not the default server)' } : null;
  return status === 503 ? null : { app: t.app, name: t.name, status, expected: '503 (the app has no backend)' };
}

export interface ProbeOptions { port?: number; timeoutMs?: number; path?: string; agent?: http.Agent }

/**
 * One GET http://address/ with a Host header; resolves with the status or an error text. With `agent` (keep-alive)
 * the request may reuse a connection: a reused connection the server closed meanwhile is retried once on a new one.
 */
export async function probeHttp(address: string, hostName: string, opts: ProbeOptions = {}): Promise<number | string> {
  const r = await probeOnce(address, hostName, opts);
  return opts.agent && (r === 'ECONNRESET' || r === 'socket hang up' || r === 'EPIPE') ? probeOnce(address, hostName, withoutAgent(opts)) : r;
}

function withoutAgent(opts: ProbeOptions): ProbeOptions {
  const { agent: _agent, ...rest } = opts;
  return rest;
}

function probeOnce(address: string, hostName: string, opts: ProbeOptions): Promise<number | string> {
  return new Promise((resolve) => {
    const req = http.request({
      host: address, port: opts.port ?? 80, path: opts.path ?? '/', method: 'GET', agent: opts.agent ?? false,
      headers: { host: hostName, 'user-agent': 'paas-rproxy-onboard', ...(opts.agent ? {} : { connection: 'close' }) }, timeout: opts.timeoutMs ?? 5000,
    }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', (e) => resolve(e.message));
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${opts.timeoutMs ?? 5000} ms`)));
    req.on('error', (e) => resolve((e as NodeJS.ErrnoException).code ?? e.message));
    req.end();
  });
}

async function pool<T, R>(items: T[], n: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) { const i = next++; out[i] = await fn(items[i] as T); }
  }));
  return out;
}

/**
 * Verifies `address` serves the state's routes; `reference` = address of a proxy in service (or null). The requests
 * go over keep-alive connections, `concurrency` per proxy (2,001 requests at 10,000 apps: 3.9 s with a connection
 * per request on the loaded lab, see generator/src/onboard/README.md).
 */
export async function verifyRoutes(state: State, cloudDomain: string, address: string, reference: string | null, opts: { max?: number; concurrency?: number; timeoutMs?: number; port?: number } = {}): Promise<VerifyResult> {
  const t0 = performance.now();
  const { targets, checkedApps } = verifyTargets(state, cloudDomain, opts.max ?? 500);
  const failures: VerifyFailure[] = [];
  const concurrency = opts.concurrency ?? 16;
  const agents = [new http.Agent({ keepAlive: true, maxSockets: concurrency }), new http.Agent({ keepAlive: true, maxSockets: concurrency })];
  const [mine, theirs] = agents.map((agent) => ({ ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}), ...(opts.port !== undefined ? { port: opts.port } : {}), agent })) as [ProbeOptions, ProbeOptions];
  let ref = reference;
  try {
    // the default server must be there: an unknown name gets 404
    const unknown = await probeHttp(address, UNKNOWN_HOST, mine);
    if (unknown !== 404) failures.push({ app: '-', name: UNKNOWN_HOST, status: unknown, expected: '404 from the default server' });
    if (ref !== null && (await probeHttp(ref, UNKNOWN_HOST, theirs)) !== 404) ref = null; // reference not usable
    const results = await pool(targets, concurrency, async (t) => {
      const [s, r] = await Promise.all([probeHttp(address, t.name, mine), ref ? probeHttp(ref, t.name, theirs) : Promise.resolve(null)]);
      return judge(t, s, r);
    });
    for (const f of results) if (f) failures.push(f);
  } finally {
    for (const a of agents) a.destroy();
  }
  return {
    ok: failures.length === 0, apps: state.apps.size, checkedApps, requests: targets.length * (ref ? 2 : 1) + 1, reference: ref,
    failures, durationMs: Math.round(performance.now() - t0),
  };
}

export function formatVerifyFailures(v: VerifyResult, max = 10): string {
  const shown = v.failures.slice(0, max).map((f) => `${f.name}${f.app !== '-' ? ` (app ${f.app})` : ''}: got ${f.status}, expected ${f.expected}`);
  return shown.join('; ') + (v.failures.length > max ? `; … ${v.failures.length - max} more` : '');
}
