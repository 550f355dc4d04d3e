// ct-syslog against a real rsyslog started by the test: every transport,
// every message once and parsed as the chosen RFC by rsyslog itself; rsyslog
// killed and restarted mid-stream; back-pressure with the server away.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { BIN, runBin, sleep, waitFor } from '../helpers.js';
import { Rsyslog, needRsyslog, freeTcpPort } from './rsyslog.js';

const skip = needRsyslog();
const PROCID = '4242';
const TZ_ENV = { ...process.env, TZ: 'UTC' };

/** n events in the shape ct-events | ct-attribute write, each with its number in `id`. */
function events(n: number, from = 0): string[] {
  const out: string[] = [];
  const t0 = Date.UTC(2026, 10, 23, 7, 41, 33);
  for (let i = from; i < from + n; i++) {
    const ts = new Date(t0 + i).toISOString().slice(0, 23) + String(i % 1000).padStart(3, '0') + 'Z';
    out.push(JSON.stringify({
      ts, event: i % 3 === 2 ? 'destroy' : 'new', id: i, family: 'ipv4', proto: i % 2 ? 'udp' : 'tcp',
      src: '10.0.0.5', sport: 30000 + (i % 30000), dst: '93.184.216.34', dport: 443, host: 'web-1',
      process: { pid: 1000 + (i % 50), comm: 'curl', cmdline: ['curl', '-s', 'https://example.com/'] },
    }));
  }
  return out;
}

const RFC5424_RAW = /^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) (-|\[.*?\]) (.*)$/s;

/** The id of every record whose app-name is `app`, checking each parses as RFC 5424 with the right fields. */
function check5424(recs: any[], app: string, opts: { sd?: boolean; pri?: (ev: any) => number; body?: (ev: any) => string } = {}): Map<number, number> {
  const seen = new Map<number, number>();
  for (const r of recs) {
    if (r['app-name'] !== app) continue;
    assert.equal(r['protocol-version'], '1', `rsyslog parsed it as RFC 5424: ${r.rawmsg}`);
    const m = RFC5424_RAW.exec(r.rawmsg);
    assert.ok(m, `RFC 5424 syntax: ${r.rawmsg}`);
    const body = r.msg as string;
    let ev: any;
    if (opts.body) {
      const id = Number(/ id=(\d+)$/.exec(body)?.[1]);
      ev = JSON.parse(events(1, id)[0]);
      assert.equal(body, opts.body(ev));
    } else {
      ev = JSON.parse(body);
      assert.equal(body, JSON.stringify(ev), 'the body is the compact JSON event');
    }
    assert.equal(r.hostname, 'web-1');
    assert.equal(r.procid, PROCID);
    assert.equal(r.msgid, ev.event);
    assert.equal(r.timereported, ev.ts, 'the timestamp is the event\'s own');
    assert.equal(Number(r.pri), opts.pri ? opts.pri(ev) : 8 * 1 + 6);
    if (opts.sd) {
      assert.equal(r['structured-data'], `[ct@32473 proto="${ev.proto}" src="${ev.src}" sport="${ev.sport}" dst="${ev.dst}" dport="${ev.dport}" pid="${ev.process.pid}"]`);
    } else assert.equal(r['structured-data'], '-');
    seen.set(ev.id, (seen.get(ev.id) ?? 0) + 1);
  }
  return seen;
}

function assertOnce(seen: Map<number, number>, n: number, from = 0): void {
  for (let i = from; i < from + n; i++) assert.equal(seen.get(i), 1, `event ${i} arrived ${seen.get(i) ?? 0} times`);
  assert.equal(seen.size, n);
}

const common = (app: string) => ['--app-name', app, '--procid', PROCID];

describe('ct-syslog to rsyslog', { skip }, () => {
  let rs: Rsyslog;
  before(async () => {
    rs = new Rsyslog({ maxMessageSize: '64k' });
    await rs.start();
  });
  after(async () => {
    await rs?.close();
  });

  const N = 300;
  const input = () => events(N).join('\n') + '\n';
  const arrived = (app: string, n: number) => (recs: any[]) => recs.filter((r) => r['app-name'] === app).length >= n;

  it('UDP: RFC 5424, every message once with its fields', async () => {
    const r = await runBin('ct-syslog', ['--udp', `127.0.0.1:${rs.ports.udp}`, ...common('ct-udp')], input());
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assertOnce(check5424(await rs.waitFor(arrived('ct-udp', N)), 'ct-udp'), N);
  });

  it('UDP: a 5,000-line burst with the default pacing arrives whole at an imudp with its default receive buffer', async () => {
    // A stock `input(type="imudp")`: the kernel's net.core.rmem_default (208 KiB), about 90 of these 800-byte events.
    // What is tested is the sender's pace, not the machine's load: as root the receiver runs real-time, so that
    // a loaded machine (CI, busy loops) cannot keep it off the CPUs for the ~45 ms that would fill its buffer.
    const small = new Rsyslog({ inputs: ['udp'], udpRcvbuf: null, template: '%msg%\\n', realtime: true });
    await small.start();
    try {
      const n = 5000;
      const pad = 'x'.repeat(500);
      const lines = events(n).map((l) => l.replace('"https://example.com/"', `"https://example.com/${pad}"`));
      assert.ok(lines[0].length > 750);
      const r = await runBin('ct-syslog', ['--udp', `127.0.0.1:${small.ports.udp}`, ...common('ct-burst')], lines.join('\n') + '\n');
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '');
      const count = () => {
        try { return fs.readFileSync(small.out, 'utf8').split('\n').filter(Boolean); } catch { return []; }
      };
      // Counted at the receiver: every id once. What could still be lost would be lost by now (a paced sender is done after ~2.5 s).
      await waitFor(() => count().length >= n, 15000, `${n} messages at rsyslog`).catch(() => {});
      const got = count().map((l) => JSON.parse(l).id as number);
      assert.equal(got.length, n, `${got.length} of ${n} arrived`);
      assert.equal(new Set(got).size, n);
    } finally {
      await small.close();
    }
  });

  it('TCP, octet-counted (RFC 6587 3.4.1), with structured data and per-kind severity', async () => {
    const lines = events(N);
    lines.splice(100, 0, JSON.stringify({ ts: '2026-11-23T07:41:34.000000Z', event: 'overrun', lost: 12, reason: 'enobufs', host: 'web-1' }));
    const r = await runBin('ct-syslog', ['--tcp', `127.0.0.1:${rs.ports.tcp}`, '--framing', 'octet', '--sd', '--facility', 'local3', ...common('ct-tcp-octet')], lines.join('\n') + '\n');
    assert.equal(r.code, 0, r.stderr);
    const recs = await rs.waitFor(arrived('ct-tcp-octet', N + 1));
    const overrun = recs.filter((x) => x['app-name'] === 'ct-tcp-octet' && x.msgid === 'overrun');
    assert.equal(overrun.length, 1);
    assert.equal(Number(overrun[0].pri), 19 * 8 + 4, 'overrun records are warnings');
    assert.equal(overrun[0]['structured-data'], '-', 'no tuple, no element');
    const flows = recs.filter((x) => x.msgid !== 'overrun');
    assertOnce(check5424(flows, 'ct-tcp-octet', { sd: true, pri: () => 19 * 8 + 6 }), N);
  });

  it('TCP, LF-framed (RFC 6587 3.4.2), body from a ct-format template', async () => {
    const tpl = '<proto> <src>:<sport> > <dst>:<dport> <process.comm> id=<id>';
    const r = await runBin('ct-syslog', ['--tcp', `127.0.0.1:${rs.ports.tcp}`, '--framing', 'lf', '--template', tpl, ...common('ct-tcp-lf')], input());
    assert.equal(r.code, 0, r.stderr);
    const seen = check5424(await rs.waitFor(arrived('ct-tcp-lf', N)), 'ct-tcp-lf', {
      body: (ev) => `${ev.proto} ${ev.src}:${ev.sport} > ${ev.dst}:${ev.dport} curl id=${ev.id}`,
    });
    assertOnce(seen, N);
  });

  it('TLS (RFC 5425): the server certificate checked against --ca and the host name', async () => {
    const r = await runBin('ct-syslog', ['--tls', `localhost:${rs.ports.tls}`, '--ca', rs.certs.ca, ...common('ct-tls')], input());
    assert.equal(r.code, 0, r.stderr);
    assertOnce(check5424(await rs.waitFor(arrived('ct-tls', N)), 'ct-tls'), N);
  });

  it('TLS with a client certificate the server requires', async () => {
    const r = await runBin('ct-syslog', ['--tls', `127.0.0.1:${rs.ports.tlsAuth}`, '--ca', rs.certs.ca, '--cert', rs.certs.clientCert, '--key', rs.certs.clientKey, ...common('ct-tls-auth')], input());
    assert.equal(r.code, 0, r.stderr);
    assertOnce(check5424(await rs.waitFor(arrived('ct-tls-auth', N)), 'ct-tls-auth'), N);
  });

  it('TLS: an untrusted certificate or a wrong name ends with exit 1 and sends nothing', async () => {
    const bad = await runBin('ct-syslog', ['--tls', `localhost:${rs.ports.tls}`, '--ca', rs.certs.otherCa, ...common('ct-tls-bad')], input());
    assert.equal(bad.code, 1, bad.stderr);
    assert.match(bad.stderr, /^ct-syslog: tls localhost:\d+: TLS: .*certificate/m);
    const name = await runBin('ct-syslog', ['--tls', `127.0.0.1:${rs.ports.tls}`, '--ca', rs.certs.ca, '--server-name', 'logs.example', ...common('ct-tls-bad')], input());
    assert.equal(name.code, 1, name.stderr);
    assert.match(name.stderr, /logs\.example/);
    const ins = await runBin('ct-syslog', ['--tls', `127.0.0.1:${rs.ports.tls}`, '--insecure', ...common('ct-tls-insecure')], input());
    assert.equal(ins.code, 0, ins.stderr);
    await rs.waitFor(arrived('ct-tls-insecure', N));
    assert.equal(rs.records().filter((x) => x['app-name'] === 'ct-tls-bad').length, 0);
  });

  it('RELP: every message acknowledged and once', async () => {
    const n = 3000;
    const r = await runBin('ct-syslog', ['--relp', `127.0.0.1:${rs.ports.relp}`, ...common('ct-relp')], events(n).join('\n') + '\n');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assertOnce(check5424(await rs.waitFor(arrived('ct-relp', n)), 'ct-relp'), n);
  });

  it('the local socket: RFC 3164 without HOSTNAME by default, as syslog(3) writes, parsed by imuxsock', async () => {
    const r = await runBin('ct-syslog', ['--unix', rs.sock, ...common('ct-unix')], input(), { env: TZ_ENV });
    assert.equal(r.code, 0, r.stderr);
    const recs = (await rs.waitFor((x) => x.filter((y) => y.programname === 'ct-unix').length >= N)).filter((y) => y.programname === 'ct-unix');
    const seen = new Map<number, number>();
    for (const x of recs) {
      assert.match(x.rawmsg, /^<14>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d ct-unix\[4242\]: \{/);
      assert.equal(x.syslogtag, 'ct-unix[4242]:');
      assert.equal(x.procid, PROCID);
      const ev = JSON.parse(x.msg.trim());
      // The event's time, in RFC 3164's form (local time, TZ=UTC here); imuxsock itself keeps the time of receipt.
      const d = new Date(ev.ts);
      assert.equal(x.rawmsg.slice(4, 19), `Nov 23 ${d.toISOString().slice(11, 19)}`);
      seen.set(ev.id, (seen.get(ev.id) ?? 0) + 1);
    }
    assertOnce(seen, N);
  });

  it('the local socket with --format rfc5424, for a daemon that parses it', async () => {
    const r = await runBin('ct-syslog', ['--unix', rs.sock5424, '--format', 'rfc5424', '--sd', ...common('ct-unix5424')], input());
    assert.equal(r.code, 0, r.stderr);
    assertOnce(check5424(await rs.waitFor(arrived('ct-unix5424', N)), 'ct-unix5424', { sd: true }), N);
  });

  it('RFC 3164 over UDP: an event over 1024 bytes with no field to shorten is sent whole, never cut, and that is said once', async () => {
    const long = JSON.stringify({ ts: '2026-11-23T07:41:33.965873Z', event: 'new', host: 'web-1', pad: 'x'.repeat(3000) });
    const r = await runBin('ct-syslog', ['--udp', `127.0.0.1:${rs.ports.udp}`, '--format', 'rfc3164', ...common('ct-3164')], `${long}\n${long}\nshort text line\n`, { env: TZ_ENV });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^ct-syslog: stdin:1: event longer than 1024 bytes even with its long fields shortened: sent whole/m);
    assert.match(r.stderr, /2 events were sent whole over --max-size 1024 bytes/);
    const recs = (await rs.waitFor((x) => x.filter((y) => y.programname === 'ct-3164').length >= 3)).filter((y) => y.programname === 'ct-3164');
    const long2 = recs.filter((x) => x.rawmsg.includes('xxxx'));
    assert.equal(long2.length, 2);
    for (const x of long2) {
      // Whole: the receiver (rsyslog's 8k default) gets valid JSON, the pad intact.
      assert.equal(JSON.parse(x.msg.trim()).pad.length, 3000);
      assert.equal(x.hostname, 'web-1');
      assert.match(x.rawmsg, /^<14>Nov 23 07:41:33 web-1 ct-3164\[4242\]: \{"ts"/);
    }
    assert.ok(recs.some((x) => x.msg.trim() === 'short text line'), 'a text line is sent as it is');
  });
});

/** Spawn ct-syslog with an open stdin. */
function start(args: string[]): { child: ChildProcess; out: Promise<{ code: number | null; stderr: string }>; err: () => string } {
  const child = spawn(BIN('ct-syslog'), args, { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d) => (stderr += d));
  child.stdin!.on('error', () => {});
  const out = new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stderr })));
  return { child, out, err: () => stderr };
}

/** Feed `lines` to the child's stdin `per` lines every `everyMs`, respecting back-pressure; resolves when all are written. */
async function feed(child: ChildProcess, lines: string[], per: number, everyMs: number): Promise<void> {
  for (let i = 0; i < lines.length; i += per) {
    const ok = child.stdin!.write(lines.slice(i, i + per).join('\n') + '\n');
    if (!ok) await new Promise((r) => child.stdin!.once('drain', r));
    await sleep(everyMs);
  }
}

/** CPU seconds (user + system) the process has used. */
function cpuSeconds(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / 100;
}

function rssKb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}

describe('ct-syslog when rsyslog is killed and restarted', { skip }, () => {
  let rs: Rsyslog;
  before(async () => {
    // Direct queues: rsyslog writes a message out before it answers for it, so a SIGKILL loses nothing it acknowledged.
    rs = new Rsyslog({ direct: true, inputs: ['tcp', 'relp'] });
    await rs.start();
  });
  after(async () => {
    await rs?.close();
  });

  async function killAndRestart(app: string): Promise<number> {
    await rs.waitFor((x) => x.filter((y) => y['app-name'] === app).length >= 2000, 15000, 'the stream to start');
    await rs.stop('SIGKILL');
    await sleep(1200);
    await rs.start();
    return Date.now();
  }

  it('RELP: nothing lost, duplicates only within the RELP window, one line for the loss and one for the return', async () => {
    const n = 20000;
    const { child, out } = start(['--relp', `127.0.0.1:${rs.ports.relp}`, '--window', '64', ...common('ct-relp-kill')]);
    const feeding = feed(child, events(n), 200, 10).then(() => child.stdin!.end());
    await killAndRestart('ct-relp-kill');
    await feeding;
    const r = await out;
    assert.equal(r.code, 0, r.stderr);
    const recs = await rs.waitFor((x) => new Set(x.filter((y) => y['app-name'] === 'ct-relp-kill').map((y) => JSON.parse(y.msg).id)).size >= n, 20000, 'every event');
    const seen = check5424(recs, 'ct-relp-kill');
    let dups = 0;
    for (let i = 0; i < n; i++) {
      assert.ok(seen.get(i), `event ${i} lost`);
      dups += seen.get(i)! - 1;
    }
    assert.ok(dups <= 64, `${dups} duplicates, more than the window`);
    assert.equal(r.stderr.match(/connection lost/g)?.length, 1, r.stderr);
    assert.equal(r.stderr.match(/connected again after/g)?.length, 1, r.stderr);
  });

  it('TCP: exit 0, no duplicates, what is lost is said on stderr, nothing after the restart is lost, no spinning while away', async () => {
    const n = 20000;
    const { child, out } = start(['--tcp', `127.0.0.1:${rs.ports.tcp}`, ...common('ct-tcp-kill')]);
    const lines = events(n);
    let fed = 0;
    const feeding = (async () => {
      for (let i = 0; i < n; i += 200) {
        const ok = child.stdin!.write(lines.slice(i, i + 200).join('\n') + '\n');
        fed = Math.min(n, i + 200);
        if (!ok) await new Promise((r) => child.stdin!.once('drain', r));
        await sleep(10);
      }
      child.stdin!.end();
    })();
    await rs.waitFor((x) => x.filter((y) => y['app-name'] === 'ct-tcp-kill').length >= 2000, 15000, 'the stream to start');
    await rs.stop('SIGKILL');
    // ct-syslog cannot have read more than this before the kill: anything lost is among these.
    const fedAtKill = fed;
    const cpu0 = cpuSeconds(child.pid!);
    const t0 = Date.now();
    await sleep(1500);
    const cpuAway = cpuSeconds(child.pid!) - cpu0;
    const wall = (Date.now() - t0) / 1000;
    await rs.start();
    await feeding;
    const r = await out;
    assert.equal(r.code, 0, r.stderr);
    assert.ok(cpuAway < wall / 2, `used ${cpuAway} s of CPU in ${wall} s with the server away`);
    await sleep(300);
    const recs = rs.records();
    const seen = check5424(recs, 'ct-tcp-kill');
    for (const [id, count] of seen) assert.equal(count, 1, `event ${id} duplicated`);
    const missing = n - seen.size;
    assert.equal(r.stderr.match(/connection lost/g)?.length, 1, r.stderr);
    assert.equal(r.stderr.match(/connected again after/g)?.length, 1, r.stderr);
    if (missing > 0) assert.match(r.stderr, /the last of them may be lost/);
    // Everything read while the server was away, or after, arrived: a loss can only be of what was sent before the kill.
    for (let i = fedAtKill; i < n; i++) assert.ok(seen.has(i), `event ${i}, read after the kill, is missing`);
  });
});

describe('ct-syslog back-pressure and drain', { skip }, () => {
  it('with the server away and --queue 10, stops reading stdin instead of growing; sends everything once it is back', async () => {
    const rs = new Rsyslog({ inputs: ['tcp'] });
    await rs.init();
    try {
      const { child, out, err } = start(['--tcp', `127.0.0.1:${rs.ports.tcp}`, '--queue', '10', ...common('ct-bp')]);
      const line = JSON.stringify({ ts: '2026-11-23T07:41:33.965873Z', event: 'new', host: 'web-1', pad: 'x'.repeat(150) }) + '\n';
      const chunk = line.repeat(100);
      let written = 0;
      let stop = false;
      const pump = async () => {
        while (!stop) {
          written += 100;
          if (!child.stdin!.write(chunk)) await new Promise((r) => child.stdin!.once('drain', r));
        }
      };
      const pumping = pump();
      await waitFor(() => /cannot connect/.test(err()), 10000, 'ct-syslog to run');
      await sleep(1500);
      const w1 = written;
      await sleep(1500);
      const w2 = written;
      const rss = rssKb(child.pid!);
      assert.equal(w2, w1, 'the writer is blocked: nothing more was read');
      assert.ok(w1 * line.length < 4 * 1024 * 1024, `${w1} lines were taken in before blocking`);
      assert.ok(rss < 200 * 1024, `RSS ${rss} kB`);
      await rs.start();
      await waitFor(() => written > w2, 10000, 'reading to go on');
      stop = true;
      child.stdin!.end();
      pumping.catch(() => {});
      const r = await out;
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /cannot connect: .*ECONNREFUSED.*; retrying/);
      assert.match(r.stderr, /connected after/);
      await rs.waitFor((x) => x.length >= written, 15000, 'every line');
      assert.equal(rs.records().length, written);
    } finally {
      await rs.close();
    }
  });

  it('--drop-when-full counts the drops and says so; the drain time limit counts what was not sent (exit 1)', async () => {
    const port = await freeTcpPort();
    const r = await runBin('ct-syslog', ['--tcp', `127.0.0.1:${port}`, '--queue', '5', '--drop-when-full', '--drain-timeout', '0.5', ...common('ct-drop')], events(2000).join('\n') + '\n');
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /queue full \(5 messages\): dropping new messages \(--drop-when-full\)/);
    const dropped = Number(/(\d+) dropped \(queue full\)/.exec(r.stderr)?.[1]);
    const unsent = Number(/drain time limit reached: (\d+) messages? not sent/.exec(r.stderr)?.[1]);
    assert.equal(unsent, 5);
    assert.equal(dropped + unsent, 2000);
  });

  it('SIGTERM: stops reading, sends what is queued once the server is back within --drain-timeout, exits 0', async () => {
    const rs = new Rsyslog({ inputs: ['relp'] });
    await rs.init();
    try {
      const { child, out, err } = start(['--relp', `127.0.0.1:${rs.ports.relp}`, '--drain-timeout', '20', ...common('ct-term')]);
      child.stdin!.write(events(50).join('\n') + '\n');
      // Running (its signal handlers set) once it has tried to connect.
      await waitFor(() => /cannot connect/.test(err()), 10000, 'the first connection attempt');
      await sleep(200);
      child.kill('SIGTERM');
      await sleep(300);
      assert.equal(child.exitCode, null, 'still draining');
      await rs.start();
      const r = await out;
      assert.equal(r.code, 0, r.stderr);
      assertOnce(check5424(await rs.waitFor((x) => x.length >= 50), 'ct-term'), 50);
    } finally {
      await rs.close();
    }
  });

  for (const lib of ['gnutls', 'openssl'] as const) {
    it(`RELP over TLS to imrelp tls="on" (librelp's ${lib} driver), a client certificate required: every message once; untrusted or refused ends with exit 1`, async () => {
      const rs = new Rsyslog({ inputs: ['relpTls'], relpTlsLib: lib });
      await rs.start();
      try {
        const c = rs.certs;
        const to = ['--relp', `127.0.0.1:${rs.ports.relpTls}`, '--relp-tls', '--ca', c.ca];
        const n = 500;
        const r = await runBin('ct-syslog', [...to, '--cert', c.clientCert, '--key', c.clientKey, '--server-name', 'localhost', '--sd', ...common(`ct-relptls-${lib}`)], events(n).join('\n') + '\n');
        assert.equal(r.code, 0, r.stderr + rs.log);
        assert.equal(r.stderr, '');
        assertOnce(check5424(await rs.waitFor((x) => x.filter((y) => y['app-name'] === `ct-relptls-${lib}`).length >= n), `ct-relptls-${lib}`, { sd: true }), n);

        // The server's certificate from another CA: refused before anything is sent.
        const other = await runBin('ct-syslog', ['--relp', `127.0.0.1:${rs.ports.relpTls}`, '--relp-tls', '--ca', c.otherCa, '--cert', c.clientCert, '--key', c.clientKey, ...common('ct-relptls-bad')], events(3).join('\n') + '\n');
        assert.equal(other.code, 1);
        assert.match(other.stderr, /TLS: .*(certificate|verify)/i);
        // A name the certificate does not carry.
        const name = await runBin('ct-syslog', [...to, '--cert', c.clientCert, '--key', c.clientKey, '--server-name', 'logs.example', ...common('ct-relptls-bad')], events(3).join('\n') + '\n');
        assert.equal(name.code, 1);
        assert.match(name.stderr, /TLS: .*logs\.example/);
        // No client certificate: imrelp (certvalid) ends each session; nothing goes, said on stderr, exit 1.
        const anon = await runBin('ct-syslog', [...to, '--drain-timeout', '2', ...common('ct-relptls-bad')], events(3).join('\n') + '\n');
        assert.equal(anon.code, 1);
        assert.match(anon.stderr, /relp \(TLS\) 127\.0\.0\.1:\d+: cannot connect: .*\n[^]*3 messages not sent/);
        await sleep(300);
        assert.equal(rs.records().filter((x) => x['app-name'] === 'ct-relptls-bad').length, 0);
      } finally {
        await rs.close();
      }
    });
  }

  it('a server that accepts and closes at once is retried with growing delays, not in a loop', async () => {
    let accepted = 0;
    const srv = net.createServer((s) => { accepted++; s.destroy(); });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as net.AddressInfo).port;
    try {
      const { child, out } = start(['--tcp', `127.0.0.1:${port}`, '--drain-timeout', '0.5', ...common('ct-flap')]);
      child.stdin!.write(events(10).join('\n') + '\n');
      await sleep(3000);
      const n = accepted;
      child.stdin!.end();
      const r = await out;
      assert.ok(r.code === 0 || r.code === 1, `exit ${r.code}`);
      // 0.2 + 0.4 + 0.8 + 1.6 s (each +-20%) fit in 3 s: at most 6 connections, not hundreds.
      assert.ok(n >= 3 && n <= 6, `${n} connections in 3 s`);
      assert.equal(r.stderr.match(/connection lost/g)?.length, 1, r.stderr);
      assert.match(r.stderr, /the server closes each new connection at once/);
    } finally {
      srv.close();
    }
  });
});
