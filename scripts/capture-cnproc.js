// Records the process connector datagrams of test/fixtures/cnproc (see its README). Run as root after a build.
import { RawNetlinkSocket } from 'netlink';
import { buildMcastOp, decodeProcEvents } from '../dist/src/netlink/cnproc.js';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
const s = new RawNetlinkSocket(11, {});
s.addMembership(1);
const got = [];
s.on('message', (b) => got.push(Buffer.from(b)));
s.send(buildMcastOp(1, s.address().port), { port: 0 });
await new Promise((r) => setTimeout(r, 100));
const pid = execFileSync('sh', ['-c', 'echo $$; exec true']).toString().trim();
await new Promise((r) => setTimeout(r, 100));
s.send(buildMcastOp(2, s.address().port), { port: 0 }, () => s.close());
const pick = (what) => got.find((b) => { try { return decodeProcEvents(b).some((e) => e.what === what && (what === 'ack' || e.tgid === Number(pid))); } catch { return false; } });
const out = { sh_pid: Number(pid), ack: pick('ack')?.toString('hex'), fork: pick('fork')?.toString('hex'), exec: pick('exec')?.toString('hex'), exit: pick('exit')?.toString('hex') };
console.log(JSON.stringify(out, null, 1));
writeFileSync(new URL('../test/fixtures/cnproc/events.json', import.meta.url), JSON.stringify(out, null, 1) + '\n');
