// ct-filter's criteria: turns option values (protocols, port specs, CIDR
// prefixes, globs, drop sets) into one predicate over flow events. Repeated
// values of one criterion are alternatives (OR); different criteria must all
// hold (AND); -v inverts that selection; the --no-* drop sets apply after it
// and are never inverted. Special records never reach the predicate (the
// stream passes them on). Throws SpecError for a value it cannot read; no
// I/O, no `process` (--no-self's detector is handed in).
import { FLOW_EVENTS, SPECIAL_EVENTS } from '../event.js';
import { AddrCache, CidrError, LOOPBACK, MULTICAST, parseCidr, PrefixSet } from './net.js';

export class SpecError extends Error {}

export interface FilterSpec {
  proto?: string[];
  port?: string[];
  sport?: string[];
  dport?: string[];
  net?: string[];
  src?: string[];
  dst?: string[];
  event?: string[];
  uid?: string[];
  user?: string[];
  comm?: string[];
  exe?: string[];
  unit?: string[];
  container?: string[];
  domain?: string[];
  ancestor?: string[];
  direction?: string[];
  invert?: boolean;
  noDns?: boolean;
  noMulticast?: boolean;
  noLoopback?: boolean;
  noUnattributed?: boolean;
  /** --no-special: drop every special record (overrun, stats, ...), named by --event or not. */
  noSpecial?: boolean;
  /** --no-self: the pipeline's own processes (see self.ts). */
  self?: { isSelf(ev: Record<string, any>): boolean } | null;
  /** Directed broadcast addresses of this host's interfaces, for noMulticast. */
  broadcast?: string[];
}

export const DIRECTIONS = ['out', 'in', 'local', 'fwd'] as const;

/** DNS (RFC 1035), mDNS (RFC 6762), LLMNR (RFC 4795). */
export const DNS_PORTS = [53, 5353, 5355];

export interface CompiledFilter {
  /** True to keep this flow event. */
  keep(ev: Record<string, any>): boolean;
  /**
   * True to keep this special record (an `event` that is neither a flow
   * event nor `flow`): all pass unless --event names kinds, then only the
   * kinds named (`special` names them all); --no-special drops them all.
   */
  keepSpecial(ev: Record<string, any>): boolean;
  /** Options that read what ct-attribute adds (process, direction, attribution); empty when none. */
  needsAttribution: string[];
  /** Field paths the criteria read (for type checks). */
  fields: string[];
}

/** `a,b` and repeated flags both give several values. */
function values(v: string[] | undefined): string[] {
  return (v ?? []).flatMap((x) => String(x).split(',')).map((x) => x.trim()).filter((x) => x !== '');
}

/** Numbers, `lo-hi` ranges and lists into a membership test; `max` bounds them. */
export function numberSet(specs: string[], what: string, max: number): (n: unknown) => boolean {
  const ranges: [number, number][] = [];
  for (const s of specs) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(s);
    if (!m) throw new SpecError(`${what}: '${s}' is not a number or a range like 1024-65535`);
    const lo = Number(m[1]), hi = m[2] === undefined ? lo : Number(m[2]);
    if (lo > max || hi > max) throw new SpecError(`${what}: '${s}' is out of range (0-${max})`);
    if (lo > hi) throw new SpecError(`${what}: '${s}': the range is backwards`);
    ranges.push([lo, hi]);
  }
  if (max <= 65535) {
    // Ports: a bitmap answers in one load.
    const bits = new Uint8Array(max + 1);
    for (const [lo, hi] of ranges) bits.fill(1, lo, hi + 1);
    return (n) => typeof n === 'number' && bits[n] === 1;
  }
  return (n) => typeof n === 'number' && ranges.some(([lo, hi]) => n >= lo && n <= hi);
}

const escapeRe = (c: string) => c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** A shell-style glob (`*`, `?`, `[...]`) matching the whole text, as fnmatch(3) without flags. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) { re += '\\['; continue; }
      let body = glob.slice(i + 1, end);
      if (body[0] === '!') body = '^' + body.slice(1);
      re += '[' + body.replace(/\\/g, '\\\\') + ']';
      i = end;
    } else if (c === '\\' && i + 1 < glob.length) re += escapeRe(glob[++i]);
    else re += escapeRe(c);
  }
  return new RegExp('^(?:' + re + ')$', 's');
}

/** Several globs: true when any matches a string value. */
function globSet(globs: string[]): (s: unknown) => boolean {
  const exact = new Set(globs.filter((g) => !/[*?[\\]/.test(g)));
  const res = globs.filter((g) => /[*?[\\]/.test(g)).map(globToRegExp);
  return (s) => typeof s === 'string' && (exact.has(s) || res.some((r) => r.test(s)));
}

const procOf = (ev: Record<string, any>) => {
  const p = ev.process;
  return p !== null && typeof p === 'object' ? p : null;
};

export function compileFilter(spec: FilterSpec): CompiledFilter {
  const tests: ((ev: Record<string, any>) => boolean)[] = [];
  const needs: string[] = [];
  const reads = new Set<string>(['event']);
  const read = (...f: string[]) => f.forEach((x) => reads.add(x));

  const protos = values(spec.proto).map((p) => p.toLowerCase());
  if (protos.length) {
    const set = new Set(protos);
    read('proto');
    tests.push((ev) => set.has(ev.proto));
  }

  const events = values(spec.event).map((e) => e.toLowerCase());
  // `flow`: ct-flows' records, one per connection, with a flow event's fields.
  // Special records by kind, or `special` for any of them.
  const KINDS: readonly string[] = [...FLOW_EVENTS, 'flow', ...SPECIAL_EVENTS, 'special'];
  for (const e of events) if (!KINDS.includes(e)) throw new SpecError(`--event: '${e}' is not one of ${KINDS.join(', ')}`);
  if (events.length) {
    const set = new Set(events);
    tests.push((ev) => set.has(ev.event));
  }
  const specials = new Set(events.filter((e) => (SPECIAL_EVENTS as readonly string[]).includes(e)));
  const anySpecial = events.length === 0 || events.includes('special');
  const keepSpecial = spec.noSpecial ? () => false : anySpecial ? () => true : (ev: Record<string, any>) => specials.has(ev.event);

  // --port: either end, in the original or the reply direction (so a NATed port matches too), as ctrecorder's -p.
  const port = values(spec.port);
  if (port.length) {
    const has = numberSet(port, '--port', 65535);
    read('sport', 'dport', 'reply');
    tests.push((ev) => {
      if (has(ev.sport) || has(ev.dport)) return true;
      const r = ev.reply;
      return r !== null && typeof r === 'object' && (has(r.sport) || has(r.dport));
    });
  }
  const sport = values(spec.sport);
  if (sport.length) {
    const has = numberSet(sport, '--sport', 65535);
    read('sport');
    tests.push((ev) => has(ev.sport));
  }
  const dport = values(spec.dport);
  if (dport.length) {
    const has = numberSet(dport, '--dport', 65535);
    read('dport');
    tests.push((ev) => has(ev.dport));
  }

  const addrs = new AddrCache();
  const prefixes = (v: string[] | undefined, what: string) => {
    const list = values(v);
    if (!list.length) return null;
    try {
      return new PrefixSet(list.map(parseCidr), addrs);
    } catch (e) {
      if (e instanceof CidrError) throw new SpecError(`${what}: ${e.message}`);
      throw e;
    }
  };
  // --net: any address of the flow, original or reply (NAT), as ctrecorder's -i IP/MASK.
  const net = prefixes(spec.net, '--net');
  if (net) {
    read('src', 'dst', 'reply');
    tests.push((ev) => {
      if (net.has(ev.src) || net.has(ev.dst)) return true;
      const r = ev.reply;
      return r !== null && typeof r === 'object' && (net.has(r.src) || net.has(r.dst));
    });
  }
  const src = prefixes(spec.src, '--src');
  if (src) read('src');
  if (src) tests.push((ev) => src.has(ev.src));
  const dst = prefixes(spec.dst, '--dst');
  if (dst) read('dst');
  if (dst) tests.push((ev) => dst.has(ev.dst));

  const dirs = values(spec.direction).map((d) => d.toLowerCase());
  for (const d of dirs) if (!(DIRECTIONS as readonly string[]).includes(d)) throw new SpecError(`--direction: '${d}' is not one of ${DIRECTIONS.join(', ')}`);
  if (dirs.length) {
    needs.push('--direction');
    read('direction');
    const set = new Set(dirs);
    tests.push((ev) => set.has(ev.direction));
  }

  const uid = values(spec.uid);
  if (uid.length) {
    needs.push('--uid');
    read('process.uid');
    const has = numberSet(uid, '--uid', 4294967295);
    tests.push((ev) => has(procOf(ev)?.uid));
  }
  const procGlob = (v: string[] | undefined, flag: string, field: string) => {
    const g = values(v);
    if (!g.length) return;
    needs.push(flag);
    read('process.' + field);
    const has = globSet(g);
    tests.push((ev) => has(procOf(ev)?.[field]));
  };
  procGlob(spec.user, '--user', 'user');
  procGlob(spec.comm, '--comm', 'comm');
  procGlob(spec.exe, '--exe', 'exe');
  procGlob(spec.unit, '--unit', 'unit');
  const container = values(spec.container);
  if (container.length) {
    needs.push('--container');
    read('process.container');
    const has = globSet(container);
    tests.push((ev) => {
      const c = procOf(ev)?.container;
      if (c === null || typeof c !== 'object') return false;
      // The id in full or as the 12-character short id docker and podman show; or the name or image.
      return has(c.id) || (typeof c.id === 'string' && has(c.id.slice(0, 12))) || has(c.name) || has(c.image);
    });
  }

  // --domain: the name the remote was resolved from, or a name of its CNAME chain (names are lower case).
  const domain = values(spec.domain).map((d) => d.toLowerCase().replace(/\.$/, ''));
  if (domain.length) {
    needs.push('--domain');
    read('dns');
    const has = globSet(domain);
    tests.push((ev) => {
      const d = ev.dns;
      if (d === null || typeof d !== 'object') return false;
      if (has(d.name)) return true;
      return Array.isArray(d.cnames) && d.cnames.some(has);
    });
  }
  // --ancestor: the command name or executable of the parent or a further ancestor.
  const ancestor = values(spec.ancestor);
  if (ancestor.length) {
    needs.push('--ancestor');
    read('process.parent', 'process.ancestors');
    const has = globSet(ancestor);
    const match = (a: unknown) => a !== null && typeof a === 'object' && (has((a as any).comm) || has((a as any).exe));
    tests.push((ev) => {
      const p = procOf(ev);
      if (!p) return false;
      if (match(p.parent)) return true;
      return Array.isArray(p.ancestors) && p.ancestors.some(match);
    });
  }

  if (spec.invert && tests.length === 0) throw new SpecError('-v/--invert needs a criterion to invert');

  const drops: ((ev: Record<string, any>) => boolean)[] = [];
  if (spec.noDns) {
    // Either end, TCP or UDP (NoTrust-Track checked only the destination, which misses replies from a local resolver's view).
    read('proto', 'sport', 'dport');
    const dns = new Uint8Array(65536);
    for (const p of DNS_PORTS) dns[p] = 1;
    drops.push((ev) => (ev.proto === 'udp' || ev.proto === 'tcp') && (dns[ev.sport] === 1 || dns[ev.dport] === 1));
  }
  if (spec.noMulticast) {
    const set = new PrefixSet([...MULTICAST, ...(spec.broadcast ?? [])].map(parseCidr), addrs);
    read('dst');
    drops.push((ev) => set.has(ev.dst));
  }
  if (spec.noLoopback) {
    const set = new PrefixSet(LOOPBACK.map(parseCidr), addrs);
    read('src', 'dst');
    drops.push((ev) => set.has(ev.src) || set.has(ev.dst));
  }
  if (spec.noUnattributed) {
    needs.push('--no-unattributed');
    read('process.pid');
    drops.push((ev) => procOf(ev) === null);
  }
  if (spec.self) {
    needs.push('--no-self');
    read('process.pid', 'process.comm', 'process.cmdline');
    const self = spec.self;
    drops.push((ev) => self.isSelf(ev));
  }

  const invert = !!spec.invert;
  const nt = tests.length, nd = drops.length;
  return {
    needsAttribution: needs,
    fields: [...reads],
    keepSpecial,
    keep(ev) {
      let sel = true;
      for (let i = 0; i < nt; i++) if (!tests[i](ev)) { sel = false; break; }
      if (sel === invert) return false;
      for (let i = 0; i < nd; i++) if (drops[i](ev)) return false;
      return true;
    },
  };
}
