// The Prometheus alert rules shipped with the listener's role: valid for Prometheus (promtool check rules), firing
// and staying quiet as intended (promtool test rules), and naming only metrics the listener exports. Needs promtool
// (Debian's prometheus package, installed by test/lab/deps.sh); no lab.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO } from '../lab/labenv.js';
import { Metrics } from '../../generator/src/metrics/metrics.js';

const RULES = path.join(REPO, 'roles/rproxy_listener/files/paas-rproxy.rules.yml');
const RULE_TESTS = path.join(REPO, 'test/fixtures/prometheus/paas-rproxy.rules.test.yml');

function promtool(args: string[]) {
  const r = spawnSync('promtool', args, { encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw new Error(`promtool: ${r.error.message} (install Debian's prometheus package: bash test/lab/deps.sh)`);
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

test('promtool check rules accepts the rules file', (t) => {
  const r = promtool(['check', 'rules', RULES]);
  t.is(r.code, 0, r.out);
  t.regex(r.out, /SUCCESS: 8 rules found/);
});

test('promtool test rules: every alert fires when it should and stays quiet otherwise', (t) => {
  const r = promtool(['test', 'rules', RULE_TESTS]);
  t.is(r.code, 0, r.out);
  t.regex(r.out, /SUCCESS/);
});

test('the rules name only metrics the listener exports', async (t) => {
  const m = new Metrics();
  const exported = new Set((await m.registry.getMetricsAsJSON()).map((x) => x.name));
  const used = new Set([...readFileSync(RULES, 'utf8').matchAll(/\b(paas_rproxy_[a-z_]+)/g)].map((x) => x[1]!.replace(/_(bucket|sum|count)$/, '')));
  t.true(used.size >= 7, [...used].join(' '));
  for (const name of used) t.true(exported.has(name), `${name} is not a metric of generator/src/metrics/metrics.ts`);
  // every alert's subject, so a new metric without an alert is a conscious choice
  for (const name of ['paas_rproxy_broker_connected', 'paas_rproxy_pending_events', 'paas_rproxy_playbook_runs_total',
    'paas_rproxy_last_successful_run_timestamp_seconds', 'paas_rproxy_rejected_events_total', 'paas_rproxy_broker_reconnects_total',
    'paas_rproxy_event_to_applied_seconds']) t.true(used.has(name), `no alert on ${name}`);
});
