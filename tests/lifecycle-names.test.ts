// File names that are not valid UTF-8 (issue 11, item 4), in-process against the real Agent
// with a fake publisher (tests/helpers/agentHarness.ts): such a file is shipped like any other,
// its `path` header and key are its exact bytes, its state row brings it back at its offset
// after a restart, and rotations (rename, copytruncate) keep its identity. Inside logship the
// name is the surrogateescape string (lib/names.ts); the files here are made with Buffer paths.
// The compiled binary against the mock cluster: e2e-names.test.ts.

import { afterEach, describe, expect, test } from "bun:test";
import { appendFileSync, copyFileSync, readdirSync, renameSync, truncateSync } from "node:fs";
import { chunkHeaders, chunkKey } from "../lib/kafka/pack.ts";
import { nameBytes } from "../lib/names.ts";
import { AgentHarness, lines } from "./helpers/agentHarness.ts";
import { fields } from "./helpers/faults.ts";

let h: AgentHarness;
afterEach(async () => {
  await h?.close();
});

/** "a\xff.log": 0xff is never part of UTF-8. Inside logship: "a\udcff.log". */
const BAD = "a\udcff.log";
/** "b\xc3(.log": a UTF-8 lead byte without its continuation. */
const CUT = "b\udcc3(.log";

/** The path of `name` in the harness directory (not node:path's join: Bun's is lossy for such names). */
const at = (name: string) => `${h.dir.root}/${name}`;
/** Its on-disk bytes. */
const raw = (name: string) => nameBytes(at(name));
const append = (name: string, data: string) => appendFileSync(raw(name), data);

describe("a file whose name is not valid UTF-8", () => {
  test("is listed with its exact bytes and shipped; the path header and the key are those bytes", async () => {
    h = new AgentHarness();
    append(BAD, lines("a", 0, 20));
    append(CUT, lines("c", 0, 5));
    append("ok.log", lines("o", 0, 3));
    expect(readdirSync(h.dir.root, { encoding: "buffer" }).map((b) => b.toString("hex")).sort()).toContain(Buffer.from([0x61, 0xff, 0x2e, 0x6c, 0x6f, 0x67]).toString("hex"));
    await h.start();
    await h.untilDelivered("a 0019\n", "c 0004\n", "o 0002\n");
    await h.settle();
    h.expectStreams([lines("a", 0, 20), lines("c", 0, 5), lines("o", 0, 3)]);
    const bad = h.acked.find((c) => c.source.path === at(BAD))!;
    expect(bad).toBeDefined();
    const bytes = Buffer.concat([Buffer.from(h.dir.root + "/a"), Buffer.of(0xff), Buffer.from(".log")]).toString("hex");
    expect((chunkHeaders(bad).path as Buffer).toString("hex")).toBe(bytes);
    expect(chunkKey(bad)).toBe(at(BAD)); // the key is the path: publish.ts sends exactName(key), the same bytes
    const ok = h.acked.find((c) => c.source.path === h.dir.path("ok.log"))!;
    expect(chunkHeaders(ok).path).toBe(h.dir.path("ok.log")); // text names stay strings, as before
    // The log line shows the byte as \xff, and reads back to the same name.
    const added = h.events.logged(/ INFO file added /).find((l) => l.includes("a\\xff.log"));
    expect(added).toBeDefined();
    expect(fields(added!).path).toBe(at(BAD));
    expect(h.events.count("fileUnreadable")).toBe(0);
  });

  test("a restart resumes it at its saved offset: the state keeps the name's bytes, nothing is shipped twice", async () => {
    h = new AgentHarness();
    append(BAD, lines("a", 0, 30));
    await h.start();
    await h.untilDelivered("a 0029\n");
    await h.stop();
    const row = h.savedRows().find((r) => r.path === at(BAD));
    expect(row?.offset).toBe(lines("a", 0, 30).length);
    append(BAD, lines("a", 30, 10));
    await h.start();
    await h.untilDelivered("a 0039\n");
    await h.settle();
    h.expectStreams([lines("a", 0, 40)]);
    expect(h.events.of("fileAdded").map((a) => [a[0], a[3]])).toEqual([
      [at(BAD), "new"],
      [at(BAD), "resumed"],
    ]);
  });

  test("rename rotation: the renamed file keeps its identity under its new (also non-UTF-8) name; the new one starts at 0", async () => {
    h = new AgentHarness();
    h.config.inputs[0]!.paths = [at("*.log*")];
    await h.start();
    append(BAD, lines("a", 0, 30));
    await h.untilDelivered("a 0029\n");
    renameSync(raw(BAD), raw(`${BAD}.1`));
    append(`${BAD}.1`, lines("a", 30, 5));
    append(BAD, lines("b", 0, 5));
    await h.untilDelivered("a 0034\n", "b 0004\n");
    await h.until(() => h.events.count("fileRenamed") === 1);
    await h.settle();
    h.expectStreams([lines("a", 0, 35), lines("b", 0, 5)]);
    expect(h.events.of("fileRenamed")[0]!.slice(0, 2)).toEqual([at(BAD), at(`${BAD}.1`)]);
  });

  test("copytruncate: the lines only the copy holds arrive once, from the copy (found by listing the directory)", async () => {
    h = new AgentHarness();
    await h.start();
    append(BAD, lines("a", 0, 100));
    await h.untilDelivered("a 0099\n");
    append(BAD, lines("a", 100, 30)); // only the copy holds these once the original is cut
    copyFileSync(raw(BAD), raw(`${BAD}.1`)); // not matched by *.log
    truncateSync(raw(BAD), 0);
    append(BAD, lines("b", 0, 20));
    await h.untilDelivered("a 0129\n", "b 0019\n");
    await h.settle(6);
    h.expectStreams([lines("a", 0, 130), lines("b", 0, 20)]);
    expect(h.events.count("dataLost")).toBe(0);
  });

  test("in a directory whose name is not UTF-8 either, walked by **", async () => {
    h = new AgentHarness();
    h.config.inputs[0]!.paths = [at("**/*.log")];
    h.dir.mkdir("x");
    renameSync(h.dir.path("x"), raw("d\udcfe")); // a directory named "d\xfe"
    append(`d\udcfe/${BAD}`, lines("a", 0, 4));
    await h.start();
    await h.untilDelivered("a 0003\n");
    expect(h.acked[0]!.source.path).toBe(at(`d\udcfe/${BAD}`));
  });
});
