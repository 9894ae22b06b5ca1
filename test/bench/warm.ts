// Cold `ansible-playbook` against the warm controller (runner/README.md), through the runner's own runPlaybook, on a
// one-task `connection: local` play, samples interleaved. `node --import tsx test/bench/warm.ts [samples]`; JSON out.
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WarmController, playbookEnv } from '../../generator/src/runner/warm.js';
import { runPlaybook } from '../../generator/src/runner/spawn.js';

async function main(): Promise<void> {
  const samples = Number(process.argv[2] ?? 10);
  const dir = mkdtempSync(path.join(tmpdir(), 'warm-bench-'));
  const pb = path.join(dir, 'pb');
  const state = path.join(dir, 'state');
  mkdirSync(pb);
  mkdirSync(state, { mode: 0o750 });
  writeFileSync(path.join(pb, 'ansible.cfg'), '[defaults]\ngathering = explicit\nretry_files_enabled = False\n');
  const play = path.join(pb, 'play.yml');
  writeFileSync(play, '- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n    - debug: {msg: "{{ v }}"}\n');
  const warm = new WarmController({
    command: 'ansible-playbook', cwd: pb, env: playbookEnv(process.env, pb), socketPath: path.join(state, 'warm-ansible.sock'),
    script: path.resolve('ansible', 'warm_controller.py'), log: () => undefined,
  });
  const t0 = Date.now();
  if (!(await warm.start())) throw new Error('the warm controller did not start');
  const startMs = Date.now() - t0;
  const times: Record<'cold' | 'warm', number[]> = { cold: [], warm: [] };
  for (let i = 0; i < samples; i++) {
    for (const mode of ['cold', 'warm'] as const) {
      const argv = ['ansible-playbook', '-i', 'localhost,', play, '-e', `v=${i}`];
      const r = await runPlaybook({ argv, display: argv.join(' '), kind: 'routes', playbook: play, hosts: ['localhost'], apps: null },
        { lockFile: path.join(state, 'playbook.lock'), lockTimeoutMs: 60000, ...(mode === 'warm' ? { warm } : {}) });
      if (r.exitCode !== 0 || r.warm !== (mode === 'warm')) throw new Error(`${mode} run failed: ${r.output}`);
      times[mode].push(r.durationMs);
    }
  }
  await warm.stop();
  const stats = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return { samples: s.length, p50_ms: s[Math.floor(s.length / 2)], min_ms: s[0], max_ms: s.at(-1) }; };
  process.stdout.write(JSON.stringify({ controller_start_ms: startMs, cold: stats(times.cold), warm: stats(times.warm) }, null, 1) + '\n');
}
void main();
