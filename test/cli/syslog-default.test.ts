// ct-syslog as the packaged service runs it (packaging/ctpipe.default:
// CT_OUTPUT="ct-syslog", no options: RFC 3164 to /dev/log), here with
// /dev/log the socket of a real rsyslog with its default maxMessageSize, in
// a mount namespace of the command's own. Attributed events with command
// lines of 1 KB to 80 KB: every message rsyslog receives is whole JSON, and
// a long event has its command line shortened and says so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT, needRoot } from '../helpers.js';
import { Rsyslog, needRsyslog } from '../e2e/rsyslog.js';

const skip = needRoot() || needRsyslog();
const DEFAULTS = path.join(ROOT, 'packaging', 'ctpipe.default');

const event = (id: number, args: string[]) => JSON.stringify({
  ts: '2026-11-23T07:41:33.965873Z', event: 'new', id, family: 'ipv4', proto: 'tcp', src: '127.0.0.1', sport: 40000 + id, dst: '127.0.0.1', dport: 7000,
  reply: { src: '127.0.0.1', sport: 7000, dst: '127.0.0.1', dport: 40000 + id }, status: ['CONFIRMED'], timeout: 120, mark: 0, zone: 0, host: 'web-1', direction: 'local',
  process: { pid: 1000 + id, ppid: 1, uid: 0, user: 'root', gid: 0, group: 'root', comm: 'python3', exe: '/usr/bin/python3.11', cmdline: ['/usr/bin/python3', ...args], cgroup: '/user.slice', unit: null, container: null },
  peer: { pid: 999, comm: 'python3', cmdline: ['/usr/bin/python3', '-c', 'sink'] }, attribution: { method: 'sock_diag', ok: true },
});

test('the service\'s default ct-syslog: every message rsyslog receives is whole JSON; long command lines shortened, said in "truncated"', { skip }, async () => {
  // The output the shipped defaults name.
  assert.match(readFileSync(DEFAULTS, 'utf8'), /^CT_OUTPUT="ct-syslog"$/m);
  const rs = new Rsyslog({ inputs: ['unix'] });
  const dir = mkdtempSync(path.join(tmpdir(), 'ct-sldef-'));
  try {
    await rs.start();
    const pad = (n: number, c: string) => Array.from({ length: n }, (_, i) => `--arg${i}=${c.repeat(990)}`);
    const sizes: [number, string][] = [[1, 'x'], [5, 'x'], [12, 'x'], [40, 'é'], [3, '"']];
    const input = sizes.map(([n, c], i) => event(i + 1, pad(n, c))).join('\n') + '\n';
    // /dev/log is rsyslog's socket: a tmpfs over /dev, in this mount namespace
    // only, holding links to the real entries and to it.
    const script = [
      'set -e',
      `mkdir -p "${dir}/dev"`,
      `mount --rbind /dev "${dir}/dev"`,
      'mount -t tmpfs -o mode=755 ctpipe-test-dev /dev',
      `for e in "${dir}"/dev/*; do ln -s "$e" /dev/; done`,
      `ln -s "${rs.sock}" /dev/log`,
      `set -a; . "${DEFAULTS}"; set +a`,
      'eval "exec $CT_OUTPUT"',
    ].join('\n');
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'bash', '-c', script], {
      input, encoding: 'utf8', env: { ...process.env, PATH: `${path.join(ROOT, 'bin')}:${process.env.PATH}` },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /^ct-syslog: stdin:3: event longer than 8096 bytes: its command line \(or other long fields\) shortened to fit/);
    const recs = await rs.waitFor((x) => x.length >= sizes.length, 15000, 'every event');
    assert.equal(recs.length, sizes.length);
    for (const [i, rec] of recs.entries()) {
      assert.ok(Buffer.byteLength(rec.rawmsg) <= 8096, `${Buffer.byteLength(rec.rawmsg)} bytes`);
      let ev: any;
      assert.doesNotThrow(() => { ev = JSON.parse(rec.msg.trim()); }, `not JSON: ...${rec.msg.slice(-60)}`);
      const [n] = sizes[i];
      assert.equal(ev.id, i + 1);
      if (n * 1000 < 7000 && sizes[i][1] !== '"') {
        assert.equal(ev.truncated, undefined, `event ${i + 1}`);
        assert.equal(ev.process.cmdline.length, 1 + n);
      } else if (n >= 12) {
        assert.deepEqual(ev.truncated, ['process.cmdline']);
        assert.equal(ev.process.cmdline[0], '/usr/bin/python3');
        assert.ok(ev.process.cmdline.length < 1 + n);
        assert.equal(ev.peer.cmdline.length, 3, 'the peer\'s short command line is left alone');
      }
    }
  } finally {
    await rs.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
