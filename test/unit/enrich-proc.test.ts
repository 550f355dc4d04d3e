// src/proc/entity.ts, ancestry.ts, exehash.ts, enrich.ts: entity ids from
// the real /proc, a real three-level process chain named after it exits, a
// fake /proc with a reused parent pid, and digests of real executables
// (one deleted while it runs, one run from a memfd).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, copyFileSync, chmodSync, rmSync, realpathSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bootId, entityId } from '../../src/proc/entity.js';
import { ProcessReader } from '../../src/proc/process.js';
import { Ancestry } from '../../src/proc/ancestry.js';
import { ExeHasher, exeKind } from '../../src/proc/exehash.js';
import { ProcessEnricher } from '../../src/proc/enrich.js';
import { procStartTime } from '../../src/proc/sockets.js';

const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

test('entity_id: boot id, pid and start time; what ProcessReader gives', () => {
  const b = bootId();
  assert.match(b, /^[0-9a-f-]{36}$/);
  const id = entityId(b, 42, 1000);
  assert.match(id, /^[A-Za-z0-9_-]{22}$/);
  assert.equal(entityId(b, 42, 1000), id);
  assert.notEqual(entityId(b, 42, 1001), id, 'pid reused later');
  assert.notEqual(entityId(b, 43, 1000), id);
  assert.notEqual(entityId('another-boot', 42, 1000), id, 'after a reboot');
  const self = new ProcessReader().get(process.pid)!;
  assert.equal(self.entity_id, entityId(b, process.pid, procStartTime(process.pid)!));
  assert.equal(new ProcessReader().get(process.pid)!.entity_id, self.entity_id, 'another reader, the same id');
});

test('ancestry: sh -> python -> sleep, each level named, and still named after all exited', async () => {
  const c = spawn('sh', ['-c', 'python3 -c "import subprocess,sys; p=subprocess.Popen([\'sleep\',\'2\']); print(p.pid, flush=True); p.wait()"; true'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = await once(c.stdout!, 'data');
  const sleepPid = Number(String(line).trim());
  const procs = new ProcessReader();
  const anc = new Ancestry({ depth: 4 });
  const leaf = procs.get(sleepPid)!;
  assert.equal(leaf.comm, 'sleep');
  const l = anc.of(leaf);
  assert.equal(l.parent?.comm, 'python3');
  assert.ok(l.parent?.cmdline?.includes('-c'));
  assert.equal(l.ancestors?.[0]?.pid, c.pid);
  assert.equal(l.ancestors?.[0]?.comm, 'sh');
  assert.equal(l.ancestors?.[1]?.pid, process.pid);
  assert.equal(l.ancestors?.[1]?.exe, realpathSync(process.execPath));
  assert.equal(l.ancestors?.length, 3, 'parent + 3 = depth 4');
  assert.equal(l.parent?.entity_id, procs.get(l.parent!.pid)!.entity_id);
  await once(c, 'close');
  // All three exited: the chain is remembered, by the leaf's entity_id.
  const again = anc.of(leaf);
  assert.deepEqual(again, l);
  assert.equal(new Ancestry({ depth: 1 }).of(procs.get(process.pid)!).ancestors, undefined, 'depth 1: the parent only');
});

test('ancestry: a parent pid now held by a process started later is not the parent', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'ctanc-'));
  const stat = (pid: number, comm: string, ppid: number, start: number) =>
    `${pid} (${comm}) S ${ppid} ${pid} ${pid} 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 ${start} 0 0\n`;
  writeFileSync(path.join(root, 'stat'), 'cpu 0\nbtime 1700000000\n');
  mkdirSync(path.join(root, 'sys/kernel/random'), { recursive: true });
  writeFileSync(path.join(root, 'sys/kernel/random/boot_id'), '00000000-0000-0000-0000-000000000001\n');
  for (const [pid, comm, ppid, start] of [[10, 'child', 20, 5000], [20, 'reused', 1, 6000], [1, 'init', 0, 1]] as const) {
    mkdirSync(path.join(root, String(pid)));
    writeFileSync(path.join(root, String(pid), 'stat'), stat(pid, comm, ppid, start));
    writeFileSync(path.join(root, String(pid), 'cmdline'), `${comm}\0`);
  }
  const procs = new ProcessReader({ proc: root });
  const child = procs.get(10)!;
  const l = new Ancestry({ proc: root }).of(child);
  assert.equal(l.parent, undefined, 'pid 20 started after its supposed child');
  // The real parent seen earlier (remembered), then its pid reused: the remembered one is given.
  writeFileSync(path.join(root, '20', 'stat'), stat(20, 'parent', 1, 4000));
  const a = new Ancestry({ proc: root });
  assert.equal(a.of({ ...child, entity_id: 'first' }).parent?.comm, 'parent');
  writeFileSync(path.join(root, '20', 'stat'), stat(20, 'reused', 1, 6000));
  const l2 = a.of({ ...child, entity_id: 'second' });
  assert.equal(l2.parent?.comm, 'parent', 'remembered, not the reused pid');
  assert.equal(l2.ancestors?.[0]?.comm, 'init');
  rmSync(root, { recursive: true });
});

test('exe hash: pending at first, then the digest of the running file; cached', async () => {
  let done = 0;
  const h = new ExeHasher({ onDone: () => done++ });
  const first = h.get(process.pid);
  assert.deepEqual(first, { pending: true });
  await h.settled();
  assert.deepEqual(h.get(process.pid), { sha256: sha(realpathSync(process.execPath)) });
  assert.equal(done, 1);
  assert.equal(h.stats.hashed, 1);
  h.get(process.pid);
  assert.equal(h.stats.hashed, 1, 'cached by device, inode, size and mtime');
  assert.equal(new ExeHasher({ maxBytes: 1000 }).get(process.pid).error, 'too-large');
  assert.equal(h.get(2 ** 22 + 7).error, 'ENOENT');
  assert.equal(exeKind('/usr/bin/x (deleted)'), 'deleted');
  assert.equal(exeKind('/memfd:payload (deleted)'), 'memfd');
  assert.equal(exeKind('/usr/bin/x'), null);
});

test('process enrichment: a deleted binary still running is flagged and hashed as it runs', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ctexe-'));
  const bin = path.join(dir, 'sleeper');
  copyFileSync(realpathSync('/bin/sleep'), bin);
  chmodSync(bin, 0o755);
  const want = sha(bin);
  const c = spawn(bin, ['5'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 100));
  rmSync(bin);
  const procs = new ProcessReader();
  const p = procs.get(c.pid!)!;
  assert.equal(p.exe, `${bin} (deleted)`);
  const e = new ProcessEnricher({ hash: true });
  const first = e.enrich(p);
  assert.equal(first.exe_deleted, true);
  assert.deepEqual(first.hash, { pending: true });
  assert.equal(e.enrich(p), first, 'the same object while pending');
  const looks = e.hasher!.stats.looks;
  for (let i = 0; i < 100; i++) assert.equal(e.enrich(p), first);
  assert.equal(e.hasher!.stats.looks, looks, 'no stat of the exe link per event while nothing has been hashed since');
  await e.hasher!.settled();
  const second = e.enrich(p);
  assert.notEqual(second, first, 'a new object once the digest is known');
  assert.deepEqual(second.hash, { sha256: want });
  assert.equal(e.enrich(p), second);
  assert.equal(p.hash, undefined, 'the shared process object is not changed');
  c.kill();
  await once(c, 'close');
  rmSync(dir, { recursive: true });
});

test('process enrichment: a process run from a memfd is flagged', async () => {
  const py = `import os,sys
fd=os.memfd_create("payload")
os.write(fd, open("/bin/sleep","rb").read())
pid=os.fork()
if pid==0: os.execv("/proc/self/fd/%d"%fd, ["payload","5"])
print(pid, flush=True)
os.waitpid(pid,0)`;
  const c = spawn('python3', ['-c', py], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = await once(c.stdout!, 'data');
  const pid = Number(String(line).trim());
  await new Promise((r) => setTimeout(r, 100));
  const p = new ProcessReader().get(pid)!;
  const e = new ProcessEnricher({ hash: true });
  assert.equal(e.enrich(p).exe_memfd, true, String(p.exe));
  await e.hasher!.settled();
  assert.equal(e.enrich(p).hash?.sha256, sha('/bin/sleep'));
  execFileSync('kill', [String(pid)]);
  await once(c, 'close');
});
