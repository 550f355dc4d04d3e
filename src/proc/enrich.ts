// The process enrichments of a flow's owner: process.parent and ancestors
// (ancestry.ts), process.hash (exehash.ts), exe_deleted / exe_memfd. The
// owner objects the attribution engine hands out are shared by many events
// and never changed here: each is mapped once to an enriched copy, made again
// only when its hash has become known since.
import type { ExeHash, ProcessInfo } from '../event.js';
import { Ancestry } from './ancestry.js';
import { ExeHasher, exeKind } from './exehash.js';

export interface ProcessEnricherOptions {
  proc?: string;
  /** Parent and ancestors named: 0 for none (default 4). */
  depth?: number;
  /** Compute process.hash (default false). */
  hash?: boolean;
  hashMaxBytes?: number;
  cmdline?: boolean;
  maxEntries?: number;
}

interface Made {
  out: ProcessInfo;
  /** Set while the hash was pending when `out` was made. */
  pending: boolean;
  /** ExeHasher.finished when it was last asked: nothing can have changed until that count moves. */
  asked: number;
}

export class ProcessEnricher {
  readonly ancestry: Ancestry | null;
  readonly hasher: ExeHasher | null;
  private made = new WeakMap<ProcessInfo, Made>();
  /** Final hash answers by entity_id: one stat for a process, not one per event. */
  private finalHash = new Map<string, ExeHash>();

  constructor(opts: ProcessEnricherOptions = {}) {
    const depth = opts.depth ?? 4;
    this.ancestry = depth > 0 ? new Ancestry({ proc: opts.proc, depth, cmdline: opts.cmdline, maxEntries: opts.maxEntries }) : null;
    this.hasher = opts.hash ? new ExeHasher({ proc: opts.proc, maxBytes: opts.hashMaxBytes }) : null;
  }

  private hashOf(p: ProcessInfo): ExeHash {
    const id = p.entity_id;
    const f = id ? this.finalHash.get(id) : undefined;
    if (f) return f;
    const h = this.hasher!.get(p.pid, id);
    if (!h.pending && id) {
      if (this.finalHash.size >= 20000) this.finalHash.clear();
      this.finalHash.set(id, h);
    }
    return h;
  }

  /** `p` with its ancestry and hash added: a new object, the same one while nothing changed. */
  enrich(p: ProcessInfo): ProcessInfo {
    // A process object from the input (a line attributed before) is not this host's to read.
    if (p === null || typeof p !== 'object' || !Number.isInteger(p.pid) || p.pid <= 0 || (p.entity_id !== undefined && typeof p.entity_id !== 'string')) return p;
    const m = this.made.get(p);
    // A pending digest is not asked for again (a stat of /proc/PID/exe per
    // event) until some file has been finished since.
    if (m && (!m.pending || m.asked === this.hasher!.finished)) return m.out;
    let hash: ExeHash | undefined;
    if (this.hasher) {
      hash = this.hashOf(p);
      if (m && hash.pending) {
        m.asked = this.hasher.finished;
        return m.out;
      }
    }
    const out: ProcessInfo = { ...p };
    if (this.ancestry) {
      const l = this.ancestry.of(p);
      if (l.parent) out.parent = l.parent;
      if (l.ancestors) out.ancestors = l.ancestors;
    }
    if (hash) out.hash = hash;
    const kind = exeKind(p.exe);
    if (kind === 'deleted') out.exe_deleted = true;
    else if (kind === 'memfd') out.exe_memfd = true;
    this.made.set(p, { out, pending: !!hash?.pending, asked: this.hasher?.finished ?? 0 });
    return out;
  }
}
