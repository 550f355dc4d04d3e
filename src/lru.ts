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
