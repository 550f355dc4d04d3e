// ct-attribute end to end: real kernel, real processes. Namespace A (where
// `ct-events | ct-attribute` runs) is joined to namespace B (a server) by a
// veth pair; clients in A with known pids connect out, some as user nobody,
// and a server in A receives connections from B. Every NEW must name the
// right pid, uid, user, comm and exe, and DESTROY the same process.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { BIN, needRoot, sleep, delNetns, lines, PY, PY_CLIENT as CLIENT, withoutMethods, linkedNetns, startPy, runPy, type NetnsPair } from '../helpers.js';

const skip = needRoot();
let ns: NetnsPair;

const SERVER = `
import socket, sys, os, threading
def tcp(fam, addr):
    l = socket.socket(fam, socket.SOCK_STREAM)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6: l.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    l.bind((addr, int(sys.argv[1]))); l.listen(128)
    while True:
        c, _ = l.accept()
        threading.Thread(target=lambda c=c: (c.recv(100), c.close()), daemon=True).start()
def udp(fam, addr):
    u = socket.socket(fam, socket.SOCK_DGRAM)
    if fam == socket.AF_INET6: u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    u.bind((addr, int(sys.argv[2])))
    while True: u.recv(100)
for f, a in ((socket.AF_INET, '0.0.0.0'), (socket.AF_INET6, '::')):
    threading.Thread(target=tcp, args=(f, a), daemon=True).start()
    threading.Thread(target=udp, args=(f, a), daemon=True).start()
print(os.getpid(), flush=True)
threading.Event().wait()
`;

interface Client { pid: number; sport: number; proto: string; user: string }

async function client(proto: string, host: string, port: number, hold: number, asNobody = false): Promise<Client> {
  const [[pid, sport]] = await runPy(ns.A, CLIENT, [proto, host, String(port), String(hold)], asNobody);
  return { pid, sport, proto, user: asNobody ? 'nobody' : 'root' };
}

async function startServer(where: string, tcpPort: number, udpPort: number): Promise<{ proc: ChildProcess; pid: number }> {
  const { proc, line } = await startPy(where, SERVER, [String(tcpPort), String(udpPort)]);
  return { proc, pid: Number(line) };
}

let pipeline: ChildProcess | null = null;
let out = '';
let err = '';
let serverB: { proc: ChildProcess; pid: number } | null = null;
let serverA: { proc: ChildProcess; pid: number } | null = null;

before(async () => {
  if (skip) return;
  ns = linkedNetns('a', 232);
  serverB = await startServer(ns.B, 7000, 7001);
  serverA = await startServer(ns.A, 8000, 8001);
  pipeline = spawn('ip', ['netns', 'exec', ns.A, 'sh', '-c', `trap : INT; ${BIN('ct-events')} -e new,destroy | ${BIN('ct-attribute')}`], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  pipeline.stdout!.setEncoding('utf8').on('data', (d) => (out += d));
  pipeline.stderr!.setEncoding('utf8').on('data', (d) => (err += d));
  await sleep(1500);
});

after(async () => {
  if (skip) return;
  if (pipeline && pipeline.exitCode === null) {
    try { process.kill(-pipeline.pid!, 'SIGKILL'); } catch { /* gone */ }
  }
  serverA?.proc.kill('SIGKILL');
  serverB?.proc.kill('SIGKILL');
  delNetns(ns.A);
  delNetns(ns.B);
});

/** Stop the pipeline the way a user does (Ctrl-C to its process group) and return what it wrote. */
async function finish(): Promise<any[]> {
  // Flush the table: the DESTROY events of every flow follow.
  execFileSync('ip', ['netns', 'exec', ns.A, 'conntrack', '-F'], { stdio: 'ignore' });
  await sleep(1000);
  process.kill(-pipeline!.pid!, 'SIGINT');
  const code = await new Promise<number | null>((r) => (pipeline!.exitCode !== null ? r(pipeline!.exitCode) : pipeline!.once('close', r)));
  assert.equal(code, 0, err);
  return lines(out);
}

test('ct-events | ct-attribute names the process and user of real connections, and DESTROY keeps it', { skip }, async () => {
  const held: Client[] = [];
  // Held connections, TCP and UDP, IPv4 and IPv6.
  for (const [proto, host, port] of [['tcp', '10.232.0.2', 7000], ['udp', '10.232.0.2', 7001], ['tcp', 'fd00:232::2', 7000], ['udp', 'fd00:232::2', 7001]] as const) {
    held.push(await client(proto, host, port, 0.3));
  }
  // As another user.
  held.push(await client('tcp', '10.232.0.2', 7000, 0.3, true));
  held.push(await client('udp', 'fd00:232::2', 7001, 0.3, true));
  // A burst of parallel clients.
  held.push(...(await Promise.all(Array.from({ length: 10 }, (_, i) => client(i % 2 ? 'udp' : 'tcp', '10.232.0.2', i % 2 ? 7001 : 7000, 0.2)))));
  // Closed at once: the owner may be gone before anyone can look; never a wrong pid.
  const quick = await Promise.all(Array.from({ length: 6 }, (_, i) => client(i % 2 ? 'udp' : 'tcp', '10.232.0.2', i % 2 ? 7001 : 7000, 0)));
  // Inbound: from B to the server in A.
  const inbound: number[] = [];
  for (let i = 0; i < 3; i++) {
    const r = execFileSync('ip', ['netns', 'exec', ns.B, PY, '-c', CLIENT, 'tcp', '10.232.0.1', '8000', '0.2'], { encoding: 'utf8' });
    inbound.push(Number(r.trim().split(' ')[1]));
  }
  await sleep(800);
  const evs = await finish();

  const news = evs.filter((e) => e.event === 'new');
  const destroys = evs.filter((e) => e.event === 'destroy');
  const find = (list: any[], c: Client) => list.find((e) => e.proto === c.proto && e.sport === c.sport);
  for (const c of held) {
    const ev = find(news, c);
    assert.ok(ev, `NEW for ${c.proto} sport ${c.sport}`);
    assert.equal(ev.direction, 'out');
    assert.equal(ev.attribution.ok, true, JSON.stringify(ev));
    assert.equal(ev.attribution.method, 'sock_diag');
    assert.equal(ev.process.pid, c.pid, JSON.stringify(ev));
    assert.equal(ev.process.user, c.user);
    assert.equal(ev.process.uid, c.user === 'nobody' ? 65534 : 0);
    assert.equal(ev.process.comm, 'python3');
    assert.match(ev.process.exe, /python3/);
    assert.deepEqual(ev.process.cmdline.slice(0, 2), [PY, '-c']);
    assert.ok(Number.isInteger(ev.process.inode) && ev.process.inode > 0);
    const d = find(destroys, c);
    assert.ok(d, `DESTROY for ${c.proto} sport ${c.sport}`);
    assert.equal(d.process?.pid, c.pid, 'DESTROY carries the NEW event\'s process');
  }
  for (const c of quick) {
    const ev = find(news, c);
    assert.ok(ev, `NEW for quick ${c.proto} sport ${c.sport}`);
    assert.ok(ev.attribution, 'every flow event says how it was attributed');
    if (ev.process) assert.equal(ev.process.pid, c.pid, 'a found owner is the right one');
    else assert.ok(ev.attribution.reason, 'an unattributed flow says why');
  }
  for (const sport of inbound) {
    const ev = news.find((e) => e.proto === 'tcp' && e.sport === sport && e.dport === 8000);
    assert.ok(ev, `inbound NEW from port ${sport}`);
    assert.equal(ev.direction, 'in');
    assert.equal(ev.process?.pid, serverA!.pid, JSON.stringify(ev));
  }
  assert.equal(withoutMethods(err).replace(/^ct-events: conntrack is not active.*\n/m, ''), '', 'no diagnostics');
});
