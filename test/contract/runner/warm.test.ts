// The warm Ansible controller (ansible/warm_controller.py + runner/warm.ts) against the real ansible-core (Debian,
// test/lab/deps.sh) on a local play: same output and exit code as a cold ansible-playbook, no state carried from one
// run to the next, abort, strict refusals, socket mode, fallback, and no process left behind.
import { needs, ANSIBLE } from '../helpers/tools.js';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, statSync, existsSync, chmodSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { WarmController, playbookEnv, runWarm, removeStaleWarmSockets } from '../../../generator/src/runner/warm.js';
import { warmSocketFile as warmSocketPath } from '../../../generator/src/io/statedir.js';
import { runPlaybook, type SpawnResult } from '../../../generator/src/runner/spawn.js';
import type { PlaybookCommand } from '../../../generator/src/runner/command.js';

const test = needs(ANSIBLE);

const SCRIPT = path.resolve('ansible', 'warm_controller.py');
const PLAY = `- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: say
      debug: {msg: "value={{ v | default('none') }}"}
    - name: facts set by this run only
      set_fact: {seen: "{{ (seen | default([])) + [v | default('none')] }}"}
    - name: write
      copy: {dest: "{{ out }}", content: "{{ seen | to_json }}\\n"}
      when: out is defined
    - name: fail on request
      fail: {msg: "asked to fail"}
      when: boom is defined
    - name: sleep on request
      command: sleep {{ nap }}
      when: nap is defined
`;

interface Env { dir: string; pb: string; play: string; state: string; logs: Array<[string, Record<string, unknown>]>; warm: WarmController }

function setup(): Env {
  const dir = mkdtempSync(path.join(tmpdir(), 'warm-test-'));
  const pb = path.join(dir, 'pb');
  const state = path.join(dir, 'state');
  mkdirSync(pb);
  mkdirSync(state, { mode: 0o750 });
  chmodSync(state, 0o750);
  // the project's results callback, as ansible/ansible.cfg enables it: the runner reads hosts and failures from it
  writeFileSync(path.join(pb, 'ansible.cfg'), `[defaults]\ngathering = explicit\nretry_files_enabled = False\nstdout_callback = default\ncallback_plugins = ${path.join(path.dirname(SCRIPT), 'callback_plugins')}\ncallbacks_enabled = rproxy_results\n`);
  const play = path.join(pb, 'play.yml');
  writeFileSync(play, PLAY);
  const logs: Env['logs'] = [];
  const warm = new WarmController({
    command: 'ansible-playbook', cwd: pb, env: playbookEnv(process.env, pb), socketPath: path.join(state, 'warm-ansible.sock'),
    script: SCRIPT, log: (e, f) => logs.push([e, f]), restartMinMs: 0,
  });
  return { dir, pb, play, state, logs, warm };
}

function cmd(e: Env, ...extra: string[]): PlaybookCommand {
  const argv = ['ansible-playbook', '-i', 'localhost,', e.play, ...extra];
  return { argv, display: argv.join(' '), kind: 'routes', playbook: e.play, hosts: ['localhost'], apps: null };
}

const run = (e: Env, c: PlaybookCommand, warm: boolean, signal?: AbortSignal): Promise<SpawnResult> =>
  runPlaybook(c, { lockFile: path.join(e.state, 'playbook.lock'), lockTimeoutMs: 60000, ...(warm ? { warm: e.warm } : {}), ...(signal ? { signal } : {}) });

/** running (a zombie waiting for its parent to reap it counts as gone) */
function alive(pid: number): boolean {
  try { const st = readFileSync(`/proc/${pid}/stat`, 'utf8'); return st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3) !== 'Z'; } catch { return false; }
}
/** every descendant of pid (from /proc) */
function descendants(pid: number): number[] {
  const kids = new Map<number, number[]>();
  for (const p of readdirProc()) {
    try {
      const st = readFileSync(`/proc/${p}/stat`, 'utf8');
      const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
      kids.set(ppid, [...(kids.get(ppid) ?? []), p]);
    } catch { /* gone */ }
  }
  const out: number[] = [];
  const walk = (x: number) => { for (const k of kids.get(x) ?? []) { out.push(k); walk(k); } };
  walk(pid);
  return out;
}
function readdirProc(): number[] {
  return readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number);
}
function cmdline(pid: number): string {
  try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { return ''; }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(fn: () => boolean, ms = 20000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) { if (fn()) return true; await sleep(25); }
  return false;
}

test.serial('warm runs: same output and exit code as cold runs; consecutive runs with other vars and verbosity carry nothing over', async (t) => {
  const e = setup();
  t.true(await e.warm.start(), JSON.stringify(e.logs));
  try {
    t.is(statSync(e.warm.socketPath).mode & 0o777, 0o600, 'socket mode 0600');
    const out = `${e.dir}/out`;
    const cases: Array<[string, string[], number]> = [
      ['verbose, v=1', ['-v', '-e', 'v=1'], 0],
      ['v=2', ['-e', 'v=2', '-e', `out=${out}`], 0],
      ['failing', ['-e', 'boom=1'], 2],
      ['bad option', ['--no-such-option'], 2],
    ];
    const effect = () => { const x = existsSync(out) ? readFileSync(out, 'utf8') : ''; rmSync(out, { force: true }); return x; };
    for (const [name, extra, code] of cases) {
      const w = await run(e, cmd(e, ...extra), true);
      const wOut = effect();
      const c = await run(e, cmd(e, ...extra), false);
      const cOut = effect();
      t.true(w.warm, `${name}: ran warm`);
      t.false(c.warm);
      t.is(w.exitCode, code, `${name}: ${w.output}`);
      t.is(c.exitCode, code, name);
      t.is(w.output, c.output, `${name}: identical output`);
      t.is(wOut, cOut, `${name}: identical effect`);
      t.deepEqual([...w.outcomes], [...c.outcomes], `${name}: identical results (the callback wrote to this run's own file)`);
      t.deepEqual([...w.outcomes.values()], [code === 0 ? 'ok' : name === 'failing' ? 'failed' : 'missing'], name);
      t.deepEqual(w.parsed.failures.map((f) => f.host), name === 'failing' ? ['localhost'] : [], name);
      if (name === 'v=2') t.is(wOut, '["2"]\n', 'the second run saw only its own vars');
    }
    const again = await run(e, cmd(e, '-e', 'v=3'), true);
    t.notRegex(again.output, /Using .* as config file/, '-v of an earlier run did not stick (Display verbosity is per run)');
  } finally { await e.warm.stop(); }
});

test.serial('abort: the run gets SIGTERM at once (its running task ends as with a cold abort) and nothing is left; stop leaves no process', async (t) => {
  const e = setup();
  t.true(await e.warm.start());
  const ctl = e.warm.pid as number;
  let runPid = 0;
  const ac = new AbortController();
  const p = runPlaybook(cmd(e, '-e', 'nap=6'), {
    lockFile: path.join(e.state, 'playbook.lock'), lockTimeoutMs: 60000, warm: e.warm, signal: ac.signal, onStart: (pid) => { runPid = pid ?? 0; },
  });
  t.true(await until(() => runPid > 0 && descendants(runPid).some((d) => cmdline(d).startsWith('sleep'))), 'the sleep task runs');
  const tree = [runPid, ...descendants(runPid)];
  ac.abort();
  t.true(await until(() => !alive(runPid), 5000), 'the run (ansible-playbook itself) is gone at once');
  const r = await p;
  t.true(r.aborted && r.warm);
  t.is(r.exitCode, null);
  t.is(r.signal, 'SIGTERM');
  t.true(await until(() => tree.every((x) => !alive(x))), `left: ${tree.filter(alive).join(',')}`);
  const all = [ctl, ...descendants(ctl)];
  await e.warm.stop();
  t.true(all.every((x) => !alive(x)), 'no process of the controller is left after stop');
  t.false(existsSync(e.warm.socketPath), 'socket removed');
});

test.serial('the listener dying (SIGKILL) takes the controller, its handler and the run with it', async (t) => {
  const e = setup();
  t.true(await e.warm.start());
  const ctl = e.warm.pid as number;
  let runPid = 0;
  const p = runPlaybook(cmd(e, '-e', 'nap=60'), { lockFile: path.join(e.state, 'playbook.lock'), lockTimeoutMs: 60000, warm: e.warm, onStart: (pid) => { runPid = pid ?? 0; } });
  t.true(await until(() => runPid > 0));
  const tree = [ctl, ...descendants(ctl)];
  t.true(tree.length >= 3, 'controller, handler, run');
  process.kill(ctl, 'SIGKILL'); // what the listener's death does to it (PDEATHSIG chain below it)
  const r = await p;
  t.true(r.warm);
  t.is(r.exitCode, null);
  // the handler, told by PDEATHSIG, SIGTERMs the run and reports it; or it is gone first and the client says so
  t.true(r.signal === 'SIGTERM' || /warm controller was lost/.test(r.output), `${r.signal} ${r.output}`);
  t.true(await until(() => tree.every((x) => !alive(x))), `left: ${tree.filter(alive).join(',')}`);
  await e.warm.stop();
});

test.serial('bad requests are refused, nothing run', async (t) => {
  const e = setup();
  t.true(await e.warm.start());
  try {
    const env = playbookEnv(process.env, e.pb);
    const ask = (argv: string[], over: Partial<{ cwd: string; env: NodeJS.ProcessEnv }> = {}) => {
      const out: Buffer[] = [];
      return runWarm(e.warm.socketPath, { argv, cwd: over.cwd ?? e.pb, env: over.env ?? env, killAfterS: 5 }, { onData: (b) => out.push(b) });
    };
    const refused = async (p: ReturnType<typeof ask>, re: RegExp) => { const o = await p; t.is(o.kind, 'unavailable'); if (o.kind === 'unavailable') t.regex(o.reason, re); };
    await refused(ask(['/bin/sh', '-c', 'touch /tmp/pwned']), /bad_command/);
    await refused(ask(['ansible-playbook']), /bad_request/);
    await refused(ask(['ansible-playbook', e.play], { cwd: '/' }), /env_mismatch/);
    await refused(ask(['ansible-playbook', e.play], { env: { ...env, ANSIBLE_CONFIG: '/etc/other.cfg' } }), /env_mismatch.*ANSIBLE_CONFIG/);
    await refused(ask(['ansible-playbook', 'a\0b']), /bad_request/);
    // raw frames: a non-request first frame, an oversized length, garbage JSON
    const raw = (bytes: Buffer) => new Promise<string>((resolve) => {
      const s = net.createConnection(e.warm.socketPath, () => s.write(bytes));
      let got = '';
      s.on('data', (d) => { got += d.toString('latin1'); });
      s.on('close', () => resolve(got));
      s.on('error', () => resolve(got));
    });
    const hdr = (k: string, n: number) => { const b = Buffer.alloc(5); b.write(k, 0, 'latin1'); b.writeUInt32BE(n, 1); return b; };
    t.regex(await raw(Buffer.concat([hdr('A', 0)])), /bad_request/);
    t.regex(await raw(hdr('R', 0xffffffff)), /larger than/);
    t.regex(await raw(Buffer.concat([hdr('R', 3), Buffer.from('{x]')])), /not UTF-8 JSON/);
    t.false(existsSync('/tmp/pwned'));
    // still serving after all that
    const ok = await run(e, cmd(e, '-e', 'v=9'), true);
    t.true(ok.warm);
    t.is(ok.exitCode, 0);
  } finally { await e.warm.stop(); }
});

test.serial('a dead controller: the run falls back to a cold ansible-playbook (logged), and the controller is restarted', async (t) => {
  const e = setup();
  t.true(await e.warm.start());
  const ctl = e.warm.pid as number;
  process.kill(ctl, 'SIGKILL');
  await until(() => !e.warm.available);
  const r = await run(e, cmd(e, '-e', 'v=5'), true);
  t.false(r.warm);
  t.is(r.exitCode, 0);
  t.regex(r.output, /value=5/);
  // never started (not available): no fallback line; a socket that died under an "available" controller logs one
  t.true(await until(() => e.warm.available), 'restarted in the background');
  t.not(e.warm.pid, ctl);
  const r2 = await run(e, cmd(e, '-e', 'v=6'), true);
  t.true(r2.warm);
  await e.warm.stop();
});

test.serial('a module changed on disk is never shipped from the payload cache: the controller refuses as stale, the run goes cold with the new code, the controller restarts', async (t) => {
  const e = setup();
  const lib = path.join(e.pb, 'library');
  mkdirSync(lib);
  const mod = (v: string) => `#!/usr/bin/python3\nfrom ansible.module_utils.basic import AnsibleModule\nAnsibleModule(argument_spec={}).exit_json(changed=False, msg="module ${v}")\n`;
  writeFileSync(path.join(lib, 'rproxy_probe.py'), mod('one'));
  const play = path.join(e.pb, 'probe.yml');
  writeFileSync(play, '- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n    - rproxy_probe: {}\n      register: r\n    - debug: {msg: "said {{ r.msg }}"}\n');
  const probe = (): PlaybookCommand => ({ argv: ['ansible-playbook', '-i', 'localhost,', play], display: 'probe', kind: 'routes', playbook: play, hosts: ['localhost'], apps: null });
  t.true(await e.warm.start());
  try {
    const first = await run(e, probe(), true);
    t.true(first.warm);
    t.regex(first.output, /said module one/);
    const ctl = e.warm.pid;
    writeFileSync(path.join(lib, 'rproxy_probe.py'), mod('two')); // same name: the payload cache's key
    const second = await run(e, probe(), true);
    t.false(second.warm, 'refused as stale: run cold');
    t.regex(second.output, /said module two/);
    t.true(await until(() => e.warm.available && e.warm.pid !== ctl), 'restarted');
    const third = await run(e, probe(), true);
    t.true(third.warm);
    t.regex(third.output, /said module two/, 'the restarted controller ships the new code');
  } finally { await e.warm.stop(); }
});

test.serial('a controller whose socket is gone: fallback logged; a socket dir writable by others is refused', async (t) => {
  const e = setup();
  t.true(await e.warm.start());
  rmSync(e.warm.socketPath);
  const r = await run(e, cmd(e, '-e', 'v=7'), true);
  t.false(r.warm);
  t.is(r.exitCode, 0);
  t.true(e.logs.some(([ev, f]) => ev === 'warm_fallback' && /ENOENT/.test(String(f.reason))), JSON.stringify(e.logs.map((l) => l[0])));
  await e.warm.stop();
  const e2 = setup();
  chmodSync(e2.state, 0o777);
  t.false(await e2.warm.start());
  t.true(e2.logs.some(([ev, f]) => ev === 'warm_unavailable' && /writable only by it/.test(String(f.stderr))), JSON.stringify(e2.logs));
  await e2.warm.stop();
});

test.serial('one socket per listener; the sockets of listeners that are gone are removed, nothing else', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'warm-stale-'));
  const listen = (f: string) => new Promise<net.Server>((r) => { const srv = net.createServer(); srv.listen(f, () => r(srv)); });
  const dead = 2 ** 22 + 12345; // above pid_max's default: no such process
  const mine = await listen(warmSocketPath(dir, process.pid));
  const gone = await listen(warmSocketPath(dir, dead));
  gone.close(); // (closing a unix server removes its file: put a socket file back, as a SIGKILLed controller leaves it)
  const left = await listen(warmSocketPath(dir, dead));
  writeFileSync(path.join(dir, `warm-ansible-${dead + 1}.sock`), 'not a socket');
  await removeStaleWarmSockets(dir);
  t.true(existsSync(warmSocketPath(dir, process.pid)), 'a live listener\'s socket stays');
  t.false(existsSync(warmSocketPath(dir, dead)), 'a dead listener\'s socket goes');
  t.true(existsSync(path.join(dir, `warm-ansible-${dead + 1}.sock`)), 'a regular file is never removed');
  mine.close(); left.close();
});

test.serial('a controller whose parent is not the listener that started it exits at once (a parent dead before prctl: reparented to a subreaper, not always to 1)', async (t) => {
  const { spawnSync } = await import('node:child_process');
  const e = setup();
  const sock = path.join(e.state, 'orphan.sock');
  // its real parent is this process; the listener it was started for (pid 1 here, never our pid) is "gone"
  const r = spawnSync('/usr/bin/python3', [SCRIPT, '--socket', sock, '--command', 'ansible-playbook', '--parent-pid', String(process.pid === 1 ? 2 : 1)],
    { cwd: e.pb, env: playbookEnv(process.env, e.pb), timeout: 30_000, encoding: 'utf8' });
  t.is(r.status, 1, r.stderr);
  t.false(existsSync(sock), 'it never listened');
  // control: with its real parent's pid it starts (and says ready)
  t.true(await e.warm.start());
  await e.warm.stop();
});
