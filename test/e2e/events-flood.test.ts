// ct-events through a flood of 200,000 new UDP flows, against the real
// kernel in a namespace of the test's own, three ways: with no perl on PATH,
// with a tiny --rcvbuf and SO_RCVBUFFORCE refused, and with
// NETLINK_NO_ENOBUFS refused (the addon's test switch, CTPIPE_TEST_REFUSE).
// Each time ct-events must keep running, and every flow the kernel made
// (its rule counter) must be either written or counted in overrun records:
// captured + lost = made, exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, symlinkSync, rmSync, openSync, readSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BIN, needRoot, makeNetns, delNetns, inNetns, sleep, waitFor, PY, withoutMethods } from '../helpers.js';

const skip = needRoot();
const FLOWS = Number(process.env.CT_FLOOD_FLOWS ?? 200000);
const PER_ADDR = 50000;

// The flood goes to 127.201.0.N, dropped at lo's ingress: no receiver, no
// ICMP errors, and conntrack has confirmed (and announced) each flow on the
// way out. The second rule counts the flood's flows: the kernel's own figure.
function floodNs(): string {
  const ns = makeNetns('ctfl');
  inNetns(ns, 'nft', ['-f', '-'], [
    'table netdev ctflood {',
    '  chain in { type filter hook ingress device "lo" priority 0; policy accept; ip daddr 127.201.0.0/16 drop; }',
    '}',
    'table inet ctflood {',
    '  chain out { type filter hook output priority 0; policy accept; ct state new counter; ip daddr 127.201.0.0/16 ct state new counter; }',
    '}',
    '',
  ].join('\n'));
  return ns;
}

function made(ns: string): number {
  const text = inNetns(ns, 'nft', ['list', 'chain', 'inet', 'ctflood', 'out']);
  const m = /ip daddr 127\.201\.0\.0\/16 ct state new counter packets (\d+)/.exec(text);
  assert.ok(m, text);
  return Number(m[1]);
}

const FLOOD = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(${FLOWS}):
    s.sendto(b'x', ('127.201.0.%d' % (1 + i // ${PER_ADDR}), 10000 + i % ${PER_ADDR}))
`;

/**
 * ct-events in the namespace, writing to a file (as to a log: a reader that
 * keeps up, so that only the socket can overflow), tallied as it grows.
 */
class Run {
  readonly child;
  captured = 0;
  probes = new Set<number>();
  lost = 0;
  overruns: any[] = [];
  other = 0;
  stderr = '';
  code: number | null | undefined = undefined;
  private fd: number;
  private offset = 0;
  private partial = '';
  private closed: Promise<void>;

  constructor(ns: string, readonly file: string, args: string[], env: NodeJS.ProcessEnv) {
    this.fd = openSync(file, 'w+');
    this.child = spawn('ip', ['netns', 'exec', ns, 'env', '-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), process.execPath, BIN('ct-events'), ...args], { stdio: ['ignore', this.fd, 'pipe'] });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.closed = new Promise((resolve) => this.child.on('close', (code) => { this.code = code; resolve(); }));
  }

  /** Tally what was written since the last call. */
  read(): void {
    const buf = Buffer.alloc(1 << 20);
    for (;;) {
      const n = readSync(this.fd, buf, 0, buf.length, this.offset);
      if (n <= 0) break;
      this.offset += n;
      const parts = (this.partial + buf.toString('utf8', 0, n)).split('\n');
      this.partial = parts.pop()!;
      for (const p of parts) {
        if (!p) continue;
        if (p.includes('"event":"new"') && p.includes('"dst":"127.201.0.')) {
          this.captured++;
          continue;
        }
        const e = JSON.parse(p);
        if (e.event === 'new' && e.dst === '127.0.0.1') this.probes.add(e.dport);
        else if (e.event === 'overrun') { this.overruns.push(e); this.lost += e.lost; }
        else this.other++;
      }
    }
  }

  async probe(ns: string, port: number, ms = 10000): Promise<void> {
    const end = Date.now() + ms;
    while (Date.now() < end && this.code === undefined) {
      inNetns(ns, PY, ['-c', `import socket\nsocket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'p', ('127.0.0.1', ${port}))`]);
      await sleep(150);
      this.read();
      if (this.probes.has(port)) return;
    }
    assert.fail(`ct-events never showed the probe to port ${port} (exit ${this.code}): ${this.stderr}`);
  }

  async stop(): Promise<number | null> {
    if (this.code === undefined) this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 15000);
    await this.closed;
    clearTimeout(t);
    this.read();
    return this.code!;
  }

  close(): void {
    closeSync(this.fd);
  }
}

async function flood(args: string[], env: NodeJS.ProcessEnv, check: (r: Run) => void): Promise<void> {
  const ns = floodNs();
  const dir = mkdtempSync(path.join(tmpdir(), 'ctflood-'));
  const run = new Run(ns, path.join(dir, 'events.ndjson'), ['-e', 'new', ...args], env);
  try {
    await run.probe(ns, 9);
    execFileSync('ip', ['netns', 'exec', ns, PY, '-c', FLOOD], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 120000 });
    const n = made(ns);
    assert.equal(n, FLOWS, 'the kernel made one flow per datagram');
    // Everything written or counted, with ct-events still running.
    await waitFor(() => { run.read(); return run.captured + run.lost >= n || run.code !== undefined; }, 90000, `captured ${run.captured} + lost ${run.lost} of ${n}`);
    assert.equal(run.code, undefined, `ct-events exited: ${run.stderr}`);
    await run.probe(ns, 7);
    assert.equal(await run.stop(), 0, run.stderr);
    assert.equal(run.captured + run.lost, n, `captured ${run.captured} + lost ${run.lost} = made ${n}`);
    assert.equal(run.other, 0);
    console.log(`made ${n}: captured ${run.captured}, lost ${run.lost} in ${run.overruns.length} overrun records (${[...new Set(run.overruns.map((o) => o.reason))].join(", ")})`);
    check(run);
  } finally {
    await run.stop();
    run.close();
    rmSync(dir, { recursive: true, force: true });
    delNetns(ns);
  }
}

test('a 200k flood with no perl on PATH: ct-events runs on, and captured + lost = the flows made', { skip, timeout: 300000 }, async () => {
  const bin = mkdtempSync(path.join(tmpdir(), 'ctnoperl-'));
  try {
    symlinkSync(process.execPath, path.join(bin, 'node'));
    const env = { PATH: bin };
    assert.notEqual(spawnSync('perl', ['-e', '1'], { env }).status, 0, 'perl is not reachable on this PATH');
    await flood([], env, (r) => {
      // Socket options set, nothing lost; nft is not on this PATH either: DNS names not live, said once.
      assert.equal(withoutMethods(r.stderr), 'ct-events: DNS names not live: needs the \'nft\' command (apt-get install nftables); flows carry no "dns" (--no-dns-names: do not try)\n');
      assert.equal(r.captured, FLOWS);
    });
  } finally {
    rmSync(bin, { recursive: true, force: true });
  }
});

test('a 200k flood into a tiny --rcvbuf with SO_RCVBUFFORCE refused: the exact loss in overrun records', { skip, timeout: 300000 }, async () => {
  await flood(['--rcvbuf', '4096'], { PATH: process.env.PATH!, CTPIPE_TEST_REFUSE: 'SO_RCVBUFFORCE' }, (r) => {
    assert.ok(r.lost > 0 && r.captured > 0, `captured ${r.captured}, lost ${r.lost}`);
    assert.ok(r.overruns.every((o) => /enobufs/.test(o.reason)), JSON.stringify(r.overruns.slice(0, 3)));
    assert.match(r.stderr, /ct-events: lost \d+ conntrack events? \(enobufs\)/);
    assert.doesNotMatch(r.stderr, /abort|terminate|Napi/);
  });
});

test('a 200k flood with NETLINK_NO_ENOBUFS refused: the kernel\'s ENOBUFS reports are taken, not fatal, and the loss is exact', { skip, timeout: 300000 }, async () => {
  await flood(['--rcvbuf', '65536'], { PATH: process.env.PATH!, CTPIPE_TEST_REFUSE: 'NETLINK_NO_ENOBUFS' }, (r) => {
    assert.match(r.stderr, /could not set socket options \(NETLINK_NO_ENOBUFS: .*refused by CTPIPE_TEST_REFUSE/);
    assert.ok(r.lost > 0 && r.captured > 0, `captured ${r.captured}, lost ${r.lost}`);
    assert.doesNotMatch(r.stderr, /abort|terminate|Napi/);
  });
});
