/** The rejects log: one JSON line per rejected document, key material redacted, appended and fsynced. */
import { open } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Config } from '../config.js';
import { redactKeyMaterial } from '../tls/pem.js';
import { ensureDir } from '../io/atomic.js';
import { rejectsPath } from './paths.js';

export interface RejectRecord {
  time: string;
  code: string;
  reason: string;
  action?: string;
  app?: string;
  source?: string;
  message_id?: string;
  /** the raw document, private keys and pass phrases redacted, cut at 64 KiB */
  message: string;
}

const MAX_MESSAGE = 65536;

export function rejectRecord(r: Omit<RejectRecord, 'time' | 'message'> & { text: string }, now = new Date()): RejectRecord {
  const { text, ...rest } = r;
  let message = redactKeyMaterial(text);
  if (message.length > MAX_MESSAGE) message = message.slice(0, MAX_MESSAGE) + '…[truncated]';
  return { time: now.toISOString(), ...rest, message };
}

export async function appendRejects(config: Config, records: RejectRecord[]): Promise<void> {
  if (records.length === 0) return;
  const file = rejectsPath(config);
  await ensureDir(dirname(file));
  const h = await open(file, 'a', 0o600);
  try {
    await h.writeFile(records.map((r) => JSON.stringify(r)).join('\n') + '\n');
    await h.sync();
  } finally {
    await h.close();
  }
}
