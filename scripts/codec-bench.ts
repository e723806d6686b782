// Codec micro-benchmark: CPU seconds per GB and MB/s of each kafka.compression codec as
// logship registers it with kafkajs (lib/kafka/patches/), on log-like record batches of
// 256 KiB (the default target_message_bytes), single-threaded, in this process.
//
//   bun scripts/codec-bench.ts [--mb 256]
//
// Prints one row per codec: compressed ratio, CPU s/GB (user+sys, compress only), MB/s of
// input. The data is made here: lines of timestamps, levels, paths, ids and numbers, so it
// compresses like real logs (not like random bytes or one repeated line).
import { parseArgs } from "node:util";
import { CompressionCodecs, CompressionTypes } from "kafkajs";
import { installKafkajsPatches } from "../lib/kafka/patches/index.ts";

const { values } = parseArgs({ args: Bun.argv.slice(2), options: { mb: { type: "string" } } });
const totalMb = Number(values.mb ?? 256);
installKafkajsPatches();

function logBatch(seed: number, bytes: number): Buffer {
  const levels = ["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"];
  const paths = ["/api/v1/orders", "/api/v1/users/me", "/healthz", "/api/v2/search?q=", "/static/app.js"];
  let x = seed >>> 0;
  const rnd = () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0);
  const parts: string[] = [];
  let size = 0;
  let t = 1_764_000_000_000 + seed * 1000;
  while (size < bytes) {
    t += rnd() % 50;
    const line = `${new Date(t).toISOString()} ${levels[rnd() % levels.length]} [worker-${rnd() % 16}] req=${(rnd() % 0xffffff).toString(16).padStart(6, "0")}${(rnd() % 0xffffff).toString(16).padStart(6, "0")} ${paths[rnd() % paths.length]} status=${[200, 200, 200, 404, 500][rnd() % 5]} bytes=${rnd() % 100000} ms=${(rnd() % 5000) / 10}\n`;
    parts.push(line);
    size += line.length;
  }
  return Buffer.from(parts.join("")).subarray(0, bytes);
}

const BATCH = 256 * 1024;
const batches = Array.from({ length: 16 }, (_, i) => logBatch(i + 1, BATCH));
const rounds = Math.max(1, Math.round((totalMb * 1024 * 1024) / (BATCH * batches.length)));
const codecs: [string, number | null][] = [["gzip", CompressionTypes.GZIP], ["snappy", CompressionTypes.Snappy], ["lz4", CompressionTypes.LZ4], ["zstd", CompressionTypes.ZSTD]];

console.log(`codec   ratio   CPU s/GB   MB/s    (${rounds * batches.length} batches of 256 KiB = ${(rounds * batches.length * BATCH / 1e6).toFixed(0)} MB of log lines)`);
for (const [name, type] of codecs) {
  const codec = (CompressionCodecs as Record<number, () => { compress(e: { buffer: Buffer }): Promise<Buffer>; decompress(b: Buffer): Promise<Buffer> }>)[type!]!();
  // Round trip first: what is measured must decode to what went in.
  for (const b of batches) if (!(await codec.decompress(await codec.compress({ buffer: b }))).equals(b)) throw new Error(`${name}: round trip differs`);
  let inBytes = 0;
  let outBytes = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let r = 0; r < rounds; r++) {
    for (const b of batches) {
      outBytes += (await codec.compress({ buffer: b })).length;
      inBytes += b.length;
    }
  }
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuS = (cpu.user + cpu.system) / 1e6;
  console.log(`${name.padEnd(7)} ${(inBytes / outBytes).toFixed(2).padStart(5)}   ${((cpuS / inBytes) * 1e9).toFixed(1).padStart(8)}   ${(inBytes / 1e6 / wall).toFixed(0).padStart(5)}`);
}
