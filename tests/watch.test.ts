import { afterEach, expect, test } from "bun:test";
import { appendFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DirWatcher } from "../lib/files/watch.ts";
import { eventually } from "./helpers/eventually.ts";

const dirs: string[] = [];
const watchers: DirWatcher[] = [];
function setup() {
  const dir = mkdtempSync(join(tmpdir(), "logship-watch-"));
  dirs.push(dir);
  const seen = { changed: 0, renamed: 0 };
  const w = new DirWatcher({ changed: () => seen.changed++, renamed: () => seen.renamed++ }, 5);
  watchers.push(w);
  return { dir, seen, w };
}
afterEach(() => {
  for (const w of watchers.splice(0)) w.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

test("a write to a file in a watched directory reports a change", async () => {
  const { dir, seen, w } = setup();
  writeFileSync(join(dir, "a.log"), "x\n");
  w.set([dir]);
  appendFileSync(join(dir, "a.log"), "more\n");
  await eventually(() => seen.changed > 0, { message: "no change reported" });
});

test("creating and renaming files reports renames, coalesced", async () => {
  const { dir, seen, w } = setup();
  w.set([dir]);
  for (let i = 0; i < 20; i++) writeFileSync(join(dir, `f${i}.log`), "x\n");
  renameSync(join(dir, "f0.log"), join(dir, "f0.log.1"));
  await eventually(() => seen.renamed > 0, { message: "no rename reported" });
  expect(seen.renamed).toBeLessThan(5); // 21 events, coalesced
});

test("a directory no longer listed is no longer watched, and close stops everything", async () => {
  const { dir, seen, w } = setup();
  w.set([dir]);
  expect(w.size).toBe(1);
  w.set([]);
  expect(w.size).toBe(0);
  appendFileSync(join(dir, "b.log"), "x\n");
  await Bun.sleep(50); // time for an event that must not come
  expect(seen.changed + seen.renamed).toBe(0);
  w.set([dir, join(dir, "missing")]); // a missing directory is skipped, not an error
  expect(w.size).toBe(1);
  w.close();
  appendFileSync(join(dir, "b.log"), "y\n");
  await Bun.sleep(50);
  expect(seen.changed + seen.renamed).toBe(0);
});
