// Worker threads for bulk line work, the one pool every bulk reader uses
// (runLines' processors; ct-es's mapper). A run of whole lines is copied
// into memory the worker can own, sent to the least busy worker, and its
// answer decoded on the way back. Memory a caller gives back (recycle) is
// used again for later runs, since fresh memory costs page faults. A worker
// that fails or exits fails every run still out. No `process`.

import { Worker } from 'node:worker_threads';

interface Pending<R> { resolve(r: R): void; reject(e: Error): void }

export interface PoolOptions<R> {
  /** Worker threads. */
  size: number;
  /** The worker's module; it answers `{id, buf, length}` with `{id, ...}` or `{id, error}`. */
  url: URL;
  workerData: unknown;
  /** Names the pool in errors ("mapping worker: ..."). */
  name: string;
  /** The result of an answer. */
  decode(m: any): R;
  /** Bytes a run's memory has at least, so that it can be used again for larger runs (default: the run's length). */
  minBuffer?: number;
}

export class WorkerPool<R> {
  private workers: { w: Worker; busy: number }[] = [];
  private pending = new Map<number, Pending<R>>();
  private nextId = 0;
  private failure: Error | null = null;
  private closing = false;
  private free: ArrayBuffer[] = [];

  constructor(private readonly o: PoolOptions<R>) {
    for (let i = 0; i < o.size; i++) {
      const w = new Worker(o.url, { workerData: o.workerData });
      const slot = { w, busy: 0 };
      w.on('message', (m) => {
        if (m.id === undefined) return; // e.g. a worker's "ready"
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        slot.busy--;
        if (m.error) return p.reject(new Error(`${o.name}: ${m.error}`));
        p.resolve(o.decode(m));
      });
      w.on('error', (e) => this.fail(e));
      w.on('exit', (code) => { if (!this.closing) this.fail(new Error(`${o.name} exited with code ${code}`)); });
      this.workers.push(slot);
    }
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  /** Memory that came back from a worker, for later runs. */
  recycle(ab: ArrayBuffer): void {
    if (this.free.length < this.workers.length * 3) this.free.push(ab);
  }

  run(buf: Buffer): Promise<R> {
    if (this.failure) return Promise.reject(this.failure);
    let slot = this.workers[0];
    for (const s of this.workers) if (s.busy < slot.busy) slot = s;
    // A copy the worker can own: an input chunk may share memory with others.
    let ab: ArrayBuffer | undefined;
    while ((ab = this.free.pop()) && ab.byteLength < buf.length + 1);
    if (!ab) ab = new ArrayBuffer(this.o.minBuffer ? Math.max(buf.length + 4096, this.o.minBuffer) : buf.length);
    buf.copy(Buffer.from(ab));
    const id = this.nextId++;
    slot.busy++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      slot.w.postMessage({ id, buf: ab, length: buf.length }, [ab]);
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.workers.map((s) => s.w.terminate()));
  }
}
