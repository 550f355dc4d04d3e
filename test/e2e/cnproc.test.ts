// The process connector (src/netlink/cnproc.ts) on the real kernel, in the
// initial network namespace where it exists: the fork and exit of real
// processes come as 'born' and 'ended'; a fork storm into a receive buffer
// the test shrinks, while the event loop is held so nothing is read, is
// counted as 'lost' (the socket overflowed), and the process goes on and
// hears the next process (the 'netlink' package aborted the whole process
// on that ENOBUFS: the connector now reads through ctpipe's addon).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { ProcConnector } from '../../src/netlink/cnproc.js';
import { needRoot, sleep, waitFor } from '../helpers.js';

const skip = needRoot();

/** Run `true` and give its pid. */
async function child(): Promise<number> {
  const c = spawn('/bin/true', { stdio: 'ignore' });
  await new Promise((r) => c.once('exit', r));
  return c.pid!;
}

test('process connector: births and exits of real processes; an overflowed socket is counted as lost, and the events go on', { skip }, async () => {
  const c = new ProcConnector();
  const born = new Set<number>(), ended = new Set<number>();
  let lost = 0;
  c.on('born', (pid: number) => born.add(pid));
  c.on('ended', (pid: number) => ended.add(pid));
  c.on('lost', () => lost++);
  await c.start(2000, { rcvbuf: 1 });
  try {
    const pids = [await child(), await child(), await child()];
    await waitFor(() => pids.every((p) => born.has(p) && ended.has(p)), 5000, 'the three children born and ended');
    assert.equal(lost, 0);

    // A fork storm while this process reads nothing: the buffer overflows.
    const storm = spawn('sh', ['-c', 'for i in $(seq 2000); do /bin/true & done; wait'], { stdio: 'ignore' });
    const t0 = Date.now();
    while (Date.now() - t0 < 1500) { /* the event loop held: no reads */ }
    await new Promise((r) => (storm.exitCode !== null ? r(null) : storm.once('exit', r)));
    await waitFor(() => lost > 0, 5000, 'the overflow counted');

    const after = await child();
    await waitFor(() => born.has(after) && ended.has(after), 5000, 'a process after the overflow heard');
  } finally {
    c.close();
  }
});

test('process connector: outside the initial network namespace, start() says why', { skip }, () => {
  // In a namespace of its own the connector does not exist: the error is one line, not a crash.
  const js = `import('${new URL('../../src/netlink/cnproc.js', import.meta.url).href}').then(async ({ ProcConnector }) => {
    try { await new ProcConnector().start(500); console.log('started'); } catch (e) { console.log('refused: ' + e.message); }
  })`;
  const r = spawnSync('unshare', ['--net', process.execPath, '-e', js], { encoding: 'utf8', timeout: 10000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^refused: (no process connector in this network namespace|the kernel did not answer)/);
});
