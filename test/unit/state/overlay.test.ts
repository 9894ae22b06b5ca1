// OverlayMap: the store's copy-on-write view of the state for one batch (state/types.ts).
import test from 'ava';
import { OverlayMap } from '../../../generator/src/state/types.js';

test('OverlayMap: reads fall through, writes and deletes stay in the overlay until applyTo', (t) => {
  const base = new Map([['a', 1], ['b', 2], ['c', 3]]);
  const o = new OverlayMap(base);
  o.set('b', 20);
  o.set('d', 4);
  t.true(o.delete('a'));
  t.false(o.delete('zz'));
  o.set('c', 30);
  o.delete('c');
  t.is(o.get('a'), undefined);
  t.false(o.has('a'));
  t.is(o.get('b'), 20);
  t.false(o.has('c'));
  t.is(o.get('d'), 4);
  t.is(o.size, 2);
  t.deepEqual([...o].sort(), [['b', 20], ['d', 4]]);
  t.deepEqual([...o.keys()].sort(), ['b', 'd']);
  t.deepEqual([...o.values()].sort(), [20, 4].sort());
  t.deepEqual([...base], [['a', 1], ['b', 2], ['c', 3]], 'the base is untouched');
  o.set('a', 10); // deleted, then set again
  t.is(o.get('a'), 10);
  t.deepEqual([...o.changedKeys()].sort(), ['a', 'b', 'c', 'd']);
  o.applyTo(base);
  t.deepEqual([...base].sort(), [['a', 10], ['b', 20], ['d', 4]]);
});
