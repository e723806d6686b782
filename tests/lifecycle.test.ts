// File lifecycle (issue 3), one test per behaviour, against the real Agent in-process with a
// fake publisher (tests/helpers/agentHarness.ts). Every test ends by checking what arrived
// per file identity: the bytes written, contiguous from their first offset, nothing twice.
// The heavy ones (10,000 files, a 100 MB line) are in lifecycle-scale.test.ts, the random
// programs in lifecycle-model.test.ts.

import { afterEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { chownSync, copyFileSync, lchownSync, linkSync, mkdirSync, openSync, statSync, symlinkSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { Tail } from "../lib/files/read.ts";
import { AgentHarness, lines } from "./helpers/agentHarness.ts";
import { makeLogDir } from "./helpers/logDir.ts";

let h: AgentHarness;
afterEach(async () => {
  await h?.close();
});

/** logrotate `copytruncate`: copy the file, then cut the original to 0 (same inode). */
function copytruncate(name: string, copy: string): void {
  copyFileSync(h.dir.path(name), h.dir.path(copy));
  h.dir.truncate(name);
}

describe("1. rename + create rotation", () => {
  test("the old file is read to its end, lines appended after the rename included, and the new one from byte 0", async () => {
    h = new AgentHarness();
    await h.start();
    h.dir.append("app.log", lines("a", 0, 100));
    await h.untilDelivered("a 0099\n");
    h.dir.append("app.log", lines("a", 100, 50)); // not read yet when the rename happens
    h.dir.rename("app.log", "app.log.1"); // *.log no longer matches it
    h.dir.append("app.log.1", lines("a", 150, 10)); // the writer still holds the old file
    h.dir.append("app.log", lines("b", 0, 20));
    await h.untilDelivered("a 0159\n", "b 0019\n");
    h.dir.append("app.log.1", lines("a", 160, 5)); // a late write through the old descriptor
    await h.untilDelivered("a 0164\n");
    await h.settle();
    h.expectStreams([lines("a", 0, 165), lines("b", 0, 20)]);
  });

  test("when the globs also match the rotated name, it is the same file under a new path, not a new one", async () => {
    h = new AgentHarness({ input: { paths: [] } });
    h.config.inputs[0]!.paths = [h.dir.path("app.log*")];
    await h.start();
    h.dir.append("app.log", lines("a", 0, 30));
    await h.untilDelivered("a 0029\n");
    h.dir.rename("app.log", "app.log.1");
    h.dir.append("app.log", lines("b", 0, 5));
    h.dir.append("app.log.1", lines("a", 30, 5));
    await h.untilDelivered("a 0034\n", "b 0004\n");
    await h.until(() => h.events.count("fileRenamed") === 1);
    await h.settle();
    h.expectStreams([lines("a", 0, 35), lines("b", 0, 5)]);
    expect(h.events.of("fileRenamed")[0]!.slice(0, 2)).toEqual([h.dir.path("app.log"), h.dir.path("app.log.1")]);
  });
});

describe("2. rename rotation while stopped", () => {
  test("on restart the renamed file is found by identity and finished from its saved offset; the new file starts at 0", async () => {
    h = new AgentHarness();
    h.config.inputs[0]!.paths = [h.dir.path("app.log*")];
    await h.start();
    h.dir.append("app.log", lines("a", 0, 40));
    await h.untilDelivered("a 0039\n");
    await h.stop();
    h.dir.append("app.log", lines("a", 40, 10));
    h.dir.rename("app.log", "app.log.1");
    h.dir.append("app.log", lines("b", 0, 7));
    await h.start();
    await h.untilDelivered("a 0049\n", "b 0006\n");
    await h.settle();
    h.expectStreams([lines("a", 0, 50), lines("b", 0, 7)]);
    const resumed = h.events.of("fileAdded").filter((a) => a[3] === "resumed");
    expect(resumed.map((a) => [a[0], a[2]])).toEqual([[h.dir.path("app.log.1"), lines("a", 0, 40).length]]);
  });
});

describe("3. copytruncate", () => {
  for (const copyMatched of [false, true]) {
    test(`lines before and after the truncate arrive once each; the copy is not re-shipped (copy ${copyMatched ? "matched" : "not matched"} by the globs)`, async () => {
      h = new AgentHarness();
      h.config.inputs[0]!.paths = [h.dir.path(copyMatched ? "app.log*" : "*.log")];
      await h.start();
      h.dir.append("app.log", lines("a", 0, 100));
      await h.untilDelivered("a 0099\n");
      h.dir.append("app.log", lines("a", 100, 30)); // only the copy will hold these once truncated
      copytruncate("app.log", "app.log.1");
      h.dir.append("app.log", lines("b", 0, 20));
      await h.untilDelivered("a 0129\n", "b 0019\n");
      h.dir.append("app.log", lines("b", 20, 5));
      await h.untilDelivered("b 0024\n");
      await h.settle(6);
      h.expectStreams([lines("a", 0, 130), lines("b", 0, 25)]);
      expect(h.events.count("dataLost")).toBe(0);
    });
  }

  test("a copy the scan finds before the truncation is held back, then carries the original's identity", async () => {
    h = new AgentHarness();
    h.config.inputs[0]!.paths = [h.dir.path("app.log*")];
    await h.start();
    h.dir.append("app.log", lines("a", 0, 200)); // 1,400 bytes: a copy beyond doubt (≥ 1 KiB)
    await h.untilDelivered("a 0199\n");
    h.dir.append("app.log", lines("a", 200, 10));
    copyFileSync(h.dir.path("app.log"), h.dir.path("app.log.1"));
    await h.advance(60); // a scan sees the copy while the original is intact: it is held (two scan intervals at most)
    expect(h.copies.held.size).toBe(1);
    expect(h.textOf("app.log.1")).toBe("");
    h.dir.truncate("app.log");
    h.dir.append("app.log", lines("b", 0, 3));
    await h.untilDelivered("a 0209\n", "b 0002\n");
    await h.settle(4);
    h.expectStreams([lines("a", 0, 210), lines("b", 0, 3)]);
  });

  test("a copy that is never followed by a truncation (logrotate `copy`, cp) is held only briefly, then shipped whole from 0: a duplicate, never a skip", async () => {
    h = new AgentHarness();
    await h.start();
    h.dir.append("app.log", lines("a", 0, 200));
    await h.untilDelivered("a 0199\n");
    copyFileSync(h.dir.path("app.log"), h.dir.path("backup.log"));
    await h.advance(60); // within two scan intervals: held, in case a truncation follows
    expect(h.textOf("backup.log")).toBe("");
    await h.until(() => h.textOf("backup.log") === lines("a", 0, 200), "the copy shipped whole once its hold ran out");
    h.dir.append("backup.log", lines("c", 0, 2));
    h.dir.append("app.log", lines("a", 200, 2));
    await h.untilDelivered("c 0001\n", "a 0201\n");
    await h.settle();
    h.expectStreams([lines("a", 0, 202), lines("a", 0, 200) + lines("c", 0, 2)]);
  });

  test("a new file that starts with the same 1 KiB and more as a followed one (a shared header) is shipped whole from 0, whenever it grows", async () => {
    h = new AgentHarness();
    await h.start();
    const header = "id,name,value,comment\n" + lines("header", 0, 160); // 1,300 bytes of shared lines
    h.dir.append("a.csv.log", header + lines("a", 0, 3));
    await h.untilDelivered("a 0002\n");
    h.dir.append("b.csv.log", header); // caught before its rows: all of it is a.csv.log's so far
    await h.advance(50);
    h.dir.append("b.csv.log", lines("b", 0, 3));
    await h.untilDelivered("b 0002\n");
    await h.settle();
    h.expectStreams([header + lines("a", 0, 3), header + lines("b", 0, 3)]);
  });

  test("a byte copy of another input's file is shipped (after a bounded hold), not held for ever", async () => {
    h = new AgentHarness({ inputs: [{ topic: "one" }, { topic: "two" }] });
    h.dir.mkdir("one");
    h.dir.mkdir("two");
    h.config.inputs[0]!.paths = [h.dir.path("one/*.log")];
    h.config.inputs[1]!.paths = [h.dir.path("two/*.log")];
    await h.start();
    h.dir.append("one/app.log", lines("a", 0, 200));
    await h.untilDelivered("a 0199\n");
    copyFileSync(h.dir.path("one/app.log"), h.dir.path("two/app.log"));
    await h.until(() => h.textOf("two/app.log") === lines("a", 0, 200), "the copy in the other input shipped");
    expect(h.acked.filter((c) => c.source.path === h.dir.path("two/app.log")).every((c) => c.source.topic === "two")).toBe(true);
  });

  test("after a restart, a new file at a deleted file's inode number, with the same head, is read from 0 (birth time and size tell them apart)", async () => {
    h = new AgentHarness();
    await h.start();
    const header = lines("header", 0, 160); // the first 1 KiB and more, shared
    h.dir.append("app.log", header + lines("a", 0, 50));
    await h.untilDelivered("a 0049\n");
    await h.stop();
    h.dir.remove("app.log");
    h.dir.append("app.log", header + lines("b", 0, 60)); // a new file, longer than the saved offset
    // Whether the file system reuses the inode number now is up to it: make the saved row name
    // the new file's inode, as a reuse would.
    const st = statSync(h.dir.path("app.log"));
    const db = new Database(h.statePath);
    db.run("UPDATE files SET ino = ?", [st.ino]);
    db.close();
    await h.start();
    await h.untilDelivered("b 0059\n");
    await h.settle();
    h.expectStreams([header + lines("a", 0, 50), header + lines("b", 0, 60)]);
  });

  test("copytruncate landing while the scan compares the copy with the original: the copy still carries the original on (nothing twice, nothing reported lost)", async () => {
    h = new AgentHarness();
    h.config.inputs[0]!.paths = [h.dir.path("app.log*")];
    await h.start();
    h.dir.append("app.log", lines("a", 0, 200));
    await h.untilDelivered("a 0199\n");
    h.dir.append("app.log", lines("a", 200, 10)); // not read yet
    let landed = false;
    h.copies.onCompare = () => {
      if (landed) return;
      landed = true;
      h.dir.truncate("app.log"); // the truncation lands between the look and the comparison
      h.dir.append("app.log", lines("b", 0, 3));
    };
    copyFileSync(h.dir.path("app.log"), h.dir.path("app.log.1"));
    await h.untilDelivered("a 0209\n", "b 0002\n");
    await h.settle(4);
    expect(landed).toBe(true);
    h.expectStreams([lines("a", 0, 210), lines("b", 0, 3)]);
    expect(h.events.count("dataLost")).toBe(0);
  });

  test("a short new file that merely starts like a followed one is held only briefly, then shipped whole", async () => {
    h = new AgentHarness();
    await h.start();
    h.dir.append("one.log", "=== service starting ===\n" + lines("a", 0, 5));
    await h.untilDelivered("a 0004\n");
    h.dir.append("two.log", "=== service starting ===\n"); // all of it equals one.log's first line
    await h.until(() => h.textOf("two.log") === "=== service starting ===\n");
    h.dir.append("two.log", lines("b", 0, 2));
    await h.untilDelivered("b 0001\n");
    await h.settle();
    h.expectStreams(["=== service starting ===\n" + lines("a", 0, 5), "=== service starting ===\n" + lines("b", 0, 2)]);
  });

  for (const maxOpen of [64, 1]) {
    test(`a short file copytruncated, then renamed away before logship looks: its copy is still recognised, nothing twice (max_open_files ${maxOpen})`, async () => {
      h = new AgentHarness({ agent: { max_open_files: maxOpen } });
      h.config.inputs[0]!.paths = [h.dir.path("app.log*"), h.dir.path("other.log")];
      await h.start();
      h.dir.append("app.log", lines("a", 0, 2)); // 14 bytes: too short to tell a copy by its bytes alone
      h.dir.append("other.log", lines("o", 0, 1)); // with one descriptor, app.log is closed now and then
      await h.untilDelivered("a 0001\n", "o 0000\n");
      copytruncate("app.log", "app.log.1");
      h.dir.rename("app.log", "app.log.2"); // the truncated original rotates on, before a scan
      h.dir.append("app.log", lines("b", 0, 3));
      await h.untilDelivered("b 0002\n");
      await h.settle(6);
      h.expectStreams([lines("a", 0, 2), lines("b", 0, 3), lines("o", 0, 1)]);
    });
  }

  test("copytruncate while stopped, the copy at the inode of a remembered empty file: the copy still carries the original on, nothing twice", async () => {
    h = new AgentHarness();
    h.config.inputs[0]!.paths = [h.dir.path("app.log*"), h.dir.path("z.log")];
    h.dir.append("z.log", ""); // remembered empty: a row with nothing read and no fingerprint
    await h.start();
    h.dir.append("app.log", lines("a", 0, 20));
    await h.untilDelivered("a 0019\n");
    await h.until(() => h.agent!.status().some((s) => s.path === h.dir.path("z.log")));
    await h.stop();
    // What a reused inode number looks like to logship, which keeps no birth times across
    // restarts: z.log's inode now holds a copy of app.log, under a rotation name of app.log.
    h.dir.append("z.log", lines("a", 0, 20));
    h.dir.rename("z.log", "app.log.1");
    h.dir.truncate("app.log");
    h.dir.append("app.log", lines("b", 0, 3));
    await h.start();
    await h.untilDelivered("b 0002\n");
    await h.settle(4);
    h.expectStreams([lines("a", 0, 20), lines("b", 0, 3)]);
  });

  test("copytruncate while logship is stopped: the unread rest is taken from the copy, the new content from 0", async () => {
    h = new AgentHarness();
    await h.start();
    h.dir.append("app.log", lines("a", 0, 50));
    await h.untilDelivered("a 0049\n");
    await h.stop();
    h.dir.append("app.log", lines("a", 50, 25));
    copytruncate("app.log", "app.log.1"); // app.log.1 is not matched by *.log
    h.dir.append("app.log", lines("b", 0, 200)); // longer than the saved offset: only the fingerprint tells
    await h.start();
    await h.untilDelivered("a 0074\n", "b 0199\n");
    await h.settle(4);
    h.expectStreams([lines("a", 0, 75), lines("b", 0, 200)]);
  });
});

describe("4. in-place truncation", () => {
  test("`: > file` is detected, reading restarts at 0 and new lines arrive", async () => {
    h = new AgentHarness();
    await h.start();
    h.dir.append("app.log", lines("a", 0, 50));
    await h.untilDelivered("a 0049\n");
    h.dir.truncate("app.log");
    await h.until(() => h.events.count("fileTruncated") === 1);
    h.dir.append("app.log", lines("b", 0, 5));
    await h.untilDelivered("b 0004\n");
    await h.settle();
    h.expectStreams([lines("a", 0, 50), lines("b", 0, 5)]);
  });

  test("a truncation rewritten past the old offset before logship looks is still detected (by the fingerprint)", async () => {
    h = new AgentHarness();
    await h.start();
    h.dir.append("app.log", lines("a", 0, 20));
    await h.untilDelivered("a 0019\n");
    h.dir.truncate("app.log");
    h.dir.append("app.log", lines("b", 0, 60)); // same inode, bigger than before
    await h.untilDelivered("b 0059\n");
    await h.settle();
    h.expectStreams([lines("a", 0, 20), lines("b", 0, 60)]);
  });

  test("a truncation to the same size with new content is detected", async () => {
    h = new AgentHarness();
    await h.start();
    h.dir.append("app.log", lines("a", 0, 3));
    await h.untilDelivered("a 0002\n");
    await Bun.sleep(20); // a later mtime
    h.dir.write("app.log", lines("b", 0, 3));
    await h.untilDelivered("b 0002\n");
    h.expectStreams([lines("a", 0, 3), lines("b", 0, 3)]);
  });
});

describe("5. a file deleted while open", () => {
  test("is drained to its end, then closed and forgotten", async () => {
    h = new AgentHarness();
    await h.start();
    h.dir.append("app.log", lines("a", 0, 10));
    await h.untilDelivered("a 0009\n");
    h.dir.append("app.log", lines("a", 10, 5000) + "partial without newline");
    h.dir.remove("app.log");
    await h.until(() => h.events.count("fileFinished") === 1);
    await h.untilDelivered("a 5009\npartial without newline");
    expect(h.openDescriptors()).toEqual([]);
    h.expectStreams([lines("a", 0, 5010) + "partial without newline"]);
    await h.until(() => h.savedRows().length === 0, "its state row is removed");
  });

  test("is never held open for ever: close_removed ends it, and the loss is reported", async () => {
    h = new AgentHarness({ input: { close_removed: 300 }, agent: { max_inflight_bytes: 64 * 1024 } });
    await h.start();
    h.dir.append("app.log", lines("a", 0, 10));
    await h.untilDelivered("a 0009\n"); // open now
    h.kafka.holdAll(); // Kafka stalls: reading stops at max_inflight_bytes
    h.dir.append("app.log", lines("a", 10, 600_000));
    h.dir.remove("app.log");
    await h.until(() => h.events.count("fileFinished") === 1, "closed after close_removed", 3_000);
    expect(h.openDescriptors()).toEqual([]);
    const lost = h.events.of("dataLost");
    expect(lost.length).toBe(1);
    expect(String(lost[0]![4])).toContain("close_removed");
    h.kafka.ackAll();
    await h.settle();
    // What was read before the limit arrived once, contiguously from 0, and ends where the loss starts.
    const [s] = h.streams();
    expect(s!.start).toBe(0);
    expect(s!.end).toBe(lost[0]![2] as number);
    expect(lines("a", 0, 600_010).startsWith(s!.bytes.toString())).toBe(true);
    expect(lost[0]![3]).toBe(lines("a", 0, 600_010).length);
  });
});

describe("6. start_at: end", () => {
  test("on a first start (empty state), files present start at their last complete line; a file created while running → from 0", async () => {
    h = new AgentHarness({ input: { start_at: "end" } });
    h.dir.append("old.log", lines("o", 0, 10) + "half"); // there before logship ever ran
    await h.start();
    await h.until(() => h.events.count("fileAdded") === 1);
    h.dir.append("old.log", " line\n" + lines("o", 10, 2));
    h.dir.append("new.log", lines("n", 0, 3));
    await h.untilDelivered("o 0011\n", "n 0002\n");
    await h.settle();
    const byPath = Object.fromEntries(h.streams().map((s) => [s.path.split("/").pop(), [s.start, s.bytes.toString()]]));
    expect(byPath).toEqual({
      "old.log": [lines("o", 0, 10).length, "half line\n" + lines("o", 10, 2)],
      "new.log": [0, lines("n", 0, 3)],
    });
  });

  test("on a later start, a file never seen (created or rotated in while stopped) is read from 0, and known files resume", async () => {
    h = new AgentHarness({ input: { start_at: "end" } });
    await h.start();
    h.dir.append("known.log", lines("k", 0, 10));
    await h.untilDelivered("k 0009\n");
    await h.stop();
    h.dir.append("known.log", lines("k", 10, 5)); // written while stopped
    h.dir.append("other.log", lines("o", 0, 10)); // created while stopped: its lines are new
    await h.start();
    await h.untilDelivered("k 0014\n", "o 0009\n");
    await h.settle();
    const byPath = Object.fromEntries(h.streams().map((s) => [s.path.split("/").pop(), [s.start, s.bytes.toString()]]));
    expect(byPath).toEqual({
      "known.log": [0, lines("k", 0, 15)],
      "other.log": [0, lines("o", 0, 10)],
    });
  });
});

describe("7. two globs reaching the same file", () => {
  test("it is read once (two patterns, two inputs, a symlink and a hard link)", async () => {
    h = new AgentHarness({ inputs: [{}, {}] });
    h.config.inputs[0]!.paths = [h.dir.path("*.log"), h.dir.path("app.*")];
    h.config.inputs[1]!.paths = [h.dir.path("**/*.log")];
    h.dir.append("app.log", lines("a", 0, 20));
    symlinkSync(h.dir.path("app.log"), h.dir.path("link.log"));
    linkSync(h.dir.path("app.log"), h.dir.path("hard.log"));
    await h.start();
    await h.untilDelivered("a 0019\n");
    h.dir.append("app.log", lines("a", 20, 5));
    await h.untilDelivered("a 0024\n");
    await h.settle();
    h.expectStreams([lines("a", 0, 25)]);
    expect(h.events.count("fileAdded")).toBe(1);
  });
});

describe("8. compressed rotated files", () => {
  test("are skipped with one warning each, by content or (while empty) by name; text files go on", async () => {
    h = new AgentHarness();
    h.config.inputs[0]!.paths = [h.dir.path("app*")];
    h.dir.write("app.log.1.gz", gzipSync(Buffer.from(lines("z", 0, 100))));
    h.dir.write("app.log.2", gzipSync(Buffer.from(lines("z", 0, 100)))); // gzip without the suffix
    h.dir.write("app.log.3.zst", Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3, 4]));
    h.dir.write("app.log.4.gz", ""); // empty: known by its name
    h.dir.append("app.log", lines("a", 0, 5));
    await h.start();
    await h.untilDelivered("a 0004\n");
    await h.settle(5);
    h.expectStreams([lines("a", 0, 5)]);
    const warned = h.events.logged(/skipping compressed file/);
    expect(warned.length).toBe(4);
    for (const name of ["app.log.1.gz", "app.log.2", "app.log.3.zst", "app.log.4.gz"]) {
      expect(warned.filter((l) => l.includes(`path=${h.dir.path(name)} `)).length).toBe(1);
    }
  });
});

describe("9. over-long lines", () => {
  const long = (c: string, n: number) => c.repeat(n);
  const text = "short 1\n" + long("x", 250) + "\n" + "short 2\n" + long("y", 130) + "\n" + "short 3\n";

  test("split (the default): every byte arrives, the long line in max_line_bytes pieces", async () => {
    h = new AgentHarness({ input: { max_line_bytes: 100 } });
    await h.start();
    h.dir.append("app.log", text);
    await h.untilDelivered("short 3\n");
    await h.settle();
    h.expectStreams([text]);
    expect(Math.max(...h.acked.map((c) => c.value.length))).toBeLessThanOrEqual(100);
    expect(h.events.log.counters.linesSplit).toBe(2);
  });

  test("truncate: the first max_line_bytes bytes and a newline; counted, logged once per file", async () => {
    h = new AgentHarness({ input: { max_line_bytes: 100, long_lines: "truncate" } });
    await h.start();
    h.dir.append("app.log", text);
    await h.untilDelivered("short 3\n");
    await h.settle();
    expect(h.text()).toBe("short 1\n" + long("x", 100) + "\n" + "short 2\n" + long("y", 100) + "\n" + "short 3\n");
    expect(h.events.log.counters.linesTruncated).toBe(2);
    expect(h.events.logged(/line longer than max_line_bytes/).length).toBe(1);
  });

  test("drop: the line is left out; counted, logged once per file; the file goes on", async () => {
    h = new AgentHarness({ input: { max_line_bytes: 100, long_lines: "drop" } });
    await h.start();
    h.dir.append("app.log", text);
    await h.untilDelivered("short 3\n");
    h.dir.append("app.log", long("z", 300)); // still growing, no newline yet
    await h.settle();
    h.dir.append("app.log", long("z", 300) + "\nshort 4\n");
    await h.untilDelivered("short 4\n");
    await h.settle();
    expect(h.text()).toBe("short 1\nshort 2\nshort 3\nshort 4\n");
    expect(h.events.log.counters.linesDropped).toBe(3);
    expect(h.events.logged(/line longer than max_line_bytes/).length).toBe(1);
  });
});

describe("10. idle partial line", () => {
  test("a last line without a newline ships after partial_line_timeout, once, never again as part of a later line", async () => {
    h = new AgentHarness({ input: { partial_line_timeout: 150 } });
    await h.start();
    h.dir.append("app.log", "one\ntw");
    await h.untilDelivered("one\n");
    await h.untilDelivered("one\ntw");
    h.dir.append("app.log", "o continues\nthree\n");
    await h.untilDelivered("three\n");
    await h.settle();
    h.expectStreams(["one\ntwo continues\nthree\n"]);
    expect(h.acked.map((c) => c.value.toString())).toContain("tw");
  });

  test("partial_line_timeout 0 waits for the newline for ever", async () => {
    h = new AgentHarness({ input: { partial_line_timeout: 0 } });
    await h.start();
    h.dir.append("app.log", "one\ntw");
    await h.untilDelivered("one\n");
    await h.advance(300); // time passes: nothing may be sent meanwhile
    expect(h.text()).toBe("one\n");
    h.dir.append("app.log", "o\n");
    await h.untilDelivered("two\n");
    h.expectStreams(["one\ntwo\n"]);
  });
});

describe("11. bytes pass through exactly", () => {
  test("invalid UTF-8, NUL, CRLF and a multi-byte character across the 1 MiB read boundary", async () => {
    h = new AgentHarness();
    await h.start();
    const head = Buffer.from("crlf line\r\n\u0000nul\u0000\n\xff\xfe not utf-8 \x80\n", "latin1");
    const filler = Buffer.alloc(1024 * 1024 - head.length - 2, "f");
    const emoji = Buffer.from("😀 after\n"); // 4 bytes: starts 2 bytes before the 1 MiB mark
    const content = Buffer.concat([head, filler, emoji, Buffer.from("last\r\n")]);
    h.dir.append("app.log", content);
    await h.until(() => h.streams()[0]?.end === content.length);
    const [s] = h.streams();
    expect(Buffer.compare(s!.bytes, content)).toBe(0);
  });
});

describe("11. the reader at every read boundary", () => {
  test("spans of complete lines, cut at any read size, put back together are the file byte for byte", () => {
    const dir = makeLogDir("tail");
    try {
      // Random bytes (NUL, CR, 0x80-0xff, multi-byte UTF-8) with newlines, and no newline at the end.
      let x = 12345;
      const rnd = () => (x = (x * 1103515245 + 12345) >>> 0) >>> 8;
      const parts: Buffer[] = [];
      for (let i = 0; i < 400; i++) {
        const r = rnd() % 7;
        parts.push(r === 0 ? Buffer.from("\n") : r === 1 ? Buffer.from("é😀\r\n") : Buffer.from([rnd() % 256, 0, 0xff, rnd() % 256]));
      }
      const content = Buffer.concat(parts);
      dir.write("f.log", content);
      const lastNl = content.lastIndexOf(0x0a) + 1;
      for (const readBytes of [1, 2, 3, 5, 7, 16, 64, 4096]) {
        const fd = openSync(dir.path("f.log"), "r");
        const tail = new Tail(fd, 0, { maxLineBytes: 1 << 20, longLines: "split", readBytes });
        const got: Buffer[] = [];
        let expectStart = 0;
        for (let span = tail.read(); span; span = tail.read()) {
          expect(span.start).toBe(expectStart);
          expect(span.bytes[span.bytes.length - 1]).toBe(0x0a); // only complete lines
          got.push(span.bytes);
          expectStart = span.end;
        }
        expect(Buffer.compare(Buffer.concat(got), content.subarray(0, lastNl))).toBe(0);
        expect(tail.partialBytes).toBe(content.length - lastNl); // the unfinished last line waits
        const rest = tail.flushPartial();
        expect(Buffer.compare(rest!.bytes, content.subarray(lastNl))).toBe(0);
        tail.close();
      }
    } finally {
      dir.cleanup();
    }
  });
});

describe("12. idle files", () => {
  test("an idle file is closed after close_inactive and reopened when it grows", async () => {
    h = new AgentHarness({ input: { close_inactive: 150 } });
    await h.start();
    h.dir.append("app.log", lines("a", 0, 3));
    await h.untilDelivered("a 0002\n");
    await h.until(() => h.events.count("fileClosedInactive") === 1);
    expect(h.openDescriptors()).toEqual([]);
    h.dir.append("app.log", lines("a", 3, 3));
    await h.untilDelivered("a 0005\n");
    expect(h.openDescriptors()).toEqual([h.dir.path("app.log")]);
    h.expectStreams([lines("a", 0, 6)]);
  });

  test("a closed idle file truncated meanwhile is noticed when it is reopened", async () => {
    h = new AgentHarness({ input: { close_inactive: 100 } });
    await h.start();
    h.dir.append("app.log", lines("a", 0, 30));
    await h.untilDelivered("a 0029\n");
    await h.until(() => h.events.count("fileClosedInactive") === 1);
    h.dir.truncate("app.log");
    h.dir.append("app.log", lines("b", 0, 2)); // smaller than the saved offset
    await h.untilDelivered("b 0001\n");
    h.expectStreams([lines("a", 0, 30), lines("b", 0, 2)]);
  });
});

describe("12b. let go while its lines wait for Kafka", () => {
  test("a file let go and found again before its sent lines are acknowledged resumes after them, not at the acknowledged offset", async () => {
    h = new AgentHarness();
    const only = (name: string) => ({ ...h.config, inputs: [{ ...h.config.inputs[0]!, paths: [h.dir.path(name)] }] });
    h.config = only("app.log");
    await h.start();
    h.kafka.holdAll(); // Kafka is slow: nothing is acknowledged for now
    h.dir.append("app.log", lines("a", 0, 50));
    await h.until(() => h.kafka.pending.length > 0 && h.agent!.status().some((s) => s.size > 0 && s.open));
    await h.until(() => h.kafka.pending.reduce((n, c) => n + c.chunks.reduce((m, k) => m + k.value.length, 0), 0) === lines("a", 0, 50).length);
    await h.agent!.reload(only("other.log")); // app.log is read to its end and no input matches it: let go
    expect(h.agent!.status().some((s) => s.path === h.dir.path("app.log"))).toBe(false);
    await h.agent!.reload(only("app.log")); // matched again, its 50 lines still unacknowledged
    h.dir.append("app.log", lines("a", 50, 5));
    h.kafka.ackAll();
    await h.untilDelivered("a 0054\n");
    await h.settle(4);
    h.expectStreams([lines("a", 0, 55)]);
  });
});

describe("13. state cleanup", () => {
  test("a gone file's entry is removed after state.ttl, never while the file still exists", async () => {
    h = new AgentHarness({ state: { ttl: 300 } });
    await h.start();
    h.dir.append("kept.log", lines("k", 0, 2));
    h.dir.append("gone.log", lines("g", 0, 2));
    await h.untilDelivered("k 0001\n", "g 0001\n");
    await h.stop();
    expect(h.savedRows().map((r) => r.path).sort()).toEqual([h.dir.path("gone.log"), h.dir.path("kept.log")]);
    // Run with globs that match neither file: both entries start ageing.
    h.config.inputs[0]!.paths = [h.dir.path("*.txt")];
    mkdirSync(h.dir.path("sub"), { recursive: true });
    h.dir.remove("gone.log");
    await h.start();
    await h.until(() => h.savedRows().length === 1, "the gone file's entry expires", 3_000);
    expect(h.savedRows()[0]!.path).toBe(h.dir.path("kept.log"));
    await h.advance(600); // two ttls more: the existing file's entry stays
    expect(h.savedRows().map((r) => r.path)).toEqual([h.dir.path("kept.log")]);
    await h.stop();
    // Back in the globs, it resumes from its offset rather than starting again.
    h.config.inputs[0]!.paths = [h.dir.path("*.log")];
    h.dir.append("kept.log", lines("k", 2, 1));
    await h.start();
    await h.untilDelivered("k 0002\n");
    await h.settle();
    h.expectStreams([lines("k", 0, 3), lines("g", 0, 2)]);
  });
});

describe("14. a file that cannot be read", () => {
  test("a FIFO and a directory named by a plain path: one clear warning each, the others go on; shipped once readable", async () => {
    h = new AgentHarness();
    h.config.inputs[0]!.paths = [h.dir.path("*.log"), h.dir.path("dir.log")];
    Bun.spawnSync(["mkfifo", h.dir.path("pipe.log")]);
    mkdirSync(h.dir.path("dir.log"));
    h.dir.append("ok.log", lines("k", 0, 3));
    await h.start();
    await h.untilDelivered("k 0002\n");
    await h.until(() => h.events.logged(/cannot read file/).length === 2);
    await h.settle(5); // retried on every scan, warned once
    const warned = h.events.logged(/cannot read file/);
    expect(warned.length).toBe(2);
    expect(warned.find((l) => l.includes(`path=${h.dir.path("pipe.log")}`))).toContain("FIFO");
    expect(warned.find((l) => l.includes(`path=${h.dir.path("dir.log")}`))).toContain("directory");
    h.dir.append("ok.log", lines("k", 3, 1));
    await h.untilDelivered("k 0003\n");
    // The FIFO is replaced by a regular file: it is picked up.
    h.dir.remove("pipe.log");
    h.dir.append("pipe.log", lines("p", 0, 2));
    await h.untilDelivered("p 0001\n");
    await h.settle();
    h.expectStreams([lines("k", 0, 4), lines("p", 0, 2)]);
  });
});

describe("15. symlinks and pseudo file systems (logship runs as root among files users write)", () => {
  // These tests make files and links owned by another user (uid 1000) with chown: they run as
  // root, as CI does and as logship does on a server.
  const USER = 1000;

  test("a symlink is followed only when owned by root or by its target's owner; never into /proc; each refusal said once", async () => {
    h = new AgentHarness();
    h.config.inputs[0]!.paths = [h.dir.path("logs/**/*.log")];
    h.dir.append("secret/shadow", "root:secret-hash\n"); // root's, outside the globs
    h.dir.append("home/own.txt", "the user's own line\n");
    chownSync(h.dir.path("home/own.txt"), USER, USER);
    h.dir.append("secret-dir/inner.log", "root's directory line\n");
    h.dir.mkdir("logs");
    const link = (target: string, name: string, uid: number) => {
      symlinkSync(target, h.dir.path(name));
      lchownSync(h.dir.path(name), uid, uid);
    };
    link(h.dir.path("secret/shadow"), "logs/user-to-root.log", USER); // a user's link to root's file: refused
    link(h.dir.path("home/own.txt"), "logs/user-to-own.log", USER); // a user's link to their own file: followed
    link(h.dir.path("secret/shadow"), "logs/root-to-root.log", 0); // root's link: followed
    link("/proc/self/environ", "logs/environ.log", 0); // even root's link never leads into /proc
    link(h.dir.path("secret-dir"), "logs/user-dir", USER); // a user's link to root's directory: not walked
    h.dir.append("logs/plain.log", "plain\n");
    await h.start();
    await h.untilDelivered("plain\n", "the user's own line\n", "root:secret-hash\n");
    await h.settle();
    expect(h.textOf("logs/user-to-root.log")).toBe("");
    expect(h.textOf("logs/environ.log")).toBe("");
    expect(h.text()).not.toContain("root's directory line");
    expect(h.text()).not.toContain("PATH="); // nothing of an environment
    const refused = [...new Set(h.events.of("fileRefused").map((a) => String(a[0]).slice(h.dir.root.length + 1)))].sort(); // judged at every scan
    expect(refused).toEqual(["logs/environ.log", "logs/user-dir", "logs/user-to-root.log"]);
    expect(h.events.logged(/file not followed/).find((l) => l.includes("user-to-root"))).toContain("owned by uid 1000");
    expect(h.events.logged(/file not followed/).find((l) => l.includes("environ"))).toContain("it is on the /proc file system");
    expect(h.events.logged(/file not followed/)).toHaveLength(3); // said once each, whatever the scans
  });

  test("a procfs mounted anywhere else (a container's /host/proc) is refused by its file system type: nothing of it is read, matched by a glob or a link", async () => {
    h = new AgentHarness();
    const proc = h.dir.path("hostproc");
    mkdirSync(proc);
    const mounted = Bun.spawnSync(["mount", "-t", "proc", "proc", proc]);
    if (mounted.exitCode !== 0) throw new Error(`this test mounts a procfs and needs root: ${mounted.stderr.toString().trim()}`);
    try {
      expect(statSync(proc).dev).not.toBe(statSync("/proc").dev); // its own device: the device check alone would let it through
      h.config.inputs[0]!.paths = [h.dir.path("*.log"), `${proc}/self/environ`, `${proc}/self/status`];
      symlinkSync(`${proc}/self/environ`, h.dir.path("env.log")); // root's link: followed, but never into a procfs
      h.dir.append("plain.log", "plain\n");
      await h.start();
      await h.untilDelivered("plain\n");
      await h.settle();
      expect(h.text()).toBe("plain\n");
      const refused = new Set(h.events.of("fileRefused").map((a) => String(a[0])));
      expect([...refused].sort()).toEqual([h.dir.path("env.log"), `${proc}/self/environ`, `${proc}/self/status`].sort());
      expect(h.events.logged(/file not followed/).find((l) => l.includes("status"))).toContain("it is on a proc file system, whose files logship never reads");
    } finally {
      Bun.spawnSync(["umount", "-l", proc]); // lazily: the agent may still hold a descriptor in it

    }
  });

  test("follow_symlinks: false follows none, root's included; plain files ship", async () => {
    h = new AgentHarness({ input: { follow_symlinks: false } });
    h.dir.append("secret/shadow", "root:secret-hash\n");
    symlinkSync(h.dir.path("secret/shadow"), h.dir.path("root-link.log"));
    h.dir.append("plain.log", "plain\n");
    await h.start();
    await h.untilDelivered("plain\n");
    await h.settle();
    expect(h.text()).toBe("plain\n");
    expect(h.events.logged(/file not followed/)[0]).toContain("follow_symlinks is false");
  });
});

describe("16. logship's own files", () => {
  test("its state database, WAL, shared memory and lock are never shipped, though the globs match them", async () => {
    h = new AgentHarness({ state: { path: "" } });
    h.config.state.path = h.dir.path("state.db"); // beside the logs
    h.config.inputs[0]!.paths = [h.dir.path("*")];
    h.dir.append("app.log", lines("a", 0, 5));
    await h.start();
    await h.untilDelivered("a 0004\n");
    h.dir.append("app.log", lines("a", 5, 5)); // more offsets saved: the database and its WAL change
    await h.untilDelivered("a 0009\n");
    await h.settle(6);
    h.expectStreams([lines("a", 0, 10)]);
    const refused = new Set(h.events.of("fileRefused").map((a) => String(a[0]).slice(h.dir.root.length + 1)));
    expect([...refused].sort()).toEqual(["state.db", "state.db-shm", "state.db-wal", "state.db.lock"]);
  });
});
