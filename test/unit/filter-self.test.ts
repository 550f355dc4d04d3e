// --no-self's detector (src/filter/self.ts): against a /proc tree the test
// writes, and against the real /proc with real child processes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { SelfDetector, isCtCommand, parseStat } from '../../src/filter/self.js';

test('isCtCommand: a ct-* bin run directly or by node, not other programs', () => {
  assert.ok(isCtCommand('ct-syslog', []));
  assert.ok(isCtCommand('node', ['node', '/usr/lib/node_modules/ctpipe/bin/ct-syslog', '--tcp', 'x:514']));
  assert.ok(isCtCommand('node', ['/usr/bin/node', '--enable-source-maps', 'bin/ct-es', '--node', 'http://es:9200']));
  assert.ok(isCtCommand(null, ['/usr/local/bin/ct-es']));
  assert.ok(!isCtCommand('node', ['node', 'server.js', 'ct-syslog']), 'only the script position counts');
  assert.ok(!isCtCommand('vim', ['vim', 'bin/ct-syslog']));
  assert.ok(!isCtCommand('node', ['node', 'bin/ct-syslog.bak']));
  assert.ok(!isCtCommand(undefined, undefined));
});

test('parseStat: comm with spaces and parentheses', () => {
  assert.deepEqual(parseStat('42 (my (odd) prog) S 1 40 30 34816 40 4194560 ...'), { pid: 42, ppid: 1, pgrp: 40, session: 30, ttyNr: 34816 });
  assert.equal(parseStat('garbage'), null);
});

/** A fake /proc: pid -> [pgrp, session, tty, cmdline]. */
function fakeProc(procs: Record<number, [number, number, number, string[]]>): string {
  const root = mkdtempSync(path.join(tmpdir(), 'ctf-proc-'));
  for (const [pid, [pgrp, session, tty, cmdline]] of Object.entries(procs)) setProc(root, Number(pid), pgrp, session, tty, cmdline);
  return root;
}
function setProc(root: string, pid: number, pgrp: number, session: number, tty: number, cmdline: string[]) {
  mkdirSync(path.join(root, String(pid)), { recursive: true });
  writeFileSync(path.join(root, String(pid), 'stat'), `${pid} (x y) S 1 ${pgrp} ${session} ${tty} 0 0 0\n`);
  writeFileSync(path.join(root, String(pid), 'cmdline'), cmdline.join('\0') + '\0');
}

test('in a terminal: the process group and ct-* commands count, the session does not', () => {
  const root = fakeProc({
    100: [100, 50, 34816, ['node', 'bin/ct-filter', '--no-self']],
    101: [100, 50, 34816, ['socat', '-', 'TCP:logs:514']],
    102: [200, 50, 34816, ['curl', 'example.com']],
    103: [300, 300, 0, ['node', '/opt/ctpipe/bin/ct-es', '--node', 'http://es:9200']],
  });
  try {
    const d = new SelfDetector({ pid: 100, procRoot: root });
    assert.equal(d.useSession, false);
    assert.ok(d.isSelfPid(101), 'same process group');
    assert.ok(!d.isSelfPid(102), 'another job of the same terminal session');
    assert.ok(d.isSelfPid(103), 'a ct-* command elsewhere');
    assert.ok(!d.isSelfPid(999), 'no such process');
    // the event's own comm/cmdline names a ct command even when its pid is unknown
    assert.ok(d.isSelf({ process: { pid: 5555, comm: 'node', cmdline: ['node', '/x/bin/ct-syslog'] } }));
    assert.ok(!d.isSelf({ attribution: { ok: false } }), 'unattributed events are never self');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('without a terminal (a service): the whole session counts', () => {
  const root = fakeProc({
    100: [100, 90, 0, ['node', 'bin/ct-filter']],
    101: [101, 90, 0, ['logger', '-n', 'logs']],
    102: [200, 200, 0, ['curl']],
  });
  try {
    const d = new SelfDetector({ pid: 100, procRoot: root });
    assert.equal(d.useSession, true);
    assert.ok(d.isSelfPid(101));
    assert.ok(!d.isSelfPid(102));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('answers are refreshed after refreshMs; a member that exits is still known', () => {
  const root = fakeProc({ 100: [100, 50, 34816, ['ct-filter']], 101: [100, 50, 34816, ['sh']] });
  let now = 0;
  try {
    const d = new SelfDetector({ pid: 100, procRoot: root, refreshMs: 1000, now: () => now });
    assert.ok(d.isSelfPid(101));
    // pid 102 appears in our group after the first scan: looked up on sight
    setProc(root, 102, 100, 50, 34816, ['nc']);
    assert.ok(d.isSelfPid(102));
    // 101 exits: still self (its last events may come after it is gone)
    rmSync(path.join(root, '101'), { recursive: true });
    now = 5000;
    assert.ok(d.isSelfPid(101));
    // 102's pid is reused by an unrelated process: seen after the refresh
    setProc(root, 102, 700, 700, 0, ['other']);
    assert.ok(d.isSelfPid(102), 'within refreshMs the cached answer stands');
    now = 10000;
    assert.ok(!d.isSelfPid(102));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('no /proc entry for ourselves: a clear error', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'ctf-proc-'));
  try {
    assert.throws(() => new SelfDetector({ pid: 100, procRoot: root }), /--no-self needs \/proc/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('real /proc: a child in our process group is self, a detached one (own session) is not', async () => {
  const same = spawn('sleep', ['30'], { stdio: 'ignore' });
  const apart = spawn('sleep', ['30'], { stdio: 'ignore', detached: true });
  try {
    await new Promise((r) => setTimeout(r, 50));
    const d = new SelfDetector({ pid: process.pid });
    assert.ok(d.isSelfPid(same.pid!), 'same process group');
    assert.ok(!d.isSelfPid(apart.pid!), 'setsid: its own session and group');
  } finally {
    same.kill();
    apart.kill();
  }
});
