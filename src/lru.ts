// A bounded map that forgets the least recently used entries, in O(1) per
// operation. A Map used as an LRU queue (delete, set, evict the first key)
// slows down as deleted entries pile up at its front, which the next
// `keys().next()` must step over; here two generations take turns instead:
// entries are set in the young one, a hit in the old one moves the entry
// up, and when the young one is full the old one is dropped whole. At most
// `max` entries are kept, and always at least the max/2 used last.
export class BoundedMap<K, V> {
  private young = new Map<K, V>();
  private old = new Map<K, V>();
  private readonly half: number;
  /** Entries dropped to stay within the bound. */
  evicted = 0;

  constructor(readonly max: number) {
    if (!(max >= 2)) throw new RangeError('BoundedMap needs room for at least 2 entries');
    this.half = Math.floor(max / 2);
  }

  get(key: K): V | undefined {
    const v = this.young.get(key);
    if (v !== undefined) return v;
    const o = this.old.get(key);
    if (o === undefined) return undefined;
    this.old.delete(key);
    this.put(key, o);
    return o;
  }

  /** Like get, without counting as a use. */
  peek(key: K): V | undefined {
    const v = this.young.get(key);
    return v !== undefined ? v : this.old.get(key);
  }

  set(key: K, value: V): this {
    const young = this.young;
    if (young.size < this.half) {
      // No turn of the generations can come: set in the young one first,
      // whose size then says whether the key was there (two lookups of a
      // new key, not three).
      const n = young.size;
      young.set(key, value);
      if (young.size !== n && this.old.size !== 0) this.old.delete(key);
      return this;
    }
    if (young.has(key)) {
      young.set(key, value);
      return this;
    }
    this.old.delete(key);
    this.put(key, value);
    return this;
  }

  private put(key: K, value: V): void {
    if (this.young.size >= this.half) {
      this.evicted += this.old.size;
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(key, value);
  }

  delete(key: K): boolean {
    const a = this.young.delete(key);
    const b = this.old.delete(key);
    return a || b;
  }

  has(key: K): boolean {
    return this.young.has(key) || this.old.has(key);
  }

  get size(): number {
    return this.young.size + this.old.size;
  }

  clear(): void {
    this.young = new Map();
    this.old = new Map();
  }
}

/**
 * One generation of IntBoundedMap: an open-addressing table of int32 keys
 * (linear probing, deletion by shifting back), filled to half its slots at
 * most, growing by doubling. An empty slot has an undefined value.
 */
class IntTable<V> {
  keys: Int32Array;
  vals: (V | undefined)[];
  mask: number;
  /** 32 less the bits of a slot number: a key's slot is the top bits of its Fibonacci hash. */
  private shift: number;
  count = 0;

  /** `cap`: a power of two, at least 2. */
  constructor(cap: number) {
    this.keys = new Int32Array(cap);
    this.vals = new Array<V | undefined>(cap).fill(undefined);
    this.mask = cap - 1;
    this.shift = 32 - Math.log2(cap);
  }

  private slot(key: number): number {
    return Math.imul(key, 0x9e3779b1) >>> this.shift;
  }

  /** The slot of `key`, or -1. */
  find(key: number): number {
    const keys = this.keys, vals = this.vals, mask = this.mask;
    for (let i = this.slot(key); ; i = (i + 1) & mask) {
      if (vals[i] === undefined) return -1;
      if (keys[i] === key) return i;
    }
  }

  get(key: number): V | undefined {
    const i = this.find(key);
    return i < 0 ? undefined : this.vals[i];
  }

  /** Set `key` (absent or present): whether it was absent. */
  set(key: number, v: V): boolean {
    if ((this.count + 1) * 2 > this.keys.length) this.grow();
    const keys = this.keys, vals = this.vals, mask = this.mask;
    let i = this.slot(key);
    for (; vals[i] !== undefined; i = (i + 1) & mask) {
      if (keys[i] === key) {
        vals[i] = v;
        return false;
      }
    }
    keys[i] = key;
    vals[i] = v;
    this.count++;
    return true;
  }

  /** Remove the entry in slot `i`, moving back the entries after it that probed past it. */
  removeAt(i: number): void {
    const keys = this.keys, vals = this.vals, mask = this.mask;
    let hole = i;
    for (let j = (i + 1) & mask; vals[j] !== undefined; j = (j + 1) & mask) {
      const home = this.slot(keys[j]);
      // Entry j may move to the hole when its home is not in (hole, j] (cyclically).
      if ((j > hole && (home <= hole || home > j)) || (j < hole && home <= hole && home > j)) {
        keys[hole] = keys[j];
        vals[hole] = vals[j];
        hole = j;
      }
    }
    vals[hole] = undefined;
    this.count--;
  }

  delete(key: number): boolean {
    const i = this.find(key);
    if (i < 0) return false;
    this.removeAt(i);
    return true;
  }

  /** Empty it, keeping its memory. */
  clear(): void {
    if (this.count) this.vals.fill(undefined);
    this.count = 0;
  }

  private grow(): void {
    const { keys, vals } = this;
    const cap = keys.length * 2;
    this.keys = new Int32Array(cap);
    this.vals = new Array<V | undefined>(cap).fill(undefined);
    this.mask = cap - 1;
    this.shift = 32 - Math.log2(cap);
    this.count = 0;
    for (let i = 0; i < keys.length; i++) if (vals[i] !== undefined) this.set(keys[i], vals[i] as V);
  }
}

/**
 * BoundedMap for int32 keys (conntrack ids as `id | 0`): the same two
 * generations, each an open-addressing table (IntTable) instead of a Map.
 * A Map of tens of thousands of entries costs a hashed lookup through its
 * chains for each of has, delete and set, and new backing stores as it
 * grows, thrown away with each generation; here a key is found in a
 * typed array, and the tables of a dropped generation are emptied and
 * filled again. Values are never undefined.
 */
export class IntBoundedMap<V> {
  private young: IntTable<V>;
  private old: IntTable<V>;
  private readonly half: number;
  /** Entries dropped to stay within the bound. */
  evicted = 0;

  constructor(readonly max: number) {
    if (!(max >= 2)) throw new RangeError('IntBoundedMap needs room for at least 2 entries');
    this.half = Math.floor(max / 2);
    this.young = new IntTable(16);
    this.old = new IntTable(16);
  }

  get(key: number): V | undefined {
    const v = this.young.get(key);
    if (v !== undefined) return v;
    const old = this.old;
    const i = old.find(key);
    if (i < 0) return undefined;
    const o = old.vals[i] as V;
    old.removeAt(i);
    this.put(key, o);
    return o;
  }

  /** Like get, without counting as a use. */
  peek(key: number): V | undefined {
    const v = this.young.get(key);
    return v !== undefined ? v : this.old.get(key);
  }

  set(key: number, value: V): this {
    const young = this.young;
    if (young.count < this.half) {
      // No turn of the generations can come: one probe of the young table
      // sets the key and says whether it was new (a key is in one
      // generation at most), where a find, then a set, probed it twice.
      // A flood of NEW events sets a new key each (settle), in tables too
      // big for the CPU's caches.
      if (young.set(key, value) && this.old.count !== 0) this.old.delete(key);
      return this;
    }
    const i = young.find(key);
    if (i >= 0) {
      young.vals[i] = value;
      return this;
    }
    if (this.old.count !== 0) this.old.delete(key);
    this.put(key, value);
    return this;
  }

  private put(key: number, value: V): void {
    if (this.young.count >= this.half) {
      this.evicted += this.old.count;
      const dropped = this.old;
      dropped.clear();
      this.old = this.young;
      this.young = dropped;
    }
    this.young.set(key, value);
  }

  delete(key: number): boolean {
    const a = this.young.delete(key);
    const b = this.old.delete(key);
    return a || b;
  }

  has(key: number): boolean {
    return this.young.find(key) >= 0 || this.old.find(key) >= 0;
  }

  get size(): number {
    return this.young.count + this.old.count;
  }

  clear(): void {
    this.young.clear();
    this.old.clear();
  }
}
