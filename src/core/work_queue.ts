/**
 * Files shared by the connections of a transfer. Each connection takes the next file when it
 * has room, so a faster connection simply takes more: all of them finish together without
 * guessing link speeds up front (work stealing rather than round-robin). A file whose
 * connection broke can be put back for another connection to retry.
 */
export class WorkQueue<T> implements Iterable<T> {
  private head = 0;
  private readonly retry: T[] = [];

  private items: readonly T[];

  constructor(items: readonly T[]) {
    this.items = items;
  }

  /** Removes and returns the items not yet taken that match `pred` (in order). */
  extract(pred: (item: T) => boolean): T[] {
    const out: T[] = [];
    const keep: T[] = [];
    for (const it of this.items.slice(this.head)) (pred(it) ? out : keep).push(it);
    if (out.length > 0) {
      this.items = keep;
      this.head = 0;
    }
    return out;
  }

  take(): T | undefined {
    if (this.retry.length > 0) return this.retry.pop();
    if (this.head < this.items.length) return this.items[this.head++];
    return undefined;
  }

  putBack(item: T): void {
    this.retry.push(item);
  }

  get remaining(): number {
    return this.items.length - this.head + this.retry.length;
  }

  /** Drains what nobody took (e.g. every connection failed). */
  drain(): T[] {
    const rest = [...this.retry, ...this.items.slice(this.head)];
    this.retry.length = 0;
    this.head = this.items.length;
    return rest;
  }

  *[Symbol.iterator](): Iterator<T> {
    for (let item = this.take(); item !== undefined; item = this.take()) yield item;
  }
}
