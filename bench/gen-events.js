// node bench/gen-events.js [N] [--seed S] > events.ndjson
//
// N realistic events (default 1,000,000) as ct-events | ct-attribute would
// write them (see man/ct-event.5.md): flows that open, sometimes update and
// close, mostly TCP and UDP over IPv4 and some IPv6, DNS/mDNS/LLMNR, multicast,
// broadcast and loopback traffic, owners from a pool of processes (some in
// units and containers, some ct-* commands), about one event in eight
// without an owner, and now and then a special record (overrun, stats).
// Deterministic: the same N and seed give the same bytes. Other benches
// and the tests import { generate, rng, contractEvent } or run this script.
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, renameSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Mulberry32: small, fast, deterministic. */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * One plain complete event, the same every time but for `id` and `kind`
 * (the hostile-input tests mix it with hostile lines and tell good lines
 * apart by `id`).
 */
export function contractEvent(id, kind = 'new') {
  return {
    ts: '2026-11-23T07:41:33.965873Z', event: kind, id, family: 'ipv4', proto: 'tcp',
    src: '203.0.113.5', sport: 38064, dst: '198.51.100.34', dport: 443,
    reply: { src: '198.51.100.34', sport: 443, dst: '203.0.113.5', dport: 38064 },
    state: 'SYN_SENT', status: ['CONFIRMED'], timeout: 120, mark: 0, zone: 0, community_id: '1:x', host: 'h',
  };
}

const PROCS = [
  { pid: 1201, ppid: 1, uid: 1000, user: 'alice', gid: 1000, group: 'alice', comm: 'firefox', exe: '/usr/lib/firefox/firefox', cmdline: ['/usr/lib/firefox/firefox', '-contentproc', '-childID', '7'], cgroup: '/user.slice/user-1000.slice/user@1000.service/app.slice/app-firefox.scope', unit: 'app-firefox.scope', container: null },
  { pid: 2314, ppid: 2290, uid: 1000, user: 'alice', gid: 1000, group: 'alice', comm: 'curl', exe: '/usr/bin/curl', cmdline: ['curl', '-s', '-o', '/dev/null', 'https://example.com/'], cgroup: '/user.slice/user-1000.slice/session-3.scope', unit: 'session-3.scope', container: null },
  { pid: 656, ppid: 1, uid: 0, user: 'root', gid: 0, group: 'root', comm: 'NetworkManager', exe: '/usr/sbin/NetworkManager', cmdline: ['/usr/sbin/NetworkManager', '--no-daemon'], cgroup: '/system.slice/NetworkManager.service', unit: 'NetworkManager.service', container: null },
  { pid: 588, ppid: 1, uid: 101, user: 'systemd-resolve', gid: 103, group: 'systemd-resolve', comm: 'systemd-resolve', exe: '/usr/lib/systemd/systemd-resolved', cmdline: ['/lib/systemd/systemd-resolved'], cgroup: '/system.slice/systemd-resolved.service', unit: 'systemd-resolved.service', container: null },
  { pid: 911, ppid: 1, uid: 0, user: 'root', gid: 0, group: 'root', comm: 'sshd', exe: '/usr/sbin/sshd', cmdline: ['sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups'], cgroup: '/system.slice/ssh.service', unit: 'ssh.service', container: null },
  { pid: 3377, ppid: 3350, uid: 33, user: 'www-data', gid: 33, group: 'www-data', comm: 'nginx', exe: '/usr/sbin/nginx', cmdline: ['nginx: worker process'], cgroup: '/system.slice/docker-4f1c2a9e8b7d.scope', unit: 'docker-4f1c2a9e8b7d.scope', container: { id: '4f1c2a9e8b7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928170615243', runtime: 'docker', name: 'web' } },
  { pid: 4102, ppid: 1, uid: 998, user: 'postgres', gid: 998, group: 'postgres', comm: 'postgres', exe: '/usr/lib/postgresql/15/bin/postgres', cmdline: ['postgres: 15/main: app appdb 10.0.0.8(51234) idle'], cgroup: '/system.slice/postgresql@15-main.service', unit: 'postgresql@15-main.service', container: null },
  { pid: 5120, ppid: 5100, uid: 0, user: 'root', gid: 0, group: 'root', comm: 'node', exe: '/usr/bin/node', cmdline: ['node', '/usr/lib/node_modules/ctpipe/bin/ct-syslog', '--tcp', 'logs.example:514'], cgroup: '/system.slice/ctpipe.service', unit: 'ctpipe.service', container: null },
  { pid: 7001, ppid: 1, uid: 0, user: 'root', gid: 0, group: 'root', comm: 'chronyd', exe: '/usr/sbin/chronyd', cmdline: ['/usr/sbin/chronyd', '-F', '1'], cgroup: '/system.slice/chrony.service', unit: 'chrony.service', container: null },
  { pid: 8123, ppid: 8100, uid: 1000, user: 'alice', gid: 1000, group: 'alice', comm: 'python3', exe: '/usr/bin/python3.11', cmdline: ['python3', '-m', 'http.server', '8000'], cgroup: '/user.slice/user-1000.slice/session-3.scope', unit: 'session-3.scope', container: null },
];

const V4_REMOTE = ['93.184.216.34', '140.82.121.4', '151.101.1.69', '142.250.185.78', '104.16.132.229', '35.186.224.25', '52.94.236.248', '185.199.108.153'];
const V6_REMOTE = ['2606:2800:220:1:248:1893:25c8:1946', '2a00:1450:4001:82a::200e', '2606:4700::6810:84e5', '2a04:4e42::223'];
const LOCAL4 = '10.0.0.5', LOCAL6 = '2001:db8:5::5', NAT4 = '192.0.2.7';

function pick(r, arr) {
  return arr[Math.floor(r() * arr.length)];
}

function isoMicros(us) {
  const ms = Math.floor(us / 1000);
  return new Date(ms).toISOString().slice(0, 20) + String(us % 1000000).padStart(6, '0') + 'Z';
}

/** A new flow: its fixed part, kept until it is destroyed. */
function newFlow(r, id) {
  const x = r();
  let f;
  const v6 = r() < 0.18;
  const local = v6 ? LOCAL6 : LOCAL4;
  const eph = 32768 + Math.floor(r() * 28000);
  if (x < 0.12) {
    // DNS, mDNS, LLMNR
    const kind = r();
    if (kind < 0.7) f = { proto: r() < 0.9 ? 'udp' : 'tcp', src: local, sport: eph, dst: v6 ? '2001:db8:5::1' : '10.0.0.1', dport: 53, proc: 3 };
    else if (kind < 0.9) f = { proto: 'udp', src: local, sport: 5353, dst: v6 ? 'ff02::fb' : '224.0.0.251', dport: 5353, proc: -1 };
    else f = { proto: 'udp', src: local, sport: eph, dst: v6 ? 'ff02::1:3' : '224.0.0.252', dport: 5355, proc: 2 };
  } else if (x < 0.16) {
    f = { proto: 'udp', src: v6 ? 'fe80::1' : '0.0.0.0', sport: 68, dst: v6 ? 'ff02::1:2' : '255.255.255.255', dport: 67, proc: 2 };
  } else if (x < 0.24) {
    f = { proto: 'tcp', src: v6 ? '::1' : '127.0.0.1', sport: eph, dst: v6 ? '::1' : '127.0.0.1', dport: pick(r, [8080, 5432, 6379, 8000]), proc: pick(r, [1, 6, 9]), local: true };
  } else if (x < 0.34) {
    // inbound: someone connects to sshd or nginx
    const remote = v6 ? pick(r, V6_REMOTE) : `198.51.100.${1 + Math.floor(r() * 250)}`;
    const web = r() < 0.6;
    f = { proto: 'tcp', src: remote, sport: 1024 + Math.floor(r() * 60000), dst: local, dport: web ? 443 : 22, proc: web ? 5 : 4, dir: 'in' };
  } else if (x < 0.37) {
    f = { proto: v6 ? 'icmpv6' : 'icmp', src: local, dst: v6 ? pick(r, V6_REMOTE) : pick(r, V4_REMOTE), proc: -1 };
  } else if (x < 0.40) {
    f = { proto: 'udp', src: local, sport: 123, dst: v6 ? pick(r, V6_REMOTE) : pick(r, V4_REMOTE), dport: 123, proc: 8 };
  } else if (x < 0.42) {
    f = { proto: 'tcp', src: local, sport: eph, dst: v6 ? pick(r, V6_REMOTE) : '203.0.113.10', dport: 514, proc: 7 };
  } else {
    f = { proto: r() < 0.85 ? 'tcp' : 'udp', src: local, sport: eph, dst: v6 ? pick(r, V6_REMOTE) : pick(r, V4_REMOTE), dport: pick(r, [443, 443, 443, 80, 22, 993, 8443]), proc: pick(r, [0, 0, 0, 1, 1, 2, 9, 6]) };
  }
  f.id = id;
  f.family = v6 ? 'ipv6' : 'ipv4';
  f.dir = f.dir ?? (f.local ? 'local' : 'out');
  // Source NAT on some outbound IPv4: the reply goes to the public address.
  f.nat = !v6 && f.dir === 'out' && f.dst !== '10.0.0.1' && !f.local && f.proc !== -1 && r() < 0.5 && !f.dst.startsWith('2');
  // About one flow in eight has no owner (gone before ct-attribute looked).
  if (f.proc >= 0 && r() < 0.1) f.proc = -2;
  if (f.proc >= 0) f.inode = 100000 + Math.floor(r() * 900000);
  f.updates = f.proto === 'tcp' ? (r() < 0.5 ? 2 : 1) : r() < 0.3 ? 1 : 0;
  return f;
}

function eventOf(f, kind, ts, seq) {
  const ports = f.sport !== undefined;
  const ev = { ts, event: kind, id: f.id, family: f.family, proto: f.proto, src: f.src };
  if (ports) ev.sport = f.sport;
  ev.dst = f.dst;
  if (ports) ev.dport = f.dport;
  const reply = { src: f.dst };
  if (ports) reply.sport = f.dport;
  reply.dst = f.nat ? NAT4 : f.src;
  if (ports) reply.dport = f.sport;
  ev.reply = reply;
  if (f.proto === 'tcp') ev.state = kind === 'new' ? 'SYN_SENT' : kind === 'update' ? 'ESTABLISHED' : 'TIME_WAIT';
  const status = kind === 'new' ? ['CONFIRMED'] : ['SEEN_REPLY', 'ASSURED', 'CONFIRMED'];
  if (f.nat) status.push('SRC_NAT', 'SRC_NAT_DONE');
  if (kind === 'destroy') status.push('DYING');
  ev.status = status;
  if (kind !== 'destroy') ev.timeout = kind === 'new' ? 120 : 432000;
  ev.mark = 0;
  ev.zone = 0;
  if (kind === 'destroy') ev.counters = { orig: { packets: 5 + (seq % 40), bytes: 400 + (seq % 9000) }, reply: { packets: 4 + (seq % 30), bytes: 1200 + (seq % 60000) } };
  if (!ports) ev.icmp = { type: 8, code: 0, id: f.id & 0xffff };
  f.cid ??= '1:' + createHash('sha1').update(String(f.id)).digest('base64');
  ev.community_id = f.cid;
  ev.host = 'web-1';
  ev.direction = f.dir;
  if (f.proc >= 0) {
    ev.process = { ...PROCS[f.proc], inode: f.inode, start_time: '2026-11-22T21:03:11.250000Z' };
    ev.attribution = { method: kind === 'new' ? 'sock_diag' : 'cache', ok: true };
  } else {
    ev.attribution = { method: 'sock_diag', ok: false, reason: f.proc === -1 ? 'no-socket' : 'socket-gone' };
  }
  return ev;
}

/**
 * Yield `n` NDJSON lines (without `\n`), deterministic for (n, seed).
 * Special records: an overrun every ~97,000 lines, a stats record every 50,000.
 */
export function* generate(n, seed = 1) {
  const r = rng(seed);
  let us = Date.UTC(2026, 10, 23, 0, 0, 0) * 1000;
  let nextId = 1000000000;
  const live = [];
  let written = 0;
  for (let i = 0; i < n; i++) {
    us += 1 + Math.floor(r() * 400);
    const ts = isoMicros(us);
    if (i > 0 && i % 50000 === 0) {
      yield JSON.stringify({ ts, event: 'stats', received: written + 12, written, lost: 12, queued: 0, rcvbuf: 212992, host: 'web-1' });
      continue;
    }
    if (i % 97003 === 96000) {
      yield JSON.stringify({ ts, event: 'overrun', lost: 12, reason: 'enobufs', host: 'web-1' });
      continue;
    }
    written++;
    // Keep a few hundred flows open; pick an old one to update or close.
    if (live.length < 50 || (live.length < 600 && r() < 0.45)) {
      const f = newFlow(r, nextId);
      nextId += 1 + Math.floor(r() * 7);
      live.push(f);
      yield JSON.stringify(eventOf(f, 'new', ts, i));
      continue;
    }
    const k = Math.floor(r() * live.length);
    const f = live[k];
    if (f.updates > 0) {
      f.updates--;
      yield JSON.stringify(eventOf(f, 'update', ts, i));
    } else {
      live[k] = live[live.length - 1];
      live.pop();
      yield JSON.stringify(eventOf(f, 'destroy', ts, i));
    }
  }
}

/**
 * The path of a file of `n` generated events in the temporary directory,
 * written once and reused by later benches (same n and seed, same bytes).
 */
export async function eventsFile(n = 1000000, seed = 1) {
  const file = path.join(tmpdir(), `ctpipe-bench-events-${n}-${seed}.ndjson`);
  if (existsSync(file) && statSync(file).size > 0) return file;
  const part = `${file}.${process.pid}.part`;
  const out = createWriteStream(part);
  let buf = '';
  for (const line of generate(n, seed)) {
    buf += line + '\n';
    if (buf.length > 1 << 20) {
      if (!out.write(buf)) await new Promise((r) => out.once('drain', r));
      buf = '';
    }
  }
  await new Promise((r, j) => out.end(buf, (e) => (e ? j(e) : r())));
  renameSync(part, file);
  return file;
}

async function main() {
  const args = process.argv.slice(2);
  let n = 1000000, seed = 1;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--seed') seed = Number(args[++i]);
    else n = Number(args[i].replace(/_/g, ''));
  }
  if (!Number.isInteger(n) || n < 0 || !Number.isInteger(seed)) {
    process.stderr.write('usage: node bench/gen-events.js [N] [--seed S] > file\n');
    process.exitCode = 2;
    return;
  }
  process.stdout.on('error', (e) => { if (e.code === 'EPIPE') process.exit(0); throw e; });
  let buf = '';
  for (const line of generate(n, seed)) {
    buf += line + '\n';
    if (buf.length > 1 << 20) {
      const ok = process.stdout.write(buf);
      buf = '';
      if (!ok) await new Promise((res) => process.stdout.once('drain', res));
    }
  }
  if (buf) process.stdout.write(buf);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
