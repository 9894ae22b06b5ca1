// The runner's idle-start latency: notify() on an idle runner -> the playbook process running, with a fake
// ansible-playbook (records when it starts), so only the coalescing policy and the runner's own work are measured
// (lock, plan, applied digests, spawn). `node --import tsx test/bench/runner-start.ts [samples]`; JSON on stdout.
import { mkdtempSync, writeFileSync, readFileSync, chmodSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Runner, type RunnerSettings } from '../../generator/src/runner/runner.js';
import { writeApplied } from '../../generator/src/runner/applied.js';

const samples = Number(process.argv[2] ?? 20);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function measure(quietMs: number): Promise<number[]> {
  const dir = mkdtempSync(path.join(tmpdir(), 'runner-start-'));
  const fake = path.join(dir, 'ansible-playbook');
  // the first thing the fake does is record the time (ms since epoch, via bash's EPOCHREALTIME); its recap goes to the
  // results callback's file, which the runner reads
  writeFileSync(fake, '#!/bin/bash\necho "${EPOCHREALTIME/./}" >> "$(dirname "$0")/starts"\nlimit=""; prev=""\nfor a in "$@"; do [ "$prev" = "--limit" ] && limit="$a"; prev="$a"; done\necho "PLAY RECAP *****"\nIFS=, read -ra hs <<< "$limit"\nr=""; for h in "${hs[@]}"; do echo "$h : ok=1 changed=1 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0"; r="$r\\"$h\\": {\\"ok\\": 1, \\"changed\\": 1},"; done\necho "{\\"event\\": \\"recap\\", \\"hosts\\": {${r%,}}}" >> "$RPROXY_RESULTS_FILE"\n');
  chmodSync(fake, 0o755);
  const s: RunnerSettings = {
    stateDir: path.join(dir, 'state'),
    playbook: { command: fake, playbook: path.join(dir, 'site.yml'), inventoryDir: path.join(dir, 'inv'), stateDir: path.join(dir, 'state'), extraArgs: [] },
    quietMs, maxWaitMs: 1500, burstQuietMs: 0, retryInitialMs: 1000, retryMaxMs: 4000, reconcileIntervalS: 0, lockTimeoutMs: 10000,
  };
  const current: Record<string, string> = { 'a-x': '0' };
  await writeApplied(s.stateDir, 'rp1', current);
  // one proxy: no VRRP hold step after the pass (it would be a second fake run)
  const runner = new Runner(s, { digests: async () => ({ ...current }), proxies: async () => ['rp1'] }, (e, f) => { if (process.env.DEBUG) console.error(e, JSON.stringify(f).slice(0, 300)); });
  const out: number[] = [];
  const starts = path.join(dir, 'starts');
  for (let i = 1; i <= samples; i++) {
    if (existsSync(starts)) rmSync(starts);
    current['a-x'] = String(i);
    const t0 = performance.timeOrigin + performance.now();
    runner.notify('event');
    const end = Date.now() + 10000;
    while (!(existsSync(starts) && readFileSync(starts, 'utf8').endsWith('\n')) && Date.now() < end) await sleep(1);
    const t1 = Number(readFileSync(starts, 'utf8').trim().split('\n')[0]) / 1000;
    out.push(Math.round((t1 - t0) * 10) / 10);
    while (runner.busy) await sleep(5);
    await sleep(50);
  }
  await runner.stop({ abandon: false });
  return out.sort((a, b) => a - b);
}

const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] as number;
async function main(): Promise<void> {
  const result: Record<string, unknown> = {};
  for (const q of [0, 250]) {
    const xs = await measure(q);
    result[`quiet_ms_${q}`] = { samples: xs.length, p50_ms: pct(xs, 50), p90_ms: pct(xs, 90), min_ms: xs[0], max_ms: xs.at(-1) };
  }
  process.stdout.write(JSON.stringify(result, null, 1) + '\n');
}
void main();
