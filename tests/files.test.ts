// The registry of followed files (lib/files/registry.ts): the first-line index, by which a new
// file finds the followed files it may be a copy of, and file ids.
import { expect, test } from "bun:test";
import type { AgentConfig } from "../lib/config.ts";
import { DEFAULTS } from "../lib/config.ts";
import { Checkpoint } from "../lib/state/checkpoint.ts";
import { ManualClock } from "./helpers/manualClock.ts";
import { FileIndex, LineIndex } from "../lib/files/registry.ts";

test("a key maps to every id added under it, and to none once they are removed", () => {
  const index = new LineIndex();
  expect(index.get(7)).toEqual([]);
  index.add(7, "a");
  expect(index.get(7)).toEqual(["a"]);
  index.add(7, "b");
  index.add(7, "a"); // twice: still once
  index.add(7, "c");
  expect(index.get(7)).toEqual(["a", "b", "c"]);
  expect(index.get(8)).toEqual([]);
  index.remove(7, "b");
  expect(index.get(7)).toEqual(["a", "c"]);
  index.remove(7, "a");
  expect(index.get(7)).toEqual(["c"]);
  index.remove(7, "x"); // not there: nothing changes
  expect(index.get(7)).toEqual(["c"]);
  index.remove(7, "c");
  expect(index.get(7)).toEqual([]);
  index.add(7, "d");
  expect(index.get(7)).toEqual(["d"]);
});

test("removing from one key leaves the others alone", () => {
  const index = new LineIndex();
  index.add(1, "a");
  index.add(2, "a");
  index.add(2, "b");
  index.remove(1, "a");
  expect(index.get(1)).toEqual([]);
  expect(index.get(2)).toEqual(["a", "b"]);
});

test("file ids are never reused: two runs in the same millisecond give the same inode different ids", () => {
  const clock = new ManualClock(); // the wall clock does not move between the two runs
  const config = () => DEFAULTS as unknown as AgentConfig;
  const ids = new Set<string>();
  for (let run = 0; run < 50; run++) {
    // A new process: a new index and an empty checkpoint (the old file's row was forgotten).
    const index = new FileIndex(new Checkpoint(), config, false, clock);
    ids.add(index.newId(2049, 77));
  }
  expect(ids.size).toBe(50);
  for (const id of ids) expect(id.startsWith("2049:77:")).toBe(true);
});
