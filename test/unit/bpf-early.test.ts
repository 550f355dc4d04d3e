// The bpf method's early load (src/attribute/sources/bpf/early.ts): when
// bin/ct-attribute starts it, what the bpf source adopts, and that
// ct-attribute detaches it when its options turn the method off. The
// addon's open is replaced by a recording one here; the real load is
// tested in test/e2e/attribute-bpf.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { EventEmitter } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { wantedEarly, startEarly, adoptEarly, dropEarly, earlyPending, testSwitches } from '../../src/attribute/sources/bpf/early.js';
import type { BatchHandler, BpfHandle } from '../../src/native/bpf.js';
import { main } from '../../src/commands/attribute.js';

/** An open that records its options and hands back a handle that counts its closes. */
function fakeOpen(fail?: string) {
  const f = { opts: null as unknown, onBatch: null as BatchHandler | null, closed: 0, calls: 0 };
  const open = (opts: unknown, onBatch: BatchHandler): BpfHandle => {
    f.calls++;
    if (fail) throw new Error(fail);
    f.opts = opts;
    f.onBatch = onBatch;
    return { udp: 'tracepoint', attachMs: 3, drain() {}, close() { f.closed++; } };
  };
  return { f, open: open as any };
}

test('wantedEarly: a pipe or socket on stdin and the capabilities (or --bpf); never with --no-bpf, --help, --version, a file or a terminal', () => {
  const yes = (argv: string[], stdin: any = 'pipe', capable: boolean | null = true) => wantedEarly({ argv, stdin, capable });
  assert.equal(yes([]), true);
  assert.equal(yes([], 'socket'), true);
  assert.equal(yes(['--stats', '--bpf-window', '50']), true);
  assert.equal(yes(['--bpf'], 'pipe', false), true, '--bpf asks for it without the capabilities (the failure is then reported)');
  assert.equal(yes([], 'pipe', false), false);
  assert.equal(yes([], 'pipe', null), false);
  for (const argv of [['--no-bpf'], ['--bpf=false'], ['--help'], ['-h'], ['--version'], ['-V'], ['--stats', '--no-bpf']]) assert.equal(yes(argv), false, argv.join(' '));
  for (const stdin of ['file', 'tty', 'other', 'none']) assert.equal(yes(['--bpf'], stdin), false, stdin);
  // After --, a file named --no-bpf is not the option.
  assert.equal(yes(['--', '--no-bpf']), true);
});

test('testSwitches: the test-only environment switches apply to the early load as to the command', () => {
  assert.deepEqual(testSwitches({}), { udp: 'auto', ringBytes: 0 });
  assert.deepEqual(testSwitches({ CTPIPE_TEST_BPF_UDP: 'syscall', CTPIPE_TEST_BPF_RING: '4096' }), { udp: 'syscall', ringBytes: 4096 });
});

test('adoptEarly: the handle and the batches read before adoption, in order, then the later ones; nothing is loaded again', () => {
  const { f, open } = fakeOpen();
  startEarly({ udp: 'syscall', ringBytes: 4096 }, open);
  assert.deepEqual(f.opts, { udp: 'syscall', ringBytes: 4096 });
  assert.equal(earlyPending(), 'attached');
  startEarly({ udp: 'syscall', ringBytes: 4096 }, open);
  assert.equal(f.calls, 1, 'loaded once');
  f.onBatch!(Buffer.from('a'), 0, 5);
  f.onBatch!(Buffer.from('b'), 2, 5);
  const got: [string, number, number][] = [];
  const a = adoptEarly({ udp: 'syscall', ringBytes: 4096 }, (buf, lost, off) => got.push([buf.toString(), lost, off]));
  assert.ok(a && 'handle' in a);
  assert.ok(a.attachedAt > 0);
  assert.deepEqual(got, [['a', 0, 5], ['b', 2, 5]]);
  f.onBatch!(Buffer.from('c'), 0, 6);
  assert.deepEqual(got.at(-1), ['c', 0, 6]);
  assert.equal(earlyPending(), null);
  dropEarly();
  assert.equal(f.closed, 0, 'an adopted handle is the source\'s to close');
  assert.equal(adoptEarly({ udp: 'syscall', ringBytes: 4096 }, () => {}), null, 'adopted once');
});

test('adoptEarly: a failed early load is handed over as its reason, in one line; other options detach it', () => {
  const failed = fakeOpen('missing CAP_BPF and CAP_PERFMON to load BPF programs');
  startEarly({ udp: 'auto', ringBytes: 0 }, failed.open);
  assert.equal(earlyPending(), 'failed');
  assert.deepEqual(adoptEarly({ udp: 'auto', ringBytes: 0 }, () => {}), { error: 'missing CAP_BPF and CAP_PERFMON to load BPF programs' });
  const other = fakeOpen();
  startEarly({ udp: 'auto', ringBytes: 0 }, other.open);
  assert.equal(adoptEarly({ udp: 'syscall', ringBytes: 0 }, () => {}), null);
  assert.equal(other.f.closed, 1);
  assert.equal(earlyPending(), null);
});

function io(stdin = '') {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.setEncoding('utf8').on('data', (d) => (stdout += d));
  err.setEncoding('utf8').on('data', (d) => (stderr += d));
  const input = new PassThrough();
  input.end(stdin);
  return { io: { stdin: input, stdout: out, stderr: err, env: {}, signal: new AbortController().signal, signals: new EventEmitter() }, text: () => ({ stdout, stderr }) };
}

test('ct-attribute with a file argument, or --no-bpf in a form the early check missed: the early handle is detached, and the run is as without it', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'cta-early-'));
  const file = path.join(dir, 'saved.ndjson');
  writeFileSync(file, JSON.stringify({ ts: '2026-11-23T07:41:33.965873Z', event: 'new', id: 1, family: 'ipv4', proto: 'udp', src: '203.0.113.5', sport: 1000, dst: '198.51.100.7', dport: 53, reply: { src: '198.51.100.7', sport: 53, dst: '203.0.113.5', dport: 1000 } }) + '\n');
  for (const argv of [[file], ['--bpf', 'false', file], ['--no-bpf']]) {
    const { f, open } = fakeOpen();
    startEarly({ udp: 'auto', ringBytes: 0 }, open);
    const r = io(argv.includes(file) ? '' : '');
    const code = await main(['--stats', ...argv], r.io as any);
    assert.equal(code, 0, r.text().stderr);
    assert.equal(f.closed, 1, `${argv.join(' ')}: detached`);
    assert.equal(earlyPending(), null);
    assert.doesNotMatch(r.text().stderr, /bpf: attached/, argv.join(' '));
    if (argv.includes(file)) assert.equal(JSON.parse(r.text().stdout).attribution.reason, 'forwarded');
  }
});
