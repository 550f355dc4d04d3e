// Where a stream command's input comes from: the files named on its command
// line in order (`-` is standard input), or standard input when none is
// named. Each source has a name for diagnostics (`file:42:`, `stdin:42:`);
// src/lines/run.ts reads them in turn.
import { createReadStream, fstatSync } from 'node:fs';
import type { Readable } from 'node:stream';

export interface Source {
  /** `stdin` or the file name as given. */
  name: string;
  /** A stream of the bytes. */
  open(): Readable;
  /** A file to read directly, by name. */
  path?: string;
  /** A descriptor to read directly when it is a regular file (stdin redirected from a file). */
  fd?: number;
}

export function sourcesFrom(files: string[], stdin: Readable): Source[] {
  const fd = typeof (stdin as { fd?: unknown }).fd === 'number' ? (stdin as unknown as { fd: number }).fd : undefined;
  const std: Source = { name: 'stdin', open: () => stdin, fd };
  if (files.length === 0) return [std];
  return files.map((f) => (f === '-' ? std : { name: f, path: f, open: () => createReadStream(f, { highWaterMark: 1024 * 1024 }) }));
}

// yargs drops a lone `-` from the arguments; it is swapped for a marker
// before parsing and back afterwards (in file lists and option values).
const DASH = '\u0000-';

export function protectDash(argv: string[]): string[] {
  return argv.map((x) => (x === '-' ? DASH : x));
}

/** Put `-` back in every parsed value. */
export function restoreDash<T extends Record<string, unknown>>(args: T): T {
  const fix = (v: unknown): unknown => (v === DASH ? '-' : Array.isArray(v) ? v.map(fix) : v);
  for (const k of Object.keys(args)) (args as Record<string, unknown>)[k] = fix(args[k]);
  return args;
}

/** Whether descriptor `fd` is a regular file (input from a saved file, not a live pipe). */
export function isRegularFile(fd: number): boolean {
  try {
    return fstatSync(fd).isFile();
  } catch {
    return false;
  }
}
