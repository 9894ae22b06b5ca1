/**
 * `paas-rproxy vrrp-layout`: prints the VRRP layout (JSON) for the proxies, so the keepalived_vrrp
 * role only prints it. Input either as flags (--host NAME=ADDRESS ..., --vip ADDRESS[/PREFIX] ...) or
 * as one JSON document on stdin (--stdin):
 *   {"hosts":[{"name","address","ansible_host"}], "vips":[...], "router_id_base", "unicast"}
 * (site.yml passes the inventory's raw keepalived_vrrp_address / ansible_host: the layout decides whether an
 * address is usable). --unicast (or "unicast": true) requires an IP address for every host.
 * Host order = inventory order.
 */
import { readFileSync } from 'node:fs';
import type { CommandModule } from 'yargs';
import { RproxyError } from '../errors.js';
import { computeVrrpLayout, VrrpLayoutError, type VrrpLayoutInput } from '../layout/vrrp.js';

interface Args {
  host?: string[];
  vip?: string[];
  'router-id-base'?: number;
  stdin?: boolean;
  unicast?: boolean;
  pretty?: boolean;
}

/** JSON booleans, and the strings Ansible's `bool` accepts (an -e key=value gives a string). */
function parseFlag(v: unknown): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v === 'boolean') return v;
  const s = String(v).trim().toLowerCase();
  if (['true', 'yes', 'on', '1', 'y', 't'].includes(s)) return true;
  if (['false', 'no', 'off', '0', 'n', 'f', ''].includes(s)) return false;
  throw new VrrpLayoutError('ERR_VRRP_BAD_INPUT', `"unicast" must be a boolean, got ${JSON.stringify(v)}`);
}

function parseHost(spec: string): { name: string; address: string | null } {
  const eq = spec.indexOf('=');
  if (eq < 0) return { name: spec, address: null };
  return { name: spec.slice(0, eq), address: spec.slice(eq + 1) || null };
}

function readInput(args: Args): VrrpLayoutInput {
  return args.stdin ? parseStdinInput(readFileSync(0, 'utf8'), args) : parseFlagsInput(args);
}

/** The --stdin document (pure; exported for the unit tests). */
export function parseStdinInput(text: string, args: Pick<Args, 'router-id-base' | 'unicast'> = {}): VrrpLayoutInput {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new VrrpLayoutError('ERR_VRRP_BAD_INPUT', `stdin is not a JSON document: ${(e as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as VrrpLayoutInput).hosts) ||
      !Array.isArray((doc as VrrpLayoutInput).vips)) {
    throw new VrrpLayoutError('ERR_VRRP_BAD_INPUT', 'stdin JSON needs "hosts" and "vips" arrays');
  }
  const d = doc as VrrpLayoutInput & { unicast?: unknown };
  if (!d.hosts.every((h) => typeof h === 'object' && h !== null && !Array.isArray(h))) {
    throw new VrrpLayoutError('ERR_VRRP_BAD_INPUT', 'every entry of "hosts" must be an object {"name", "address", "ansible_host"}');
  }
  return {
    hosts: d.hosts,
    vips: d.vips,
    unicast: (args.unicast ?? false) || parseFlag(d.unicast),
    ...(args['router-id-base'] !== undefined ? { router_id_base: args['router-id-base'] } :
      d.router_id_base !== undefined && d.router_id_base !== null ? { router_id_base: numeric(d.router_id_base) } : {}),
  };
}

/** An integer given as a string (an -e key=value) is that number; anything else is left for the layout to reject. */
const numeric = (v: unknown): number => (typeof v === 'string' && /^\d{1,3}$/.test(v) ? Number(v) : (v as number));

/** The --host/--vip flags (pure; exported for the unit tests). --host NAME=ADDRESS: ADDRESS must be an IP. */
export function parseFlagsInput(args: Args): VrrpLayoutInput {
  return {
    hosts: (args.host ?? []).map(parseHost),
    vips: args.vip ?? [],
    unicast: args.unicast ?? false,
    ...(args['router-id-base'] !== undefined ? { router_id_base: args['router-id-base'] } : {}),
  };
}

export const command: CommandModule<object, Args> = {
  command: 'vrrp-layout',
  describe: 'print the VRRP layout (masters, priorities, router ids, tracking weight) per proxy as JSON',
  builder: (y) =>
    y
      .option('host', { type: 'string', array: true, describe: 'proxy NAME=ADDRESS, repeat in inventory order' })
      .option('vip', { type: 'string', array: true, describe: 'VIP ADDRESS[/PREFIX], repeat in order' })
      .option('router-id-base', { type: 'number', describe: 'default virtual_router_id = base + VIP position (default 50)' })
      .option('stdin', { type: 'boolean', default: false, describe: 'read {"hosts":[{"name","address","ansible_host"}],"vips":[..],"unicast"} JSON from stdin' })
      .option('unicast', { type: 'boolean', describe: 'unicast VRRP: every host needs an IP address (an error names the host that has none)' })
      .option('pretty', { type: 'boolean', default: false, describe: 'indent the JSON' })
      .example('$0 vrrp-layout --host rp1=198.51.100.11 --host rp2=198.51.100.12 --vip 198.51.100.201/24 --vip 198.51.100.202/24', '') as never,
  handler: (args) => {
    try {
      const layout = computeVrrpLayout(readInput(args));
      process.stdout.write(JSON.stringify(layout, null, args.pretty ? 2 : undefined) + '\n');
    } catch (e) {
      // usage/config error (exit 2) with the layout's own code in the message
      if (e instanceof VrrpLayoutError) throw new RproxyError('ERR_INPUT', `vrrp-layout: ${e.message} (${e.code})`);
      throw e;
    }
  },
};
