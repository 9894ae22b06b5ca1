// Cross-process "one playbook at a time" lock: a file created with O_EXCL in state_dir holding the owner's
// pid and, while a run is in flight, the ansible-playbook child's pid. A lock is stale only when neither
// process is alive (a SIGKILLed listener leaves its ansible-playbook running: nobody may start another).
import { promises as fs, constants as fsConstants } from 'node:fs';
import path from 'node:path';
import { RproxyError } from '../errors.js';
import { removeStaleLock } from '../io/lock.js';
import { pidAlive } from '../io/pid.js';

interface LockInfo { pid: number; child?: number | undefined; since: string; what: string }


export class PlaybookLock {
  private constructor(readonly file: string, private info: LockInfo) {}

  static async acquire(file: string, what: string, opts: { timeoutMs: number; signal?: AbortSignal | undefined; onWait?: ((holder: LockInfo) => void) | undefined }): Promise<PlaybookLock> {
    await fs.mkdir(path.dirname(file), { recursive: true });
    const deadline = Date.now() + opts.timeoutMs;
    let told = false;
    for (;;) {
      const info: LockInfo = { pid: process.pid, since: new Date().toISOString(), what };
      try {
        const fh = await fs.open(file, 'wx', 0o644);
        try { await fh.writeFile(JSON.stringify(info)); await fh.sync(); } finally { await fh.close(); }
        return new PlaybookLock(file, info);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      let holder: LockInfo | null = null;
      let raw = '';
      try { raw = await fs.readFile(file, 'utf8'); holder = JSON.parse(raw) as LockInfo; } catch { holder = null; }
      if (holder && !pidAlive(holder.pid) && !pidAlive(holder.child)) {
        await removeStaleLock(file, raw);
        continue;
      }
      if (holder === null) {
        // being written right now, or garbage: give it a moment, then treat garbage older than 5 s as stale
        try { const st = await fs.stat(file); if (Date.now() - st.mtimeMs > 5000) await fs.rm(file, { force: true }); } catch { /* gone */ }
      } else if (!told) { told = true; opts.onWait?.(holder); }
      if (opts.signal?.aborted) throw new RproxyError('ERR_STATE_LOCKED', `playbook lock ${file}: aborted while waiting`);
      if (Date.now() > deadline) {
        throw new RproxyError('ERR_STATE_LOCKED',
          `another playbook run holds ${file} (pid ${holder?.pid ?? '?'}${holder?.child ? `, ansible-playbook pid ${holder.child}` : ''}, since ${holder?.since ?? '?'}: ${holder?.what ?? '?'}); wait for it to finish, or remove the file if that process is gone`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async setChild(pid: number | undefined): Promise<void> {
    this.info = { ...this.info, child: pid };
    // never through a symlink planted in the state directory (O_NOFOLLOW); the lock file is ours (created 'wx')
    const fh = await fs.open(this.file, fsConstants.O_WRONLY | fsConstants.O_TRUNC | fsConstants.O_NOFOLLOW);
    try { await fh.writeFile(JSON.stringify(this.info)); } finally { await fh.close(); }
  }

  async release(): Promise<void> {
    try {
      const cur = await fs.readFile(this.file, 'utf8');
      if ((JSON.parse(cur) as LockInfo).pid === process.pid) await fs.rm(this.file, { force: true });
    } catch { /* already gone */ }
  }
}
