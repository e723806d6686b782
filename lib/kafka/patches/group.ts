// kafkajs groups a send's messages by partition with a reduce that copies each partition's
// array for every message ([...current, message]): quadratic in the records of a partition.
// Packed records are few per send, but `format: line` and `json` (issue 14) make one record
// per line, thousands per send, and that copying was 39% of the JavaScript CPU of shipping
// 40-byte lines as `line` (bench --profile, short-lines). This linear version gives the same
// groups in the same order. kafkajsGroupPlugin, a Bun bundler plugin used by scripts/build.ts,
// puts it into kafkajs inside the binary, as crc32c.ts does (running from source keeps
// kafkajs' own; tests/groupPatch.test.ts proves both give the same groups).

import type { BunPlugin } from "bun";

interface GroupArgs<M> {
  topic: string;
  partitionMetadata: unknown[];
  messages: M[];
  partitioner: (a: { topic: string; partitionMetadata: unknown[]; message: M }) => number;
}

/** Builds the grouping function. Self-contained, so its source can stand alone in a module. */
export function makeGroupMessagesPerPartition() {
  return function groupMessagesPerPartition<M>({ topic, partitionMetadata, messages, partitioner }: GroupArgs<M>): Record<number, M[]> {
    const result: Record<number, M[]> = {};
    if (partitionMetadata.length === 0) return result;
    for (const message of messages) {
      const partition = partitioner({ topic, partitionMetadata, message });
      const list = result[partition];
      if (list) list.push(message);
      else result[partition] = [message];
    }
    return result;
  };
}

/** The kafkajs module the plugin replaces. */
export const KAFKAJS_GROUP_MODULE = /kafkajs[\\/]src[\\/]producer[\\/]groupMessagesPerPartition\.js$/;

/** Replaces kafkajs' quadratic groupMessagesPerPartition module with makeGroupMessagesPerPartition(). */
export const kafkajsGroupPlugin: BunPlugin = {
  name: "logship-kafkajs-group",
  setup(build) {
    build.onLoad({ filter: KAFKAJS_GROUP_MODULE }, () => ({
      contents: `module.exports = (${makeGroupMessagesPerPartition.toString()})();\n`,
      loader: "js",
    }));
  },
};
