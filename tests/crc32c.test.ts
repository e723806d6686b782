import { expect, test } from "bun:test";
// @ts-expect-error kafkajs ships no types for its internals
import kafkajsCrc32c from "kafkajs/src/protocol/recordBatch/crc32C/crc32C.js";
import { crc32c } from "../lib/kafka/patches/crc32c.ts";

test("crc32c gives the standard check value", () => {
  expect(crc32c(Buffer.from("123456789"))).toBe(0xe3069283);
  expect(crc32c(new Uint8Array(0))).toBe(0);
});

test("crc32c equals kafkajs' own checksum on random buffers of every length mod 8", () => {
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
  for (let len = 0; len < 300; len++) {
    const b = new Uint8Array(len + (len % 3) * 997);
    for (let i = 0; i < b.length; i++) b[i] = rand();
    expect(crc32c(b)).toBe(kafkajsCrc32c(b) >>> 0);
  }
});
