// The baseline for ct-attribute's bench: attribution the way conntrack-logger,
// NoTrust-Track and packetTrail do it, per event: read /proc/net/{tcp,udp}{,6}
// to find the socket's inode by its local address and port, then readlink
// every /proc/*/fd/* until one points at that inode. NDJSON in, NDJSON out.
import { readFileSync } from 'node:fs';
import readline from 'node:readline';
import { findPid } from './lib.js';

function hexAddr4(a) {
  return a.split('.').map(Number).reverse().map((x) => x.toString(16).padStart(2, '0')).join('').toUpperCase();
}
function findInode(ev) {
  const v6 = ev.family === 'ipv6';
  const file = `/proc/net/${ev.proto}${v6 ? '6' : ''}`;
  let text;
  try { text = readFileSync(file, 'utf8'); } catch { return null; }
  const port = ev.sport.toString(16).toUpperCase().padStart(4, '0');
  const want4 = v6 ? null : `${hexAddr4(ev.src)}:${port}`;
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const local = f[1];
    if (v6 ? local.endsWith(`:${port}`) : local === want4 || local === `00000000:${port}`) return Number(f[9]);
  }
  return null;
}
// Input is taken in as it comes and events are handled one per turn of the
// event loop: the bench feeds this and ct-attribute from one tee(1), which
// writes to each in turn, so a baseline that let its pipe fill while it
// scans would hold back the events of the others.
const queue = [];
let busy = false;
function next() {
  const line = queue.shift();
  if (line === undefined) { busy = false; return; }
  let ev;
  try { ev = JSON.parse(line); } catch { setImmediate(next); return; }
  if (ev.event === 'new' && ev.sport !== undefined) {
    const inode = findInode(ev);
    const pid = inode ? findPid(inode) : null;
    if (pid) ev.process = { pid };
  }
  process.stdout.write(JSON.stringify(ev) + '\n');
  setImmediate(next);
}
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  queue.push(line);
  if (!busy) { busy = true; setImmediate(next); }
});
