// The first-line index (files.ts): how a new file finds the followed files it may be a copy of.
import { expect, test } from "bun:test";
import { LineIndex } from "../lib/files/registry.ts";

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
