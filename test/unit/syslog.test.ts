// Syslog message building, RFC 6587 framing, RELP frames, the event encoder
// and the shipper's queue, against loopback servers made here.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Writable } from 'node:stream';
import {
  formatRfc5424, formatRfc3164, headerField, sdElement, sdValue, truncateUtf8, facilityCode, severityCode, validSdId, rfc3164Time,
} from '../../src/syslog/message.js';
import { frameOctet, frameLf, frameAll, OctetReader } from '../../src/syslog/framing.js';
import { relpFrame, relpFrames, RelpReader, rspStatus, nextTxnr, MAX_TXNR, RelpProtocolError } from '../../src/syslog/relp.js';
import { Encoder, LineError, eventSd, isCompactJson, type EncodeOptions } from '../../src/syslog/encode.js';
import { parseHostPort, StreamTransport, RelpTransport, UdpTransport, Pacer, isLocalAddress, LOCAL_UDP_RATE } from '../../src/syslog/transports.js';
import { parseRate } from '../../src/commands/syslog.js';
import dgram from 'node:dgram';
import { Shipper } from '../../src/syslog/shipper.js';
import { compileTemplate } from '../../src/format/template.js';

const fixed = () => new Date(Date.UTC(2026, 10, 23, 7, 41, 33, 965));

describe('RFC 5424 messages', () => {
  it('writes every header field, NILVALUE for empty ones', () => {
    const m = formatRfc5424({ facility: 1, severity: 6, ts: '2026-11-23T07:41:33.965873Z', hostname: 'web-1', appName: 'ct-syslog', procid: '42', msgid: 'new' }, '{"a":1}');
    assert.equal(m, '<14>1 2026-11-23T07:41:33.965873Z web-1 ct-syslog 42 new - {"a":1}');
    assert.equal(formatRfc5424({ facility: 23, severity: 7 }, '', fixed), '<191>1 2026-11-23T07:41:33.965Z - - - - -');
  });

  it('takes the time of sending when ts is absent or not a time, and re-writes other ISO forms', () => {
    assert.match(formatRfc5424({ facility: 1, severity: 6, ts: 'yesterday' }, 'x', fixed), /^<14>1 2026-11-23T07:41:33\.965Z /);
    assert.match(formatRfc5424({ facility: 1, severity: 6, ts: '2026-11-23 07:41:33' }, 'x', fixed), /^<14>1 2026-11-23T\d\d:41:33\.000Z /);
  });

  it('keeps header fields to printable US-ASCII and their maximum lengths (section 6)', () => {
    assert.equal(headerField('my host', 255), 'my_host');
    assert.equal(headerField('ünï', 48), '_n_');
    assert.equal(headerField('x'.repeat(60), 48).length, 48);
    assert.equal(headerField('', 32), '-');
  });

  it('escapes ", \\ and ] in PARAM-VALUE (section 6.3.3) and leaves out empty parameters', () => {
    assert.equal(sdValue('a"b\\c]d'), 'a\\"b\\\\c\\]d');
    assert.equal(sdElement('ct@32473', [['src', '10.0.0.5'], ['sport', 80], ['pid', undefined], ['x y', 'q]']]), '[ct@32473 src="10.0.0.5" sport="80" x_y="q\\]"]');
    assert.ok(validSdId('ct@32473'));
    assert.ok(validSdId('timeQuality'));
    assert.ok(!validSdId('ct@x'));
    assert.ok(!validSdId('a b'));
  });

  it('names facilities and severities as syslog.conf does, or by number', () => {
    assert.equal(facilityCode('local7'), 23);
    assert.equal(facilityCode('AUTHPRIV'), 10);
    assert.equal(facilityCode('24'), undefined);
    assert.equal(facilityCode('nope'), undefined);
    assert.equal(severityCode('warn'), 4);
    assert.equal(severityCode('7'), 7);
    assert.equal(severityCode('8'), undefined);
  });
});

describe('RFC 3164 messages', () => {
  it('writes PRI, local time with a space-padded day, HOSTNAME and TAG[PID]', () => {
    const d = new Date(2026, 0, 5, 3, 4, 5);
    assert.equal(rfc3164Time(d.toISOString(), fixed), 'Jan  5 03:04:05');
    const m = formatRfc3164({ facility: 4, severity: 4, ts: d.toISOString(), hostname: 'web-1', appName: 'ct syslog!', procid: '42' }, 'hello');
    assert.equal(m, '<36>Jan  5 03:04:05 web-1 ct_syslog_[42]: hello');
  });

  it('leaves HOSTNAME out for the local socket, as syslog(3) does', () => {
    const d = new Date(2026, 10, 23, 7, 41, 33);
    assert.equal(formatRfc3164({ facility: 1, severity: 6, ts: d.toISOString(), hostname: 'web-1', appName: 'app', procid: '-' }, 'm', { local: true }), '<14>Nov 23 07:41:33 app: m');
  });

  it('cuts on a UTF-8 character boundary', () => {
    assert.equal(truncateUtf8('short', 1024), 'short');
    const s = 'a' + 'é'.repeat(600);
    const t = truncateUtf8(s, 1024);
    assert.equal(Buffer.byteLength(t), 1023, 'a 2-byte character is not split');
    assert.ok(s.startsWith(t));
  });
});

describe('RFC 6587 framing', () => {
  it('octet counting counts bytes, not characters', () => {
    assert.equal(frameOctet('<14>1 - - - - - é'), '18 <14>1 - - - - - é');
  });

  it('LF framing escapes inner LFs as rsyslog does', () => {
    assert.equal(frameLf('a\nb'), 'a#012b\n');
  });

  it('reads octet-counted frames split anywhere', () => {
    const stream = Buffer.from(frameOctet('hello') + frameOctet('wörld') + frameOctet('x'.repeat(300)));
    for (let cut = 1; cut < stream.length; cut += 7) {
      const r = new OctetReader();
      const got = [...r.push(stream.subarray(0, cut)), ...r.push(stream.subarray(cut))].map((b) => b.toString());
      assert.deepEqual(got, ['hello', 'wörld', 'x'.repeat(300)]);
      assert.equal(r.pending, 0);
    }
    assert.throws(() => new OctetReader().push(Buffer.from('x12 abc')), /bad length/);
  });
});

describe('a batch framed into one Buffer', () => {
  // Text and bytes, multi-byte characters, an inner LF in each kind, lengths of 1 to 4 digits.
  const msgs = ['<14>1 - - - - - é', Buffer.from('<14>1 - - - - - {"a":"ü"}'), 'a\nb', Buffer.from('c\nd\n'), 'x'.repeat(9), Buffer.from('y'.repeat(10)), 'z'.repeat(1234), ''];
  it('octet counting: the same bytes as frameOctet of each message', () => {
    assert.equal(frameAll('octet', msgs).toString(), msgs.map((m) => frameOctet(m.toString())).join(''));
  });
  it('LF framing: the same bytes as frameLf of each message, inner LFs escaped in text and bytes alike', () => {
    assert.equal(frameAll('lf', msgs).toString(), msgs.map((m) => frameLf(m.toString())).join(''));
  });
  it('RELP: the same frames as relpFrame, with the TXNRs in order', () => {
    let t = 41;
    assert.equal(relpFrames(msgs, () => ++t).toString(), msgs.map((m, k) => relpFrame(42 + k, 'syslog', m.toString())).join(''));
  });
});

describe('RELP frames', () => {
  it('writes TXNR COMMAND DATALEN DATA LF, DATALEN in bytes; no data, no space', () => {
    assert.equal(relpFrame(2, 'syslog', 'é'), '2 syslog 2 é\n');
    assert.equal(relpFrame(9, 'close'), '9 close 0\n');
    assert.equal(nextTxnr(MAX_TXNR), 1);
  });

  it('reads rsyslog\'s answers split anywhere, including the serverclose hint', () => {
    const wire = Buffer.from('1 rsp 93 200 OK\nrelp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog\n2 rsp 6 200 OK\n4 rsp 0\n0 serverclose 0\n');
    for (let cut = 1; cut < wire.length; cut += 5) {
      const r = new RelpReader();
      const frames = [...r.push(wire.subarray(0, cut)), ...r.push(wire.subarray(cut))];
      assert.deepEqual(frames.map((f) => `${f.txnr} ${f.command}`), ['1 rsp', '2 rsp', '4 rsp', '0 serverclose']);
      const open = rspStatus(frames[0].data);
      assert.equal(open.code, 200);
      assert.match(open.rest, /commands=syslog/);
    }
    assert.equal(rspStatus(Buffer.from('500 error: too large')).code, 500);
    assert.throws(() => new RelpReader().push(Buffer.from('1 rsp 3 abcX')), RelpProtocolError);
    assert.throws(() => new RelpReader().push(Buffer.from('nonsense without spaces at all')), RelpProtocolError);
  });
});

describe('host:port', () => {
  it('reads names, IPv4, bracketed and bare IPv6, with and without a port', () => {
    assert.deepEqual(parseHostPort('logs.example', 514), { host: 'logs.example', port: 514 });
    assert.deepEqual(parseHostPort('10.0.0.2:5140', 514), { host: '10.0.0.2', port: 5140 });
    assert.deepEqual(parseHostPort('[::1]:6514', 514), { host: '::1', port: 6514 });
    assert.deepEqual(parseHostPort('::1', 514), { host: '::1', port: 514 });
    assert.throws(() => parseHostPort('host:99999', 514), /bad port/);
    assert.throws(() => parseHostPort(':514', 514), /no host/);
  });
});

const base: EncodeOptions = {
  format: 'rfc5424', facility: 1, severity: 6, severityByKind: { overrun: 4 }, defaultHostname: 'here', appName: 'ct-syslog', procid: '7', input: 'auto', maxSize: 8096,
};
const ev = { ts: '2026-11-23T07:41:33.965873Z', event: 'new', proto: 'tcp', src: '10.0.0.5', sport: 38064, dst: '93.184.216.34', dport: 443, host: 'web-1', process: { pid: 656, comm: 'curl' } };

describe('the encoder', () => {
  it('an event: its ts, host and kind in the header, the compact JSON as the body', () => {
    // A fixed clock: the records without a ts below are stamped with "now", and two calls may fall in different milliseconds.
    const e = new Encoder({ ...base, now: fixed });
    assert.equal(e.encode(JSON.stringify(ev, null, 0)), `<14>1 2026-11-23T07:41:33.965873Z web-1 ct-syslog 7 new - ${JSON.stringify(ev)}`);
    assert.equal(e.encode(' {"x" : 1} '.trim()), '<14>1 ' + e.encode('{"x":1}')!.slice(6), 'the body is re-serialized compactly');
  });

  it('knows compact JSON without re-serializing it', () => {
    assert.ok(isCompactJson('{"a":"x y","b":[1,2],"c":"q\\" z"}'));
    assert.ok(!isCompactJson('{"a": 1}'));
    assert.ok(!isCompactJson('{"a":"\\\\" ,"b":1}'), 'an escaped backslash ends the string');
    const e = new Encoder(base);
    const spaced = '{ "ts" : "2026-11-23T07:41:33.965873Z", "event": "new", "s": "a b" }';
    assert.ok(e.encode(spaced)!.endsWith(' {"ts":"2026-11-23T07:41:33.965873Z","event":"new","s":"a b"}'));
  });

  it('severity per kind, @cee:, structured data, --hostname over the event', () => {
    const e = new Encoder({ ...base, body: 'cee', sdId: 'ct@32473', hostname: 'override' });
    const m = e.encode(JSON.stringify(ev))!;
    assert.match(m, /^<14>1 \S+ override ct-syslog 7 new \[ct@32473 proto="tcp" src="10.0.0.5" sport="38064" dst="93.184.216.34" dport="443" pid="656"\] @cee: \{"ts"/);
    const o = e.encode('{"ts":"2026-11-23T07:41:33.000000Z","event":"overrun","lost":3}')!;
    assert.match(o, /^<12>1 2026-11-23T07:41:33.000000Z override ct-syslog 7 overrun - @cee: /);
    assert.equal(eventSd({ event: 'stats' }, 'ct@32473'), '');
  });

  it('a template from ct-format\'s engine as the body; an empty rendering sends nothing', () => {
    const e = new Encoder({ ...base, body: compileTemplate('<proto> <src>:<sport> > <dst>:<dport> <process.comm>') });
    assert.match(e.encode(JSON.stringify(ev))!, / new - tcp 10\.0\.0\.5:38064 > 93\.184\.216\.34:443 curl$/);
    const empty = new Encoder({ ...base, body: () => '' });
    assert.equal(empty.encode(JSON.stringify(ev)), null);
  });

  it('text lines as they are; a broken event line is a LineError; --input text takes { literally', () => {
    const e = new Encoder({ ...base, now: fixed });
    assert.equal(e.encode('conn from 10.0.0.5'), '<14>1 2026-11-23T07:41:33.965Z here ct-syslog 7 - - conn from 10.0.0.5');
    assert.throws(() => e.encode('{not json'), LineError);
    assert.throws(() => new Encoder({ ...base, input: 'json' }).encode('plain'), LineError);
    assert.match(new Encoder({ ...base, input: 'text' }).encode('{not json')!, / - - \{not json$/);
  });

  it('cuts a text message over maxSize and counts it (JSON: see below)', () => {
    const cuts: number[] = [];
    const e = new Encoder({ ...base, format: 'rfc3164', maxSize: 1024 }, (b) => cuts.push(b));
    const m = e.encode('a text line ' + 'x'.repeat(2000))!;
    assert.equal(Buffer.byteLength(m), 1024);
    assert.equal(e.truncated, 1);
    assert.ok(cuts[0] > 2000);
  });
});

/** A TCP syslog server on 127.0.0.1:0 that collects octet-counted messages. */
async function collector(): Promise<{ port: number; msgs: string[]; conns: number; close(): Promise<void> }> {
  const msgs: string[] = [];
  const socks = new Set<net.Socket>();
  const st = { conns: 0 };
  const srv = net.createServer((s) => {
    st.conns++;
    socks.add(s);
    const r = new OctetReader();
    s.on('data', (d) => { for (const m of r.push(d)) msgs.push(m.toString()); });
    s.on('close', () => socks.delete(s));
  });
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', () => res()));
  return {
    port: (srv.address() as net.AddressInfo).port, msgs,
    get conns() { return st.conns; },
    close: () => new Promise<void>((res) => { for (const s of socks) s.destroy(); srv.close(() => res()); }),
  };
}

function write(w: Writable, chunk: string[]): Promise<void> {
  return new Promise((res, rej) => w.write(chunk, (e) => (e ? rej(e) : res())));
}

describe('the shipper', () => {
  it('sends everything in order and finishes when all is handed over', async () => {
    const c = await collector();
    const notices: string[] = [];
    const sh = new Shipper({ transport: new StreamTransport('127.0.0.1', c.port, 'octet'), queue: 100, drainTimeoutMs: 5000, notice: (l) => notices.push(l) });
    sh.start();
    const all = Array.from({ length: 5000 }, (_, i) => `m${i}`);
    for (let i = 0; i < all.length; i += 250) await write(sh, all.slice(i, i + 250));
    await new Promise<void>((res) => sh.end(res));
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(c.msgs, all);
    assert.equal(sh.stats.sent, 5000);
    assert.deepEqual(notices, []);
    await c.close();
  });

  it('holds the writer when the queue is full, and lets it go when the server comes', async () => {
    // A port with no server yet: take one, then listen on it later.
    const probe = await collector();
    const port = probe.port;
    await probe.close();
    const notices: string[] = [];
    const sh = new Shipper({ transport: new StreamTransport('127.0.0.1', port, 'octet'), queue: 3, drainTimeoutMs: 10000, backoffMinMs: 50, backoffMaxMs: 100, notice: (l) => notices.push(l) });
    sh.start();
    let done = false;
    const p = write(sh, ['a', 'b', 'c', 'd', 'e']).then(() => { done = true; });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(done, false, 'the write waits: 5 messages, room for 3');
    assert.equal(sh.queued, 3);
    const srv = net.createServer((s) => {
      const r = new OctetReader();
      s.on('data', (d) => { for (const m of r.push(d)) got.push(m.toString()); });
    });
    const got: string[] = [];
    await new Promise<void>((res) => srv.listen(port, '127.0.0.1', () => res()));
    await p;
    await new Promise<void>((res) => sh.end(res));
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(got, ['a', 'b', 'c', 'd', 'e']);
    assert.match(notices[0], /cannot connect: .*ECONNREFUSED.*; retrying/);
    assert.match(notices[1], /connected after \d+\.\d s/);
    srv.close();
  });

  it('with dropWhenFull, drops what does not fit and counts it', async () => {
    const notices: string[] = [];
    const sh = new Shipper({ transport: new StreamTransport('127.0.0.1', 1, 'octet'), queue: 2, dropWhenFull: true, drainTimeoutMs: 200, notice: (l) => notices.push(l) });
    sh.start();
    await write(sh, ['a', 'b', 'c', 'd']);
    await write(sh, ['e']);
    await new Promise<void>((res) => sh.end(res));
    assert.equal(sh.stats.dropped, 3);
    assert.equal(sh.stats.unsent, 2);
    assert.equal(notices.filter((l) => /dropping new messages/.test(l)).length, 1, 'said once, not per message');
    assert.ok(notices.some((l) => /drain time limit reached: 2 messages not sent/.test(l)));
  });

  it('UDP: a port nobody listens on is seen (ICMP), the lost datagram counted, the rest kept for later', async () => {
    const probe = dgram.createSocket('udp4');
    await new Promise<void>((r) => probe.bind(0, '127.0.0.1', () => r()));
    const port = probe.address().port;
    await new Promise<void>((r) => probe.close(() => r()));
    const notices: string[] = [];
    const sh = new Shipper({ transport: new UdpTransport('127.0.0.1', port), queue: 100, drainTimeoutMs: 300, backoffMinMs: 1000, notice: (l) => notices.push(l) });
    sh.start();
    await write(sh, Array.from({ length: 20 }, (_, i) => `m${i}`));
    await new Promise<void>((res) => sh.end(res));
    assert.ok(sh.stats.lost >= 1);
    assert.ok(sh.stats.unsent > 0, 'not all thrown at a closed port');
    assert.match(notices[0], /udp 127\.0\.0\.1:\d+: connection lost: port unreachable.*; 1 datagram was lost; retrying/);
  });

  it('backoff doubles from the minimum and stays under the cap', () => {
    const sh = new Shipper({ transport: new StreamTransport('127.0.0.1', 1, 'octet'), queue: 1, drainTimeoutMs: 0, backoffMinMs: 200, backoffMaxMs: 30000, notice: () => {}, random: () => 0.5 });
    assert.deepEqual([0, 1, 2, 3, 10, 40].map((a) => sh.backoffMs(a)), [200, 400, 800, 1600, 30000, 30000]);
    sh.destroy();
  });
});

describe('RELP session', () => {
  it('resends what the server had not answered when the connection dropped, in order', async () => {
    // A RELP server that answers `open`, takes 3 syslog commands without answering, then drops; the next connection answers all.
    const received: string[][] = [];
    let conn = 0;
    const srv = net.createServer((s) => {
      const mine: string[] = [];
      received.push(mine);
      const n = ++conn;
      const r = new RelpReader();
      s.on('data', (d) => {
        for (const f of r.push(d)) {
          if (f.command === 'open') s.write(relpFrame(f.txnr, 'rsp', '200 OK\nrelp_version=0\ncommands=syslog'));
          else if (f.command === 'syslog') {
            mine.push(f.data.toString());
            if (n === 1 && mine.length === 3) return s.destroy();
            else if (n > 1) s.write(relpFrame(f.txnr, 'rsp', '200 OK'));
          } else if (f.command === 'close') {
            s.write(relpFrame(f.txnr, 'rsp'));
            s.end();
          }
        }
      });
    });
    await new Promise<void>((res) => srv.listen(0, '127.0.0.1', () => res()));
    const port = (srv.address() as net.AddressInfo).port;
    const notices: string[] = [];
    const sh = new Shipper({ transport: new RelpTransport('127.0.0.1', port, { window: 8 }), queue: 10, drainTimeoutMs: 5000, backoffMinMs: 20, notice: (l) => notices.push(l) });
    sh.start();
    await write(sh, ['m1', 'm2', 'm3', 'm4']);
    await new Promise<void>((res) => sh.end(res));
    srv.close();
    assert.deepEqual(received[0], ['m1', 'm2', 'm3']);
    assert.deepEqual(received[1], ['m1', 'm2', 'm3', 'm4'], 'unanswered messages are sent again, in order');
    assert.equal(sh.stats.sent, 4);
    assert.match(notices[0], /relp 127\.0\.0\.1:\d+: connection lost: .*; retrying, 4 queued/);
    assert.doesNotMatch(notices[0], /may be lost/, 'RELP knows what arrived');
    assert.match(notices[1], /connected again after/);
  });
});

describe('the encoder\'s byte path (encodeLine)', () => {
  const line = (text: string, pad = 0) => {
    // The line in the middle of a larger buffer, as the splitter hands it on.
    const buf = Buffer.concat([Buffer.alloc(pad, 0x7b), Buffer.from(text), Buffer.from('\n{"x":1}\n')]);
    return { text, buf, start: pad, end: pad + Buffer.byteLength(text) };
  };
  const lines = [
    JSON.stringify(ev), JSON.stringify({ ...ev, event: 'destroy' }), JSON.stringify({ ...ev, host: 'other' }), JSON.stringify({ ...ev, event: 'overrun' }),
    JSON.stringify({ ...ev, ts: 'not a time', host: 'hé st', event: 'a b' }), JSON.stringify({ ...ev, src: 'é]"\\x', process: { pid: 'ü' } }),
    JSON.stringify({ event: 'new' }), JSON.stringify({ ...ev, s: '\u2028 \n ☃' }), JSON.stringify(ev, null, 1), '{"a":1,}', 'plain text', ' {"a" : 2}',
  ];
  for (const [what, o] of [
    ['RFC 5424', {}], ['RFC 5424 with SD', { sdId: 'ct@32473' }], ['@cee:', { body: 'cee' }], ['RFC 3164', { format: 'rfc3164', maxSize: 1024 }],
    ['RFC 3164 local', { format: 'rfc3164', local: true }], ['a small --max-size', { maxSize: 300 }], ['--input json', { input: 'json' }],
  ] as const) {
    it(`${what}: the same bytes as encode() of the text, and the same errors`, () => {
      const fast = new Encoder({ ...base, now: fixed, ...o } as EncodeOptions);
      const slow = new Encoder({ ...base, now: fixed, ...o, slowPath: true } as EncodeOptions);
      let bytes = 0;
      for (const [k, text] of lines.entries()) {
        let want: string | null | Error;
        try { want = slow.encode(text); } catch (e) { want = e as Error; }
        let got: Buffer | string | null | Error;
        try { got = fast.encodeLine(line(text, k)); } catch (e) { got = e as Error; }
        if (want instanceof Error) {
          assert.ok(got instanceof LineError && got.message === want.message, `${text}: ${String(got)}`);
          continue;
        }
        if (Buffer.isBuffer(got)) bytes++;
        assert.equal(got === null ? null : got.toString(), want, text);
      }
      assert.ok(bytes >= ('maxSize' in o && o.maxSize === 300 ? 0 : 5), `compact events take the byte path (${bytes})`);
      assert.deepEqual([fast.shortened, fast.oversize, fast.truncated], [slow.shortened, slow.oversize, slow.truncated]);
    });
  }
  it('a message made on the byte path is not overwritten by the next ones', () => {
    const e = new Encoder({ ...base, now: fixed });
    const first = e.encodeLine(line(JSON.stringify(ev))) as Buffer;
    const copy = Buffer.from(first);
    for (let k = 0; k < 2000; k++) e.encodeLine(line(JSON.stringify({ ...ev, k })));
    assert.ok(Buffer.isBuffer(first));
    assert.deepEqual(first, copy);
  });
});

describe('JSON bodies over --max-size', () => {
  const arg = (c: string, n: number) => c.repeat(n);
  const long = { ...ev, process: { pid: 656, comm: 'java', cmdline: ['java', arg('a', 900), arg('é', 400), arg('"', 300), 'tail'] } };
  for (const format of ['rfc5424', 'rfc3164'] as const) {
    for (const body of ['json', 'cee'] as const) {
      it(`${format} ${body}: the command line is shortened, never the JSON cut; "truncated" says so`, () => {
        for (const max of [480, 700, 1024, 1500, 2000]) {
          const e = new Encoder({ ...base, format, body, local: format === 'rfc3164', maxSize: max });
          const m = e.encode(JSON.stringify(long))!;
          assert.ok(Buffer.byteLength(m) <= max, `${max}: ${Buffer.byteLength(m)}`);
          const json = m.slice(m.indexOf(body === 'cee' ? '@cee: ' : '{"ts"') + (body === 'cee' ? 6 : 0));
          const got = JSON.parse(json);
          assert.deepEqual(got.truncated, ['process.cmdline']);
          // A prefix of the command line: whole arguments, the last one maybe cut with '...'.
          const c: string[] = got.process.cmdline;
          assert.equal(c[0], 'java');
          assert.ok(JSON.stringify(c).length < JSON.stringify(long.process.cmdline).length);
          c.forEach((x, i) => assert.ok(x === long.process.cmdline[i] || (i === c.length - 1 && x.endsWith('...') && long.process.cmdline[i].startsWith(x.slice(0, -3))), `${max}: ${i}`));
          // Everything else as it was.
          const { truncated, process: p, ...rest } = got;
          const { process: p0, ...rest0 } = long;
          assert.deepEqual(rest, rest0);
          assert.equal(p.comm, 'java');
          assert.equal(e.shortened, 1);
          assert.equal(e.truncated, 0);
        }
      });
    }
  }

  it('an event that fits is sent as it is; one that cannot be made to fit is sent whole and counted', () => {
    const e = new Encoder({ ...base, maxSize: 8096 });
    assert.equal(e.encode(JSON.stringify(long)), `<14>1 2026-11-23T07:41:33.965873Z web-1 ct-syslog 7 new - ${JSON.stringify(long)}`);
    const wide = { ...ev, other: arg('z', 3000) };
    const small = new Encoder({ ...base, maxSize: 1024 });
    const m = small.encode(JSON.stringify(wide))!;
    assert.deepEqual(JSON.parse(m.slice(m.indexOf('{'))), wide);
    assert.equal(small.oversize, 1);
    assert.equal(small.shortened, 0);
  });

  it('a text line is still cut', () => {
    const e = new Encoder({ ...base, maxSize: 100 });
    assert.equal(Buffer.byteLength(e.encode('plain ' + arg('t', 500))!), 100);
    assert.equal(e.truncated, 1);
  });
});

describe('UDP pacing (--rate)', () => {
  it('a token bucket: 10 ms worth at once, refilled at the rate, never more than a burst saved up', () => {
    let t = 0;
    const p = new Pacer(2000, () => t);
    assert.equal(p.burst, 20);
    assert.equal(p.available(), 20);
    p.take(20);
    assert.equal(p.available(), 0);
    assert.equal(p.waitMs(), 10);
    t += 5;
    assert.equal(p.available(), 10);
    t += 10_000;
    assert.equal(p.available(), 20, 'an idle minute is no licence for a burst');
    // Over a simulated second, at most rate + burst go.
    let sent = 0;
    for (t = 20_000; t < 21_000; t += 1) {
      const n = p.available();
      p.take(n);
      sent += n;
    }
    assert.ok(sent >= 2000 && sent <= 2020, `${sent} in one second`);
    assert.equal(new Pacer(50, () => 0).burst, 1);
  });

  it('parses N/s, N, 0 and none; the default is auto', () => {
    assert.equal(parseRate(undefined), 'auto');
    assert.equal(parseRate('5000/s'), 5000);
    assert.equal(parseRate('250'), 250);
    assert.equal(parseRate('0'), 0);
    assert.equal(parseRate('none'), 0);
    for (const bad of ['fast', '-1', '10/m', '']) assert.throws(() => parseRate(bad), /is not a rate/);
  });

  it('a receiver on this host is paced by default, others are not', async () => {
    assert.ok(isLocalAddress('127.0.0.1') && isLocalAddress('127.3.4.5') && isLocalAddress('::1'));
    assert.ok(isLocalAddress('10.9.9.9', { eth0: [{ address: '10.9.9.9' } as any] }));
    assert.ok(!isLocalAddress('10.9.9.8', { eth0: [{ address: '10.9.9.9' } as any] }));
    const srv = dgram.createSocket('udp4');
    await new Promise<void>((r) => srv.bind(0, '127.0.0.1', () => r()));
    try {
      const h = { confirm() {}, reject() {}, down() {}, writable() {} };
      const local = new UdpTransport('127.0.0.1', srv.address().port);
      (await local.connect(h)).destroy();
      assert.equal(local.pace, LOCAL_UDP_RATE);
      const unpaced = new UdpTransport('127.0.0.1', srv.address().port, { rate: 0 });
      (await unpaced.connect(h)).destroy();
      assert.equal(unpaced.pace, 0);
      const given = new UdpTransport('127.0.0.1', srv.address().port, { rate: 300 });
      const c = await given.connect(h);
      assert.equal(given.pace, 300);
      assert.equal(c.room(), 3, 'room is the pacer\'s burst');
      c.destroy();
    } finally {
      srv.close();
    }
  });

  it('the shipper keeps to the pace: 400 messages at 2000/s take about 0.2 s and all arrive', async () => {
    const srv = dgram.createSocket('udp4');
    let got = 0;
    srv.on('message', () => got++);
    await new Promise<void>((r) => srv.bind(0, '127.0.0.1', () => r()));
    try {
      const sh = new Shipper({ transport: new UdpTransport('127.0.0.1', srv.address().port, { rate: 2000 }), queue: 1000, drainTimeoutMs: 10_000, notice: () => {} });
      sh.start();
      const t0 = performance.now();
      await new Promise<void>((resolve, reject) => {
        sh.on('finish', resolve).on('error', reject);
        sh.end(Array.from({ length: 400 }, (_, i) => `<14>1 - - - - - - ${i}`));
      });
      const ms = performance.now() - t0;
      assert.equal(sh.stats.sent, 400);
      // 400 at 2000/s: 190 ms after the first burst; timers only ever fire late.
      assert.ok(ms >= 180, `${ms.toFixed(0)} ms`);
      for (let i = 0; i < 100 && got < 400; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(got, 400);
    } finally {
      srv.close();
    }
  });
});
