// jsonLogger: one JSON object per line; the lines of one event-loop turn in one write.
import test from 'ava';
import { Writable } from 'node:stream';
import { jsonLogger, LOG_BUFFER_LINES } from '../../../generator/src/listener/log.js';

function sink(): { out: Writable; writes: string[] } {
  const writes: string[] = [];
  return { writes, out: new Writable({ write(c: Buffer, _e, cb) { writes.push(c.toString()); cb(); } }) };
}

test('jsonLogger: the lines of one turn go out in one write, in order, each a JSON object with its level', async (t) => {
  const { out, writes } = sink();
  const log = jsonLogger(out);
  log('message', { app: 'a' });
  log('batch', { messages: 1 });
  t.deepEqual(writes, [], 'nothing written before the turn ends');
  await new Promise((r) => setImmediate(r));
  t.is(writes.length, 1);
  const lines = writes[0]!.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.deepEqual(lines.map((l) => [l.event, l.level]), [['message', 'info'], ['batch', 'info']]);
  t.is(lines[0]!.app, 'a');
});

test('jsonLogger: a warning or an error goes out at once, with the lines before it (a process killed hard keeps them)', (t) => {
  const { out, writes } = sink();
  const log = jsonLogger(out);
  log('message', { app: 'a' });
  log('apply_error', { error: 'x' });
  t.is(writes.length, 1, 'written without waiting for the turn to end');
  t.deepEqual(writes[0]!.trimEnd().split('\n').map((l) => (JSON.parse(l) as { event: string }).event), ['message', 'apply_error']);
  log('run', { result: 'failed' });
  t.is(writes.length, 2);
  t.is((JSON.parse(writes[1]!) as { level: string }).level, 'error');
});

test('jsonLogger: one exit hook per output, however many loggers write to it', (t) => {
  const { out } = sink();
  const before = process.listenerCount('exit');
  for (let i = 0; i < 20; i++) jsonLogger(out);
  t.is(process.listenerCount('exit'), before + 1);
});

test('jsonLogger: at most LOG_BUFFER_LINES lines wait (a long synchronous stretch is written as it goes)', (t) => {
  const { out, writes } = sink();
  const log = jsonLogger(out);
  for (let i = 0; i < LOG_BUFFER_LINES * 2 + 1; i++) log('message', { i });
  t.is(writes.length, 2);
  t.is(writes[0]!.split('\n').length - 1, LOG_BUFFER_LINES);
});
