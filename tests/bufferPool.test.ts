import { expect, test } from "bun:test";
import { BufferPool, lease } from "../lib/bufferPool.ts";

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
