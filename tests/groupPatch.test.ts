// lib/kafka/patches/group.ts: the linear groupMessagesPerPartition gives exactly kafkajs' groups.
import { expect, test } from "bun:test";
import kafkajsGroup from "kafkajs/src/producer/groupMessagesPerPartition.js";
import { KAFKAJS_GROUP_MODULE, makeGroupMessagesPerPartition } from "../lib/kafka/patches/group.ts";

test("the same groups, in the same order, as kafkajs' own, for random messages and partition counts", () => {
  const ours = makeGroupMessagesPerPartition();
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  for (let round = 0; round < 200; round++) {
    const n = Math.floor(rand() * 300);
    const partitions = 1 + Math.floor(rand() * 16);
    const partitionMetadata = Array.from({ length: round % 50 === 0 ? 0 : partitions }, (_, partitionId) => ({ partitionId }));
    const messages = Array.from({ length: n }, (_, i) => ({ key: `k${Math.floor(rand() * 40)}`, value: `v${i}`, partition: rand() < 0.5 ? Math.floor(rand() * partitions) : undefined }));
    const partitioner = ({ message }: { message: { key: string; partition?: number } }) => message.partition ?? message.key.length % partitions;
    const args = { topic: "t", partitionMetadata, messages, partitioner };
    expect(ours(args)).toEqual(kafkajsGroup(args));
  }
});

test("the build plugin targets the module kafkajs really loads, and the module stands alone", async () => {
  const path = require.resolve("kafkajs/src/producer/groupMessagesPerPartition.js");
  expect(path).toMatch(KAFKAJS_GROUP_MODULE);
  const source = await Bun.file(require.resolve("kafkajs/src/producer/sendMessages.js")).text();
  expect(source).toContain("require('./groupMessagesPerPartition')");
  const standalone = new Function("module", `${`module.exports = (${makeGroupMessagesPerPartition.toString()})();`}`);
  const m = { exports: null as unknown };
  standalone(m);
  expect(typeof m.exports).toBe("function");
});
