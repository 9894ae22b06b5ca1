/**
 * The zone serial kept in the controller's state directory (`<state_dir>/dns.json`): per domain the serial and
 * the digest of the records it was given to. `paas-rproxy dns` asks here for the serial of the records it is about
 * to print: the same records get the same serial (byte-identical zone files, so Ansible reports no change), changed
 * records a greater one (records.ts: nextSerial). The file is rewritten only when a serial changes.
 */
import { readFile } from 'node:fs/promises';
import type { Config } from '../config.js';
import { RproxyError } from '../errors.js';
import { ensureDir, writeFileAtomic } from '../io/atomic.js';
import { withLock } from '../io/lock.js';
import { dnsLockFile, dnsSerialFile } from '../io/statedir.js';
import { nextSerial, type SerialRecord } from './records.js';

export const dnsSerialPath = (c: Config): string => dnsSerialFile(c.state_dir);
const lockPathOf = (c: Config): string => dnsLockFile(c.state_dir);

interface SerialFile { zones: Record<string, SerialRecord & { updated: string }> }

function parse(text: string, file: string): SerialFile {
  const corrupt = (why: string) => new RproxyError('ERR_STATE_CORRUPT', `${file}: ${why}. Remove it: the next "paas-rproxy dns" starts the serials again from today's date (give --serial N to continue from a higher one).`);
  let doc: unknown;
  try { doc = JSON.parse(text); } catch { throw corrupt('not valid JSON'); }
  const zones = (doc as SerialFile | null)?.zones;
  if (typeof zones !== 'object' || zones === null || Array.isArray(zones)) throw corrupt('no "zones" mapping');
  for (const [d, z] of Object.entries(zones)) {
    if (!Number.isInteger(z?.serial) || z.serial < 0 || z.serial > 0xffffffff || typeof z.digest !== 'string') {
      throw corrupt(`the entry of ${d} needs an integer "serial" (0..4294967295) and a "digest"`);
    }
  }
  return { zones };
}

/** The serial for `digest` of `domain`, recorded when it changes (under `<state_dir>/dns.lock`). */
export async function zoneSerial(config: Config, domain: string, digest: string, now = new Date()): Promise<number> {
  const file = dnsSerialPath(config);
  try {
    await ensureDir(config.state_dir);
    return await withLock(lockPathOf(config), async () => {
      let text: string | null = null;
      try {
        text = await readFile(file, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
      const state = text === null ? { zones: {} } : parse(text, file);
      const prev = state.zones[domain] ?? null;
      const serial = nextSerial(prev, digest, now);
      if (prev?.serial !== serial || prev.digest !== digest) {
        state.zones[domain] = { serial, digest, updated: now.toISOString() };
        await writeFileAtomic(file, JSON.stringify(state, null, 2) + '\n');
      }
      return serial;
    });
  } catch (e) {
    if (e instanceof RproxyError) throw e;
    throw new RproxyError('ERR_IO', `cannot keep the zone serial in ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}. Run as the user that owns state_dir (${config.state_dir}), or give the serial with --serial N.`);
  }
}
