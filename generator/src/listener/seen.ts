// Message-ids already applied: <state_dir>/applied-messages.log (one id per line, appended and fsynced after the
// apply resolved, before the acks). A message redelivered after a crash between "written" and "acked" is then acked
// without being applied again, so replaying a long unacked window never moves the state back in time, even briefly.
// (Without this, the replay is still correct in the end: the state is idempotent and order-tolerant.)
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { appliedMessagesFile } from '../io/statedir.js';

const KEEP = 20000;

export class SeenIds {
  private ids = new Set<string>();
  private order: string[] = [];
  private constructor(private readonly file: string) {}

  static async open(stateDir: string): Promise<SeenIds> {
    const s = new SeenIds(appliedMessagesFile(stateDir));
    try {
      const lines = (await fs.readFile(s.file, 'utf8')).split('\n').filter(Boolean).slice(-KEEP);
      for (const l of lines) s.remember(l);
    } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; }
    return s;
  }

  has(id: string): boolean { return id !== '' && this.ids.has(id); }

  private remember(id: string): void {
    if (this.ids.has(id)) return;
    this.ids.add(id);
    this.order.push(id);
  }

  async add(ids: readonly string[]): Promise<void> {
    const fresh = ids.filter((i) => i !== '' && !/[\r\n]/.test(i) && !this.ids.has(i));
    if (!fresh.length) return;
    for (const i of fresh) this.remember(i);
    await fs.mkdir(path.dirname(this.file), { recursive: true });
    const fh = await fs.open(this.file, 'a', 0o644);
    try { await fh.writeFile(fresh.join('\n') + '\n'); await fh.sync(); } finally { await fh.close(); }
    if (this.order.length > 2 * KEEP) await this.compact();
  }

  private async compact(): Promise<void> {
    this.order = this.order.slice(-KEEP);
    this.ids = new Set(this.order);
    await writeFileAtomic(this.file, this.order.join('\n') + '\n', { mode: 0o644 });
  }
}
