// The pipe a command writes into is given PIPE_BYTES (1 MiB, src/cli.ts):
// at the kernel's 64 KiB a stage writing a flood is woken for every 64 KiB.
// Both ways stdout is written (libuv's stream: ct-attribute; an fs stream:
// ct-filter), into a FIFO whose reading end this test holds and asks the
// pipe's size of (the addon's fcntl).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { openSync, closeSync, readSync, mkdtempSync, rmSync, constants } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BIN } from '../helpers.js';
import { addon } from '../../src/native/addon.js';
import { PIPE_BYTES } from '../../src/cli.js';

const LINE = '{"ts":"2026-01-01T00:00:00.000000Z","event":"overrun","lost":1}\n';

/** Run `cmd` with its stdout a FIFO this test reads; the pipe's size once its first line came. */
async function sizeSeen(cmd: string, args: string[]): Promise<{ size: number; line: string; code: number | null }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'ct-pipe-'));
  try {
    const fifo = path.join(dir, 'out');
    const mk = spawn('mkfifo', [fifo]);
    await new Promise((r) => mk.once('close', r));
    // The reader first, without waiting for a writer; then the writer's end for the child.
    const r = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const w = openSync(fifo, constants.O_WRONLY);
    const before = addon().pipeSize(r, 0);
    const child = spawn(BIN(cmd), args, { stdio: ['pipe', w, 'ignore'] });
    closeSync(w);
    child.stdin!.write(LINE);
    const buf = Buffer.alloc(4096);
    let got = '';
    for (let t = 0; t < 200 && !got.includes('\n'); t++) {
      try {
        const n = readSync(r, buf, 0, buf.length, null);
        got += buf.toString('utf8', 0, n);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
        await new Promise((res) => setTimeout(res, 50));
      }
    }
    const size = addon().pipeSize(r, 0);
    child.stdin!.end();
    const code = await new Promise<number | null>((res) => child.once('close', res));
    closeSync(r);
    assert.equal(before, 65536, 'a new pipe has the kernel\'s default size');
    return { size, line: got, code };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const [cmd, args] of [['ct-attribute', ['--no-bpf']], ['ct-filter', []]] as const) {
  test(`${cmd}: the pipe it writes into is widened to 1 MiB`, async () => {
    const r = await sizeSeen(cmd, [...args]);
    assert.equal(r.line, LINE);
    assert.equal(r.size, PIPE_BYTES);
    assert.equal(r.code, 0);
  });
}

test('pipeSize: a descriptor that is not a pipe is refused with its errno', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ct-pipe-'));
  try {
    const fd = openSync(path.join(dir, 'f'), 'w');
    try {
      assert.throws(() => addon().pipeSize(fd, PIPE_BYTES), (e: NodeJS.ErrnoException) => e.code === 'EBADF');
    } finally {
      closeSync(fd);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
