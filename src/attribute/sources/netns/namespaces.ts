// The host's network namespaces, learned from /proc/PID/ns/net of running
// processes (a namespace with no process in it has no socket a process could
// own), with the processes in each and the local addresses each owns. Kept
// warm and refreshed incrementally: a refresh lists /proc and reads the link
// of pids not seen before, reads the addresses of namespaces not seen before
// (and of young ones, whose addresses a CNI plugin or Docker may still be
// adding), and re-reads each namespace's addresses when they are `maxAgeMs`
// old, a few namespaces at a time (so that a host with hundreds of
// containers never stalls on reading them all at once).
// A namespace is read through any of its processes' /proc/PID/net; one that
// has exited is dropped and the next is tried. No `process` access.
import { readdirSync, readlinkSync, readFileSync } from 'node:fs';
import { nsInode } from '../../../proc/netns.js';
import { parseFibTrieLocal, parseIfInet6, isLoopback } from './procnet.js';

export interface Netns {
  /** The namespace's inode (as `ls -Li /proc/PID/ns/net` and lsns(8) show it). */
  inode: number;
  pids: Set<number>;
  addrs: string[];
  /** When the namespace was first seen, and its addresses last read (ms). */
  seen: number;
  addrAt: number;
}

export interface NetnsIndexOptions {
  proc?: string;
  /** Read a namespace's addresses again when they are this old (ms, default 2000). */
  maxAgeMs?: number;
  /** At most this many namespaces' addresses read again per lookup-driven refresh (default 8; one such refresh every 250 ms at most). */
  staleBudget?: number;
  /** Least time between two refreshes caused by an unknown address (ms, default 25). */
  minRefreshMs?: number;
  /** A namespace this young (ms, default 5000) has its addresses re-read at every refresh. */
  youngMs?: number;
  /** A process's namespace is read again at each refresh until it has been known this long (ms, default 2000). */
  youngPidMs?: number;
}

export type ReadResult = { text: string } | { error: 'no-permission' | 'gone' };

export { nsInode };

export class NetnsIndex {
  private readonly proc: string;
  private readonly maxAge: number;
  private readonly staleBudget: number;
  private readonly minRefresh: number;
  private readonly young: number;
  private readonly youngPid: number;
  private byPid = new Map<number, number>();
  /** When pids still young enough to be read again were first seen. */
  private young_ = new Map<number, number>();
  private byInode = new Map<number, Netns>();
  private byAddr = new Map<string, Netns[]>();
  private lastRefresh = 0;
  private lastFull = 0;
  /** The namespace this process runs in: its flows are not forwarded, and sock_diag sees them. */
  readonly self: number | null;
  /** Told when a namespace is forgotten (its last known process has gone). */
  onGone: ((inode: number) => void) | null = null;
  /** pids whose namespace link could not be read (no CAP_SYS_PTRACE over them). */
  denied = 0;
  stats = { refreshes: 0, full: 0, pidsRead: 0, addrReads: 0 };

  constructor(opts: NetnsIndexOptions = {}) {
    this.proc = opts.proc ?? '/proc';
    this.maxAge = opts.maxAgeMs ?? 2000;
    this.staleBudget = opts.staleBudget ?? 8;
    this.minRefresh = opts.minRefreshMs ?? 25;
    this.young = opts.youngMs ?? 5000;
    this.youngPid = opts.youngPidMs ?? 2000;
    let self: number | null = null;
    try { self = nsInode(readlinkSync(`${this.proc}/self/ns/net`)); } catch { /* no /proc */ }
    this.self = self;
  }

  /**
   * Learn new pids and namespaces, forget gone ones. A pid first seen less
   * than `youngPidMs` ago is read again: a process may change namespace
   * right after it starts (ip netns exec, nsenter, a runtime's exec) and
   * its first reading may have been the namespace it came from. `full`
   * true re-reads every namespace's addresses; a number, that many of those
   * older than `maxAgeMs`, oldest first; `addresses: false` reads only those
   * of namespaces not seen before.
   */
  refresh(full: boolean | number = false, addresses = true): void {
    const now = Date.now();
    this.stats.refreshes++;
    this.lastRefresh = now;
    let names: string[];
    try { names = readdirSync(this.proc); } catch { return; }
    const alive = new Set<number>();
    let denied = 0;
    const fresh = new Set<Netns>();
    let changed = false;
    for (const name of names) {
      const c = name.charCodeAt(0);
      if (c < 48 || c > 57) continue;
      const pid = Number(name);
      alive.add(pid);
      const was = this.byPid.get(pid);
      let firstSeen = this.young_.get(pid);
      if (was !== undefined && firstSeen === undefined) continue;
      if (firstSeen !== undefined && now - firstSeen >= this.youngPid) {
        this.young_.delete(pid);
        continue;
      }
      this.stats.pidsRead++;
      let ino: number | null;
      try {
        ino = nsInode(readlinkSync(`${this.proc}/${pid}/ns/net`));
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EACCES' || code === 'EPERM') denied++;
        continue; // gone, or not ours to read: looked at again next time
      }
      if (ino === null || ino === was) continue;
      if (was !== undefined) this.drop(pid, was);
      if (firstSeen === undefined && this.youngPid > 0) this.young_.set(pid, now);
      this.byPid.set(pid, ino);
      let ns = this.byInode.get(ino);
      if (!ns) {
        ns = { inode: ino, pids: new Set(), addrs: [], seen: now, addrAt: 0 };
        this.byInode.set(ino, ns);
        fresh.add(ns);
        changed = true;
      }
      ns.pids.add(pid);
    }
    this.denied = denied;
    for (const [pid, ino] of this.byPid) {
      if (alive.has(pid)) continue;
      this.byPid.delete(pid);
      this.young_.delete(pid);
      if (this.drop(pid, ino)) changed = true;
    }
    let stale = new Set<Netns>();
    if (full !== false) {
      this.stats.full++;
      this.lastFull = now;
      const old = [...this.byInode.values()].filter((ns) => full === true || now - ns.addrAt >= this.maxAge);
      if (full !== true) old.sort((a, b) => a.addrAt - b.addrAt).splice(full);
      stale = new Set(old);
    }
    for (const ns of this.byInode.values()) {
      if (ns.inode === this.self) continue;
      if (stale.has(ns) || fresh.has(ns) || (addresses && now - ns.seen < this.young)) {
        this.readAddrs(ns);
        changed = true;
      }
    }
    if (changed) this.rebuild();
  }

  /** Take `pid` out of namespace `ino`; true when that was its last process. */
  private drop(pid: number, ino: number): boolean {
    const ns = this.byInode.get(ino);
    if (!ns) return false;
    ns.pids.delete(pid);
    if (ns.pids.size) return false;
    this.byInode.delete(ino);
    this.onGone?.(ino);
    return true;
  }

  private readAddrs(ns: Netns): void {
    const v4 = this.read(ns, 'fib_trie');
    const v6 = this.read(ns, 'if_inet6');
    this.stats.addrReads++;
    const addrs: string[] = [];
    if ('text' in v4) addrs.push(...parseFibTrieLocal(v4.text));
    if ('text' in v6) addrs.push(...parseIfInet6(v6.text));
    ns.addrs = addrs.filter((a) => !isLoopback(a));
    ns.addrAt = Date.now();
  }

  private rebuild(): void {
    const m = new Map<string, Netns[]>();
    for (const ns of this.byInode.values()) {
      if (ns.inode === this.self) continue;
      for (const a of ns.addrs) {
        const l = m.get(a);
        if (l) l.push(ns); else m.set(a, [ns]);
      }
    }
    this.byAddr = m;
  }

  /**
   * The namespaces (other than our own) that own `addr`. An unknown address
   * triggers a refresh, at most every `minRefreshMs`: a new container's first
   * flow finds its namespace.
   */
  lookup(addr: string): Netns[] {
    const now = Date.now();
    if (now - this.lastFull >= 250) this.refresh(this.staleBudget);
    const key = addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
    let l = this.byAddr.get(key);
    if (!l && now - this.lastRefresh >= this.minRefresh) {
      this.refresh();
      l = this.byAddr.get(key);
    }
    return l ?? [];
  }

  /**
   * Read /proc/PID/net/<file> of the namespace through one of its processes,
   * the longest known first. A process that has exited (or become a zombie,
   * which has no namespaces left) is forgotten and the next one tried; when
   * none is left, /proc is listed again for processes that came since.
   */
  read(ns: Netns, file: string): ReadResult {
    const r = this.readVia(ns, file);
    if ('text' in r || r.error !== 'gone') return r;
    this.refresh();
    const cur = this.byInode.get(ns.inode);
    return cur ? this.readVia(cur, file) : r;
  }

  private readVia(ns: Netns, file: string): ReadResult {
    let denied = false;
    for (const pid of ns.pids) {
      try {
        return { text: readFileSync(`${this.proc}/${pid}/net/${file}`, 'latin1') };
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EACCES' || code === 'EPERM') denied = true;
        else this.forget(pid);
      }
    }
    return { error: denied ? 'no-permission' : 'gone' };
  }

  private forget(pid: number): void {
    const ino = this.byPid.get(pid);
    this.byPid.delete(pid);
    this.young_.delete(pid);
    // Its addresses leave the address map at the next rebuild.
    if (ino !== undefined && this.drop(pid, ino)) this.rebuild();
  }

  get(inode: number): Netns | undefined {
    return this.byInode.get(inode);
  }

  get size(): number {
    return this.byInode.size;
  }

  namespaces(): IterableIterator<Netns> {
    return this.byInode.values();
  }
}
