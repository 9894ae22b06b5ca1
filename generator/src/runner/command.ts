// Pure: the exact ansible-playbook command lines the runner spawns (documented in ansible/site.yml and roles/nginx_rproxy/README.md).

export interface PlaybookSettings {
  command: string; // ansible-playbook
  playbook: string; // absolute path of site.yml
  /**
   * ansible/routes.yml: the targeted routes run, without site.yml's migration prelude, VRRP layout and
   * argument-spec validation (ansible/routes.yml says why). Only with the shipped site.yml; absent: site.yml.
   */
  routesPlaybook?: string | undefined;
  inventoryDir: string;
  /** the controller's state_dir: passed as rproxy_state_dir, so the playbook reads the state this process wrote */
  stateDir: string;
  extraArgs: readonly string[];
}

/** `-e {"rproxy_state_dir": ...}`: the playbook and the CLI's config can never disagree on where the state is. */
export function stateDirArgs(stateDir: string): string[] {
  return ['-e', JSON.stringify({ rproxy_state_dir: stateDir })];
}

export interface PlaybookCommand {
  argv: readonly string[]; // argv[0] is the program
  /** A shell-quoted rendering of argv, exactly what is run, for logs and error messages. */
  display: string;
  kind: 'routes' | 'routes-full' | 'vrrp';
  /** the playbook (site.yml): the run's working directory and ansible.cfg are next to it */
  playbook: string;
  hosts: readonly string[];
  apps: readonly string[] | null; // null = full run (all apps, stale files removed)
}

/** `ansible-playbook -i <inv> <routes.yml> --tags nginx_rproxy_routes --limit h1,h2 -e '{"nginx_rproxy_sync_apps": [...]}'` */
export function targetedRoutesCommand(s: PlaybookSettings, hosts: readonly string[], apps: readonly string[]): PlaybookCommand {
  if (hosts.length === 0) throw new Error('targetedRoutesCommand: no hosts');
  const sortedHosts = [...hosts].sort();
  const sortedApps = [...new Set(apps)].sort();
  const argv = [
    s.command, '-i', s.inventoryDir, s.routesPlaybook ?? s.playbook,
    '--tags', 'nginx_rproxy_routes',
    '--limit', sortedHosts.join(','),
    '-e', JSON.stringify({ nginx_rproxy_sync_apps: sortedApps }),
    ...stateDirArgs(s.stateDir),
    ...s.extraArgs,
  ];
  return { argv, display: shellQuote(argv), kind: 'routes', playbook: s.playbook, hosts: sortedHosts, apps: sortedApps };
}

/** Full routing run: all apps applied, stale app files removed (no nginx_rproxy_sync_apps). */
export function fullRoutesCommand(s: PlaybookSettings, hosts: readonly string[]): PlaybookCommand {
  if (hosts.length === 0) throw new Error('fullRoutesCommand: no hosts');
  const sortedHosts = [...hosts].sort();
  const argv = [s.command, '-i', s.inventoryDir, s.playbook, '--tags', 'nginx_rproxy_routes', '--limit', sortedHosts.join(','), ...stateDirArgs(s.stateDir), ...s.extraArgs];
  return { argv, display: shellQuote(argv), kind: 'routes-full', playbook: s.playbook, hosts: sortedHosts, apps: null };
}

/** VRRP/inventory change: `--tags keepalived_vrrp --limit <proxies_group>`. */
export function vrrpCommand(s: PlaybookSettings, proxiesGroup: string, hosts: readonly string[]): PlaybookCommand {
  const argv = [s.command, '-i', s.inventoryDir, s.playbook, '--tags', 'keepalived_vrrp', '--limit', proxiesGroup, ...stateDirArgs(s.stateDir), ...s.extraArgs];
  return { argv, display: shellQuote(argv), kind: 'vrrp', playbook: s.playbook, hosts: [...hosts].sort(), apps: null };
}

/**
 * VRRP hold (runner/vrrphold.ts): `--tags keepalived_vrrp_hold --limit <hosts> -e '{"keepalived_vrrp_hold": true}'`
 * writes the hold file of the up-to-date proxies while another proxy is stale (false lifts it).
 */
export function holdCommand(s: PlaybookSettings, hosts: readonly string[], hold: boolean): PlaybookCommand {
  if (hosts.length === 0) throw new Error('holdCommand: no hosts');
  const sortedHosts = [...hosts].sort();
  const argv = [
    s.command, '-i', s.inventoryDir, s.playbook, '--tags', 'keepalived_vrrp_hold', '--limit', sortedHosts.join(','),
    '-e', JSON.stringify({ keepalived_vrrp_hold: hold }), ...s.extraArgs,
  ];
  return { argv, display: shellQuote(argv), kind: 'vrrp', playbook: s.playbook, hosts: sortedHosts, apps: null };
}

export function shellQuote(argv: readonly string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}
