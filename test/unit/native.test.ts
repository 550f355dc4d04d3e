// The project's own addon (native/): it loads, the binary tested is the one
// built here when there is one, the committed prebuilt binary is built from
// the current sources, and its functions do what the kernel says.
import test from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, openSync, closeSync, mkdtempSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { RawNetlinkSocket } from 'netlink';
import { loadAddon, NATIVE_DIR, type NativeError } from '../../src/native/addon.js';
import { fdOfInode, setIntOptions, getIntOption, SOL_SOCKET, SO_RCVBUF, SOL_NETLINK, NETLINK_NO_ENOBUFS } from '../../src/netlink/sockopt.js';
import { netlinkSocketInfo } from '../../src/proc/netlink.js';
import { ROOT } from '../helpers.js';

test('the addon loads, and a binary built from source here is the one loaded', () => {
  const { path: p } = loadAddon();
  const built = path.join(NATIVE_DIR, 'build', 'Release', 'ctpipe.node');
  if (existsSync(built)) assert.equal(p, built);
  else assert.match(p, /prebuilds\/linux-x64\/ctpipe\.glibc\.node$/);
});

test('the committed prebuilt binaries are built from the current sources (npm run native:prebuild refreshes them)', () => {
  const dir = path.join(NATIVE_DIR, 'prebuilds', 'linux-x64');
  const record = readFileSync(path.join(dir, 'ctpipe.sha256'), 'utf8').trim().split('\n').map((l) => l.split(/\s+/));
  const sources = record.find((r) => r[1] === 'sources');
  assert.ok(sources, 'record lists the sources');
  const now = execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'native.js'), 'hash'], { encoding: 'utf8' }).trim();
  assert.equal(sources[0], now, 'native/ sources changed since the prebuilt binaries were made: run npm run native:prebuild');
  for (const name of ['ctpipe.glibc.node', 'ctpipe_bpf.glibc.node']) {
    const binary = record.find((r) => r[1] === name);
    assert.ok(binary, `record lists ${name}`);
    const sha = createHash('sha256').update(readFileSync(path.join(dir, name))).digest('hex');
    assert.equal(binary[0], sha, `the prebuilt ${name} is not the one recorded`);
  }
});

/** The shared libraries a binary needs (readelf -d: its NEEDED entries). */
function needed(file: string): string[] {
  const out = execFileSync('readelf', ['-d', file], { encoding: 'utf8' });
  return [...out.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]!);
}

test('only the BPF part needs libbpf: ctpipe.node (ct-events\' socket, setns, socket options) needs libc alone', () => {
  const dir = path.join(NATIVE_DIR, 'prebuilds', 'linux-x64');
  const binaries = [path.join(dir, 'ctpipe.glibc.node'), path.join(NATIVE_DIR, 'build', 'Release', 'ctpipe.node')].filter(existsSync);
  for (const f of binaries) {
    const libs = needed(f);
    assert.ok(libs.includes('libc.so.6'), `${f}: ${libs}`);
    assert.deepEqual(libs.filter((l) => /bpf|elf|libz/.test(l)), [], `${f} needs ${libs.join(', ')}`);
  }
  for (const f of [path.join(dir, 'ctpipe_bpf.glibc.node'), path.join(NATIVE_DIR, 'build', 'Release', 'ctpipe_bpf.node')].filter(existsSync)) {
    assert.ok(needed(f).includes('libbpf.so.1'), `${f} is linked with libbpf.so.1`);
  }
});

test('on a host without libbpf.so.1: ctpipe.node loads, and the bpf method says so in one line', (t) => {
  // A mount namespace of the test's own in which the directory holding
  // libbpf.so.1 shows every file it has but libbpf's: links to the real
  // directory (bound at a path of the test's), mounted over it. Nothing
  // outside the namespace changes.
  if (process.getuid?.() !== 0) {
    if (process.env.CI === 'true') assert.fail('needs root (a mount namespace) under CI=true');
    t.skip('needs root for a mount namespace');
    return;
  }
  const lib = execFileSync('sh', ['-c', 'readlink -f "$(ldconfig -p | sed -n "s/.*libbpf.so.1 (libc6,x86-64) => //p" | head -1)"'], { encoding: 'utf8' }).trim();
  assert.ok(lib.startsWith('/'), 'libbpf.so.1 is installed here (libbpf1), so that the test can hide it');
  const libdir = path.dirname(lib);
  const tmp = mkdtempSync(path.join(tmpdir(), 'ctpipe-nolibbpf-'));
  try {
    const real = path.join(tmp, 'real'), links = path.join(tmp, 'links');
    mkdirSync(real);
    mkdirSync(links);
    for (const f of readdirSync(libdir)) if (!f.startsWith('libbpf.')) symlinkSync(path.join(real, f), path.join(links, f));
    const probe = [
      `import { loadAddon, loadBpfAddon } from ${JSON.stringify(path.join(ROOT, 'dist', 'src', 'native', 'addon.js'))};`,
      'const main = loadAddon();',
      'let bpf = "loaded";',
      'try { loadBpfAddon(); } catch (e) { bpf = e.message; }',
      'console.log(JSON.stringify({ main: typeof main.addon.NetlinkSocket, bpf }));',
    ].join('\n');
    const script = 'mount --bind "$1" "$2" && mount --bind "$3" "$1" && shift 3 && exec "$@"';
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', libdir, real, links, process.execPath, '--input-type=module', '-e', probe], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { main: 'function', bpf: 'libbpf.so.1 missing (install libbpf1)' });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

function netlinkFd(): { sock: RawNetlinkSocket; fd: number } {
  const sock = new RawNetlinkSocket(4 /* NETLINK_SOCK_DIAG */, {} as any);
  const info = netlinkSocketInfo(sock.address().port);
  assert.ok(info, 'socket listed in /proc/self/net/netlink');
  const fd = fdOfInode(info.inode);
  assert.ok(fd !== null, 'its descriptor found');
  return { sock, fd };
}

test('setsockopt and getsockopt: int options on a real netlink socket', () => {
  const { sock, fd } = netlinkFd();
  try {
    assert.equal(getIntOption(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS), 0);
    assert.deepEqual(setIntOptions(fd, [[SOL_NETLINK, NETLINK_NO_ENOBUFS, 1], [SOL_SOCKET, SO_RCVBUF, 65536]]), []);
    assert.equal(getIntOption(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS), 1);
    // socket(7): the kernel doubles the value for its bookkeeping.
    assert.equal(getIntOption(fd, SOL_SOCKET, SO_RCVBUF), 131072);
  } finally {
    sock.close();
  }
});

test('kernel errors are exceptions with the errno name, never an abort', () => {
  const { addon } = loadAddon();
  assert.throws(() => addon.getsockopt(1 << 20, SOL_SOCKET, SO_RCVBUF), (e: NativeError) => e.code === 'EBADF' && e.errno === 9 && /getsockopt/.test(e.message));
  const fd = openSync('/dev/null', 'r');
  try {
    assert.throws(() => addon.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, 1), (e: NativeError) => e.code === 'ENOTSOCK');
    assert.match(setIntOptions(fd, [[SOL_NETLINK, NETLINK_NO_ENOBUFS, 1]])[0], /^NETLINK_NO_ENOBUFS: .*socket/);
  } finally {
    closeSync(fd);
  }
  assert.throws(() => (addon.setsockopt as any)(0, 'a', 1, 1), TypeError);
  assert.throws(() => (addon.getsockopt as any)(), TypeError);
});

test('CTPIPE_TEST_REFUSE makes the addon refuse the options it names (a test-only switch)', () => {
  const script = `
    import { RawNetlinkSocket } from 'netlink';
    import { fdOfInode, setIntOptions } from './dist/src/netlink/sockopt.js';
    import { netlinkSocketInfo } from './dist/src/proc/netlink.js';
    const s = new RawNetlinkSocket(4, {});
    const fd = fdOfInode(netlinkSocketInfo(s.address().port).inode);
    console.log(JSON.stringify(setIntOptions(fd, [[270, 5, 1], [1, 8, 65536]])));
    s.close();`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, CTPIPE_TEST_REFUSE: 'SO_RCVBUFFORCE,NETLINK_NO_ENOBUFS' } });
  assert.equal(r.status, 0, r.stderr);
  const errors = JSON.parse(r.stdout);
  assert.equal(errors.length, 1);
  assert.match(errors[0], /^NETLINK_NO_ENOBUFS: .*CTPIPE_TEST_REFUSE.*not permitted/);
});

test('no perl anywhere under src/: the kernel is reached through the addon, not helper programs', () => {
  const hits: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/perl/i.test(readFileSync(p, 'utf8'))) hits.push(path.relative(ROOT, p));
    }
  };
  walk(path.join(ROOT, 'src'));
  assert.deepEqual(hits, []);
});
