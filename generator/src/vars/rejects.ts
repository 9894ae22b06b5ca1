/**
 * The rejects log: one JSON line per rejected document, appended and fsynced. The message it keeps was redacted
 * by the parser (spi/redact.ts) before it got here: a raw document never reaches this module.
 */
import { constants } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Config } from '../config.js';
import { MAX_LOGGED } from '../spi/redact.js';
import { ensureDir } from '../io/atomic.js';
import { rejectsPath, rejectsRotatedPath } from './paths.js';

/**
 * The rejects log's cap: past it, rejects.jsonl becomes rejects.jsonl.1 (replacing the one before) and a new log
 * starts. A hostile publisher can send rejected documents as fast as the broker takes them (each record up to
 * 64 KiB of redacted text): without a cap the state directory's disk fills, and then no valid change can be written.
 * The disk used is at most twice this.
 */
export const REJECTS_MAX_BYTES = 64 * 1024 * 1024;

export interface RejectRecord {
  time: string;
  code: string;
  reason: string;
  action?: string;
  app?: string;
  source?: string;
  message_id?: string;
  /** what is kept of the document (spi/redact.ts: no key material, no secret field), at most 64 KiB */
  message: string;
}

/** `logged`: the redacted document (ParsedDoc.logged or redactEvent), never raw text. */
export function rejectRecord(r: Omit<RejectRecord, 'time' | 'message'> & { logged: string }, now = new Date()): RejectRecord {
  const { logged, ...rest } = r;
  const message = logged.length > MAX_LOGGED ? logged.slice(0, MAX_LOGGED) + '…[truncated]' : logged;
  return { time: now.toISOString(), ...rest, message };
}

/** Where a failed rotation is reported: the store's logger (the listener's JSON log), else stderr. */
export type RejectsLog = (event: string, fields: Record<string, unknown>) => void;

/** A JSON line on stderr, for a store opened without a logger (the CLI; under systemd stderr is the journal). */
export const stderrLog: RejectsLog = (event, fields) => {
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level: 'warn', event, ...fields }) + '\n');
};

export async function appendRejects(config: Config, records: RejectRecord[], maxBytes = REJECTS_MAX_BYTES, log: RejectsLog = stderrLog): Promise<void> {
  if (records.length === 0) return;
  const file = rejectsPath(config);
  await ensureDir(dirname(file));
  await rotateIfFull(file, rejectsRotatedPath(config), maxBytes, log);
  // root runs the CLI too, in a state directory the listener's user owns: never append through a symlink that user
  // planted at this name (the redacted document is attacker-chosen text, e.g. paths for /etc/ld.so.preload)
  const h = await open(file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  try {
    await h.writeFile(records.map((r) => JSON.stringify(r)).join('\n') + '\n');
    await h.sync();
  } finally {
    await h.close();
  }
}

/** Loggers already told that rotation fails: told once, until a rotation succeeds again. */
const warned = new WeakSet<RejectsLog>();

async function rotateIfFull(file: string, rotated: string, maxBytes: number, log: RejectsLog): Promise<void> {
  let size = 0;
  try {
    const h = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
    try { size = (await h.stat()).size; } finally { await h.close(); }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // absent: nothing to rotate; a symlink: the append below refuses it (ELOOP) and fails the batch loudly
    if (code !== 'ENOENT' && code !== 'ELOOP') warnOnce(log, file, rotated, maxBytes, null, e);
    return;
  }
  if (size < maxBytes) return;
  // rename works on names, never through a link; two processes rotating at once lose at most one old log
  try {
    await rename(file, rotated);
    warned.delete(log);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') warnOnce(log, file, rotated, maxBytes, size, e); // ENOENT: another process rotated it
  }
}

function warnOnce(log: RejectsLog, file: string, rotated: string, maxBytes: number, size: number | null, e: unknown): void {
  if (warned.has(log)) return;
  warned.add(log);
  const err = e instanceof Error ? e.message : String(e);
  log('rejects_rotate_error', {
    file, rotated, size_bytes: size, cap_bytes: maxBytes, error: err,
    message: `${file} ${size === null ? 'could not be checked against' : 'is past'} its cap of ${maxBytes} bytes and was not rotated to ${rotated} (${err}): ` +
      `it keeps growing until that is fixed. Check that the listener's user owns ${dirname(file)} and both files, and that ${rotated} is a regular file (or absent); ` +
      'moving the log away also works. Rejected messages are still recorded. Said once until a rotation succeeds.',
  });
}
