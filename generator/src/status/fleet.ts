// The fleet record (<state_dir>/fleet.json): the proxies that are provisioned and part of the VRRP set. Onboarding
// and offboarding write it (onboard/); the inventory watcher compares the inventory's proxies group with it; the
// runner runs routes only on its members (fleetProxies), so a host added to the inventory gets no routes run
// before it was onboarded. It sits below the runner, with the status file.
import { promises as fs } from 'node:fs';
import { writeFileAtomic } from '../io/atomic.js';
import { fleetFile } from '../io/statedir.js';
import type { Config } from '../config.js';

export interface FleetEntry { name: string; address: string | null }
export interface FleetFile { schema: 1; updatedAt: string; proxies: FleetEntry[]; /** digest of the VRRP layout inputs last applied (onboard/vrrpkey.ts) */ vrrpKey?: string }

export async function readFleet(stateDir: string): Promise<FleetFile | null> {
  try {
    const j = JSON.parse(await fs.readFile(fleetFile(stateDir), 'utf8')) as FleetFile;
    return Array.isArray(j.proxies) ? j : null;
  } catch { return null; }
}

export async function writeFleet(stateDir: string, proxies: FleetEntry[], vrrpKey?: string): Promise<void> {
  await fs.mkdir(stateDir, { recursive: true });
  const f: FleetFile = { schema: 1, updatedAt: new Date().toISOString(), proxies, ...(vrrpKey ? { vrrpKey } : {}) };
  await writeFileAtomic(fleetFile(stateDir), JSON.stringify(f, null, 1) + '\n');
}

/** The hosts the runner should run routes on: the group minus hosts not onboarded yet (no fleet record = all). */
export async function fleetProxies(config: Pick<Config, 'state_dir'>, groupHostsInOrder: string[]): Promise<string[]> {
  const fleet = await readFleet(config.state_dir);
  if (!fleet) return groupHostsInOrder;
  const inFleet = new Set(fleet.proxies.map((p) => p.name));
  return groupHostsInOrder.filter((h) => inFleet.has(h));
}
