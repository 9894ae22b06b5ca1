// roles/activemq_routinginfo's role-local module: idempotent marked-block patch of an existing activemq.xml.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const MODULE = path.join(REPO, 'roles/activemq_routinginfo/library/activemq_routinginfo_xml.py');

const BLOCKS = [
  { name: 'stomp-connector', path: ['transportConnectors'], content: '<transportConnector name="stomp-routinginfo" uri="stomp://0.0.0.0:61613"/>', skip_if: '<transportConnector[^>]*uri="stomp(\\+[a-z]+)?://[^"]*:61613\\b' },
  { name: 'force-persistency', path: ['plugins'], content: '<forcePersistencyModeBrokerPlugin persistenceFlag="true"/>', skip_if: '<forcePersistencyModeBrokerPlugin' },
  { name: 'routinginfo-user', path: ['plugins', 'simpleAuthenticationPlugin', 'users'], content: '<authenticationUser username="routinginfo" password="pw" groups="routinginfo,everyone"/>', skip_if: '<authenticationUser[^>]*username="routinginfo"' },
  { name: 'routinginfo-queue', path: ['destinationInterceptors', 'virtualDestinationInterceptor', 'virtualDestinations'], content: '<compositeTopic name="routinginfo" forwardOnly="false">\n    <forwardTo>\n        <queue physicalName="paas-rproxy.routinginfo"/>\n    </forwardTo>\n</compositeTopic>' },
];

/** runs apply_block over the blocks (state present/absent) with the module's own code */
function patch(text: string, state: 'present' | 'absent'): string {
  const py = `
import importlib.util, json, sys, types
sys.modules.setdefault('ansible', types.ModuleType('ansible'))
for m in ['ansible.module_utils', 'ansible.module_utils.basic']:
    sys.modules.setdefault(m, types.ModuleType(m))
sys.modules['ansible.module_utils.basic'].AnsibleModule = object
spec = importlib.util.spec_from_file_location('m', ${JSON.stringify(MODULE)})
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
d = json.load(sys.stdin)
t = d['text']
for b in d['blocks']: t = m.apply_block(t, b, d['state'])
import xml.dom.minidom; xml.dom.minidom.parseString(t.encode())
sys.stdout.write(t)
`;
  const r = spawnSync('python3', ['-c', py], { input: JSON.stringify({ text, blocks: BLOCKS, state }), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout;
}

const OPERATOR = `<beans xmlns="http://www.springframework.org/schema/beans">
  <broker xmlns="http://activemq.apache.org/schema/core" brokerName="b">
    <!-- <plugins> in a comment is not an anchor -->
    <plugins>
      <simpleAuthenticationPlugin>
        <users>
          <authenticationUser username="mcollective" password="marionette" groups="mcollective,everyone"/>
        </users>
      </simpleAuthenticationPlugin>
    </plugins>
    <transportConnectors>
      <transportConnector name="openwire" uri="tcp://0.0.0.0:61616"/>
    </transportConnectors>
  </broker>
</beans>
`;

test('patches into the operator\'s own elements, idempotently, and removes cleanly', (t) => {
  const once = patch(OPERATOR, 'present');
  t.is(patch(once, 'present'), once, 'second run changes nothing');
  t.is(patch(once, 'absent'), OPERATOR, 'absent restores the operator\'s file byte for byte');
  t.is(once.match(/^\s*<plugins>$/gm)?.length, 1, 'joins the existing <plugins>');
  t.is(once.match(/<users>/g)?.length, 1, 'joins the existing <users>');
  t.regex(once, /username="mcollective"/);
  t.regex(once, /<authenticationUser username="routinginfo"/);
  t.regex(once, /<forcePersistencyModeBrokerPlugin persistenceFlag="true"\/>/);
  t.regex(once, /<compositeTopic name="routinginfo" forwardOnly="false">/);
  t.regex(once, /<transportConnector name="stomp-routinginfo"/);
  t.regex(once, /<!-- <plugins> in a comment is not an anchor -->\n    <plugins>\n\s+<!-- BEGIN paas-rproxy:/);
});

test('skips what the operator already has (a STOMP connector on the port, the user)', (t) => {
  const has = OPERATOR.replace('<transportConnector name="openwire" uri="tcp://0.0.0.0:61616"/>', '<transportConnector name="stomp" uri="stomp://10.0.0.1:61613"/>')
    .replace('username="mcollective"', 'username="routinginfo"');
  const out = patch(has, 'present');
  t.notRegex(out, /stomp-routinginfo/);
  t.is(out.match(/username="routinginfo"/g)?.length, 1);
});

test('Debian\'s sample activemq.xml (no plugins, no interceptors) gets whole containers before </broker>', (t) => {
  const sample = readFileSync('/etc/activemq/instances-available/main/activemq.xml', 'utf8');
  const out = patch(sample, 'present');
  t.is(patch(out, 'present'), out);
  t.is(patch(out, 'absent'), sample);
  t.regex(out, /<destinationInterceptors>\s*<virtualDestinationInterceptor>\s*<virtualDestinations>\s*<compositeTopic/);
});
