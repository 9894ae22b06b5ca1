/** Text of the cloud domain's records: a BIND zone file or an nsupdate batch (Handlebars, see templates.ts). Pure. */
import Handlebars from 'handlebars';
import { RproxyError } from '../errors.js';
import { canonicalIp, intSetting, type WildcardRecords, type ZoneRecords } from './records.js';
import { hostName, FieldError } from '../spi/fields.js';
import { NSUPDATE_TEMPLATE, ZONE_TEMPLATE } from './templates.js';

// An isolated environment: no helper or partial registered elsewhere can change what these templates print.
const hbs = Handlebars.create();
// strict: a field the template names but the data lacks is an error, not an empty string
const OPTIONS = { noEscape: true, strict: true } as const;
const zoneTemplate = hbs.compile(ZONE_TEMPLATE, OPTIONS);
const nsupdateTemplate = hbs.compile(NSUPDATE_TEMPLATE, OPTIONS);

export function renderZone(records: ZoneRecords, serial: number): string {
  intSetting('serial', serial, 0, 0xffffffff);
  return zoneTemplate({ ...records, serial });
}

export interface NsupdateTarget {
  /** the server to send to (an IP address); null: nsupdate finds the primary from the zone's SOA */
  server: string | null;
  port: number;
  /** the zone to update (the cloud domain itself, or the operator's zone that contains it) */
  zone: string;
}

export function renderNsupdate(records: WildcardRecords, target: NsupdateTarget): string {
  let zone: string;
  try {
    zone = hostName('zone', target.zone.replace(/\.$/, ''));
  } catch (e) {
    if (e instanceof FieldError) throw new RproxyError('ERR_DNS_INVALID', e.message);
    throw e;
  }
  if (records.domain !== zone && !records.domain.endsWith(`.${zone}`)) {
    throw new RproxyError('ERR_DNS_INVALID', `zone ${zone} does not contain ${records.domain}`);
  }
  const server = target.server === null ? null : canonicalIp(target.server)?.address;
  if (server === undefined) throw new RproxyError('ERR_DNS_INVALID', `server ${JSON.stringify(target.server)} is not an IP address`);
  const port = intSetting('port', target.port, 1, 65535);
  return nsupdateTemplate({ ...records, zone, server: server ?? false, port });
}
