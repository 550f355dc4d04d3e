// ct-doctor's reachability checks of the pipeline's outputs: syslog targets
// written as URLs (udp://, tcp://, tls://, relp://host[:port], unix:PATH or a
// path; ports as ct-syslog defaults them) and Elasticsearch/OpenSearch nodes
// (parsed as ct-es parses --node). Nothing is sent but a TCP handshake, a TLS
// handshake or an HTTP GET of "/": no log message is written anywhere.
import { accessSync, statSync, constants } from 'node:fs';
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import tls from 'node:tls';
import http from 'node:http';
import https from 'node:https';
import { parseHostPort, reason } from '../syslog/transports.js';
import { parseNode } from '../es/http.js';
import type { CheckResult } from './checks.js';

export type SyslogTransport = 'unix' | 'udp' | 'tcp' | 'tls' | 'relp';

export type OutputTarget =
  | { kind: 'syslog'; transport: 'unix'; path: string; label: string }
  | { kind: 'syslog'; transport: Exclude<SyslogTransport, 'unix'>; host: string; port: number; label: string }
  | { kind: 'es'; url: URL; label: string };

/** ct-syslog's default ports (RFC 5426, 6587, 5425; RELP's 2514). */
const DEFAULT_PORT = { udp: 514, tcp: 514, tls: 6514, relp: 2514 } as const;

export class TargetError extends Error {}

export function parseSyslogTarget(s: string, shownAs = `--syslog '${s}'`): OutputTarget {
  if (s.startsWith('/')) return { kind: 'syslog', transport: 'unix', path: s, label: `unix:${s}` };
  const unix = /^unix:(?:\/\/)?(\/.*)$/.exec(s);
  if (unix) return { kind: 'syslog', transport: 'unix', path: unix[1], label: `unix:${unix[1]}` };
  const m = /^(udp|tcp|tls|relp):\/\/([^/]+)\/?$/.exec(s);
  if (!m) throw new TargetError(`${shownAs}: expected udp://, tcp://, tls:// or relp://host[:port], or unix:PATH`);
  const transport = m[1] as keyof typeof DEFAULT_PORT;
  let hp;
  try {
    hp = parseHostPort(m[2], DEFAULT_PORT[transport]);
  } catch (e) {
    throw new TargetError(`${shownAs}: ${(e as Error).message}`);
  }
  const shown = hp.host.includes(':') ? `[${hp.host}]` : hp.host;
  return { kind: 'syslog', transport, host: hp.host, port: hp.port, label: `${transport}://${shown}:${hp.port}` };
}

export function parseEsTarget(s: string): OutputTarget {
  let url: URL;
  try {
    url = parseNode(s);
  } catch (e) {
    throw new TargetError(`--node: ${(e as Error).message}`);
  }
  return { kind: 'es', url, label: `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname}` };
}

const CERT_ERRORS = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ALTNAME/;

function tcpConnect(host: string, port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    const t = setTimeout(() => s.destroy(Object.assign(new Error(`no answer within ${timeoutMs / 1000} s`), { code: 'ETIMEDOUT' })), timeoutMs);
    s.once('connect', () => { clearTimeout(t); s.destroy(); resolve(); });
    s.once('error', (e) => { clearTimeout(t); reject(e); });
  });
}

function tlsConnect(host: string, port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host, port, servername: net.isIP(host) ? undefined : host });
    const t = setTimeout(() => s.destroy(Object.assign(new Error(`no TLS handshake within ${timeoutMs / 1000} s`), { code: 'ETIMEDOUT' })), timeoutMs);
    s.once('secureConnect', () => { clearTimeout(t); s.destroy(); resolve(); });
    s.once('error', (e) => { clearTimeout(t); reject(e); });
  });
}

function httpGet(url: URL, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const mod = url.protocol === 'https:' ? https : http;
    const base = new URL(url.href);
    base.username = '';
    base.password = '';
    const auth = url.username ? `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}` : undefined;
    const req = mod.get(base, { auth, timeout: timeoutMs, headers: { accept: 'application/json' } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs / 1000} s`), { code: 'ETIMEDOUT' })));
    req.once('error', reject);
  });
}

const code = (e: unknown) => (e as NodeJS.ErrnoException).code ?? '';

/** Can the output be reached from here? */
export async function checkOutput(t: OutputTarget, timeoutMs = 3000): Promise<CheckResult & { target: string }> {
  const check = t.kind;
  const r = (status: CheckResult['status'], detail: string, fix?: string) => ({ check, target: t.label, status, detail: `${t.label}: ${detail}`, ...(fix ? { fix } : {}) });
  if (t.kind === 'syslog' && t.transport === 'unix') {
    let st;
    try {
      st = statSync(t.path);
    } catch (e) {
      return r('fail', `no such socket (${code(e)})`, 'start the local syslog daemon (rsyslog, or systemd-journald\'s /dev/log socket)');
    }
    if (!st.isSocket()) return r('fail', 'not a socket', 'point ct-syslog --unix at the syslog daemon\'s socket');
    try {
      accessSync(t.path, constants.W_OK);
    } catch (e) {
      return r('fail', `socket not writable (${code(e)})`, 'run as a user that may write to it');
    }
    return r('pass', 'local socket exists and is writable');
  }
  try {
    if (t.kind === 'es') {
      const status = await httpGet(t.url, timeoutMs);
      if (status === 401 || status === 403) return r('warn', `answers HTTP ${status}: credentials needed or refused`, 'give ct-es CT_ES_USER/CT_ES_PASSWORD or CT_ES_API_KEY');
      if (status >= 500) return r('warn', `answers HTTP ${status}`, 'check the cluster\'s health');
      return r('pass', `answers HTTP ${status}`);
    }
    if (t.transport === 'udp') {
      const a = await lookup(t.host);
      return r('pass', `${t.host === a.address ? 'address' : `resolves to ${a.address}`}; UDP gives no answer, so delivery cannot be confirmed`);
    }
    if (t.transport === 'tls') {
      await tlsConnect(t.host, t.port, timeoutMs);
      return r('pass', 'TLS handshake done, certificate trusted by the system\'s CAs');
    }
    await tcpConnect(t.host, t.port, timeoutMs);
    return r('pass', 'TCP connection accepted');
  } catch (e) {
    const c = code(e);
    if (CERT_ERRORS.test(c)) return r('warn', `reachable, but its certificate is not trusted by the system's CAs (${c})`, `give ct-${t.kind === 'es' ? 'es' : 'syslog'} --ca FILE with the CA that signed it`);
    return r('fail', `not reachable: ${reason(e)}`, 'check that the server runs and listens there, and the firewall between');
  }
}
