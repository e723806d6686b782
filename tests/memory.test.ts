// memory.ts: buffer reuse (BufferPool, lease, Slabs). When to collect is covered by agent.test.ts.
import { expect, test } from "bun:test";
import { BufferPool, lease, Slabs } from "../lib/memory.ts";

test("a given-back buffer is handed out again for the same size", () => {
  const pool = new BufferPool(10_000);
  const a = pool.take(1000);
  pool.give(a);
  expect(pool.heldBytes).toBe(1000);
  expect(pool.take(1000)).toBe(a);
  expect(pool.heldBytes).toBe(0);
  expect(pool.take(1000)).not.toBe(a);
});

test("the pool keeps no more than its cap", () => {
  const pool = new BufferPool(2500);
  pool.give(Buffer.alloc(1000));
  pool.give(Buffer.alloc(1000));
  pool.give(Buffer.alloc(1000));
  expect(pool.heldBytes).toBe(2000);
});

test("a lease returns the buffer only after every piece is released", () => {
  const pool = new BufferPool(10_000);
  const b = Buffer.alloc(100);
  const release = lease(pool, b, 3);
  release();
  release();
  expect(pool.heldBytes).toBe(0);
  release();
  expect(pool.heldBytes).toBe(100);
  expect(pool.take(100)).toBe(b);
});

test("slabs pack short copies into one pooled buffer, freed when full and every holder let go", () => {
  const pool = new BufferPool(10_000);
  const slabs = new Slabs(pool, 100);
  const a = slabs.copy(Buffer.from("a".repeat(40)));
  const b = slabs.copy(Buffer.from("b".repeat(40)));
  expect(a.bytes.buffer).toBe(b.bytes.buffer); // same slab
  expect(a.bytes.toString()).toBe("a".repeat(40));
  const releaseA = a.hold(1);
  const releaseB = b.hold(2);
  const c = slabs.copy(Buffer.from("c".repeat(40))); // does not fit: a new slab, the first sealed
  c.hold(1);
  expect(c.bytes.buffer).not.toBe(a.bytes.buffer);
  releaseA();
  releaseB();
  expect(pool.heldBytes).toBe(0); // one holder of b left
  releaseB();
  expect(pool.heldBytes).toBe(100);
  expect(b.bytes.toString()).toBe("b".repeat(40)); // untouched until someone takes it again
});

test("a copy larger than a slab gets a buffer of its own", () => {
  const slabs = new Slabs(new BufferPool(10_000), 16);
  const big = slabs.copy(Buffer.from("x".repeat(40)));
  expect(big.bytes.toString()).toBe("x".repeat(40));
  big.hold(1)();
});

test("clear() drops every free buffer: the next take allocates", () => {
  const pool = new BufferPool(10_000);
  const a = pool.take(1000);
  pool.give(a);
  pool.clear();
  expect(pool.heldBytes).toBe(0);
  expect(pool.take(1000)).not.toBe(a);
});

test("a sealed slab is not filled further, and goes back to the pool once its copies are released", () => {
  const pool = new BufferPool(1 << 20);
  const slabs = new Slabs(pool, 8192); // not a size Buffer.allocUnsafe takes from a shared pool
  const first = slabs.copy(Buffer.from("abc"));
  const release = first.hold(1);
  slabs.seal();
  const second = slabs.copy(Buffer.from("def"));
  second.hold(1);
  expect(second.bytes.buffer).not.toBe(first.bytes.buffer); // a new slab
  expect(pool.heldBytes).toBe(0); // the sealed one is still held by its copy
  release();
  expect(pool.heldBytes).toBe(8192);
  expect(first.bytes.toString()).toBe("abc");
});
