// src/proc/users.ts: passwd/group text -> id -> name, and the Users cache
// over an etc directory of the test's own (getent off, so only the files count).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseColonDb, Users } from '../../src/proc/users.js';

const PASSWD = `root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
# a comment:x:5:5
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash
+bob::::::
-mallory
+@staff
+
`;

const GROUP = `root:x:0:
daemon:x:1:
adm:x:4:syslog,alice
www-data:x:33:
alice:x:1000:
nogroup:x:65534:
+:::
`;

test('parseColonDb: passwd with comments and NIS lines', () => {
  const m = parseColonDb(PASSWD);
  assert.deepEqual([...m.entries()], [[0, 'root'], [1, 'daemon'], [33, 'www-data'], [65534, 'nobody'], [1000, 'alice']]);
  assert.equal(m.get(5), undefined, 'a commented line is no entry');
});

test('parseColonDb: group file', () => {
  const m = parseColonDb(GROUP);
  assert.equal(m.get(4), 'adm');
  assert.equal(m.get(65534), 'nogroup');
  assert.equal(m.size, 6, 'the NIS "+:::" line is no entry');
});

test('parseColonDb: the first of duplicate ids wins, as getpwuid(3) on files does', () => {
  const m = parseColonDb('toor:x:0:0::/root:/bin/sh\nroot:x:0:0::/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\nalice2:x:1000:1000::/home/alice:/bin/sh\n');
  assert.equal(m.get(0), 'toor');
  assert.equal(m.get(1000), 'alice');
  assert.equal(m.size, 2);
});

test('parseColonDb: short, empty and garbled lines are skipped', () => {
  const m = parseColonDb(['short:x', 'onlyname', '', ':::', 'nouid:x:', 'word:x:abc:0', 'neg:x:-1:0', 'frac:x:1.5:0', 'sp:x: 7:0', 'exp:x:1e3:0', 'ok:x:42:42', ''].join('\n'));
  assert.deepEqual([...m.entries()], [[42, 'ok']]);
  assert.equal(m.get(0), undefined, 'an empty id field is not uid 0');
});

test('parseColonDb: CRLF files and a last line without a newline', () => {
  const m = parseColonDb('root:x:0:0:root:/root:/bin/bash\r\nalice:x:1000:1000::/home/alice:/bin/bash');
  assert.equal(m.get(0), 'root');
  assert.equal(m.get(1000), 'alice');
  assert.equal(parseColonDb('').size, 0);
});

function etcDir(passwd: string, group: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'ct-users-'));
  writeFileSync(path.join(dir, 'passwd'), passwd);
  writeFileSync(path.join(dir, 'group'), group);
  return dir;
}

test('Users: names from the given etc dir; an id with no name is undefined', (t) => {
  const dir = etcDir(PASSWD, GROUP);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const u = new Users({ etc: dir, getent: false });
  assert.equal(u.user(0), 'root');
  assert.equal(u.user(1000), 'alice');
  assert.equal(u.user(65534), 'nobody');
  assert.equal(u.group(4), 'adm');
  assert.equal(u.group(65534), 'nogroup');
  // No name anywhere: the caller keeps the number (ProcessReader writes it as text).
  assert.equal(u.user(4242), undefined);
  assert.equal(u.group(4242), undefined);
  // Asked twice: the same answer, from the cache.
  assert.equal(u.user(4242), undefined);
  assert.equal(u.user(1000), 'alice');
});

test('Users: a missing etc dir gives numbers only, no throw', () => {
  const u = new Users({ etc: path.join(tmpdir(), 'ct-users-does-not-exist'), getent: false });
  assert.equal(u.user(0), undefined);
  assert.equal(u.group(0), undefined);
});

test('Users: an edited passwd is picked up by a new reader, and by the same one after the recheck interval', async (t) => {
  const dir = etcDir(PASSWD, GROUP);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const first = new Users({ etc: dir, getent: false });
  assert.equal(first.user(1001), undefined);
  writeFileSync(path.join(dir, 'passwd'), PASSWD + 'carol:x:1001:1001::/home/carol:/bin/sh\n');
  // A distinct mtime even on file systems with coarse timestamps.
  const later = new Date(Date.now() + 5000);
  utimesSync(path.join(dir, 'passwd'), later, later);
  assert.equal(new Users({ etc: dir, getent: false }).user(1001), 'carol');
  // The running reader looks at the file's mtime at most every 2 s.
  await new Promise((r) => setTimeout(r, 2100));
  assert.equal(first.user(1001), 'carol');
  assert.equal(first.user(0), 'root');
});

test('Users: getent answers for ids the files do not name (root via NSS files on this host)', () => {
  // The empty etc dir leaves only getent(1), which reads the host's own databases.
  const dir = mkdtempSync(path.join(tmpdir(), 'ct-users-'));
  try {
    const u = new Users({ etc: dir, getent: true });
    assert.equal(u.user(0), 'root');
    assert.equal(u.group(0), 'root');
    assert.equal(u.user(2147483000), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
