// Record real ctnetlink datagrams from the kernel into test/fixtures/netlink/,
// for the decoder's unit tests. Run as root after a build:
//
//   npx tsc -p tsconfig.json && node scripts/capture-fixtures.js [outdir]
//
// It creates two network namespaces of its own (a veth pair between them,
// masquerade on the way out, addresses that never leave the machine),
// switches on tracking, accounting (nf_conntrack_acct) and timestamps
// (nf_conntrack_timestamp) there, subscribes to the NEW, UPDATE and DESTROY
// groups with a raw NETLINK_NETFILTER socket, makes TCP, UDP and ICMP
// traffic over IPv4 and IPv6 with python3, deletes the entries (`conntrack
// -D`, so DESTROY carries counters and stop times), and asks for a table dump.
//
// Each datagram is saved byte for byte as <name>.hex with a <name>.json
// sidecar saying what it is. The sidecar's `expect` is what conntrack(8)
// (libnetfilter_conntrack, run at the same time on the same events) printed
// for each message: an independent decoding for the tests to agree with.
// Netlink headers are in host byte order, so the fixtures are only valid on
// a machine of the same byte order (the sidecar says which).
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, readdirSync, unlinkSync } from 'node:fs';
import { endianness, release, arch } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const self = fileURLToPath(import.meta.url);

const VETH_A = 'capv0', VETH_B = 'capv1';
const A_ADDR = '10.77.0.1', B_ADDR = '10.77.0.2';
const NAT_SRC = '192.168.77.1'; // on lo in the capture namespace; masqueraded to A_ADDR on the veth

const sh = (cmd, args, input) => execFileSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'inherit'] });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function outer(outdir) {
  if (process.getuid?.() !== 0) {
    console.error('capture-fixtures: needs root (network namespaces, conntrack)');
    process.exit(1);
  }
  const ns = `ctcap${process.pid}`, peer = `ctcap${process.pid}p`;
  const cleanup = () => {
    for (const n of [ns, peer]) spawnSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
  };
  process.on('exit', cleanup);
  try {
    sh('ip', ['netns', 'add', ns]);
    sh('ip', ['netns', 'add', peer]);
    const inNs = (n, cmd, args, input) => sh('ip', ['netns', 'exec', n, cmd, ...args], input);
    inNs(ns, 'ip', ['link', 'set', 'lo', 'up']);
    inNs(peer, 'ip', ['link', 'set', 'lo', 'up']);
    inNs(ns, 'ip', ['addr', 'add', `${NAT_SRC}/32`, 'dev', 'lo']);
    inNs(ns, 'ip', ['link', 'add', VETH_A, 'type', 'veth', 'peer', 'name', VETH_B, 'netns', peer]);
    inNs(ns, 'ip', ['addr', 'add', `${A_ADDR}/24`, 'dev', VETH_A]);
    inNs(peer, 'ip', ['addr', 'add', `${B_ADDR}/24`, 'dev', VETH_B]);
    inNs(ns, 'ip', ['link', 'set', VETH_A, 'up']);
    inNs(peer, 'ip', ['link', 'set', VETH_B, 'up']);
    inNs(ns, 'sysctl', ['-qw', 'net.netfilter.nf_conntrack_acct=1', 'net.netfilter.nf_conntrack_timestamp=1',
      'net.netfilter.nf_conntrack_events=1', 'net.ipv4.ping_group_range=0 2147483647']);
    // Tracking on; a ct mark on UDP to port 9999 so one fixture has a mark;
    // masquerade on the veth so one fixture has a NAT reply tuple.
    inNs(ns, 'nft', ['-f', '-'], [
      'table inet capture {',
      '  chain out { type filter hook output priority 0; policy accept; ct state new counter; udp dport 9999 ct mark set 42; }',
      '}',
      'table ip capnat {',
      `  chain post { type nat hook postrouting priority srcnat; policy accept; oifname "${VETH_A}" masquerade; }`,
      '}',
      '',
    ].join('\n'));
    mkdirSync(outdir, { recursive: true });
    for (const f of readdirSync(outdir)) if (/\.(hex|json)$/.test(f)) unlinkSync(path.join(outdir, f));
    const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, self, '--inner', outdir, peer], { stdio: 'inherit' });
    if (r.status !== 0) process.exitCode = 1;
  } finally {
    cleanup();
  }
}

// python3 snippets, one real process per flow. Each prints nothing useful;
// the tuples come from the kernel and conntrack(8).
const PY = {
  tcp: (fam, host, port) => `
import socket
l = socket.socket(socket.${fam}); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(('${host}', ${port})); l.listen()
c = socket.create_connection(('${host}', ${port})); a, _ = l.accept()
c.sendall(b'hello'); a.recv(16); a.sendall(b'world!'); c.recv(16); c.close(); a.close()
`,
  udp: (fam, host, port) => `
import socket
s = socket.socket(socket.${fam}, socket.SOCK_DGRAM); s.bind(('${host}', ${port}))
c = socket.socket(socket.${fam}, socket.SOCK_DGRAM); c.sendto(b'ping', ('${host}', ${port}))
d, a = s.recvfrom(64); s.sendto(b'pong!', a); c.recv(64)
`,
  // Unprivileged ICMP echo ("ping socket"), allowed by ping_group_range.
  ping: (fam, host, proto, type) => `
import socket
s = socket.socket(socket.${fam}, socket.SOCK_DGRAM, socket.${proto})
s.sendto(bytes([${type}, 0, 0, 0, 0, 0, 0, 1]) + b'ctpipe', ('${host}', 0)); s.settimeout(2); s.recv(64)
`,
  natServer: (port) => `
import socket, sys
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(('${B_ADDR}', ${port})); l.listen()
print('ready', flush=True); a, _ = l.accept(); a.recv(16); a.sendall(b'world!'); a.recv(16); a.close()
`,
  natClient: (port) => `
import socket
c = socket.socket(); c.bind(('${NAT_SRC}', 0)); c.connect(('${B_ADDR}', ${port}))
c.sendall(b'hello'); c.recv(16); c.close()
`,
  udpMany: (ports) => `
import socket
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for p in ${JSON.stringify(ports)}: c.sendto(b'x', ('127.0.0.1', p))
`,
};

const py = (code) => sh('python3', ['-c', code]);

/** conntrack -E -o extended,id,ktimestamp, one line -> the fields it shows. */
function parseConntrackLine(line) {
  const out = {};
  let s = line.trim();
  const ts = {};
  s = s.replace(/\[(start|stop)=([^\]]+)\]/g, (_m, k, v) => {
    ts[k] = new Date(`${v} UTC`).toISOString().replace('.000Z', 'Z');
    return '';
  });
  const tok = s.split(/\s+/);
  let i = 0;
  out.event = { '[NEW]': 'new', '[UPDATE]': 'update', '[DESTROY]': 'destroy' }[tok[i++]];
  out.family = tok[i++]; i++;
  out.proto = tok[i++]; i++;
  out.timeout = Number(tok[i++]);
  if (!tok[i].includes('=') && !tok[i].startsWith('[')) out.state = tok[i++];
  const flags = [];
  const tuples = [];
  let cur = null;
  for (; i < tok.length; i++) {
    const t = tok[i];
    if (t.startsWith('[')) {
      flags.push(t.slice(1, -1));
      continue;
    }
    const eq = t.indexOf('=');
    const k = t.slice(0, eq), v = t.slice(eq + 1);
    if (k === 'src') tuples.push((cur = {}));
    if (['src', 'dst'].includes(k)) cur[k] = v;
    else if (['sport', 'dport', 'type', 'code', 'packets', 'bytes'].includes(k)) cur[k] = Number(v);
    else if (k === 'id' && cur && 'code' in cur && !('id' in cur)) cur.id = Number(v); // ICMP id, inside a tuple
    else if (k === 'id') { out.id = Number(v); cur = null; }
    else if (k === 'mark' || k === 'zone') out[k] = Number(v);
    else if (k === 'delta-time' || k === 'portid' || k === 'progname') { /* about the deleter, not the entry */ }
    else out[k] = v;
  }
  const [o, r] = tuples;
  const tuple = (t) => (t.sport !== undefined ? { src: t.src, sport: t.sport, dst: t.dst, dport: t.dport } : { src: t.src, dst: t.dst });
  Object.assign(out, tuple(o));
  out.reply = tuple(r);
  if (o.type !== undefined) out.icmp = { type: o.type, code: o.code, id: o.id };
  if (o.packets !== undefined) out.counters = { orig: { packets: o.packets, bytes: o.bytes }, reply: { packets: r.packets, bytes: r.bytes } };
  out.flags = flags.filter((f) => f !== 'USERSPACE');
  if (ts.start) out.start = ts.start;
  if (ts.stop) out.stop = ts.stop;
  return out;
}

async function inner(outdir, peer) {
  const { RawNetlinkSocket } = await import('netlink');
  const { splitMessages, decodeConntrack } = await import(path.join(root, 'dist', 'src', 'netlink', 'conntrack.js'));

  const sock = new RawNetlinkSocket(12 /* NETLINK_NETFILTER */, {});
  sock.setRecvBufferSize(4 << 20);
  for (const g of [1, 2, 3]) sock.addMembership(g); // NFNLGRP_CONNTRACK_NEW, _UPDATE, _DESTROY
  let scenario = 'sync';
  const grams = []; // { scenario, buf }
  sock.on('message', (buf) => grams.push({ scenario, buf: Buffer.from(buf) }));

  const ctLines = [];
  const ct = spawn('conntrack', ['-E', '-o', 'extended,id,ktimestamp'], { env: { ...process.env, TZ: 'UTC' }, stdio: ['ignore', 'pipe', 'ignore'] });
  let partial = '';
  ct.stdout.setEncoding('utf8').on('data', (d) => {
    const parts = (partial + d).split('\n');
    partial = parts.pop();
    ctLines.push(...parts.filter((l) => l.trim()));
  });
  // Both listeners are ready once both have seen a probe flow.
  for (let n = 0; ; n++) {
    py(PY.udpMany([9]));
    await sleep(100);
    if (grams.length && ctLines.length) break;
    if (n > 50) throw new Error('no conntrack events in the capture namespace');
  }
  spawnSync('conntrack', ['-D'], { stdio: 'ignore' });
  await sleep(300);

  const deleteAll = async () => {
    await sleep(200);
    spawnSync('conntrack', ['-D'], { stdio: 'ignore' });
    await sleep(300);
  };
  const scenarios = [
    ['tcp4', 'TCP over IPv4 (127.0.0.1), handshake, data both ways, both sides close', () => py(PY.tcp('AF_INET', '127.0.0.1', 8080))],
    ['udp4-mark', 'UDP over IPv4 with a reply, ct mark 42 set by an nft rule', () => py(PY.udp('AF_INET', '127.0.0.1', 9999))],
    ['icmp4', 'ICMP echo request and reply over IPv4', () => py(PY.ping('AF_INET', '127.0.0.1', 'IPPROTO_ICMP', 8))],
    ['tcp6', 'TCP over IPv6 (::1)', () => py(PY.tcp('AF_INET6', '::1', 8081))],
    ['udp6', 'UDP over IPv6 (::1) with a reply', () => py(PY.udp('AF_INET6', '::1', 5300))],
    ['icmp6', 'ICMPv6 echo request and reply', () => py(PY.ping('AF_INET6', '::1', 'IPPROTO_ICMPV6', 128))],
    ['nat-tcp4', `TCP from ${NAT_SRC} to ${B_ADDR} in a second namespace, masqueraded to ${A_ADDR} on the veth: the reply tuple shows the translation`, async () => {
      const srv = spawn('ip', ['netns', 'exec', peer, 'python3', '-c', PY.natServer(8082)], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise((resolve) => srv.stdout.once('data', resolve));
      py(PY.natClient(8082));
      await new Promise((resolve) => srv.once('close', resolve));
    }],
  ];
  for (const [name, , run] of scenarios) {
    scenario = name;
    await run();
    await deleteAll();
  }

  // A table dump: several UDP entries, answered in multi-message datagrams.
  scenario = 'dump-setup';
  py(PY.udpMany([7001, 7002, 7003, 7004]));
  py(PY.tcp('AF_INET6', '::1', 8083));
  await sleep(200);
  const dumpGrams = await dumpTable(RawNetlinkSocket);
  scenario = 'end';
  await deleteAll();
  await sleep(300);
  sock.close();
  ct.kill('SIGTERM');
  await new Promise((r) => ct.once('close', r));

  const byId = new Map();
  for (const line of ctLines) {
    if (!/^\s*\[(NEW|UPDATE|DESTROY)\]/.test(line)) continue;
    const p = parseConntrackLine(line);
    const k = `${p.event}:${p.id}`;
    if (!byId.has(k)) byId.set(k, []);
    byId.get(k).push({ line: line.trim(), parsed: p });
  }
  const common = {
    kernel: release(),
    arch: arch(),
    byteorder: endianness(),
    sysctl: { 'net.netfilter.nf_conntrack_acct': 1, 'net.netfilter.nf_conntrack_timestamp': 1 },
    oracle: spawnSync('conntrack', ['--version'], { encoding: 'utf8' }).stdout.trim() + ' -E -o extended,id,ktimestamp',
  };
  const saved = [];
  const save = (name, description, buf, extra) => {
    writeFileSync(path.join(outdir, `${name}.hex`), buf.toString('hex') + '\n');
    writeFileSync(path.join(outdir, `${name}.json`), JSON.stringify({ description, ...common, bytes: buf.length, ...extra }, null, 2) + '\n');
    saved.push(name);
  };
  const info = Object.fromEntries(scenarios.map(([n, d]) => [n, d]));
  for (const [name] of scenarios) {
    let seq = 0;
    const seen = {};
    for (const g of grams.filter((x) => x.scenario === name)) {
      const msgs = splitMessages(g.buf);
      const expect = [];
      for (const m of msgs) {
        const ev = decodeConntrack(g.buf, m, { ts: 'x' });
        if (!ev) continue;
        const q = byId.get(`${ev.event}:${ev.id}`);
        if (!q || !q.length) throw new Error(`${name}: conntrack(8) did not show ${ev.event} id ${ev.id}`);
        const { line, parsed } = q.shift();
        expect.push({ ...parsed, conntrack: line, nlmsg: { type: m.type, flags: m.flags } });
      }
      if (!expect.length) continue;
      const kind = expect[0].event;
      // Every NEW and DESTROY; for TCP over IPv4 every state change too.
      if (kind === 'update' && name !== 'tcp4') continue;
      seen[kind] = (seen[kind] ?? 0) + 1;
      save(`${name}-${++seq}-${kind}${kind === 'update' ? '-' + expect[0].state.toLowerCase() : ''}`,
        `${info[name]}: ${kind.toUpperCase()} event`, g.buf, { expect });
    }
    if (!seen.new || !seen.destroy) throw new Error(`${name}: missing NEW or DESTROY (${JSON.stringify(seen)})`);
  }
  // Dump replies: the entries are the flows made just before, which the
  // test finds by port.
  dumpGrams.forEach((buf, i) => save(`dump-${i + 1}`, 'Reply to an IPCTNL_MSG_CT_GET dump request (NLM_F_MULTI entries, then NLMSG_DONE)', buf, {
    oracle: null,
    expect: { udp4_dports: [7001, 7002, 7003, 7004], tcp6_dport: 8083 },
  }));
  console.log(`capture-fixtures: ${saved.length} datagrams saved in ${path.relative(process.cwd(), outdir) || '.'}`);
}

/** Send a dump request on a second socket and collect the reply datagrams up to NLMSG_DONE. */
async function dumpTable(RawNetlinkSocket) {
  const { buildRequest, splitMessages, NLM_F_REQUEST, NLM_F_DUMP, NLMSG_DONE } = await import(path.join(root, 'dist', 'src', 'netlink', 'conntrack.js'));
  const s = new RawNetlinkSocket(12, {});
  const out = [];
  await new Promise((resolve, reject) => {
    s.on('message', (buf) => {
      out.push(Buffer.from(buf));
      if (splitMessages(buf).some((m) => m.type === NLMSG_DONE)) resolve();
    });
    s.on('error', reject);
    s.send(buildRequest((1 << 8) | 1 /* CTNETLINK, IPCTNL_MSG_CT_GET */, NLM_F_REQUEST | NLM_F_DUMP, 1, 0));
    setTimeout(() => reject(new Error('dump: no NLMSG_DONE')), 5000).unref();
  });
  s.close();
  return out;
}

if (process.argv[2] === '--inner') await inner(process.argv[3], process.argv[4]);
else await outer(path.resolve(process.argv[2] ?? path.join(root, 'test', 'fixtures', 'netlink')));
