// The handbook's examples run: every shell block of docs/*.md marked "sh lab" is run against the lab (default profile)
// with `bash -euo pipefail`, from the checkout, and a non-zero exit fails its test, named after the block's file and
// line. The lab is a real installation with its files elsewhere: the blocks run with the production paths replaced
// by the lab's (the table in docs/README.md, "How the examples are checked", and PATHS below) and `paas-rproxy` on the
// PATH as the lab's CLI. Nothing else in a block is changed.
import test from 'ava';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readDocsInOrder, isLabBlock, LAB_MAPPED_PATHS, type Block, type LabMappedPath } from '../fixtures/handbook.js';
import {
  PROFILE, REPO, LAB, INVENTORY, STATE_DIR, CLOUD_DOMAIN, ensureLab, releaseLab, runAsync, applyAndSync, failureLines, spi,
} from '../lab/labenv.js';

const blocks: Block[] = readDocsInOrder().flatMap((d) => d.blocks.filter(isLabBlock));
const tmp = mkdtempSync(path.join(tmpdir(), 'rplab-handbook-'));
const LISTENER_DIR = path.join(LAB, 'listener');
const CONFIG = path.join(LISTENER_DIR, 'config.yml');

/** Production path → the default profile lab's (docs/README.md lists the same). */
const LAB_PATH: Record<LabMappedPath, string> = {
  '/etc/paas-rproxy/inventory': INVENTORY,
  '/etc/paas-rproxy/': `${LISTENER_DIR}/`,
  '/var/lib/paas-rproxy': STATE_DIR,
  '/var/log/paas-rproxy': LISTENER_DIR,
  '/run/paas-rproxy': path.join(LISTENER_DIR, 'run'),
  '/var/backups/paas-rproxy': path.join(tmp, 'backups'),
  '/opt/paas-rproxy': REPO,
};
export const PATHS: ReadonlyArray<readonly [string, string]> = LAB_MAPPED_PATHS.map((p) => [p, LAB_PATH[p]] as const);

/** The block with every mapped path replaced, in one pass (a replacement is never replaced again). */
export function toLab(text: string): string {
  const re = new RegExp(PATHS.map(([from]) => from.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');
  return text.replace(re, (m) => PATHS.find(([from]) => from === m)![1]);
}

// The example of the rejects log (docs/operations.md): an alias the application "wiki-acme" was refused because of a
// per-application limit, which the lab's configuration (the "fixed" one) does not have.
const WIKI = { app: 'wiki', ns: 'acme', gear: '198.51.100.38', port: 35577 };

if (PROFILE !== 'default') {
  // test/run-all.sh runs this file on the default profile only; elsewhere say so instead of passing with nothing run
  rmSync(tmp, { recursive: true, force: true });
  throw new Error(`handbook.test.ts runs on the default lab profile (PAAS_RPROXY_LAB_PROFILE=default), not '${PROFILE}': `
    + 'its table maps the production paths to that lab\'s (docs/README.md, "How the examples are checked")');
} else {
  test.before(async (t) => {
    t.timeout(900_000, 'lab bring-up');
    await ensureLab();
    // `paas-rproxy` as the handbook's alias is on a broker host: the CLI with the listener's config
    const bin = path.join(tmp, 'bin');
    mkdirSync(bin);
    writeFileSync(path.join(bin, 'paas-rproxy'), `#!/bin/sh\nexec ${process.execPath} ${path.join(REPO, 'dist/cli/main.js')} "$@"\n`);
    chmodSync(path.join(bin, 'paas-rproxy'), 0o755);
    // the rejection the replay example fixes: applied with a config whose alias limit is 1
    const strict = path.join(tmp, 'strict.yml');
    writeFileSync(strict, [`cloud_domain: ${CLOUD_DOMAIN}`, `inventory_dir: ${INVENTORY}`, `state_dir: ${STATE_DIR}`,
      'limits: {aliases_per_app: 1}', ''].join('\n'));
    const stream = path.join(tmp, 'wiki.yml');
    writeFileSync(stream, spi.createApp(WIKI.app, WIKI.ns) + spi.addEndpoint(WIKI.app, WIKI.ns, WIKI.gear, WIKI.port)
      + spi.addAlias(WIKI.app, WIKI.ns, 'wiki.example.com') + spi.addAlias(WIKI.app, WIKI.ns, 'docs.example.com'));
    const r = await runAsync(process.execPath, [path.join(REPO, 'dist/cli/main.js'), '--config', strict, 'apply', '--sync', stream], { timeoutMs: 180_000 });
    if (r.code !== 3 || !/over the limit limits\.aliases_per_app/.test(r.stderr)) {
      throw new Error(`seeding the rejected alias: exit ${r.code} (expected 3)\n${failureLines(r)}\n${r.stderr}`);
    }
  });

  test.after.always(async (t) => {
    t.timeout(300_000);
    await applyAndSync(spi.deleteApp(WIKI.app, WIKI.ns));
    rmSync(tmp, { recursive: true, force: true });
    releaseLab();
  });

  test.serial('the handbook has runnable examples', (t) => {
    t.true(blocks.length >= 15, `only ${blocks.length} "sh lab" blocks`);
    for (const [from] of PATHS) t.true(blocks.some((b) => b.text.includes(from)), `no block uses ${from}: drop it from the table`);
  });

  for (const b of blocks) {
    test.serial(`${b.file}:${b.line}`, async (t) => {
      t.timeout(600_000);
      const script = toLab(b.text);
      const r = await runAsync('bash', ['-euo', 'pipefail', '-c', script], {
        timeoutMs: 540_000,
        cwd: REPO,
        env: { ...process.env, PATH: `${path.join(tmp, 'bin')}:${process.env.PATH ?? ''}`, PAAS_RPROXY_CONFIG: CONFIG },
      });
      t.log(`${b.file}:${b.line} exit ${r.code}\n${r.stdout.split('\n').slice(-8).join('\n')}`);
      t.is(r.code, 0, `${b.file}:${b.line}: the example exits ${r.code}\n--- block (as run)\n${script}--- stdout (tail)\n${r.stdout.slice(-3000)}\n--- stderr (tail)\n${r.stderr.slice(-3000)}`);
    });
  }
}
