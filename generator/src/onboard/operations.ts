/**
 * The edges of onboarding and offboarding (onboard.ts, offboard.ts): the inventory file and its locked
 * round-trip edits, recorded playbook runs under the shared one-at-a-time lock, the fleet record, and
 * `realPorts()`, the effects the steps reach through `OpPorts` (unit tests pass fakes instead).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.js';
import { RproxyError } from '../errors.js';
import { withLock } from '../io/lock.js';
import { writeFileAtomic } from '../io/atomic.js';
import { loadState } from '../vars/store.js';
import type { State } from '../state/types.js';
import { runnerPorts, runnerSettings } from '../runner/ports.js';
import { syncPass, type RunRecord, type SyncResult } from '../runner/runner.js';
import { runPlaybook } from '../runner/spawn.js';
import { recordRun, toRecord } from '../runner/record.js';
import { shellQuote, stateDirArgs, vrrpCommand, type PlaybookCommand } from '../runner/command.js';
import { writeApplied, removeApplied } from '../runner/applied.js';
import { updateStatus } from '../status/file.js';
import { readFleet, writeFleet, type FleetEntry, type FleetFile } from '../status/fleet.js';
import { inventoryLockFile, playbookLockFile } from '../io/statedir.js';
import { allHosts, groupHosts, inventoryFile as findInventoryFile } from '../runner/inventory.js';
import { resolveConnection, withOverlay, type Connection } from './connection.js';
import { runPreflight, type PreflightOptions, type PreflightReport } from './preflight.js';
import { verifyRoutes, type VerifyResult } from './verify.js';
import { VipWatch } from './vips.js';
import { connectSsh, shq, type ConnectOptions, type SshSession } from './ssh.js';
import { vrrpInputsKey } from './vrrpkey.js';
import type { Progress } from './steps.js';

export type { Progress } from './steps.js';

/** <inventory_dir>/hosts.yml (or .yaml): the file onboarding edits. */
export async function inventoryFile(config: Config): Promise<string> {
  const f = await findInventoryFile(config.inventory_dir);
  if (f) return f;
  throw new RproxyError('ERR_CONFIG_INVALID', `onboarding edits ${path.join(config.inventory_dir, 'hosts.yml')}, which does not exist (a YAML inventory with the ${config.proxies_group} group is needed)`);
}

async function editInventory(config: Config, edit: (text: string, file: string) => string): Promise<void> {
  const file = await inventoryFile(config);
  await withLock(inventoryLockFile(config.state_dir), async () => {
    const text = await fs.readFile(file, 'utf8');
    const out = edit(text, file);
    const st = await fs.stat(file);
    await writeFileAtomic(file, out, { mode: st.mode & 0o7777 });
  }, { timeoutMs: 60_000 });
}

// status.json is read, changed and rewritten: two runs of one operation ending together (the provision and the
// keepalived preparation beside it) record one after the other, or one record would be lost
let recording: Promise<void> = Promise.resolve();
function record(config: Config, rec: RunRecord, trigger: string): Promise<void> {
  recording = recording.then(() => updateStatus(config.state_dir, (s) => recordRun(s, rec, trigger)).catch(() => undefined));
  return recording;
}

/** Runs a playbook command under the given lock (the shared one-at-a-time lock by default) and records it in status.json. */
async function play(config: Config, cmd: PlaybookCommand, trigger: string, progress: Progress, lockFile = playbookLockFile(config.state_dir)): Promise<RunRecord> {
  progress(`    running: ${cmd.display}`);
  const r = await runPlaybook(cmd, {
    lockFile, lockTimeoutMs: runnerSettings(config).lockTimeoutMs,
    onLockWait: () => progress(`    waiting for another playbook run to finish (${path.basename(lockFile)})`),
  });
  const rec = toRecord(r, trigger);
  await record(config, rec, trigger);
  return rec;
}

/**
 * The lock of a run beside the shared one: limited to one host being onboarded, so it may run while another
 * playbook holds playbook.lock; a second onboarding of the same host waits for it. That host is outside the fleet,
 * except when the operator put it in the inventory first (the watcher's onboarding, inInventory): the runner's
 * routes runs then target it too, under playbook.lock, but they touch only nginx's route files
 * (--tags nginx_rproxy_routes), never what keepalived_vrrp_prepare writes; a hold run (--tags
 * keepalived_vrrp_hold) may write its hold file, and shares one task with the prepare run: the creation of the
 * track files' directory (file: state=directory, the same result whichever runs first). Its only shared resource
 * with the provision run is dpkg's lock, which both roles' package installs wait for. `host` was checked by the caller (it becomes a file name: a name over 241 characters fails
 * here with ENAMETOOLONG, as applied/<host>.json.log would).
 */
export function besideLockFile(stateDir: string, host: string): string {
  return path.join(stateDir, `playbook-${host}.lock`);
}

/** A script run as root on a host: through passwordless sudo when Ansible connects as another user (become). */
export function asRoot(conn: Pick<Connection, 'user'>, script: string): string {
  return conn.user === 'root' ? script : `sudo -n sh -c ${shq(script)}`;
}

/** Pure: an ansible-playbook command with the project's state-dir and extra arguments. */
export function playbookCommand(config: Config, args: string[], kind: PlaybookCommand['kind'], hosts: string[]): PlaybookCommand {
  const argv = [config.ansible.command, ...args, ...stateDirArgs(config.state_dir), ...config.ansible.extra_args];
  return { argv, display: shellQuote(argv), kind, playbook: config.ansible.playbook, hosts, apps: null };
}

async function connectionsOf(config: Config, hosts: string[]): Promise<Connection[]> {
  return Promise.all(hosts.map(async (h) => (await resolveConnection(config, h)).conn));
}

/** The fleet record, or the inventory's group as it is when there is none yet. */
async function fleetBase(config: Config, invText: string): Promise<FleetEntry[]> {
  const f = await readFleet(config.state_dir);
  const hosts = allHosts(invText);
  return f?.proxies ?? groupHosts(invText, config.proxies_group).map((h) => ({ name: h, address: typeof hosts.get(h)?.ansible_host === 'string' ? String(hosts.get(h)?.ansible_host) : null }));
}

async function updateFleetAdd(config: Config, entry: FleetEntry): Promise<void> {
  const invText = await fs.readFile(await inventoryFile(config), 'utf8');
  const base = await fleetBase(config, invText);
  await writeFleet(config.state_dir, [...base.filter((p) => p.name !== entry.name), entry], await vrrpInputsKey(config, invText));
}

async function updateFleetRemove(config: Config, host: string): Promise<void> {
  const invText = await fs.readFile(await inventoryFile(config), 'utf8');
  const base = await fleetBase(config, invText);
  await writeFleet(config.state_dir, base.filter((p) => p.name !== host), await vrrpInputsKey(config, invText));
}

/** VRRP run on every proxy (the watcher's answer to a changed VIP list or host order); records the inputs' key. */
export async function respreadVips(config: Config, opts: { by?: string; progress?: Progress } = {}): Promise<RunRecord> {
  const invText = await fs.readFile(await inventoryFile(config), 'utf8');
  const key = await vrrpInputsKey(config, invText);
  const hosts = groupHosts(invText, config.proxies_group);
  const rec = await play(config, vrrpCommand(runnerSettings(config).playbook, config.proxies_group, hosts), opts.by ?? 'vrrp', opts.progress ?? (() => undefined));
  if (rec.result !== 'ok') throw new RproxyError('ERR_PLAYBOOK_FAILED', rec.error ?? 'VRRP run failed');
  const f = await readFleet(config.state_dir);
  await writeFleet(config.state_dir, f?.proxies ?? hosts.map((name) => ({ name, address: null })), key);
  return rec;
}

/** What the VIP steps need of a VipWatch. */
export type VipWatcher = Pick<VipWatch, 'holders' | 'waitFor' | 'dispose'>;

/** Every effect the onboarding and offboarding steps have: on the controller, on the hosts, in the state directory. */
export interface OpPorts {
  readInventory(): Promise<{ file: string; text: string }>;
  /** locked round-trip edit of the inventory file */
  editInventory(edit: (text: string, file: string) => string): Promise<void>;
  resolveConnection(host: string, opts?: { address?: string; group?: string }): Promise<{ conn: Connection; vars: Record<string, unknown> }>;
  connections(hosts: string[]): Promise<Connection[]>;
  preflight(conn: Connection, opts: PreflightOptions): Promise<PreflightReport>;
  connectSsh(conn: Connection, opts: ConnectOptions): Promise<SshSession>;
  vipWatch(conns: Connection[]): VipWatcher;
  loadState(): Promise<State>;
  /** the app digests of the state as it is now: index.json alone when it is current (10,000 apps: ~30 ms, where
   * loadState parses every app file, 0.6-1.4 s) */
  digests(): Promise<Record<string, string>>;
  /** a temporary overlay inventory source for the duration of fn */
  withOverlay<T>(content: string, fn: (file: string) => Promise<T>): Promise<T>;
  /** a recorded playbook run under the playbook lock */
  play(cmd: PlaybookCommand, trigger: string): Promise<RunRecord>;
  /** a recorded playbook run limited to one host outside the fleet (cmd.hosts[0]), under a lock of its own: it may
   * run beside play() */
  playBeside(cmd: PlaybookCommand, trigger: string): Promise<RunRecord>;
  writeApplied(host: string, digests: Record<string, string>): Promise<void>;
  removeApplied(host: string): Promise<void>;
  verify(state: State, address: string, reference: string | null, max: number): Promise<VerifyResult>;
  /** routes changed since `host` was provisioned, run on it alone */
  catchUp(host: string): Promise<SyncResult>;
  /** the fleet record (a corrupt one throws ERR_STATE_CORRUPT: read before anything changes) */
  readFleet(): Promise<FleetFile | null>;
  fleetAdd(entry: FleetEntry): Promise<void>;
  fleetRemove(host: string): Promise<void>;
}

export function realPorts(config: Config, progress: Progress): OpPorts {
  return {
    readInventory: async () => { const file = await inventoryFile(config); return { file, text: await fs.readFile(file, 'utf8') }; },
    editInventory: (edit) => editInventory(config, edit),
    resolveConnection: (host, opts) => resolveConnection(config, host, opts),
    connections: (hosts) => connectionsOf(config, hosts),
    preflight: (conn, opts) => runPreflight(conn, opts),
    connectSsh: (conn, opts) => connectSsh(conn, opts),
    vipWatch: (conns) => new VipWatch(conns),
    loadState: () => loadState(config),
    digests: () => runnerPorts(config).digests(),
    withOverlay: (content, fn) => withOverlay(config.inventory_dir, content, fn),
    play: (cmd, trigger) => play(config, cmd, trigger, progress),
    playBeside: (cmd, trigger) => {
      if (cmd.hosts.length !== 1) throw new Error('playBeside: one host');
      return play(config, cmd, trigger, progress, besideLockFile(config.state_dir, cmd.hosts[0] as string));
    },
    writeApplied: (host, digests) => writeApplied(config.state_dir, host, digests),
    removeApplied: (host) => removeApplied(config.state_dir, host),
    verify: (state, address, reference, max) => verifyRoutes(state, config.cloud_domain, address, reference, { max }),
    catchUp: (host) => syncPass(runnerSettings(config), { ...runnerPorts(config), proxies: async () => [host] }, () => undefined, { trigger: 'onboard', onlyHosts: new Set([host]) }),
    readFleet: () => readFleet(config.state_dir),
    fleetAdd: (entry) => updateFleetAdd(config, entry),
    fleetRemove: (host) => updateFleetRemove(config, host),
  };
}
