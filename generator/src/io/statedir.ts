/**
 * Every path under the controller's state directory (config `state_dir`, default /var/lib/paas-rproxy): the one
 * place that joins a name onto it. Each file has one owner module that reads and writes it; the others go through
 * the owner (docs/ARCHITECTURE.md, "The state directory", is this list).
 */
import { join } from 'node:path';

// ---- the routing state (owner: vars/, layout and schema in generator/src/vars/README.md)
/** routes/: the routing state and its TLS material (what the proxies serve; the nginx_rproxy_routes plugin reads it) */
export const routesDir = (stateDir: string): string => join(stateDir, 'routes');
/** routes/index.json: the commit point of the state (schema, app ids and their digests) */
export const routesIndexFile = (stateDir: string): string => join(routesDir(stateDir), 'index.json');
/** routes/apps/<id>.json: one file per app */
export const routesAppsDir = (stateDir: string): string => join(routesDir(stateDir), 'apps');
/** routes/tls/<id>/<alias>.crt|.key (mode 0600 keys) */
export const ROUTES_TLS_DIR_NAME = 'tls';
export const routesTlsDir = (stateDir: string): string => join(routesDir(stateDir), ROUTES_TLS_DIR_NAME);
/** routes/rproxy_routes.json: the single-file state of schema 2, converted on the first run (vars/migrate.ts) */
export const routesSingleFile = (stateDir: string): string => join(routesDir(stateDir), 'rproxy_routes.json');
/** state.lock: serializes the writers of the routing state across processes (vars/store.ts) */
export const stateLockFile = (stateDir: string): string => join(stateDir, 'state.lock');
/** rejects.jsonl: rejected messages with their reasons, appended (vars/rejects.ts; `status` shows the last ones) */
export const rejectsFile = (stateDir: string): string => join(stateDir, 'rejects.jsonl');
/** rejects.jsonl.1: the previous rejects log, rotated when the current one reached its cap (vars/rejects.ts) */
export const rejectsRotatedFile = (stateDir: string): string => join(stateDir, 'rejects.jsonl.1');

// ---- the runner's records (owner: runner/)
/** playbook.lock: one playbook run at a time across processes (runner/lock.ts) */
export const playbookLockFile = (stateDir: string): string => join(stateDir, 'playbook.lock');
/** applied/<host>.json: per proxy, the app digests its last successful run applied (runner/applied.ts) */
export const appliedDir = (stateDir: string): string => join(stateDir, 'applied');
/** `host` must be an inventory host name checked by its caller: it becomes a file name */
export const appliedFile = (stateDir: string, host: string): string => join(appliedDir(stateDir), `${host}.json`);
/** vrrp-hold.json: the VRRP hold flag last written to each proxy (runner/vrrphold.ts) */
export const vrrpHoldFile = (stateDir: string): string => join(stateDir, 'vrrp-hold.json');
/** warm-ansible-<pid>.sock: the warm Ansible controller of the listener with that pid (runner/warm.ts) */
export const warmSocketFile = (stateDir: string, pid: number): string => join(stateDir, `warm-ansible-${pid}.sock`);
/** the pid in a warm socket's file name, or null for any other name */
export function warmSocketPid(name: string): number | null {
  const m = /^warm-ansible-(\d{1,10})\.sock$/.exec(name);
  return m ? Number(m[1]) : null;
}

// ---- what the processes record for each other (owner: status/, onboard/records.ts)
/** status.json: listener, pending events, backoff and the last runs, for `paas-rproxy status` (status/file.ts) */
export const statusFile = (stateDir: string): string => join(stateDir, 'status.json');
/** fleet.json: the proxies provisioned and in the VRRP set (status/fleet.ts; onboarding writes it) */
export const fleetFile = (stateDir: string): string => join(stateDir, 'fleet.json');
/** onboarding.json: onboarding/offboarding in progress and the last finished ones (onboard/records.ts) */
export const onboardingFile = (stateDir: string): string => join(stateDir, 'onboarding.json');
/** inventory.lock: serializes the edits of the inventory's hosts.yml (onboard/) */
export const inventoryLockFile = (stateDir: string): string => join(stateDir, 'inventory.lock');

// ---- the listener (owner: listener/)
/** applied-messages.log: message-ids already applied, so a redelivery is acked without applying it again (listener/seen.ts) */
export const appliedMessagesFile = (stateDir: string): string => join(stateDir, 'applied-messages.log');

// ---- DNS (owner: dns/serial.ts)
/** dns.json: per domain, the zone serial and the digest of the records it was given to */
export const dnsSerialFile = (stateDir: string): string => join(stateDir, 'dns.json');
/** dns.lock: serializes the serial's updates */
export const dnsLockFile = (stateDir: string): string => join(stateDir, 'dns.lock');

/** The layout, for the documentation and its test: relative path, owner module, what it holds. */
export const STATE_DIR_LAYOUT: readonly { path: string; owner: string }[] = [
  { path: 'routes/index.json', owner: 'vars/store.ts' },
  { path: 'routes/apps/<id>.json', owner: 'vars/write.ts' },
  { path: 'routes/tls/<id>/<alias>.crt', owner: 'vars/write.ts' },
  { path: 'routes/rproxy_routes.json', owner: 'vars/migrate.ts' },
  { path: 'state.lock', owner: 'vars/store.ts' },
  { path: 'rejects.jsonl', owner: 'vars/rejects.ts' },
  { path: 'rejects.jsonl.1', owner: 'vars/rejects.ts' },
  { path: 'playbook.lock', owner: 'runner/lock.ts' },
  { path: 'applied/<host>.json', owner: 'runner/applied.ts' },
  { path: 'vrrp-hold.json', owner: 'runner/vrrphold.ts' },
  { path: 'warm-ansible-<pid>.sock', owner: 'runner/warm.ts' },
  { path: 'status.json', owner: 'status/file.ts' },
  { path: 'fleet.json', owner: 'status/fleet.ts' },
  { path: 'onboarding.json', owner: 'onboard/records.ts' },
  { path: 'inventory.lock', owner: 'onboard/operations.ts' },
  { path: 'applied-messages.log', owner: 'listener/seen.ts' },
  { path: 'dns.json', owner: 'dns/serial.ts' },
  { path: 'dns.lock', owner: 'dns/serial.ts' },
];
