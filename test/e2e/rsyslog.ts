// A real rsyslog for ct-syslog's tests and bench: its own config, pid file,
// work directory, free loopback ports and a Unix socket of its own, never
// the system's daemon. Every input writes what it receives as rsyslog's
// %jsonmesg% (the parsed fields and the raw message) to one file.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import dgram from 'node:dgram';
import os from 'node:os';
import path from 'node:path';

export function findRsyslogd(): string | null {
  for (const p of ['/usr/sbin/rsyslogd', '/sbin/rsyslogd']) if (fs.existsSync(p)) return p;
  try {
    return execFileSync('sh', ['-c', 'command -v rsyslogd'], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

/** Skip reason on a machine without rsyslog; under CI=true its absence fails the run. */
export function needRsyslog(): string | false {
  if (findRsyslogd()) return false;
  if (process.env.CI === 'true') throw new Error('rsyslogd is not installed, and CI=true forbids skipping (apt-get install rsyslog rsyslog-relp rsyslog-gnutls)');
  return 'rsyslogd is not installed';
}

/** A TCP port nothing listens on now (the kernel's pick). */
export function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export interface Ports {
  udp: number;
  /** imptcp: plain TCP, both framings. */
  tcp: number;
  /** imtcp with gtls, no client certificate asked. */
  tls: number;
  /** imtcp with gtls, a client certificate signed by the CA required. */
  tlsAuth: number;
  relp: number;
  /** imrelp with tls="on", a client certificate signed by the CA required (tls.authMode certvalid). */
  relpTls: number;
}

export interface RsyslogOptions {
  /** Process each message before answering (Direct queues), so a killed rsyslog loses nothing it acknowledged. */
  direct?: boolean;
  /** Which inputs to open (default all). */
  inputs?: Array<keyof Ports | 'unix'>;
  /** global maxMessageSize. */
  maxMessageSize?: string;
  /** imudp's rcvbufSize; null: rsyslog's default (the kernel's net.core.rmem_default), as a stock `input(type="imudp")` has. Default 8m. */
  udpRcvbuf?: string | null;
  /** librelp's TLS library for the relpTls input (imrelp's tls.tlslib): Debian's librelp has both. Default gnutls. */
  relpTlsLib?: 'gnutls' | 'openssl';
  /**
   * Run rsyslogd under SCHED_FIFO (chrt(1), as root only): a receiver with a
   * stock UDP buffer that a loaded machine keeps off the CPUs for tens of
   * milliseconds loses datagrams whatever the sender does; a real-time one
   * is never kept waiting by ordinary processes.
   */
  realtime?: boolean;
  /** The output line (rsyslog string template); default the full %jsonmesg%. */
  template?: string;
}

/** CA, server (localhost, 127.0.0.1) and client certificates made with openssl. */
export function makeCerts(dir: string): { ca: string; serverCert: string; serverKey: string; clientCert: string; clientKey: string; otherCa: string } {
  const f = (n: string) => path.join(dir, n);
  const ossl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=ctpipe test CA');
  ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('other.key'), '-out', f('other.pem'), '-days', '2', '-subj', '/CN=another CA');
  fs.writeFileSync(f('server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  fs.writeFileSync(f('client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const [who, cn] of [['server', 'localhost'], ['client', 'ct-syslog test client']]) {
    ossl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f(`${who}.key`), '-out', f(`${who}.csr`), '-subj', `/CN=${cn}`);
    ossl('x509', '-req', '-in', f(`${who}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${who}.pem`), '-days', '2', '-extfile', f(`${who}.ext`));
  }
  return { ca: f('ca.pem'), serverCert: f('server.pem'), serverKey: f('server.key'), clientCert: f('client.pem'), clientKey: f('client.key'), otherCa: f('other.pem') };
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

function udpBound(port: number): boolean {
  const hex = ':' + port.toString(16).toUpperCase().padStart(4, '0');
  try {
    return fs.readFileSync('/proc/net/udp', 'utf8').split('\n').some((l) => l.trim().split(/\s+/)[1]?.endsWith(hex));
  } catch {
    return true;
  }
}

export class Rsyslog {
  readonly dir: string;
  readonly out: string;
  /** imuxsock with rsyslog's special parser for the local socket (RFC 3164 without HOSTNAME, as syslog(3) writes). */
  readonly sock: string;
  /** imuxsock with the regular parsers (so RFC 5424 is understood) and the message's own timestamp. */
  readonly sock5424: string;
  ports!: Ports;
  certs!: ReturnType<typeof makeCerts>;
  proc: ChildProcess | null = null;
  private stderr = '';

  constructor(private o: RsyslogOptions = {}) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ct-syslog-rsyslog-'));
    this.out = path.join(this.dir, 'out.jsonl');
    this.sock = path.join(this.dir, 'log.sock');
    this.sock5424 = path.join(this.dir, 'log5424.sock');
  }

  private want(i: keyof Ports | 'unix'): boolean {
    return !this.o.inputs || this.o.inputs.includes(i);
  }

  async init(): Promise<void> {
    this.ports = {
      udp: this.want('udp') ? await freeUdpPort() : 0,
      tcp: this.want('tcp') ? await freeTcpPort() : 0,
      tls: this.want('tls') ? await freeTcpPort() : 0,
      tlsAuth: this.want('tlsAuth') ? await freeTcpPort() : 0,
      relp: this.want('relp') ? await freeTcpPort() : 0,
      relpTls: this.want('relpTls') ? await freeTcpPort() : 0,
    };
    const tls = this.want('tls') || this.want('tlsAuth') || this.want('relpTls');
    if (tls) this.certs = makeCerts(this.dir);
    const q = this.o.direct ? ' queue.type="Direct"' : '';
    const lines = [
      `global(workDirectory="${this.dir}"${this.o.maxMessageSize ? ` maxMessageSize="${this.o.maxMessageSize}"` : ''}` +
        (tls ? ` defaultNetstreamDriverCAFile="${this.certs.ca}" defaultNetstreamDriverCertFile="${this.certs.serverCert}" defaultNetstreamDriverKeyFile="${this.certs.serverKey}"` : '') + ')',
      // Its own messages (rsyslogd's start and stop) go nowhere but its stderr.
      `main_queue(${this.o.direct ? 'queue.type="Direct"' : 'queue.size="200000"'})`,
      `template(name="ctjson" type="string" string="${this.o.template ?? '%jsonmesg%\\n'}")`,
      `ruleset(name="ct"${q}) { action(type="omfile" file="${this.out}" template="ctjson"${q}) }`,
    ];
    // UDP has no flow control: a burst larger than the socket buffer is lost, so give it room (as ct-syslog(1) advises).
    const rcvbuf = this.o.udpRcvbuf === undefined ? '8m' : this.o.udpRcvbuf;
    if (this.want('udp')) lines.push('module(load="imudp")', `input(type="imudp" address="127.0.0.1" port="${this.ports.udp}" ruleset="ct"${rcvbuf === null ? '' : ` rcvbufSize="${rcvbuf}"`})`);
    if (this.want('tcp')) lines.push('module(load="imptcp")', `input(type="imptcp" address="127.0.0.1" port="${this.ports.tcp}" ruleset="ct")`);
    if (tls) lines.push('module(load="imtcp")');
    if (this.want('tls')) lines.push(`input(type="imtcp" address="127.0.0.1" port="${this.ports.tls}" ruleset="ct" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")`);
    if (this.want('tlsAuth')) lines.push(`input(type="imtcp" address="127.0.0.1" port="${this.ports.tlsAuth}" ruleset="ct" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="x509/certvalid")`);
    if (this.want('relp') || this.want('relpTls')) lines.push(`module(load="imrelp"${this.o.relpTlsLib ? ` tls.tlslib="${this.o.relpTlsLib}"` : ''})`);
    if (this.want('relp')) lines.push(`input(type="imrelp" address="127.0.0.1" port="${this.ports.relp}" ruleset="ct")`);
    if (this.want('relpTls')) {
      lines.push(`input(type="imrelp" address="127.0.0.1" port="${this.ports.relpTls}" ruleset="ct" tls="on" tls.authMode="certvalid" ` +
        `tls.caCert="${this.certs.ca}" tls.myCert="${this.certs.serverCert}" tls.myPrivKey="${this.certs.serverKey}")`);
    }
    if (this.want('unix')) {
      lines.push('module(load="imuxsock" sysSock.use="off")',
        `input(type="imuxsock" socket="${this.sock}" ruleset="ct" ignoreTimestamp="off")`,
        `input(type="imuxsock" socket="${this.sock5424}" ruleset="ct" useSpecialParser="off" parseHostname="on" ignoreTimestamp="off")`);
    }
    fs.writeFileSync(path.join(this.dir, 'rsyslog.conf'), lines.join('\n') + '\n');
  }

  /** Start rsyslogd in the foreground and wait until every input listens. */
  async start(): Promise<void> {
    if (!this.ports) await this.init();
    const bin = findRsyslogd();
    if (!bin) throw new Error('rsyslogd not found');
    for (const s of [this.sock, this.sock5424]) fs.rmSync(s, { force: true });
    const args = ['-n', '-f', path.join(this.dir, 'rsyslog.conf'), '-i', path.join(this.dir, 'rsyslogd.pid')];
    const rt = this.o.realtime && process.getuid?.() === 0;
    const p = spawn(rt ? 'chrt' : bin, rt ? ['-f', '10', bin, ...args] : args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc = p;
    p.stderr!.setEncoding('utf8').on('data', (d) => (this.stderr += d));
    const exited = new Promise<never>((_r, reject) => p.once('exit', (c) => reject(new Error(`rsyslogd exited with ${c}: ${this.stderr}`))));
    exited.catch(() => {});
    const deadline = Date.now() + 15000;
    for (;;) {
      if (p.exitCode !== null) await exited;
      const ok = (await Promise.all((['tcp', 'tls', 'tlsAuth', 'relp', 'relpTls'] as const).filter((k) => this.ports[k]).map((k) => tcpOpen(this.ports[k])))).every(Boolean) &&
        (!this.ports.udp || udpBound(this.ports.udp)) &&
        (!this.want('unix') || (fs.existsSync(this.sock) && fs.existsSync(this.sock5424)));
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`rsyslogd did not start listening: ${this.stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Stop it (SIGTERM lets it write out its queue; SIGKILL does not) and wait for the exit. */
  async stop(sig: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill(sig);
    await gone;
    this.proc = null;
  }

  /** Everything written so far, parsed (a line rsyslog is still writing is left for later). */
  records(): any[] {
    let text = '';
    try {
      text = fs.readFileSync(this.out, 'utf8');
    } catch {
      return [];
    }
    const end = text.lastIndexOf('\n');
    return end < 0 ? [] : text.slice(0, end).split('\n').filter(Boolean).map((l) => JSON.parse(l));
  }

  /** Wait until `pred(records)` holds; returns the records. */
  async waitFor(pred: (recs: any[]) => boolean, ms = 15000, what = 'records'): Promise<any[]> {
    const deadline = Date.now() + ms;
    for (;;) {
      const r = this.records();
      if (pred(r)) return r;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (have ${r.length})`);
      await new Promise((res) => setTimeout(res, 50));
    }
  }

  get log(): string {
    return this.stderr;
  }

  async close(): Promise<void> {
    await this.stop('SIGKILL');
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
