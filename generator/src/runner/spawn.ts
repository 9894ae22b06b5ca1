// The edge that runs ansible-playbook: one at a time across processes, output captured for the logs, results read
// as data from the project's callback (ansible/callback_plugins/rproxy_results.py, enabled in ansible/ansible.cfg).
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PlaybookLock } from './lock.js';
import { readResults, hostOutcomes, type HostOutcome, type ParsedRun } from './recap.js';
import type { PlaybookCommand } from './command.js';
import { playbookEnv, runWarm, type WarmController } from './warm.js';

export interface SpawnResult {
  command: PlaybookCommand;
  exitCode: number | null;
  signal: string | null;
  durationMs: number;
  startedAt: string;
  output: string; // the default callback's human output (stdout and stderr), for logs and operators
  parsed: ParsedRun; // from the results callback's JSON lines
  outcomes: Map<string, HostOutcome>;
  aborted: boolean;
  /** run through the warm controller (runner/warm.ts) rather than a fresh ansible-playbook */
  warm: boolean;
}

export interface SpawnOptions {
  lockFile: string;
  lockTimeoutMs: number;
  signal?: AbortSignal | undefined; // abort: SIGTERM to the playbook (it finishes the current task's module safely), SIGKILL after 20 s
  onLockWait?: ((holder: unknown) => void) | undefined;
  onStart?: ((pid: number | undefined) => void) | undefined;
  /** the warm Ansible controller, when the caller keeps one (the listener): used when it is up, else a cold spawn */
  warm?: WarmController | undefined;
  /** the playbook lock, already taken by the caller (syncPass plans under it): not taken nor released here */
  heldLock?: PlaybookLock | undefined;
}

const KILL_AFTER_MS = 20000;

export async function runPlaybook(cmd: PlaybookCommand, opts: SpawnOptions): Promise<SpawnResult> {
  return (await runPlaybookPlanned(async () => cmd, opts, cmd.display)) as SpawnResult;
}

/**
 * Takes the playbook lock, then asks `plan` for the command: for runs whose command depends on state another
 * runner may change meanwhile (the VRRP hold). `plan` returning null releases the lock without a run.
 */
export async function runPlaybookPlanned(plan: () => Promise<PlaybookCommand | null>, opts: SpawnOptions, what = 'a planned run'): Promise<SpawnResult | null> {
  const lock = opts.heldLock ?? await PlaybookLock.acquire(opts.lockFile, what, { timeoutMs: opts.lockTimeoutMs, signal: opts.signal, onWait: opts.onLockWait });
  try {
    const cmd = await plan();
    if (cmd === null) return null;
    return await runLocked(cmd, lock, opts);
  } finally {
    if (!opts.heldLock) await lock.release();
  }
}

/** Under the playbook lock: one run, its results read from a file of its own. */
async function runLocked(cmd: PlaybookCommand, lock: PlaybookLock, opts: SpawnOptions): Promise<SpawnResult> {
  // (not argv[3]: with a second -i, e.g. onboarding's overlay inventory, that is "-i" and the cwd was the caller's)
  const playbookDir = path.dirname(cmd.playbook);
  // a fresh file per run: the callback appends, and a run that stopped early must not inherit another's recap
  const resultsDir = await fs.mkdtemp(path.join(os.tmpdir(), 'rproxy-results-'));
  const resultsFile = path.join(resultsDir, 'results.jsonl');
  try {
    return await runWithResults(cmd, playbookDir, resultsFile, lock, opts);
  } finally {
    await fs.rm(resultsDir, { recursive: true, force: true });
  }
}

async function runWithResults(cmd: PlaybookCommand, playbookDir: string, resultsFile: string, lock: PlaybookLock, opts: SpawnOptions): Promise<SpawnResult> {
  const env = { ...playbookEnv(process.env, playbookDir), RPROXY_RESULTS_FILE: resultsFile };
  const startedAt = new Date();
  const t0 = performance.now();
  const chunks: Buffer[] = [];
  let ran: { exitCode: number | null; signal: string | null; aborted: boolean; warm: boolean } | null = null;
  const w = opts.warm;
  if (w && !w.available) w.revive('not running'); // crashed: restarted in the background (throttled); this run is cold
  if (w?.available) {
    let aborted = false;
    const onAbort = () => { aborted = true; };
    let childWritten: Promise<void> = Promise.resolve(); // awaited before the lock is released: never rewrite it after
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const o = await runWarm(w.socketPath, { argv: cmd.argv, cwd: playbookDir, env, killAfterS: KILL_AFTER_MS / 1000 }, {
      onData: (b) => chunks.push(b), signal: opts.signal,
      onStart: (pid) => { childWritten = lock.setChild(pid).catch(() => undefined); opts.onStart?.(pid); },
    });
    await childWritten;
    opts.signal?.removeEventListener('abort', onAbort);
    if (o.kind === 'ran') {
      if (o.lost) chunks.push(Buffer.from(`\n${o.lost}\n`));
      ran = { exitCode: o.exitCode, signal: o.signal, aborted: aborted || opts.signal?.aborted === true, warm: true };
    } else {
      w.revive(o.reason);
      w.log('warm_fallback', { reason: o.reason, command: cmd.display.slice(0, 300) });
    }
  }
  ran ??= { ...(await coldRun(cmd, playbookDir, env, chunks, lock, opts)), warm: false };
  const output = Buffer.concat(chunks).toString('utf8');
  const parsed = readResults(await fs.readFile(resultsFile, 'utf8').catch(() => '')); // none: stopped before the callback loaded
  const outcomes = hostOutcomes(parsed, cmd.hosts);
  // a host without a recap entry (run stopped early, parse error) did not get the change: 'missing'
  return {
    command: cmd, exitCode: ran.exitCode, signal: ran.signal, durationMs: Math.round(performance.now() - t0), startedAt: startedAt.toISOString(),
    output, parsed, outcomes, aborted: ran.aborted, warm: ran.warm,
  };
}

/** A fresh ansible-playbook process (stdout and stderr interleaved into `chunks`). */
async function coldRun(cmd: PlaybookCommand, cwd: string, env: NodeJS.ProcessEnv, chunks: Buffer[], lock: PlaybookLock, opts: SpawnOptions): Promise<{ exitCode: number | null; signal: string | null; aborted: boolean }> {
  const child = spawn(cmd.argv[0] as string, cmd.argv.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  // listen before the first await: a short run may end (and emit 'close') while the lock file is written
  child.stdout.on('data', (b: Buffer) => chunks.push(b));
  child.stderr.on('data', (b: Buffer) => chunks.push(b));
  const closed = new Promise<[number | null, string | null]>((resolve) => {
    child.on('error', (e) => { chunks.push(Buffer.from(`\nspawn error: ${e.message}\n`)); resolve([127, null]); });
    child.on('close', (code, s) => resolve([code, s]));
  });
  await lock.setChild(child.pid).catch(() => undefined);
  opts.onStart?.(child.pid);
  let aborted = false;
  let killTimer: NodeJS.Timeout | undefined;
  const onAbort = () => {
    aborted = true;
    child.kill('SIGTERM');
    killTimer = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS);
  };
  if (opts.signal) { if (opts.signal.aborted) onAbort(); else opts.signal.addEventListener('abort', onAbort, { once: true }); }
  const [exitCode, sig] = await closed;
  if (killTimer) clearTimeout(killTimer);
  opts.signal?.removeEventListener('abort', onAbort);
  return { exitCode, signal: sig, aborted };
}

/** One-line operator message for a failed run: failing host(s) and task(s), or the tail of the output. */
export function failureMessage(r: SpawnResult): string {
  const bad = [...r.outcomes.entries()].filter(([, o]) => o !== 'ok');
  const parts: string[] = [];
  for (const [host, o] of bad) {
    const f = r.parsed.failures.find((x) => x.host === host);
    if (f) parts.push(`${host}: ${f.kind === 'unreachable' ? 'unreachable' : 'failed'} in task "${f.task}": ${f.message}`);
    else parts.push(`${host}: ${o === 'missing' ? 'no result (the run stopped before this host was reached)' : o}`);
  }
  if (r.parsed.recap.size === 0 && r.exitCode === 0 && bad.length > 0) {
    // a clean exit with no results at all: the callback did not run (an ANSIBLE_CONFIG that does not enable it)
    parts.push('ansible-playbook exited 0 but wrote no results: enable the rproxy_results callback (callbacks_enabled in '
      + 'ansible/ansible.cfg, or ANSIBLE_CALLBACKS_ENABLED=rproxy_results with ANSIBLE_CALLBACK_PLUGINS=<repo>/ansible/callback_plugins)');
  }
  if (parts.length === 0 && r.exitCode !== 0) {
    const tail = r.output.trim().split('\n').slice(-5).join(' | ');
    parts.push(`ansible-playbook exited with ${r.exitCode ?? r.signal}: ${tail}`);
  }
  return `playbook run failed (${r.command.display}): ${parts.join('; ')}`;
}
