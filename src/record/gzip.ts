// Compressing a closed log file to NAME.gz beside it, off the writer's path:
// zlib and the file I/O run in Node's thread pool. The uncompressed file is
// removed only once NAME.gz is complete and fsynced, so a failure at any
// point leaves the whole uncompressed file (and at worst an incomplete
// NAME.gz beside it, which a failure here removes).
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { RecordFs } from './fs.js';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_DIRECTORY } = fs.constants;

/** Compress `file` to `file.gz` (created 0600, never over an existing file); then remove `file`. */
export async function gzipFile(fsx: RecordFs, file: string): Promise<string> {
  const out = file + '.gz';
  const src = await fsx.open(file, O_RDONLY | O_NOFOLLOW, 0);
  let dst = -1;
  try {
    const st = await fsx.fstat(src);
    dst = await fsx.open(out, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    try {
      await fsx.fchmod(dst, 0o600);
      await pipeline(
        fs.createReadStream('', { fd: src, autoClose: false, highWaterMark: 256 * 1024 }),
        createGzip(),
        fs.createWriteStream('', { fd: dst, autoClose: false, highWaterMark: 256 * 1024 }),
      );
      // As gzip(1): the compressed file keeps the original's modification time, so `ls -t` still orders by content.
      const s = st as unknown as fs.Stats;
      if (s.atime && s.mtime) await new Promise<void>((res) => fs.futimes(dst, s.atime, s.mtime, () => res()));
      await fsx.fsync(dst);
      await fsx.close(dst);
      dst = -1;
    } catch (e) {
      if (dst >= 0) await fsx.close(dst).catch(() => {});
      dst = -1;
      await fs.promises.unlink(out).catch(() => {});
      throw e;
    }
  } finally {
    if (dst >= 0) await fsx.close(dst).catch(() => {});
    await fsx.close(src).catch(() => {});
  }
  await fs.promises.unlink(file);
  await fsyncDir(fsx, path.dirname(file));
  return out;
}

/** Make a directory's entries durable (new, renamed or removed files). Best effort. */
export async function fsyncDir(fsx: RecordFs, dir: string): Promise<void> {
  let fd = -1;
  try {
    fd = await fsx.open(dir, O_RDONLY | O_DIRECTORY, 0);
    await fsx.fsync(fd);
  } catch {
    /* some file systems cannot fsync a directory; the data files themselves were fsynced */
  } finally {
    if (fd >= 0) await fsx.close(fd).catch(() => {});
  }
}
