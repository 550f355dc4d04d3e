// Standard input a real pipe (`cat file | ct-x`), read by src/input.ts
// openPipe into buffers used again: each line command writes and says
// what it writes and says with the same bytes on a socket (node's spawn)
// as its stdin, which is read as a stream: the event fixtures and 20,000
// generated events (many reads), and every hostile fixture through ct-filter.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { BIN, FIXTURES, ROOT, runBin } from '../helpers.js';

let tmp = '';
before(() => (tmp = mkdtempSync(path.join(tmpdir(), 'ct-pipe-in-'))));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** `cat file | cmd args` in a shell: stdin a pipe. */
const throughPipe = (name: string, args: string[], file: string) =>
  runBin('sh', ['-c', 'f=$1; b=$2; shift 2; cat "$f" | "$b" "$@"', 'sh', file, BIN(name), ...args], null, { bin: () => '/bin/sh' });

const COMMANDS: [string, string[]][] = [
  ['ct-filter', ['--no-dns']],
  ['ct-filter', ['-p', 'tcp', '--jobs', '0']],
  ['ct-format', []],
  ['ct-format', ['--preset', 'csv']],
  ['ct-flows', []],
];

test('through a pipe as through a socket: the event fixtures, 20,000 generated events, every hostile fixture', async () => {
  const { generate } = await import(pathToFileURL(path.join(ROOT, 'bench', 'gen-events.js')).href);
  const gen = path.join(tmp, 'gen.ndjson');
  writeFileSync(gen, [...generate(20000, 4) as Iterable<string>].join('\n') + '\n');
  const hostile = readdirSync(path.join(FIXTURES, 'hostile')).filter((f) => f.endsWith('.ndjson')).map((f) => path.join(FIXTURES, 'hostile', f));
  for (const [k, [name, args]] of COMMANDS.entries()) {
    // Every hostile fixture through the first command; the events through each.
    for (const file of [path.join(FIXTURES, 'filter', 'events.ndjson'), gen, ...(k === 0 ? hostile : [])]) {
      const piped = await throughPipe(name, args, file);
      const socket = await runBin(name, args, readFileSync(file));
      const what = `${name} ${args.join(' ')} < ${path.basename(file)}`;
      assert.equal(piped.code, socket.code, what);
      assert.ok(piped.stdout === socket.stdout, `${what}: the same output`);
      assert.equal(piped.stderr, socket.stderr, what);
    }
  }
});
