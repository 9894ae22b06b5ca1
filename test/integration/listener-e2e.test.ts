// The listener end to end: a real (private) ActiveMQ patched by roles/activemq_routinginfo, a publisher that
// sends exactly what the broker plug-in sends, the real listener process, real ansible-playbook runs, and the
// lab's real proxies checked through both VIPs (and each proxy's own address). Serial; needs root + the lab.
import test from 'ava';
import { readFileSync, writeFileSync, mkdtempSync, existsSync, openSync, closeSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ensureLab, releaseLab } from '../lab/labenv.js';
import {
  PrivateBroker, publisher, documents, ListenerProc, writeListenerConfig, gearVia, statusVia, routesJson, spi, burst,
  waitFor, sleep, VIPS, PROXY_ADDR, LAB, REPO,
  LISTENER_STOMP,
} from '../bench/latency.js';
import { StompIntake, type Delivery } from '../../generator/src/listener/stomp.js';
import { EXIT } from '../../generator/src/errors.js';

const STOMP_PORT = 61633;
const broker = new PrivateBroker(STOMP_PORT);
const dir = mkdtempSync(path.join(tmpdir(), 'rproxy-listener-it-'));
const config = path.join(dir, 'config.yml');
const listener = new ListenerProc(config, path.join(dir, 'listener.log'));
const ALL_ADDRESSES = [...VIPS, ...Object.values(PROXY_ADDR)];
const fq = (id: string) => `${id}.apps.example.com`;

async function publish(bodies: string[]): Promise<void> {
  const p = await publisher(STOMP_PORT);
  for (const b of bodies) p.send(b);
  await p.close();
}

/** every address in `addresses` answers HOST with a gear of `backends` (or, with backends = null, 404) */
function serves(host: string, backends: string[] | null, addresses = ALL_ADDRESSES): boolean {
  return addresses.every((a) => (backends === null ? statusVia(a, host) === 404 : backends.includes(gearVia(a, host))));
}

test.before(async (t) => {
  t.timeout(900_000, 'lab bring-up and a private ActiveMQ');
  await ensureLab();
  if (!existsSync(path.join(REPO, 'dist', 'listener', 'main.js'))) throw new Error('run npm run build first');
  broker.prepare({ wipe: true });
  await broker.start();
  writeListenerConfig(config, { stompPort: STOMP_PORT });
  listener.start();
  const c = await listener.waitEvent('broker_connected', () => true, 60_000);
  if (!c) throw new Error(`listener did not connect:\n${listener.lines.map((l) => JSON.stringify(l)).join('\n')}`);
  t.log(`listener log: ${path.join(dir, 'listener.log')}`);
});

test.after.always(async (t) => {
  t.timeout(180_000);
  await listener.stop('SIGTERM').catch(() => undefined);
  await broker.stop().catch(() => undefined);
  restartSshd('rp2'); // in case a test stopped it and failed
  releaseLab();
});

test.serial('the plug-in\'s exact messages (samples.yml, no persistent header) become live through both VIPs', async (t) => {
  t.timeout(180_000);
  // the project's copy of the real Psych dump (test/fixtures/spi/samples.yml), byte for byte
  const samples = readFileSync(path.join(REPO, 'test/fixtures/spi/samples.yml'), 'utf8');
  const docs = documents(samples);
  t.is(docs.join(''), samples, 'documents are the file\'s bytes');
  const cut = docs.findIndex((d) => d.includes(':action: :remove_public_endpoint'));
  t.true(cut > 0);
  const before = routesJson(config).find((r) => r.fqdn === fq('shop-acme'));
  await publish(docs.slice(0, cut));
  const expectRoute = await waitFor(() => {
    const r = routesJson(config).find((x) => x.fqdn === fq('shop-acme'));
    return r && r.aliases.includes('www.example.com') && r.backends.length >= 2 ? r : undefined;
  }, 30_000, 200);
  t.truthy(expectRoute, 'state has shop-acme with its alias');
  t.log(`shop-acme backends: ${expectRoute!.backends.join(' ')}`);
  t.true(await waitFor(() => serves(fq('shop-acme'), expectRoute!.backends) && serves('www.example.com', expectRoute!.backends), 30_000, 250),
    'shop-acme and its alias live through both VIPs and both proxies');
  // every message was acked after its apply: nothing rejected among the plug-in's messages
  t.is(listener.events('message_rejected').length, 0);
  await publish(docs.slice(cut));
  t.true(await waitFor(() => serves(fq('shop-acme'), null), 30_000, 250), 'delete_application removed the route everywhere');
  if (before) {
    // best effort: give the lab its demo app back
    await publish(documents(readFileSync(path.join(REPO, 'test', 'lab', 'demo.yml'), 'utf8')));
  }
});

test.serial('SIGKILL in the middle of a 500-event burst over 50 apps, restart: nothing lost, nothing doubled', async (t) => {
  t.timeout(600_000);
  const ns = 'lsnk';
  const { events, expected } = burst(ns, 50, 10, 'k');
  t.is(events.length, 500);
  const from = listener.lines.length;
  // the burst takes ~2.5 s (5 ms apart), so the kill lands in its middle
  const pub = (async () => {
    const p = await publisher(STOMP_PORT);
    for (const e of events) { p.send(e); await sleep(5); }
    await p.close();
  })();
  const applied = () => listener.lines.slice(from).filter((l) => l.event === 'message').length;
  const mid = await waitFor(() => applied() >= 150, 60_000, 5);
  listener.kill('SIGKILL');
  await waitFor(() => listener.exitCode !== null, 10_000, 20);
  const atKill = applied();
  await pub;
  t.truthy(mid, 'the listener was killed mid-burst');
  t.true(atKill < 500, `killed after ${atKill} of 500 applied messages`);
  t.log(`killed after ${atKill} applied messages`);
  const restartAt = listener.lines.length;
  listener.start();
  const ok = await waitFor(() => {
    const routes = routesJson(config);
    return [...expected].every(([id, e]) => {
      const r = routes.find((x) => x.fqdn === fq(id));
      return r && JSON.stringify(r.backends) === JSON.stringify(e.backends) && JSON.stringify(r.aliases) === JSON.stringify(e.aliases);
    });
  }, 120_000, 500);
  // quiescent: the redelivered and remaining messages are all processed (no batch for 3 s)
  await waitFor(() => { const b = listener.lines.slice(restartAt).filter((l) => l.event === 'batch').at(-1); return !b || Date.now() - Date.parse(b.time) > 3000; }, 60_000, 250);
  const routes = routesJson(config);
  for (const [id, e] of expected) {
    const r = routes.find((x) => x.fqdn === fq(id));
    t.deepEqual({ backends: r?.backends, aliases: r?.aliases }, e, `state of ${id}`);
  }
  t.true(ok);
  // live everywhere: wait for the runs to finish, then every app through both VIPs and both proxies
  t.true(await waitFor(() => [...expected].every(([id, e]) => serves(fq(id), e.backends)), 120_000, 1000), 'all 50 apps live everywhere');
  const [firstId, first] = [...expected][0]!;
  for (const alias of first.aliases) t.true(serves(alias, first.backends), `${firstId} alias ${alias}`);
  // clean up
  await publish([...expected.keys()].map((id) => spi.del(id.slice(0, id.lastIndexOf('-')), ns)));
  t.true(await waitFor(() => serves(fq(firstId), null), 60_000, 500));
});

test.serial('cumulative ack (ack mode client) on the real ActiveMQ: one ACK covers every earlier delivery of its subscription, only those; after a reconnect the rest come again, and an old connection\'s ack sends nothing on the new one', async (t) => {
  t.timeout(300_000);
  t.is(await listener.stop('SIGTERM'), 0);
  // the listener's own subscription (same queue, user, headers), driven by hand; the bodies are never applied
  const got: Delivery[] = [];
  const events: string[] = [];
  const intake = new StompIntake({
    brokers: [{ host: '127.0.0.1', port: STOMP_PORT }], login: LISTENER_STOMP.login, passcode: LISTENER_STOMP.passcode,
    destination: '/queue/paas-rproxy.routinginfo', clientId: 'paas-rproxy', heartbeatMs: 10000, prefetch: 1000,
    reconnectInitialMs: 200, reconnectMaxMs: 1000, connectTimeoutMs: 5000,
  }, (d) => got.push(d), (e) => events.push(e));
  const reconnect = async () => {
    const n = events.filter((e) => e === 'broker_connected').length;
    (intake as unknown as { client: { destroy(e: Error): void } }).client.destroy(new Error('test: connection dropped'));
    t.truthy(await waitFor(() => events.filter((e) => e === 'broker_connected').length > n, 30_000, 50), 'reconnected');
  };
  try {
    intake.start();
    t.truthy(await waitFor(() => events.includes('broker_connected'), 30_000, 50));
    const bodies = Array.from({ length: 10 }, (_, i) => `ack-test ${i}`);
    await publish(bodies);
    t.truthy(await waitFor(() => got.length >= 10, 30_000, 50), 'all 10 delivered (prefetch 1000)');
    t.deepEqual(got.map((d) => d.body), bodies, 'in publish order');
    const first = got.splice(0);
    t.true(await first[4]!.ack(), 'one ACK, for the 5th');
    await reconnect();
    t.truthy(await waitFor(() => got.length >= 5, 30_000, 50));
    await sleep(1000); // nothing more comes
    t.deepEqual(got.map((d) => d.body), bodies.slice(5), 'the ACK of the 5th covered the 4 before it, and only them');
    t.true(got.every((d) => d.headers.redelivered === 'true'));
    t.false(first[0]!.connection.alive);
    t.false(await first[9]!.ack(), 'an ack of the old connection\'s delivery is refused locally: nothing goes out on the new subscription');
    await sleep(500);
    t.true(got[0]!.connection.alive, 'no ERROR frame from the broker (an ACK it does not know would be one): the new connection is intact');
    const second = got.splice(0);
    t.true(await second[4]!.ack(), 'one ACK for the last');
    await sleep(500); // the ACK frame is on its way when the callback fires: let the broker take it
    await reconnect();
    await sleep(2000);
    t.deepEqual(got.map((d) => d.body), [], 'nothing redelivered: the one ACK covered all five');
  } finally {
    await intake.stop();
    const from = listener.lines.length;
    listener.start();
    await listener.waitEvent('broker_connected', () => true, 60_000, from);
  }
});

test.serial('events published while the listener is stopped (and the broker restarted meanwhile) are applied at start', async (t) => {
  t.timeout(300_000);
  const code = await listener.stop('SIGTERM');
  t.is(code, 0, 'clean exit on SIGTERM');
  t.truthy(listener.events('listener_stopped').length);
  await publish([spi.create('off', 'lsno'), spi.addEp('off', 'lsno', '198.51.100.34', 35533), spi.addAlias('off', 'lsno', 'off.lsno.example.net')]);
  // forced persistence: the plug-in's non-persistent messages survive a broker restart
  await broker.restart();
  const from = listener.lines.length;
  listener.start();
  t.truthy(await listener.waitEvent('broker_connected', () => true, 60_000, from));
  t.true(await waitFor(() => serves(fq('off-lsno'), ['198.51.100.34:35533']) && serves('off.lsno.example.net', ['198.51.100.34:35533']), 60_000, 250));
  const msgs = listener.lines.slice(from).filter((l) => l.event === 'message');
  t.true(msgs.every((m) => typeof m.message_id === 'string' && m.message_id !== ''), 'log lines carry the message-id');
  await publish([spi.del('off', 'lsno')]);
  t.true(await waitFor(() => serves(fq('off-lsno'), null), 60_000, 250));
});

test.serial('ActiveMQ restarted while the listener runs: it reconnects by itself and applies later events', async (t) => {
  t.timeout(300_000);
  const from = listener.lines.length;
  await broker.restart();
  const dropped = await listener.waitEvent('broker_disconnected', () => true, 30_000, from);
  t.truthy(dropped, 'the listener saw the broker go');
  t.truthy(await listener.waitEvent('broker_connected', () => true, 90_000, from), 'and reconnected');
  t.is(listener.exitCode, null, 'still running');
  await publish([spi.create('rst', 'lsnr'), spi.addEp('rst', 'lsnr', '198.51.100.35', 35534)]);
  t.true(await waitFor(() => serves(fq('rst-lsnr'), ['198.51.100.35:35534']), 60_000, 250));
  await publish([spi.del('rst', 'lsnr')]);
  t.true(await waitFor(() => serves(fq('rst-lsnr'), null), 60_000, 250));
});

test.serial('paas-rproxy apply (without --sync) while the listener runs: the listener puts the change live', async (t) => {
  t.timeout(180_000);
  const cli = (stream: string) => spawnSync(process.execPath, [path.join(REPO, 'dist', 'cli', 'main.js'), 'apply', '-', '--config', config], { input: stream, encoding: 'utf8', timeout: 60_000 });
  const r = cli(spi.create('cli', 'lsnr') + spi.addEp('cli', 'lsnr', '198.51.100.36', 35534));
  t.is(r.status, 0, r.stderr);
  t.true(await waitFor(() => serves(fq('cli-lsnr'), ['198.51.100.36:35534']), 60_000, 250), 'live through both VIPs without a sync');
  t.is(cli(spi.del('cli', 'lsnr')).status, 0);
  t.true(await waitFor(() => serves(fq('cli-lsnr'), null), 60_000, 250), 'and removed again');
});

// ---------------------------------------------------------------------------------------------- sshd
function sshdPidFile(h: string): string { return path.join(LAB, 'hosts', h, 'sshd.pid'); }
function alive(pid: number): boolean { try { process.kill(pid, 0); return true; } catch { return false; } }
function procField(pid: number, field: string): string {
  try { return /^(\S+):\s*(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`)) ?? '')?.[2] ?? ''; } catch { return ''; }
}

/** Stops a proxy's sshd: the daemon and its sessions (so ansible's ControlPersist masters drop too). */
function stopSshd(h: string): void {
  const pid = Number(readFileSync(sshdPidFile(h), 'utf8').trim());
  const sessions = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);
  for (const p of [pid, ...sessions]) { try { process.kill(p, 'SIGTERM'); } catch { /* gone */ } }
}

/** Starts sshd again in the proxy's existing mount namespace (that of its nginx master), as lab.sh did. */
function restartSshd(h: string): void {
  const f = sshdPidFile(h);
  if (!existsSync(f) || alive(Number(readFileSync(f, 'utf8').trim()))) return;
  const pids = spawnSync('ip', ['netns', 'pids', h], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);
  const master = pids.find((p) => procField(p, 'Name') === 'nginx' && procField(Number(procField(p, 'PPid')), 'Name') !== 'nginx');
  if (!master) throw new Error(`no nginx master in ${h} to borrow the mount namespace from`);
  const start = readFileSync(path.join(LAB, 'hosts', h, 'start.sh'), 'utf8');
  const exec = start.slice(start.indexOf('exec /usr/sbin/sshd')).replace(/\\\n/g, ' ').split('\n')[0]!;
  const argv = exec.replace(/^exec /, '').trim().split(/\s+/);
  // detached: node makes the child a session leader; nsenter execs sshd (-D: no fork), so child.pid is sshd's
  const log = openSync(path.join(LAB, 'hosts', h, 'sshd.log'), 'a');
  const child = spawn('nsenter', ['-t', String(master), '-m', '-n', '--', ...argv], { detached: true, stdio: ['ignore', log, log] });
  closeSync(log);
  child.unref();
  writeFileSync(f, `${child.pid}\n`);
}

test.serial('one proxy\'s sshd stopped during changes: the other is updated each time, the lagging one catches up by itself', async (t) => {
  t.timeout(300_000);
  const app = 'ssh', ns = 'lsns', id = `${app}-${ns}`;
  await publish([spi.create(app, ns), spi.addEp(app, ns, '198.51.100.36', 35535)]);
  t.true(await waitFor(() => serves(fq(id), ['198.51.100.36:35535']), 60_000, 250), 'baseline live everywhere');
  stopSshd('rp2');
  try {
    for (let i = 0; i < 3; i++) {
      const alias = `s${i}.lsns.example.net`;
      await publish([spi.addAlias(app, ns, alias)]);
      t.true(await waitFor(() => serves(alias, ['198.51.100.36:35535'], [PROXY_ADDR.rp1!]), 60_000, 250), `rp1 updated with ${alias}`);
      t.is(statusVia(PROXY_ADDR.rp2!, alias), 404, `rp2 (no sshd) does not have ${alias} yet`);
    }
    // by this listener, or by the lab's own (site.yml deployed it on the same state dir: it puts state written by
    // another process live too, and whichever runs first records rp2's failure)
    const rp2Unreachable = (l: Record<string, unknown>) => l.event === 'run' && Array.isArray(l.per_host)
      && (l.per_host as Array<{ host: string; outcome: string }>).some((h) => h.host === 'rp2' && h.outcome === 'unreachable');
    const labLog = path.join(LAB, 'listener', 'listener.log');
    const labLines = existsSync(labLog) ? readFileSync(labLog, 'utf8').split('\n').flatMap((l) => { try { return [JSON.parse(l) as Record<string, unknown>]; } catch { return []; } }) : [];
    t.truthy(listener.lines.find(rp2Unreachable) ?? labLines.find(rp2Unreachable), 'rp2 was reported unreachable');
  } finally {
    restartSshd('rp2');
  }
  // no command: the runner's retry catches rp2 up
  t.true(await waitFor(() => [0, 1, 2].every((i) => serves(`s${i}.lsns.example.net`, ['198.51.100.36:35535'], [PROXY_ADDR.rp2!])), 90_000, 500),
    'rp2 caught up without any command');
  await publish([spi.del(app, ns)]);
  t.true(await waitFor(() => serves(fq(id), null), 60_000, 250));
});

test.serial('status shows the listener, the runs and no pending work at the end', async (t) => {
  // exit 5 (EXIT.CHECK) is a valid answer: unhealthy, with its problems in the JSON. Right after the previous test
  // (rp2's sshd stopped) rp2 may still be recorded in backoff until the runner's next pass; the end state is awaited.
  const status = () => spawnSync(process.execPath, [path.join(REPO, 'dist', 'cli', 'main.js'), 'status', '--json', '--config', config], { encoding: 'utf8' });
  const r = status();
  if (r.status !== EXIT.OK && r.status !== EXIT.CHECK) { t.log(r.stderr); t.fail(`status exited ${String(r.status)} (is it registered in cli/main.ts?)`); return; }
  type Status = { healthy: boolean; problems: string[]; listener: { running: boolean; connected: boolean }; runs: unknown[]; proxies: Record<string, { pendingApps: string[] }> };
  const s = JSON.parse(r.stdout) as Status;
  t.true(s.listener.running);
  t.true(s.listener.connected);
  t.true(s.runs.length > 0);
  let last = s;
  t.true(await waitFor(() => {
    const again = status();
    last = JSON.parse(again.stdout) as Status;
    return again.status === EXIT.OK && last.healthy && Object.values(last.proxies).every((p) => p.pendingApps.length === 0);
  }, 30_000, 500), `healthy, no proxy lags: ${JSON.stringify(last.problems)}`);
});

test.serial('runs went through the warm Ansible controller; the SIGKILLed listener left no controller behind, SIGTERM stops it with the listener', async (t) => {
  const alive = (pid: number) => { try { const st = readFileSync(`/proc/${pid}/stat`, 'utf8'); return st.slice(st.lastIndexOf(')') + 2)[0] !== 'Z'; } catch { return false; } };
  const started = listener.events('warm_started').map((l) => Number(l.pid));
  t.true(started.length >= 2, 'one controller per listener start');
  t.true(listener.events('run').some((l) => l.warm === true), 'runs went warm');
  t.true(started.slice(0, -1).every((p) => !alive(p)), `left behind: ${started.filter(alive).join(',')}`);
  const current = started.at(-1)!;
  t.true(alive(current));
  await listener.stop('SIGTERM');
  t.true(await waitFor(() => !alive(current), 10_000, 100), 'stopped with the listener');
  const pid = listener.events('listener_start').at(-1)?.pid;
  t.false(existsSync(path.join(LAB, 'var', `warm-ansible-${String(pid)}.sock`)), 'socket removed');
});

void sleep;
