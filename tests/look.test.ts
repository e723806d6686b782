// look.ts: what an open file's descriptor says happened to it. A file cut below what was read
// is "replaced" (read again from 0); a file that only reports a smaller size than it holds (a
// pseudo file: size 0, bytes made up on each read) is not, or it would be read again without end.
import { afterAll, expect, test } from "bun:test";
import { closeSync, fstatSync, openSync, truncateSync } from "node:fs";
import { Tail } from "../lib/files/read.ts";
import { observe } from "../lib/files/look.ts";
import type { Tracked } from "../lib/files/registry.ts";
import { makeLogDir } from "./helpers/logDir.ts";

const dir = makeLogDir("look");
const fds: number[] = [];
afterAll(() => {
  fds.forEach((fd) => closeSync(fd));
  dir.cleanup();
});

/** A followed file read to its end, as the follower holds it (only what observe() looks at). */
function readToEnd(path: string): Tracked {
  const fd = openSync(path, "r");
  fds.push(fd);
  const tail = new Tail(fd, 0, { maxLineBytes: 1 << 20, longLines: "split", readBytes: 1 << 20 });
  let spans = 0;
  while (tail.read() !== null) if (++spans > 100) throw new Error("read without end");
  const st = fstatSync(fd);
  return { tail, size: st.size, mtimeMs: st.mtimeMs, deletedAt: null, source: { path } } as unknown as Tracked;
}

test("a file that reports size 0 but yields bytes (/proc/self/status) is unchanged, not replaced: it is not read again from 0 at every look (issue 11, item 12)", () => {
  const t = readToEnd("/proc/self/status");
  expect(t.size).toBe(0);
  expect(t.tail!.offset).toBeGreaterThan(0); // it held bytes all the same
  for (let i = 0; i < 3; i++) expect(observe(t, undefined).kind).toBe("unchanged");
});

test("a regular file cut below what was read is replaced", () => {
  dir.write("cut.log", "one\ntwo\nthree\n");
  const t = readToEnd(dir.path("cut.log"));
  expect(t.tail!.offset).toBe(14);
  expect(observe(t, undefined).kind).toBe("unchanged");
  truncateSync(dir.path("cut.log"), 4);
  expect(observe(t, undefined).kind).toBe("replaced");
  truncateSync(dir.path("cut.log"), 0);
  expect(observe(t, undefined).kind).toBe("replaced");
});
