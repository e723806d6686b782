// The agent's own decisions about saving offsets: when they are written, and that reading
// pauses while they cannot be (a full disk), so a crash then re-sends as little as possible.
import { Database } from "bun:sqlite";
import { afterEach, expect, test } from "bun:test";
import { Agent } from "../lib/agent.ts";
import { collector } from "../lib/memory.ts";
import { openStore, type Store } from "../lib/state/store.ts";
import type { StateWriter } from "../lib/state/writer.ts";
import { AgentHarness } from "./helpers/agentHarness.ts";
import { FakePublisher, retriableError } from "./helpers/fakePublisher.ts";

const harnesses: AgentHarness[] = [];
afterEach(async () => {
  for (const h of harnesses.splice(0)) await h.close();
});

/** The offset saved on disk for the file at `path`, read as another process would. */
function savedOffset(statePath: string, path: string): number | null {
  const db = new Database(statePath, { readonly: true });
  try {
    db.exec("PRAGMA busy_timeout = 5000"); // a writer killed mid-write leaves a WAL to recover: wait for it, as readSaved does
    const row = db.query("SELECT offset FROM files WHERE path = ?").get(path) as { offset: number } | null;
    return row?.offset ?? null;
  } finally {
    db.close();
  }
}

test("flush_interval 0 writes the offset as soon as Kafka acknowledged it", async () => {
  const h = new AgentHarness({ state: { flush_interval: 0 } });
  harnesses.push(h);
  h.dir.append("app.log", "one\ntwo\n");
  await h.start();
  await h.untilDelivered("two\n");
  await h.until(() => savedOffset(h.statePath, h.dir.path("app.log")) === 8, "offset 8 saved without a flush timer");
});

test("with a long flush_interval the acknowledged offset waits for the timer (the contrast)", async () => {
  const h = new AgentHarness({ state: { flush_interval: 3_600_000 } });
  harnesses.push(h);
  h.dir.append("app.log", "one\ntwo\n");
  await h.start();
  await h.untilDelivered("two\n");
  await h.advance(100); // time in which flush_interval 0 saved it
  expect(savedOffset(h.statePath, h.dir.path("app.log"))).not.toBe(8);
  await h.stop(); // a graceful stop saves it
  expect(savedOffset(h.statePath, h.dir.path("app.log"))).toBe(8);
});

test("while offsets cannot be saved, reading pauses; it resumes when saving works again", async () => {
  const h = new AgentHarness();
  harnesses.push(h);
  const store: Store = openStore(h.statePath);
  let diskFull = false;
  const save = store.save.bind(store);
  store.save = (rows) => {
    if (diskFull) throw new Error("database or disk is full");
    save(rows);
  };
  const kafka = new FakePublisher();
  h.dir.append("app.log", "before\n");
  h.agent = await Agent.start(h.config, { once: false }, { publisher: kafka, events: h.recorded.events, store, clock: h.clock, watch: false });
  await h.until(() => kafka.ackedText().includes("before\n"));
  diskFull = true;
  await h.until(() => h.recorded.count("stateError") > 0, "the failed save is reported", 10_000);
  h.dir.append("app.log", "during\n");
  await h.advance(200); // many poll and scan intervals: time to read, were reading not paused
  expect(kafka.ackedText()).not.toContain("during\n");
  diskFull = false;
  await h.until(() => kafka.ackedText().includes("during\n"), "reading resumed after the save worked");
  expect(h.recorded.count("stateRecovered")).toBe(1);
});

test("an idle agent drops its reusable buffers once, and reads on when lines arrive", async () => {
  const h = new AgentHarness({ agent: { poll_interval: 20 } });
  harnesses.push(h);
  const line = (i: number) => `line ${i} ${"x".repeat(200)}\n`;
  h.dir.append("app.log", Array.from({ length: 2_000 }, (_, i) => line(i)).join(""));
  await h.start();
  await h.untilDelivered(line(1_999));
  await h.until(() => h.events.count("buffersDropped") === 1, "buffers dropped after 10 quiet polls");
  await h.advance(300); // 15 more quiet polls: no second trim while nothing happened
  expect(h.events.count("buffersDropped")).toBe(1);
  h.dir.append("app.log", Array.from({ length: 2_000 }, (_, i) => line(2_000 + i)).join(""));
  await h.untilDelivered(line(3_999));
  const expected = Array.from({ length: 4_000 }, (_, i) => line(i)).join("");
  expect(h.kafka.ackedText()).toBe(expected); // buffers dropped mid-life corrupt nothing
  await h.until(() => h.events.count("buffersDropped") === 2, "quiet again: trimmed again");
});

test("identifying thousands of files collects garbage as it goes: a young collection every 500 files observed", async () => {
  const h = new AgentHarness({ agent: { poll_interval: 100 } }); // the idle trim's full collection is 1 s of quiet away
  harnesses.push(h);
  for (let i = 0; i < 1_200; i++) h.dir.append(`f${i}.log`, `file ${i}\n`);
  // Young collections (edenGC) are counted by the collector; full ones come only with heap growth (memory.ts).
  const young = () => collector.counts.young;
  const before = young();
  await h.start();
  await h.until(() => h.kafka.ackedText().split("\n").length > 1_200, "all 1,200 files shipped");
  expect(young() - before).toBeGreaterThanOrEqual(2); // 1,200 new files observed in the scan (and again to read, if closed)
  await h.stop();
  const restarted = young();
  await h.start(); // a restart: the same files, remembered, are all observed again
  await h.settle(4);
  expect(young() - restarted).toBeGreaterThanOrEqual(2);
});

test("two inputs on two topics, one topic failing: the other input ships, even when the failing one filled the in-flight cap (issue 11, item 11)", async () => {
  // The missing topic's first send hangs until the test fails it, so the agent reads it up to the cap first.
  let missingCalls = 0;
  let missingExists = false;
  const shipped = new Map<string, Buffer[]>(); // values copied when acknowledged (read buffers are reused after)
  const unknownTopic = () => retriableError("fake: This server does not host this topic-partition", "UNKNOWN_TOPIC_OR_PARTITION");
  const fake = new FakePublisher({
    policy: (chunks) => {
      const missing = chunks.some((c) => c.source.topic === "missing");
      if (missing && !missingExists) return missingCalls++ === 0 ? "hold" : unknownTopic();
      for (const c of chunks) shipped.set(c.source.topic, [...(shipped.get(c.source.topic) ?? []), Buffer.from(c.value)]);
      return "ack";
    },
  });
  const textOf = (topic: string) => Buffer.concat(shipped.get(topic) ?? []).toString();
  const h = new AgentHarness({
    publisher: () => fake,
    kafka: { retry_backoff: 20, retry_backoff_max: 200 }, // max_inflight_bytes: the default 2 MiB
    inputs: [{ topic: "missing" }, { topic: "logs" }],
  });
  h.config.inputs[0]!.paths = [h.dir.path("bad-*.log")];
  h.config.inputs[1]!.paths = [h.dir.path("good-*.log")];
  harnesses.push(h);
  const bad = Array.from({ length: 100_000 }, (_, i) => `bad ${String(i).padStart(6, "0")} ${"x".repeat(40)}\n`).join(""); // 5.2 MB: more than the cap
  h.dir.append("bad-1.log", bad);
  await h.start();
  const unacked = () => (h.agent as unknown as { sender: { inflightBytes: number } }).sender.inflightBytes; // only the missing topic's lines wait
  await h.until(() => unacked() >= 2 * 1024 * 1024, "the missing topic's lines took the whole in-flight cap");
  fake.pending[0]!.reject(unknownTopic());
  await h.until(() => fake.calls.length >= 3, "the missing topic was retried");
  h.dir.append("good-1.log", "good one\ngood two\n");
  await h.until(() => textOf("logs") === "good one\ngood two\n", "the healthy topic shipped");
  h.dir.append("good-1.log", "good three\n");
  await h.until(() => textOf("logs").endsWith("good three\n"), "and goes on shipping");
  await h.until(() => savedOffset(h.statePath, h.dir.path("good-1.log")) === 29, "its offset saved");
  expect(savedOffset(h.statePath, h.dir.path("bad-1.log")) ?? 0).toBe(0);
  expect(h.agent!.status().find((s) => s.path.endsWith("bad-1.log"))!.offset).toBe(0);
  expect(unacked()).toBeLessThan(3 * 1024 * 1024); // no more of it was read meanwhile
  // The topic is created: the failing input ships all of it, in order, and its offset reaches the end.
  missingExists = true;
  await h.until(() => textOf("missing") === bad, "the failing input caught up", 20_000);
  await h.until(() => savedOffset(h.statePath, h.dir.path("bad-1.log")) === bad.length, "its offset saved");
});

test("a file whose path makes key + headers fill max_message_bytes is logged as unshippable, counted and skipped; the others ship (issue 11, item 18)", async () => {
  const h = new AgentHarness({ kafka: { max_message_bytes: 1_024, target_message_bytes: 1_024 }, agent: { max_inflight_bytes: 64 * 1024 } });
  h.config.inputs[0]!.paths = [h.dir.path("**/*.log")];
  harnesses.push(h);
  const deep = ["a".repeat(200), "b".repeat(200), "c".repeat(200), "long.log"].join("/"); // a path of 600+ bytes
  h.dir.append(deep, "never fits\nstill never\n");
  h.dir.append("app.log", "one\ntwo\n");
  await h.start(); // before: the RangeError of pack() ended the start (a crash loop)
  await h.untilDelivered("one\ntwo\n");
  h.dir.append(deep, "more\n");
  h.dir.append("app.log", "three\n");
  await h.untilDelivered("three\n");
  await h.until(() => h.events.log.counters.bytesUnshippable === 28, "every skipped byte counted");
  expect(h.events.count("fileUnshippable")).toBe(2);
  expect(h.events.logged(/ERROR file cannot be shipped/)).toHaveLength(1); // said once per file
  expect(h.events.log.counters.filesUnshippable).toBe(1);
  expect(h.text()).not.toContain("never");
  // its offset moved past the skipped lines: a restart does not try them again
  await h.until(() => savedOffset(h.statePath, h.dir.path(deep)) === 28, "the unshippable file's offset saved past its lines");
});

test("a state disk that never answers (issue 11, item 14): reading pauses, it is reported, no second write starts, and stop() ends by its deadline without the save", async () => {
  const h = new AgentHarness();
  harnesses.push(h);
  const store: Store = openStore(h.statePath);
  let writes = 0;
  let answer = true;
  const hung: StateWriter = {
    path: h.statePath,
    write: async () => {
      writes++;
      if (!answer) await new Promise(() => {}); // a write stuck in the kernel: never answered
      return { replaced: false };
    },
    close: async () => store.close(),
  };
  const kafka = new FakePublisher();
  h.dir.append("app.log", "before\n");
  h.agent = await Agent.start(h.config, { once: false }, { publisher: kafka, events: h.recorded.events, store, writer: hung, clock: h.clock, watch: false });
  await h.until(() => kafka.ackedText().includes("before\n"));
  await h.advance(200);
  answer = false;
  h.dir.append("app.log", "during\n");
  await h.until(() => kafka.ackedText().includes("during\n"));
  await h.until(() => h.recorded.count("stateError") > 0, "the stuck write is reported", 10_000);
  const stuckWrites = writes;
  h.dir.append("app.log", "after\n");
  await h.advance(2_000); // many flush, poll and scan intervals
  expect(kafka.ackedText()).not.toContain("after\n"); // reading paused
  expect(writes).toBe(stuckWrites); // never a second write while one is in flight
  const agent = h.agent;
  h.agent = null;
  const t0 = h.clock.now();
  let stopped = false;
  const stopping = agent.stop(1_000).then(() => (stopped = true));
  while (!stopped) await h.advance(50);
  await stopping;
  expect(h.clock.now() - t0).toBeLessThan(1_000 + 500);
  expect(h.recorded.count("stateRecovered")).toBe(0);
});

test("the state writer process killed: a new writer is started and the offsets are saved after all (a save sent to the dead one fails, said, then recovers)", async () => {
  const h = new AgentHarness({ state: { flush_interval: 0 }, writerProcess: true });
  harnesses.push(h);
  // The writer process starts and answers in real time, whatever the agent's clock says: each tick waits 10 ms.
  const real = async (fn: () => boolean, what: string) => {
    const holds = () => {
      try {
        return fn();
      } catch {
        return false; // as the harness's until: a throw (the database busy) counts as "not yet"
      }
    };
    for (const end = Date.now() + 30_000; !holds(); await Bun.sleep(10)) {
      if (Date.now() > end) throw new Error(`not within 30 s: ${what}`);
      await h.tick();
    }
  };
  h.dir.append("app.log", "one\n");
  await h.start();
  await real(() => savedOffset(h.statePath, h.dir.path("app.log")) === 4, "offset 4 saved by the writer process");
  const writer = (h.agent as unknown as { saver: { writer: { child: { pid: number; exited: Promise<number> } } } }).saver.writer;
  const first = writer.child;
  process.kill(first.pid, "SIGKILL");
  await first.exited;
  h.dir.append("app.log", "two\n");
  await real(() => savedOffset(h.statePath, h.dir.path("app.log")) === 8, "offset 8 saved by a new writer process");
  expect(writer.child.pid).not.toBe(first.pid);
  // Whether the next save reached the dead writer depends on when its exit was noticed: when
  // noticed first, the save goes to a new writer at once; otherwise it fails, is said, and the
  // next one recovers. Either way once, and never an error left unrecovered.
  await real(() => h.recorded.count("stateRecovered") === h.recorded.count("stateError"), "a reported failure is followed by its recovery");
  expect(h.recorded.count("stateError")).toBeLessThanOrEqual(1);
  expect(h.recorded.count("stateRecovered")).toBe(h.recorded.count("stateError"));
});
