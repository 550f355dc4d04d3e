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
  // The kernel's default buffer: three children heard, nothing lost.
  const c = new ProcConnector();
  const born = new Set<number>(), ended = new Set<number>();
  c.on('born', (pid: number) => born.add(pid));
  c.on('ended', (pid: number) => ended.add(pid));
  await c.start(2000);
  try {
    const pids = [await child(), await child(), await child()];
    await waitFor(() => pids.every((p) => born.has(p) && ended.has(p)), 5000, 'the three children born and ended');
  } finally {
    c.close();
  }

  // The smallest buffer the kernel gives, and a fork storm while this
  // process reads nothing: it overflows, and that is counted.
  const t = new ProcConnector();
  const heard = new Set<number>();
  let lost = 0;
  t.on('born', (pid: number) => heard.add(pid));
  t.on('lost', () => lost++);
  await t.start(2000, { rcvbuf: 1 });
  try {
    const storm = spawn('sh', ['-c', 'for i in $(seq 2000); do /bin/true & done; wait'], { stdio: 'ignore' });
    const t0 = Date.now();
    while (Date.now() - t0 < 1500) { /* the event loop held: no reads */ }
    await new Promise((r) => (storm.exitCode !== null ? r(null) : storm.once('exit', r)));
    await waitFor(() => lost > 0, 5000, 'the overflow counted');
    // Still listening: a process started now is heard (the small buffer
    // may drop one again if the host forks at that moment: a few tries).
    let after = 0;
    for (let i = 0; i < 20 && !heard.has(after); i++) {
      after = await child();
      await sleep(100);
    }
    assert.ok(heard.has(after), 'a process after the overflow heard');
  } finally {
    t.close();
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
