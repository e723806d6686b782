// Buffer reuse. Bun frees a large Buffer only when the garbage collector gets to it, so a
// stream of fresh 1 MiB buffers makes the process grow far beyond the data it holds (a
// 250 MB backlog: about 70 MB more peak RSS than with reuse). A BufferPool keeps up to
// `keep` buffers per size for the next taker; a Lease gives a buffer back once every
// piece cut from it has been released (acknowledged by Kafka, or dropped).

export class BufferPool {
  private readonly free = new Map<number, Buffer[]>();
  private held = 0;

  constructor(private readonly maxHeldBytes: number) {}

  /** A buffer of exactly `size` bytes, reused when one is free; its contents are garbage. */
  take(size: number): Buffer {
    const list = this.free.get(size);
    const b = list?.pop();
    if (b) {
      this.held -= b.length;
      return b;
    }
    return Buffer.allocUnsafe(size);
  }

  /** Hands a buffer back; nothing may use it afterwards. Kept only while under the cap. */
  give(b: Buffer): void {
    if (this.held + b.length > this.maxHeldBytes) return;
    const list = this.free.get(b.length) ?? [];
    list.push(b);
    this.free.set(b.length, list);
    this.held += b.length;
  }

  get heldBytes(): number {
    return this.held;
  }
}

/** Gives `buffer` back to `pool` after `count` release() calls (one per piece cut from it). */
export function lease(pool: BufferPool, buffer: Buffer, count: number): () => void {
  let left = count;
  if (left <= 0) {
    pool.give(buffer);
    return () => {};
  }
  return () => {
    if (--left === 0) pool.give(buffer);
  };
}
