// An idle agent's cost is what changes, not how many files it follows (issue 11, item 19:
// 100,000 files idled at 13 % of a core). Counted, not timed: periodic scans run and skipped
// (files/pacing.ts), descriptors held and files waiting for one, ranges kept per file.
// The real Agent runs in-process on the manual clock, with inotify on where a test says so.

import { afterEach, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { FULL_SCAN_EVERY } from "../lib/files/pacing.ts";
import { Checkpoint } from "../lib/state/checkpoint.ts";
import { AgentHarness } from "./helpers/agentHarness.ts";

let h: AgentHarness;
afterEach(async () => {
  await h?.close();
});

const SCAN = 200; // scan_interval of these tests, agent time

function scans(h: AgentHarness): { run: number; skipped: number } {
  return { ...h.agent!.pacer.counts };
}

function waiting(h: AgentHarness): number {
  return (h.agent as unknown as { files: { counts: { waiting: number } } }).files.counts.waiting;
}

describe("19. an idle agent over many files", () => {
  test("with watches that see everything, periodic scans are skipped but for one in FULL_SCAN_EVERY", async () => {
    h = new AgentHarness({ watch: true, agent: { scan_interval: SCAN } });
    for (let i = 0; i < 2_000; i++) writeFileSync(h.dir.path(`f${i}.log`), `file ${i}\n`);
    await h.start();
    await h.until(() => h.acked.length === 2_000, "all 2,000 files shipped");
    const before = scans(h);
    const intervals = 4 * FULL_SCAN_EVERY;
    await h.advance(intervals * SCAN);
    const after = scans(h);
    const run = after.run - before.run;
    // One full scan per FULL_SCAN_EVERY intervals (one more at the edge), the others skipped.
    expect(run).toBeGreaterThanOrEqual(intervals / FULL_SCAN_EVERY - 1);
    expect(run).toBeLessThanOrEqual(intervals / FULL_SCAN_EVERY + 1);
    expect(after.skipped - before.skipped).toBeGreaterThanOrEqual(intervals - run - 1);
  }, 60_000);

  test("without watches (or with a ** glob), every periodic scan runs", async () => {
    h = new AgentHarness({ agent: { scan_interval: SCAN } });
    h.dir.append("a.log", "one\n");
    await h.start();
    await h.untilDelivered("one\n");
    const before = scans(h);
    await h.advance(12 * SCAN);
    expect(scans(h).skipped).toBe(0);
    expect(scans(h).run - before.run).toBeGreaterThanOrEqual(11);
    await h.close();

    h = new AgentHarness({ watch: true, input: { paths: [] }, agent: { scan_interval: SCAN } });
    h.config.inputs[0]!.paths = [h.dir.path("**/*.log")];
    h.dir.append("sub/b.log", "two\n");
    await h.start();
    await h.untilDelivered("two\n");
    await h.advance(12 * SCAN);
    expect(scans(h).skipped).toBe(0);
  }, 60_000);

  test("a matched path that cannot be read (a FIFO) is tried again at every scan, watches or not", async () => {
    h = new AgentHarness({ watch: true, agent: { scan_interval: SCAN } });
    h.dir.append("a.log", "one\n");
    expect(Bun.spawnSync(["mkfifo", h.dir.path("pipe.log")]).exitCode).toBe(0);
    await h.start();
    await h.untilDelivered("one\n");
    await h.advance(3 * FULL_SCAN_EVERY * SCAN);
    expect(scans(h).skipped).toBe(0);
  }, 30_000);

  test("a closed file that grows is read when its watch reports the write, with no scan", async () => {
    h = new AgentHarness({ watch: true, input: { close_inactive: 100 }, agent: { scan_interval: 60_000 } });
    h.dir.append("quiet.log", "first\n");
    await h.start();
    await h.untilDelivered("first\n");
    await h.until(() => h.events.count("fileClosedInactive") === 1, "quiet.log closed inactive");
    const before = scans(h).run;
    h.dir.append("quiet.log", "second\n");
    await h.untilDelivered("second\n");
    expect(scans(h).run).toBe(before);
    h.expectStreams(["first\nsecond\n"]);
  }, 30_000);

  test("a new file in a watched directory is found at once: its name's event scans", async () => {
    h = new AgentHarness({ watch: true, agent: { scan_interval: 60_000 } });
    h.dir.append("a.log", "a\n");
    await h.start();
    await h.untilDelivered("a\n");
    const before = scans(h).run;
    h.dir.append("b.log", "b\n");
    await h.untilDelivered("b\n");
    expect(scans(h).run).toBeGreaterThan(before);
    expect(scans(h).skipped).toBe(0); // no periodic scan came due: the event found it
  }, 30_000);

  test("a restart over 3,000 shipped files keeps max_open_files descriptors and queues none of the caught-up files", async () => {
    h = new AgentHarness({ agent: { max_open_files: 16 } });
    for (let i = 0; i < 3_000; i++) writeFileSync(h.dir.path(`r${i}.log`), `restart ${i}\n`);
    await h.start();
    await h.until(() => h.acked.length === 3_000, "all 3,000 files shipped", 20_000);
    await h.restart();
    expect(h.agent!.load().filesTracked).toBe(3_000);
    expect(h.agent!.load().filesOpen).toBeLessThanOrEqual(16);
    expect(waiting(h)).toBe(0); // none is opened again only to be found read to its end
    h.dir.append("r7.log", "restart 7 again\n"); // one that grows is read again
    await h.untilDelivered("restart 7 again\n");
    await h.settle(2);
    expect(h.acked.length).toBe(3_001);
  }, 60_000);
});

describe("19. per-file state", () => {
  test("a file none of whose chunks wait keeps no ranges: tracking allocates, the last ack frees", () => {
    const c = new Checkpoint();
    const row = { id: "f", dev: 1, ino: 2, fingerprint: "", fpLen: 0, path: "/x.log", offset: 0, seenAt: 0, goneSince: null, born: 0, size: 0, mtimeMs: 0, markLen: 0, markCrc: 0 };
    c.register(row);
    const ranges = () => (c as unknown as { files: Map<string, { ranges: unknown[] }> }).files.get("f")!.ranges;
    const empty = ranges();
    expect(empty.length).toBe(0);
    const a = { source: { file: "f", path: "/x.log" }, start: 0, end: 10 };
    const b = { source: { file: "f", path: "/x.log" }, start: 10, end: 20 };
    c.track(a);
    c.track(b);
    expect(ranges().length).toBe(2);
    expect(empty.length).toBe(0); // the shared empty list was not written to
    c.acked([b]);
    expect(c.offsetOf("f")).toBe(0);
    c.acked([a]);
    expect(c.offsetOf("f")).toBe(20);
    expect(ranges()).toBe(empty); // back to the shared empty list
    c.track({ source: { file: "f", path: "/x.log" }, start: 20, end: 25 });
    expect(c.waiting("f")).toBe(1);
  });

  test("take(max) writes changed rows in batches, the rest stay changed", () => {
    const c = new Checkpoint();
    for (let i = 0; i < 10; i++) c.register({ id: `f${i}`, dev: 1, ino: i, fingerprint: "", fpLen: 0, path: `/f${i}.log`, offset: 0, seenAt: 0, goneSince: null, born: 0, size: 0, mtimeMs: 0, markLen: 0, markCrc: 0 });
    c.forget("f9");
    const first = c.take(4)!;
    expect(first.rows.length).toBe(4);
    expect(first.removed).toEqual(["f9"]);
    expect(c.take(4)!.rows.length).toBe(4);
    const last = c.take(4)!;
    expect(last.rows.length).toBe(1);
    expect(last.removed).toEqual([]);
    expect(c.take(4)).toBeNull();
  });
});
