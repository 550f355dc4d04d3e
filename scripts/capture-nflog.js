#!/usr/bin/env node
// Capture real NFLOG datagrams of DNS answers for test/fixtures/nflog/:
// run as root inside a scratch network namespace with a DNS server on
// 127.0.0.1 (see test/e2e/dns.test.ts for one), then ask it questions.
//   node scripts/capture-nflog.js OUTDIR COUNT
// Writes OUTDIR/N.bin, one whole datagram each, as the kernel sent it.
import { writeFileSync } from 'node:fs';
import { NflogSource } from '../dist/src/netlink/nflog-source.js';
import { dnsRules } from '../dist/src/dns/observer.js';
import { execFileSync } from 'node:child_process';

const [out, count] = [process.argv[2], Number(process.argv[3] ?? 1)];
let n = 0;
const src = new NflogSource({
  group: 5300, tries: 4,
  onPacket: (buf) => {
    writeFileSync(`${out}/${n++}.bin`, buf);
    if (n >= count) { src.close(); execFileSync('nft', ['delete', 'table', 'inet', 'ctpipe_capture']); process.exit(0); }
  },
  onLost: (k, why) => console.error('lost', k, why),
});
await src.start();
execFileSync('nft', ['-f', '-'], { input: dnsRules('ctpipe_capture', src.group) });
console.error(`listening on group ${src.group}`);
