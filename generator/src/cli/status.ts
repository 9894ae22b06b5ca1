/** `paas-rproxy status [--json]`: apps, pending events, last runs, recent rejections (from the state and the status file). */
import { stat } from 'node:fs/promises';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { configFromArgv, type GlobalArgs } from '../config.js';
import { EXIT } from '../errors.js';
import { indexFilePath } from '../vars/paths.js';
import { loadState } from '../vars/store.js';
import { formatRun, readStatus, recentRejections } from '../status/file.js';
import { digestsOf } from '../runner/ports.js';
import { proxiesOf } from '../runner/inventory.js';
import { readApplied } from '../runner/applied.js';
import { pendingApps } from '../runner/pending.js';
import { formatOnboarding, onboardingStatus } from '../onboard/records.js';
import { pidAlive } from '../io/pid.js';

export interface StatusArgs extends GlobalArgs { json?: boolean; runs?: number; rejections?: number; listener?: boolean; 'lag-grace'?: number }


export const command: CommandModule<GlobalArgs, StatusArgs> = {
  command: 'status',
  describe: 'Show apps, pending events and apps per proxy, the last playbook runs and recent rejections',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option('json', { type: 'boolean', default: false, describe: 'machine-readable output' })
      .option('runs', { type: 'number', default: 5, describe: 'how many recent runs to show' })
      .option('rejections', { type: 'number', default: 5, describe: 'how many recent rejections to show' })
      .option('listener', { type: 'boolean', default: true, describe: 'a listener is expected (--no-listener: the state is driven by apply/sync only)' })
      .option('lag-grace', { type: 'number', default: 30, describe: 'seconds a change may take to reach every proxy before a proxy counts as lagging' })
      .epilog('Exit codes (a health check): 0 healthy; 5 unhealthy: a proxy lags (never synced, in retry backoff, or still lacking '
        + 'a change older than --lag-grace) or the listener is down (not running, or not connected to the broker); '
        + '2 usage/config error. The reasons are listed under "health" (JSON: healthy, problems).') as Argv<StatusArgs>,
  handler: async (argv: ArgumentsCamelCase<StatusArgs>) => {
    const config = await configFromArgv(argv);
    const state = await loadState(config);
    const digests = digestsOf(state);
    const file = await readStatus(config.state_dir);
    const proxies = await proxiesOf(config).catch(() => [] as string[]);
    const perProxy: Record<string, { pendingApps: string[]; known: boolean; lastSuccess: string | null; backoff: unknown }> = {};
    for (const h of proxies) {
      const applied = await readApplied(config.state_dir, h);
      perProxy[h] = {
        pendingApps: applied ? pendingApps(digests, applied) : Object.keys(digests).sort(),
        known: applied !== null,
        lastSuccess: file?.lastSuccessByHost[h] ?? null,
        backoff: file?.backoff[h] ?? null,
      };
    }
    const rejections = await recentRejections(config.state_dir, argv.rejections ?? 5);
    const onboarding = await onboardingStatus(config.state_dir);
    const listenerRunning = file?.listener ? pidAlive(file.listener.pid) : false;
    const stateAgeMs = await stat(indexFilePath(config)).then((st) => Date.now() - st.mtimeMs, () => Infinity);
    const problems: string[] = [];
    if (argv.listener !== false) {
      if (!file?.listener) problems.push(`the listener never ran with this state_dir (${config.state_dir})`);
      else if (!listenerRunning) problems.push(`the listener is not running (pid ${file.listener.pid} is gone)`);
      else if (!file.listener.connected) problems.push('the listener is not connected to the broker');
    }
    for (const [h, p] of Object.entries(perProxy)) {
      if (!p.known && state.apps.size > 0) problems.push(`${h} was never synced`); // (no app: nothing it could lack)
      else if (p.backoff) problems.push(`${h} failed its last run and waits for a retry`);
      else if (p.pendingApps.length > 0 && stateAgeMs > (argv['lag-grace'] ?? 30) * 1000) problems.push(`${h} lags: ${p.pendingApps.length} app(s) pending`);
    }
    const out = {
      healthy: problems.length === 0,
      problems,
      apps: state.apps.size,
      listener: file?.listener ? { ...file.listener, running: listenerRunning } : null,
      pendingEvents: listenerRunning ? file?.pendingEvents ?? 0 : null,
      proxies: perProxy,
      runs: (file?.runs ?? []).slice(-(argv.runs ?? 5)),
      rejections,
      onboarding,
    };
    if (!out.healthy) process.exitCode = EXIT.CHECK;
    if (argv.json) { process.stdout.write(JSON.stringify(out, null, 2) + '\n'); return; }
    const L: string[] = [];
    L.push(out.healthy ? 'health: ok' : `health: UNHEALTHY: ${problems.join('; ')}`);
    L.push(`apps: ${out.apps}`);
    if (out.listener) {
      const l = out.listener;
      L.push(`listener: ${l.running ? `running (pid ${l.pid}, since ${l.startedAt})` : 'not running'}; broker ${l.connected && l.running ? `connected to ${l.broker}` : 'not connected'}; ${l.destination}; ${l.messages} message(s), last ${l.lastMessageAt ?? 'never'}`);
      if (l.running) L.push(`pending events (written, not yet live on every proxy): ${out.pendingEvents}`);
    } else L.push('listener: never ran with this state_dir');
    L.push('proxies:');
    for (const [h, p] of Object.entries(perProxy)) {
      const pend = p.known ? (p.pendingApps.length ? `${p.pendingApps.length} app(s) pending: ${p.pendingApps.slice(0, 8).join(' ')}${p.pendingApps.length > 8 ? ' …' : ''}` : 'up to date') : 'never synced (a full run is due)';
      const b = p.backoff as { attempt: number; nextAt: string } | null;
      L.push(`  ${h}: ${pend}; last successful run ${p.lastSuccess ?? 'unknown'}${b ? `; retry #${b.attempt} at ${b.nextAt}` : ''}`);
    }
    L.push(`last runs (${out.runs.length}):`);
    for (const r of out.runs) for (const line of formatRun(r)) L.push(`  ${line}`);
    L.push(`recent rejections (${rejections.length}):`);
    for (const j of rejections) L.push(`  ${String(j.time ?? '')} ${String(j.code ?? '')}: ${String(j.reason ?? '')}${j.message_id ? ` (message ${String(j.message_id)})` : ''}`);
    L.push(...formatOnboarding(onboarding ?? undefined));
    process.stdout.write(L.join('\n') + '\n');
  },
};
