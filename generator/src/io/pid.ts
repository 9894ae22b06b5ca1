/**
 * Whether a process with this pid exists on this host: signal 0 (EPERM means it exists under another user).
 * Only a positive integer can be a process: kill(0 or a negative pid) would signal a process group.
 */
export function pidAlive(pid: number | undefined): boolean {
  if (pid === undefined || !Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
