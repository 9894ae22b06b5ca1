// Onboarding's inventory edits as Ansible itself reads them (the contract tier: needs ansible-core).
import { addHostToGroup, removeHostFromGroup } from '../../../generator/src/onboard/inventory.js';
import { OPERATOR } from '../../fixtures/inventory.js';
import { needs, ANSIBLE } from '../helpers/tools.js';

const test = needs(ANSIBLE);

test('Ansible reads the edited inventories as intended (ansible-inventory --graph)', async (t) => {
  const { execFileSync } = await import('node:child_process');
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const path = await import('node:path');
  const dir = mkdtempSync(path.join(tmpdir(), 'onb-inv-'));
  const graph = (text: string) => {
    const f = path.join(dir, 'hosts.yml');
    writeFileSync(f, text);
    return execFileSync('ansible-inventory', ['-i', f, '--graph', 'proxies'], { encoding: 'utf8', env: { ...process.env, ANSIBLE_INVENTORY_UNPARSED_FAILED: '1' } });
  };
  const added = addHostToGroup(OPERATOR, 'proxies', 'proxy3.example.com', { vars: { ansible_host: '192.0.2.13' }, comment: 'added' });
  t.regex(graph(added), /proxy1\.example\.com[\s\S]*proxy2\.example\.com[\s\S]*proxy3\.example\.com/);
  let emptied = removeHostFromGroup(OPERATOR, 'proxies', 'proxy1.example.com');
  emptied = removeHostFromGroup(emptied, 'proxies', 'proxy2.example.com');
  t.notRegex(graph(emptied), /proxy\d/);
});
