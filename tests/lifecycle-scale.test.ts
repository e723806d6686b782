// File lifecycle at scale (issue 3, behaviours 9, 12 and 13): 10,000 files under a small
// max_open_files, a busy file beside quiet ones, a 100 MB line, and 10,000 files created and
// deleted against the state file. The real Agent runs in-process with a fake publisher.

import { afterEach, describe, expect, test } from "bun:test";
import { appendFileSync, closeSync, mkdirSync, openSync, statSync, writeFileSync, writeSync } from "node:fs";
import { createHash } from "node:crypto";
import type { Chunk } from "../lib/kafka/pack.ts";
import type { Publisher } from "../lib/kafka/publish.ts";
import { AgentHarness, lines } from "./helpers/agentHarness.ts";

let h: AgentHarness;
afterEach(async () => {
  await h?.close();
});

/** Samples, between the agent's ticks, how many descriptors it holds under the log directory. */
function sampleDescriptors(h: AgentHarness): { peak: () => number; stop: () => void } {
  let peak = 0;
  const timer = setInterval(() => {
    peak = Math.max(peak, h.openDescriptors().length);
  }, 2);
  return { peak: () => peak, stop: () => clearInterval(timer) };
}

describe("12. many files", () => {
  test("10,000 files are all shipped, once each, with at most max_open_files (64) descriptors open", async () => {
    h = new AgentHarness({ agent: { max_open_files: 64, scan_interval: 200 } });
    const N = 10_000;
    for (let i = 0; i < N; i++) writeFileSync(h.dir.path(`f${String(i).padStart(5, "0")}.log`), `file ${i} line 1\nfile ${i} line 2\n`);
    const fds = sampleDescriptors(h);
    const started = Date.now();
    await h.start();
    await h.until(() => h.acked.length > 0 && new Set(h.acked.map((c) => c.source.file)).size === N, "all 10,000 files shipped", 60_000);
    const took = Date.now() - started;
    fds.stop();
    // A few more files while running: a quiet file created now gets its turn too.
    h.dir.append("zz-late.log", "late line\n");
    await h.untilDelivered("late line\n");
    await h.settle(2);
    const streams = h.streams();
    expect(streams.length).toBe(N + 1);
    for (const s of streams) {
      const i = Number(/f(\d+)\.log$/.exec(s.path)?.[1] ?? -1);
      if (i < 0) continue;
      expect(s.bytes.toString()).toBe(`file ${i} line 1\nfile ${i} line 2\n`);
    }
    expect(fds.peak()).toBeLessThanOrEqual(64);
    console.log(`10,000 files: shipped in ${took} ms, peak descriptors ${fds.peak()}`);
  }, 90_000);

  test("--once with 3,000 files and max_open_files 16 ships every file and finishes", async () => {
    h = new AgentHarness({ agent: { max_open_files: 16 } });
    const N = 3_000;
    for (let i = 0; i < N; i++) writeFileSync(h.dir.path(`o${i}.log`), `once ${i}\n`);
    const agent = await h.start({ once: true });
    await agent.finished;
    expect(h.streams().length).toBe(N);
    expect(h.text().split("\n").length - 1).toBe(N);
  }, 60_000);

  test("a busy file does not starve quiet ones when descriptors are scarce", async () => {
    h = new AgentHarness({ agent: { max_open_files: 2 } });
    await h.start();
    const busy = openSync(h.dir.path("busy.log"), "a");
    let n = 0;
    const stopWriting = h.clock.every(2, () => {
      // busy in the agent's time: 20 lines every 2 ms of its clock
      writeSync(busy, lines("busy", n, 20));
      n += 20;
    });
    try {
      for (let i = 0; i < 12; i++) h.dir.append(`quiet-${i}.log`, `quiet ${i} first\n`);
      await h.untilDelivered(...Array.from({ length: 12 }, (_, i) => `quiet ${i} first\n`));
      for (let i = 0; i < 12; i++) h.dir.append(`quiet-${i}.log`, `quiet ${i} second\n`);
      await h.untilDelivered(...Array.from({ length: 12 }, (_, i) => `quiet ${i} second\n`));
    } finally {
      stopWriting();
      closeSync(busy);
    }
    await h.until(() => h.textOf("busy.log").length === statSync(h.dir.path("busy.log")).size, "the busy file caught up");
    const streams = h.streams();
    expect(n).toBeGreaterThan(1_000); // it was busy while the quiet files waited
    expect(streams.length).toBe(13);
    expect(h.textOf("busy.log")).toBe(lines("busy", 0, n));
  }, 30_000);
});

/** Keeps only a running hash and byte count per file identity, so a 100 MB run holds no copies. */
class HashingPublisher implements Publisher {
  readonly files = new Map<string, { hash: ReturnType<typeof createHash>; bytes: number; end: number }>();
  records = 0;
  async send(chunks: Chunk[]): Promise<void> {
    for (const c of chunks) {
      let f = this.files.get(c.source.file);
      if (!f) this.files.set(c.source.file, (f = { hash: createHash("sha256"), bytes: 0, end: c.start }));
      if (c.start < f.end) throw new Error(`overlap at ${c.start} (already had up to ${f.end})`); // gaps: dropped bytes
      f.hash.update(c.value);
      f.bytes += c.value.length;
      f.end = c.end;
      this.records++;
    }
  }
  partitionOf(): number {
    return 0;
  }
  async close(): Promise<void> {}
}

describe("9. a 100 MB line", () => {
  // drop and truncate read the rest of the line into one reused buffer: memory stays flat.
  // split ships every byte, so read buffers become garbage at Kafka's pace; the GC lets RSS
  // rise to a plateau (about 100 MiB measured here, whatever the line's length) before it
  // collects, so that case uses a 256 MiB line and shows RSS stays well below it.
  for (const [mode, mib, bound] of [["drop", 100, 64], ["truncate", 100, 64], ["split", 256, 192]] as const) {
    test(`is handled with bounded memory (long_lines: ${mode}, a ${mib} MiB line); the lines around it arrive`, async () => {
      const kafka = new HashingPublisher();
      h = new AgentHarness({ input: { long_lines: mode }, publisher: () => kafka });
      await h.start();
      const MiB = 1024 * 1024;
      const piece = Buffer.alloc(MiB, "x");
      const path = h.dir.path("big.log");
      const expected = createHash("sha256");
      const write = (b: Buffer) => {
        appendFileSync(path, b);
        expected.update(b);
      };
      write(Buffer.from("before\n"));
      Bun.gc(true);
      const base = process.memoryUsage().rss;
      let peak = base;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
      for (let i = 0; i < mib; i++) write(piece); // written while logship reads it
      write(Buffer.from("\nafter\n"));
      const size = statSync(path).size;
      await h.until(() => [...kafka.files.values()][0]?.end === size, "read to the end", 60_000);
      clearInterval(sampler);
      const f = [...kafka.files.values()][0]!;
      const counters = h.events.log.counters;
      if (mode === "split") {
        expect(f.hash.digest("hex")).toBe(expected.digest("hex")); // every byte, in order
      } else if (mode === "truncate") {
        expect(f.bytes).toBe("before\n".length + MiB + 1 + "after\n".length);
        expect(counters.linesTruncated).toBe(1);
      } else {
        expect(f.bytes).toBe("before\n".length + "after\n".length);
        expect(counters.linesDropped).toBe(1);
      }
      const growth = (peak - base) / MiB;
      console.log(`${mib} MiB line, ${mode}: peak RSS growth ${growth.toFixed(1)} MiB`);
      expect(growth).toBeLessThan(bound); // the line never sits in memory
    }, 90_000);
  }
});

describe("13. state cleanup at scale", () => {
  test("after 10,000 files are created, shipped and deleted, the state holds nothing of them and stays small", async () => {
    h = new AgentHarness({ agent: { scan_interval: 100 } });
    await h.start();
    const N = 10_000;
    const batch = 1_000;
    mkdirSync(h.dir.path(), { recursive: true });
    for (let b = 0; b < N / batch; b++) {
      for (let i = b * batch; i < (b + 1) * batch; i++) writeFileSync(h.dir.path(`t${i}.log`), `temp ${i}\n`);
      await h.until(() => new Set(h.acked.map((c) => c.source.file)).size === (b + 1) * batch, `batch ${b} shipped`, 30_000);
      for (let i = b * batch; i < (b + 1) * batch; i++) h.dir.remove(`t${i}.log`);
      await h.until(() => h.agent!.status().length === 0, `batch ${b} finished`, 30_000);
    }
    h.dir.append("keep.log", "kept\n");
    await h.untilDelivered("kept\n");
    await h.stop();
    const rows = h.savedRows();
    expect(rows.map((r) => r.path)).toEqual([h.dir.path("keep.log")]);
    const size = (p: string) => {
      try {
        return statSync(p).size;
      } catch {
        return 0;
      }
    };
    const bytes = size(h.statePath) + size(`${h.statePath}-wal`);
    console.log(`state after 10,000 files created and deleted: ${rows.length} row(s), ${bytes} bytes (db + wal)`);
    expect(bytes).toBeLessThan(8 * 1024 * 1024);
  }, 120_000);
});
