// One-shot questions to ctnetlink for ct-doctor: does the kernel answer
// ctnetlink requests (IPCTNL_MSG_CT_GET_STATS, one small message whatever the
// table's size), and may this process join the conntrack event groups?
// nfnetlink checks CAP_NET_ADMIN before it looks at the subsystem
// (nfnetlink.c, nfnetlink_rcv_msg), so without it the answer is EPERM and
// says nothing about kernel support.
import { endianness } from 'node:os';
import { RawNetlinkSocket } from 'netlink';
import { splitMessages, nlError, buildRequest, NFNL_SUBSYS_CTNETLINK, NLM_F_REQUEST, NLM_F_ACK, NLMSG_ERROR, NFNLGRP_CONNTRACK_NEW } from './conntrack.js';
import { NETLINK_NETFILTER } from './socket.js';

/** linux/netfilter/nfnetlink_conntrack.h: cntl_msg_types, ctattr_stats_global. */
const IPCTNL_MSG_CT_GET_STATS = 5;
const CTA_STATS_GLOBAL_ENTRIES = 1;
const LE = endianness() === 'LE';
const u16h = (b: Buffer, o: number) => (LE ? b.readUInt16LE(o) : b.readUInt16BE(o));

export type ProbeResult = { ok: true; entries?: number } | { ok: false; code: string; message: string };

const ERRNO: Record<number, string> = { 1: 'EPERM', 2: 'ENOENT', 13: 'EACCES', 93: 'EPROTONOSUPPORT', 95: 'EOPNOTSUPP', 97: 'EAFNOSUPPORT' };

function failure(err: unknown): ProbeResult {
  const e = err as NodeJS.ErrnoException;
  return { ok: false, code: (e && e.code) || 'EIO', message: (e && e.message) || String(err) };
}

/** Ask ctnetlink for its global statistics; `entries` is the number of tracked connections. */
export function probeCtnetlink(timeoutMs = 3000): Promise<ProbeResult> {
  let sock: RawNetlinkSocket;
  try {
    sock = new RawNetlinkSocket(NETLINK_NETFILTER, {} as any);
  } catch (e) {
    return Promise.resolve(failure(e));
  }
  return new Promise((resolve) => {
    let entries: number | undefined;
    const seq = (Date.now() & 0x7fffffff) >>> 0;
    const done = (r: ProbeResult) => {
      clearTimeout(timer);
      sock.close();
      resolve(r);
    };
    const timer = setTimeout(() => done({ ok: false, code: 'ETIMEDOUT', message: 'no answer from ctnetlink' }), timeoutMs);
    sock.on('message', (buf: Buffer) => {
      let msgs;
      try {
        msgs = splitMessages(buf);
      } catch (e) {
        return done(failure(e));
      }
      for (const m of msgs) {
        if (m.seq !== seq) continue;
        if (m.type === NLMSG_ERROR) {
          const code = nlError(buf, m);
          if (code === 0) return done({ ok: true, entries });
          return done({ ok: false, code: ERRNO[-code] ?? `E${-code}`, message: `errno ${-code}` });
        }
        // The statistics message: nfgenmsg (4 bytes), then attributes in
        // host order, the counters in network order.
        for (let off = m.start + 4; off + 4 <= m.end;) {
          const len = u16h(buf, off);
          const type = u16h(buf, off + 2) & 0x3fff;
          if (len < 4) break;
          if (type === CTA_STATS_GLOBAL_ENTRIES && len >= 8) entries = buf.readUInt32BE(off + 4);
          off += (len + 3) & ~3;
        }
      }
    });
    sock.on('error', (err) => done(failure(err)));
    sock.send(buildRequest((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET_STATS, NLM_F_REQUEST | NLM_F_ACK, seq, 0), {}, (err) => {
      if (err) done(failure(err));
    });
  });
}

/** Join (and leave) the conntrack NEW event group, as ct-events does. */
export function probeEventGroup(): ProbeResult {
  let sock: RawNetlinkSocket;
  try {
    sock = new RawNetlinkSocket(NETLINK_NETFILTER, {} as any);
  } catch (e) {
    return failure(e);
  }
  try {
    sock.addMembership(NFNLGRP_CONNTRACK_NEW);
    return { ok: true };
  } catch (e) {
    return failure(e);
  } finally {
    sock.close();
  }
}
