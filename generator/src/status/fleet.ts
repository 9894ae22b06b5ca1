// The fleet record (<state_dir>/fleet.json): the proxies that are provisioned and part of the VRRP set. Onboarding
// and offboarding write it (onboard/); the inventory watcher compares the inventory's proxies group with it; the
// runner runs routes only on its members (fleetProxies), so a host added to the inventory gets no routes run
// before it was onboarded. It sits below the runner, with the status file.
import { promises as fs } from 'node:fs';
import { writeFileAtomic } from '../io/atomic.js';
import { fleetFile } from '../io/statedir.js';
import type { Config } from '../config.js';
import { RproxyError } from '../errors.js';

export interface FleetEntry { name: string; address: string | null }
export interface FleetFile { schema: 1; updatedAt: string; proxies: FleetEntry[]; /** digest of the VRRP layout inputs last applied (onboard/vrrpkey.ts) */ vrrpKey?: string }

/** Pure: fleet.json's text checked; ERR_STATE_CORRUPT naming the file and what to do when it is not a fleet record. */
export function parseFleet(text: string, file: string): FleetFile {
  let j: unknown;
  try { j = JSON.parse(text); } catch { j = undefined; }
  const proxies = (j as Partial<FleetFile> | undefined)?.proxies;
  const entryOk = (p: unknown) => typeof (p as FleetEntry)?.name === 'string' && (typeof (p as FleetEntry).address === 'string' || (p as FleetEntry).address === null);
  if (!Array.isArray(proxies) || !proxies.every(entryOk)) {
    throw new RproxyError('ERR_STATE_CORRUPT', `${file} is not a fleet record (${j === undefined ? 'not JSON' : 'no "proxies" list of {name, address}'}): automatic onboarding and offboarding stop until it is fixed. Restore it from a backup; or, when every proxy of the inventory's group is provisioned and in the VRRP set, remove it (the listener then adopts the group as it is).`);
  }
  return j as FleetFile;
}

/** The fleet record; null when there is none yet (adopt the group). A corrupt one is an error, never "none". */
export async function readFleet(stateDir: string): Promise<FleetFile | null> {
  let text: string;
  try { text = await fs.readFile(fleetFile(stateDir), 'utf8'); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new RproxyError('ERR_IO', `cannot read ${fleetFile(stateDir)}: ${(e as Error).message}`);
  }
  return parseFleet(text, fleetFile(stateDir));
}

export async function writeFleet(stateDir: string, proxies: FleetEntry[], vrrpKey?: string): Promise<void> {
  await fs.mkdir(stateDir, { recursive: true });
  const f: FleetFile = { schema: 1, updatedAt: new Date().toISOString(), proxies, ...(vrrpKey ? { vrrpKey } : {}) };
  await writeFileAtomic(fleetFile(stateDir), JSON.stringify(f, null, 1) + '\n');
}

/**
 * The hosts the runner should run routes on: the group minus hosts not onboarded yet (no fleet record = all). A
 * corrupt record stops onboarding (readFleet's error, logged by the watcher), never routing: the whole group.
 */
export async function fleetProxies(config: Pick<Config, 'state_dir'>, groupHostsInOrder: string[]): Promise<string[]> {
  const fleet = await readFleet(config.state_dir).catch((e: unknown) => {
    if (e instanceof RproxyError && e.code === 'ERR_STATE_CORRUPT') return null;
    throw e;
  });
  if (!fleet) return groupHostsInOrder;
  const inFleet = new Set(fleet.proxies.map((p) => p.name));
  return groupHostsInOrder.filter((h) => inFleet.has(h));
}
