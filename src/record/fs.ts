// The file-system calls ct-record's writer makes, as one small interface so
// that tests can put faults (ENOSPC, EIO, short writes) between the writer
// and the real file system; the check that a directory is private; and how
// ctpipe opens a file of its own (ct-record's files, ct-es's dead letters).
// Owns no policy about retrying: every call just resolves or rejects with
// Node's errno error.
import fs from 'node:fs';

export interface FileStat {
  size: number;
  mode: number;
  uid: number;
  ino: number;
  dev: number;
  nlink: number;
  isFile(): boolean;
  isDirectory(): boolean;
}

export interface RecordFs {
  open(path: string, flags: number, mode: number): Promise<number>;
  writev(fd: number, bufs: Buffer[]): Promise<number>;
  fsync(fd: number): Promise<void>;
  ftruncate(fd: number, len: number): Promise<void>;
  fchmod(fd: number, mode: number): Promise<void>;
  fstat(fd: number): Promise<FileStat>;
  close(fd: number): Promise<void>;
  stat(path: string): Promise<FileStat>;
  lstat(path: string): Promise<FileStat>;
  mkdir(path: string, mode: number): Promise<void>;
  /** Free space of the file system holding `path` (optional: without it, retries just try to write). */
  statfs?(path: string): Promise<{ bsize: number; bfree: number; bavail: number }>;
}

const cb = <T>(f: (done: (err: NodeJS.ErrnoException | null, v?: T) => void) => void) =>
  new Promise<T>((resolve, reject) => f((err, v) => (err ? reject(err) : resolve(v as T))));

/** Node's own fs, callback API (a thread-pool job per call, no FileHandle objects). */
export const nodeFs: RecordFs = {
  open: (p, flags, mode) => cb<number>((d) => fs.open(p, flags, mode, d)),
  writev: (fd, bufs) => cb<number>((d) => fs.writev(fd, bufs, (err, n) => d(err, n))),
  fsync: (fd) => cb<void>((d) => fs.fsync(fd, d)),
  ftruncate: (fd, len) => cb<void>((d) => fs.ftruncate(fd, len, d)),
  fchmod: (fd, mode) => cb<void>((d) => fs.fchmod(fd, mode, d)),
  fstat: (fd) => cb<fs.Stats>((d) => fs.fstat(fd, d)),
  close: (fd) => cb<void>((d) => fs.close(fd, d)),
  stat: (p) => cb<fs.Stats>((d) => fs.stat(p, d)),
  lstat: (p) => cb<fs.Stats>((d) => fs.lstat(p, d)),
  mkdir: (p, mode) => cb<void>((d) => fs.mkdir(p, { recursive: true, mode }, (err) => d(err))),
  statfs: (p) => cb<fs.StatsFs>((d) => fs.statfs(p, d)),
};

/** A directory that others could read or change. */
export class NotPrivate extends Error {
  code = 'ENOTPRIVATE';
}

/**
 * A directory is private when it is owned by `uid` (ct-record's effective
 * user) or by root, and neither its group nor others may read or write it:
 * `mode & 0o066` is 0. Search (x) bits are allowed: they let nobody list,
 * create, rename or remove entries, and the files themselves are 0600.
 * With a POSIX ACL the group bits are the ACL mask, so an ACL that grants
 * anyone read or write makes the directory not private too.
 */
export async function checkPrivate(fsx: RecordFs, dir: string, uid: number): Promise<void> {
  const st = await fsx.stat(dir);
  if (!st.isDirectory()) throw new NotPrivate(`${dir}: not a directory`);
  const mode = st.mode & 0o7777;
  const why: string[] = [];
  if (st.uid !== uid && st.uid !== 0) why.push(`owned by uid ${st.uid}, not by uid ${uid} or root`);
  if (mode & 0o060) why.push(`its group may ${mode & 0o040 ? 'read' : ''}${(mode & 0o060) === 0o060 ? ' and ' : ''}${mode & 0o020 ? 'write' : ''} it`);
  if (mode & 0o006) why.push(`others may ${mode & 0o004 ? 'read' : ''}${(mode & 0o006) === 0o006 ? ' and ' : ''}${mode & 0o002 ? 'write' : ''} it`);
  if (why.length) {
    throw new NotPrivate(`${dir}: directory is not private (mode ${mode.toString(8).padStart(4, '0')}): ${why.join('; ')}; use a directory only its owner can read and write (chmod go-rw)`);
  }
}

const { O_WRONLY, O_CREAT, O_EXCL, O_APPEND, O_NOFOLLOW } = fs.constants;

/**
 * Open `file` for appending as ctpipe's own files are opened: never through
 * a symlink (O_NOFOLLOW: ELOOP), created with mode 0600 whatever the umask.
 * With `exclusive`, only a new file (O_EXCL: EEXIST otherwise). An existing
 * file must be a regular file with no other name (one link), owned by `uid`
 * or root; its group and others lose any access they had.
 */
export async function openPrivate(fsx: RecordFs, file: string, o: { uid: number; exclusive?: boolean }): Promise<number> {
  const fd = await fsx.open(file, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | (o.exclusive ? O_EXCL : 0), 0o600);
  try {
    const st = await fsx.fstat(fd);
    if (!st.isFile()) throw Object.assign(new Error(`${file}: not a regular file`), { code: 'EFTYPE' });
    if (st.nlink !== 1) throw Object.assign(new Error(`${file}: has ${st.nlink} names (hard links); refusing to write to it`), { code: 'EMLINK' });
    if (st.uid !== o.uid && st.uid !== 0) throw Object.assign(new Error(`${file}: owned by uid ${st.uid}, not by uid ${o.uid} or root`), { code: 'EPERM' });
    if (o.exclusive || (st.mode & 0o7777) !== 0o600) await fsx.fchmod(fd, 0o600);
    return fd;
  } catch (e) {
    await fsx.close(fd).catch(() => {});
    throw e;
  }
}
