// The roles' molecule-style scenarios (roles/<role>/molecule/default/{converge,verify}.yml, plain playbooks) on the
// lab: converge twice (the second run changes nothing), then verify. keepalived_vrrp's verify fails a VIP over (its
// master's keepalived stopped with the service module) and back.
import test from 'ava';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ensureLab, releaseLab, runAsync, parseRecap, failureLines, waitVipsServing, INVENTORY, REPO, VAULT_PASS, VIPS, vipHolder } from '../lab/labenv.js';

async function playbook(file: string, args: string[] = []) {
  const env: NodeJS.ProcessEnv = { ...process.env, ANSIBLE_CONFIG: path.join(REPO, 'ansible', 'ansible.cfg'), ANSIBLE_NOCOLOR: '1' };
  if (existsSync(VAULT_PASS)) env.ANSIBLE_VAULT_PASSWORD_FILE = VAULT_PASS;
  const r = await runAsync('ansible-playbook', ['-i', INVENTORY, path.join(REPO, file), ...args], { timeoutMs: 600_000, env });
  return { ...r, recap: parseRecap(r.stdout) };
}

test.before(async (t) => {
  t.timeout(900_000, 'lab bring-up');
  await ensureLab();
});
test.after.always(() => releaseLab());

for (const [role, tag] of [['keepalived_vrrp', 'keepalived_vrrp'], ['nginx_rproxy', 'nginx_rproxy']] as const) {
  test.serial(`${role}: converge, converge again with changed=0, verify`, async (t) => {
    t.timeout(600_000);
    const dir = `roles/${role}/molecule/default`;
    const args = ['--tags', tag, '--limit', 'proxies'];
    const first = await playbook(`${dir}/converge.yml`, args);
    t.is(first.code, 0, failureLines(first));
    const second = await playbook(`${dir}/converge.yml`, args);
    t.is(second.code, 0, failureLines(second));
    t.true(Object.keys(second.recap).length >= 2, second.stdout.slice(-2000));
    for (const [h, c] of Object.entries(second.recap)) t.is(c.changed, 0, `${h} changed on the second converge:\n${second.stdout.split('\n').filter((l) => l.startsWith('changed:')).join('\n')}`);
    const verify = await playbook(`${dir}/verify.yml`);
    t.log(verify.stdout.split('\n').filter((l) => /^(TASK|ok|changed|fatal|failed)/.test(l)).slice(-40).join('\n'));
    t.is(verify.code, 0, failureLines(verify) || verify.stdout.slice(-3000));
    if (role === 'keepalived_vrrp') {
      t.regex(verify.stdout, /TASK \[Check that another proxy took the VIP over\][\s\S]*?ok: \[rp\d\]/, 'the failover step ran');
      t.true(await waitVipsServing(30_000), `VIPs serving again: ${VIPS.map((v) => `${v}@${vipHolder(v)}`).join(' ')}`);
    }
  });
}
