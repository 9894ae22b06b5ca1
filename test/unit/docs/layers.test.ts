// The layering of generator/src holds (docs/ARCHITECTURE.md, "Layers"): no import cycle between files or between
// modules, no import from a lower layer to a higher one. The checker itself is tested on a small graph first, so a
// broken checker cannot pass the tree silently.
import test from 'ava';
import { cycles, layerReport, importGraph, moduleOf, layerOf } from '../../fixtures/layers.js';

test('the checker finds a cycle and an upward import in a graph made to have them', (t) => {
  const g = new Map<string, string[]>([
    ['spi/a.ts', ['vars/b.ts']], // upward: layer 0 imports layer 1
    ['vars/b.ts', ['spi/a.ts']], // and a cycle with it
    ['cli/c.ts', ['cli/c.ts']], // a file importing itself
    ['runner/d.ts', ['status/e.ts']],
    ['status/e.ts', []],
  ]);
  const r = layerReport(g);
  t.deepEqual(r.fileCycles, [['spi/a.ts', 'vars/b.ts'], ['cli/c.ts']]);
  t.deepEqual(r.moduleCycles, [['spi', 'vars']]);
  t.deepEqual(r.upward, ['spi/a.ts -> vars/b.ts (layer 0 imports layer 1)']);
  t.deepEqual(cycles(new Map([['x', ['y']], ['y', []]])), []);
  t.throws(() => layerOf('nowhere'), { message: /in no layer/ });
});

test('generator/src: every module has a layer; no cycle, no upward import', (t) => {
  const graph = importGraph();
  t.true(graph.size > 50, `read ${graph.size} files`);
  for (const f of graph.keys()) layerOf(moduleOf(f));
  const r = layerReport(graph);
  t.deepEqual(r.fileCycles, [], 'import cycles between files');
  t.deepEqual(r.moduleCycles, [], 'import cycles between modules (folders)');
  t.deepEqual(r.upward, [], 'imports from a lower layer to a higher one');
});
