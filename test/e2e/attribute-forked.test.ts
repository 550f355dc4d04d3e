// ct-attribute --no-bpf against freshly forked clients: each connection
// comes from a process forked right before it connects (ten forked at once
// by one parent), holds its socket 50 ms and exits. TCP and UDP over IPv4,
// both over IPv6, as root and as nobody. sock_diag finds each socket while
// it is held, so every NEW event must name the very pid that held it: a
// holder forked after the fd index last looked must be found too
// (src/proc/sockets.ts, src/proc/pids.ts). ct-attribute runs in a network
// namespace, where the process connector does not exist: new pids come
// from diffs of the /proc listing. The whole run is made twice, to show it
// does not pass by luck.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { BIN, needRoot, sleep, delNetns, lines, waitFor, withoutMethods, linkedNetns, startPy, runPy, PY_SINK, type NetnsPair } from '../helpers.js';

const skip = needRoot();
let ns: NetnsPair;

/** argv: proto host port n hold_s. Forks n children at once; each connects (or sends) at once, prints "PID SPORT", holds, exits. */
const FORKER = `
import os, socket, sys, time
proto, host, port, n, hold = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
fam = socket.AF_INET6 if ':' in host else socket.AF_INET
r, w = os.pipe()
kids = []
for i in range(n):
    pid = os.fork()
    if pid == 0:
        os.close(r)
        s = socket.socket(fam, socket.SOCK_STREAM if proto == 'tcp' else socket.SOCK_DGRAM)
        if proto == 'tcp':
            s.connect((host, port)); s.send(b'hi')
        else:
            s.sendto(b'hi', (host, port))
        os.write(w, ('%d %d\\n' % (os.getpid(), s.getsockname()[1])).encode())
        time.sleep(hold)
        s.close()
        os._exit(0)
    kids.append(pid)
os.close(w)
for k in kids: os.waitpid(k, 0)
sys.stdout.write(os.fdopen(r).read())
`;

interface Client { pid: number; sport: number; proto: string; user: string; host: string }

async function burst(proto: string, host: string, n: number, asNobody: boolean): Promise<Client[]> {
  const got = await runPy(ns.A, FORKER, [proto, host, proto === 'tcp' ? '7000' : '7001', String(n), '0.05'], asNobody, n);
  return got.map(([pid, sport]) => ({ pid, sport, proto, host, user: asNobody ? 'nobody' : 'root' }));
}

let sink: ChildProcess | null = null;

before(async () => {
  if (skip) return;
  ns = linkedNetns('f', 233);
  sink = (await startPy(ns.B, PY_SINK)).proc;
});

after(() => {
  if (skip) return;
  sink?.kill('SIGKILL');
  delNetns(ns.A);
  delNetns(ns.B);
});

/**
 * The clients that made a flow of their own: two that got the same port to
 * the same server make one flow (the later one's datagram or connection
 * joins or follows the first's conntrack entry), so neither can be scored.
 */
function onePerFlow(clients: Client[]): Client[] {
  const key = (c: Client) => `${c.proto}|${c.host}|${c.sport}`;
  const uses = new Map<string, number>();
  for (const c of clients) uses.set(key(c), (uses.get(key(c)) ?? 0) + 1);
  return clients.filter((c) => uses.get(key(c)) === 1);
}

async function run(round: number): Promise<void> {
  // A flow left from an earlier round with a port a client gets again would hide its NEW event.
  execFileSync('ip', ['netns', 'exec', ns.A, 'conntrack', '-F'], { stdio: 'ignore' });
  let out = '', err = '';
  const pipeline = spawn('ip', ['netns', 'exec', ns.A, 'sh', '-c', `trap : INT; ${BIN('ct-events')} -e new | ${BIN('ct-attribute')} --no-bpf`], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  // When each line came out, to say how late a miss was looked up.
  const cameAt = new Map<number, number>();
  pipeline.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    for (const m of d.matchAll(/"sport":(\d+),/g)) if (!cameAt.has(Number(m[1]))) cameAt.set(Number(m[1]), Date.now());
  });
  pipeline.stderr!.setEncoding('utf8').on('data', (d) => (err += d));
  const clients: Client[] = [];
  try {
    // Ready once a connection comes out attributed (ct-events subscribes after node starts: retried).
    const ready = Date.now() + 15000;
    for (;;) {
      const warm = await burst('tcp', ns.b4, 1, false);
      await sleep(300);
      if (out.includes(`"sport":${warm[0].sport},`)) break;
      assert.ok(Date.now() < ready, `the pipeline did not start; its stderr: ${err}`);
    }
    for (const asNobody of [false, true]) {
      for (const [proto, host] of [['tcp', ns.b4], ['udp', ns.b4], ['tcp', ns.b6], ['udp', ns.b6]]) {
        for (let i = 0; i < 2; i++) clients.push(...(await burst(proto, host, 10, asNobody)));
      }
    }
    const once = onePerFlow(clients);
    await waitFor(() => once.every((c) => out.includes(`"sport":${c.sport},`)), 10000, 'every NEW event');
    await sleep(300);
  } finally {
    try { process.kill(-pipeline.pid!, 'SIGINT'); } catch { /* gone */ }
  }
  const code = await new Promise<number | null>((r) => (pipeline.exitCode !== null ? r(pipeline.exitCode) : pipeline.once('close', r)));
  assert.equal(code, 0, err);
  const evs = lines(out).filter((e) => e.event === 'new');
  const wrong: string[] = [];
  let checked = 0;
  const scored = onePerFlow(clients);
  const shared = clients.length - scored.length;
  for (const c of scored) {
    const ev = evs.find((e) => e.proto === c.proto && e.sport === c.sport && e.dst === c.host);
    checked++;
    if (!ev) { wrong.push(`${c.proto} [${c.host}]:${c.sport} pid ${c.pid}: no NEW event`); continue; }
    if (ev.process?.pid !== c.pid || ev.process?.user !== c.user || ev.attribution?.method !== 'sock_diag') {
      const late = (cameAt.get(c.sport) ?? NaN) - Date.parse(ev.ts);
      wrong.push(`${c.proto} [${c.host}]:${c.sport} pid ${c.pid} (${c.user}), out ${late} ms after ct-events read it: ${JSON.stringify({ process: ev.process && { pid: ev.process.pid, user: ev.process.user }, attribution: ev.attribution })}`);
    }
  }
  assert.equal(clients.length, 160);
  assert.ok(checked >= 150, `round ${round}: ${checked} clients checked (${shared} shared a port)`);
  assert.deepEqual(wrong, [], `round ${round}: every freshly forked client pid-correct`);
  assert.match(err, /^ct-attribute: methods: sock_diag live \(new processes from diffs of the \/proc listing \(process connector: .*\)\), netns live, bpf not live: turned off \(--no-bpf\)/m);
  assert.equal(withoutMethods(err).replace(/^ct-events: conntrack is not active.*\n/m, ''), '', 'no diagnostics');
}

for (const round of [1, 2]) {
  test(`--no-bpf, round ${round}: 160 freshly forked clients (TCP, UDP, TCP6, UDP6; root and nobody; 10 at once, held 50 ms) all pid-correct`, { skip }, async () => {
    await run(round);
  });
}
