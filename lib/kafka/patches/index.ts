// What logship changes inside kafkajs, and why: one file per patch beside this one, each
// with the measurements that justify it. Prototype patches and kafkajs' own codec registry
// only: node_modules stays as npm installs it.
//   - encoder.ts: kafkajs' Encoder becomes a rope (values referenced, not copied), its
//     buffers taken from the encoder arena (encoder-arena.ts) during a send;
//   - request-queue.ts: an idle RequestQueue stops re-arming a 1 ms timer;
//   - gzip.ts: gzip record batches compressed in one call with Bun's libdeflate;
//   - codecs.ts: snappy, lz4 and zstd, which kafkajs lacks (no native addons);
//   - crc32c.ts: not a patch any more: the fast CRC-32C logship's own record batches use.
// The internals they reach into are declared in kafkajs-internals.d.ts. logship writes its own
// Produce requests (kafka/records.ts, produce.ts, cluster-send.ts) and no longer calls
// kafkajs' producer (whose CRC module and quadratic grouping two bundler plugins replaced
// before); the rope encoder and its arena still frame every request kafkajs writes.
//
// Invariant: the patches are installed only by an explicit installKafkajsPatches() call
// (KafkaPublisher's constructor), at most once per process, and only on the kafkajs version
// they were written and measured against: any other version is refused before anything is
// patched. The version is read from kafkajs' package.json through a JSON import, which the
// bundler inlines, so the compiled binary checks the kafkajs it carries.

import kafkajsPackage from "kafkajs/package.json" with { type: "json" };
import { installRopeEncoder } from "./encoder.ts";
import { installCodecs } from "./codecs.ts";
import { installGzipCodec } from "./gzip.ts";
import { installIdleQueueFix } from "./request-queue.ts";

export { withEncoderArena } from "./encoder-arena.ts";

/** The kafkajs version every patch here was written for (package.json pins the same). */
export const PATCHED_KAFKAJS_VERSION = "2.2.4";

/** Throws unless `found` is the kafkajs version the patches were written for. */
export function checkKafkajsVersion(found: string): void {
  if (found === PATCHED_KAFKAJS_VERSION) return;
  throw new Error(
    `logship's kafkajs patches were written for kafkajs ${PATCHED_KAFKAJS_VERSION}, but kafkajs ${found} is installed: ` +
      `they replace kafkajs internals, so revisit each patch in lib/kafka/patches/ against kafkajs ${found} before changing PATCHED_KAFKAJS_VERSION`,
  );
}

let installed = false;

/** Installs every kafkajs patch, once; later calls do nothing. Throws on an unexpected kafkajs version. */
export function installKafkajsPatches(): void {
  if (installed) return;
  checkKafkajsVersion(kafkajsPackage.version);
  installRopeEncoder();
  installIdleQueueFix();
  installGzipCodec();
  installCodecs();
  installed = true;
}
