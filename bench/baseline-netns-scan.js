// The baseline for the netns bench: a forwarded flow's owner found the
// straightforward way, per event, with nothing kept between events: list
// /proc and read every process's network namespace link, read each other
// namespace's addresses until one owns the flow's source address (or, for
// inbound DNAT, its reply source), read that namespace's socket tables for
// the socket, then readlink every /proc/*/fd/* until one points at it. (Table
// and address matching reuse ct-attribute's text functions, so the two
// differ only in what is kept and when it is read.) As a pipeline stage:
// NDJSON in, NDJSON out; also importable (ownerOf).
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import readline from 'node:readline';
import { findPid } from './lib.js';
import { fileURLToPath } from 'node:url';
import { parseFibTrieLocal, parseIfInet6, tcpOwner, udpOwner } from '../dist/src/attribute/sources/netns/procnet.js';

const self = readlinkSync('/proc/self/ns/net');

function pidsByNs() {
  const m = new Map();
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    let l;
    try { l = readlinkSync(`/proc/${p}/ns/net`); } catch { continue; }
    if (l === self || m.has(l)) continue;
    m.set(l, Number(p));
  }
  return m;
}

function read(pid, file) {
  try { return readFileSync(`/proc/${pid}/net/${file}`, 'latin1'); } catch { return ''; }
}


/** The pid owning the flow's end in another namespace, or null. */
export function ownerOf(ev) {
  if (ev.sport === undefined || !ev.reply || !['tcp', 'udp'].includes(ev.proto)) return null;
  const ends = [
    { addr: ev.src, local: { addr: ev.src, port: ev.sport }, remote: { addr: ev.dst, port: ev.dport }, receiving: false },
    { addr: ev.reply.src, local: { addr: ev.reply.src, port: ev.reply.sport }, remote: { addr: ev.reply.dst, port: ev.reply.dport }, receiving: true },
  ];
  const spaces = pidsByNs();
  for (const end of ends) {
    for (const pid of spaces.values()) {
      const addrs = [...parseFibTrieLocal(read(pid, 'fib_trie')), ...parseIfInet6(read(pid, 'if_inet6'))];
      if (!addrs.includes(end.addr)) continue;
      const files = ev.family === 'ipv6' ? [`${ev.proto}6`] : [ev.proto, `${ev.proto}6`];
      for (const f of files) {
        const text = read(pid, f);
        const s = ev.proto === 'tcp' ? tcpOwner(text, f.endsWith('6'), end.local, end.remote, end.receiving) : udpOwner(text, f.endsWith('6'), end.local, end.remote);
        if (s) return findPid(s.inode);
      }
      return null;
    }
  }
  return null;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    let ev;
    try { ev = JSON.parse(line); } catch { return; }
    if (ev.event === 'new') {
      const pid = ownerOf(ev);
      if (pid) ev.process = { pid };
    }
    process.stdout.write(JSON.stringify(ev) + '\n');
  });
}
