// discover.ts: globs (with **) expand to the absolute paths they match now, minus excludes;
// a path matched twice is listed once, for the first input; a missing directory is no error.
import { afterAll, describe, expect, test } from "bun:test";
import { symlinkSync } from "node:fs";
import { isAbsolute } from "node:path";
import { DEFAULTS, type InputConfig } from "../lib/config.ts";
import { discover, Excluder, splitGlob } from "../lib/files/discover.ts";
import { makeLogDir } from "./helpers/logDir.ts";

const dir = makeLogDir("discover");
afterAll(() => dir.cleanup());

for (const name of ["app.log", "app.log.1.gz", "web.log", "notes.txt", "sub/deep.log", "sub/old.log.gz", "sub/x/deeper.log", "sub/x/y/deepest.log", "other/o.log"]) {
  dir.append(name, "line\n");
}
dir.mkdir("empty");
dir.mkdir("dir.log"); // a directory whose name matches *.log

function input(paths: string[], exclude: string[] = [], topic = "t"): InputConfig {
  return { ...DEFAULTS.input, paths, exclude, topic };
}

const rel = (paths: { path: string }[]) => paths.map((c) => c.path.slice(dir.root.length + 1));

describe("discover", () => {
  test("a simple glob lists the matching files, absolute and sorted, not directories", async () => {
    const found = await discover([input([dir.path("*.log")])]);
    expect(rel(found)).toEqual(["app.log", "web.log"]);
    for (const c of found) expect(isAbsolute(c.path)).toBe(true);
    expect(found.every((c) => c.input === 0)).toBe(true);
  });

  test("** reaches every depth, the top level included", async () => {
    expect(rel(await discover([input([dir.path("**/*.log")])]))).toEqual(["app.log", "other/o.log", "sub/deep.log", "sub/x/deeper.log", "sub/x/y/deepest.log", "web.log"]);
    expect(rel(await discover([input([dir.path("sub/**/*.log")])]))).toEqual(["sub/deep.log", "sub/x/deeper.log", "sub/x/y/deepest.log"]);
  });

  test('exclude "*.gz" matches base names anywhere', async () => {
    const found = await discover([input([dir.path("**/*")], ["*.gz"])]);
    expect(rel(found).filter((p) => p.endsWith(".gz"))).toEqual([]);
    expect(rel(found)).toContain("notes.txt");
    expect(rel(found)).toContain("sub/deep.log");
  });

  test('exclude "**/*.gz" matches absolute paths at any depth', async () => {
    const found = await discover([input([dir.path("**/*")], ["**/*.gz"])]);
    expect(rel(found)).toEqual(["app.log", "notes.txt", "other/o.log", "sub/deep.log", "sub/x/deeper.log", "sub/x/y/deepest.log", "web.log"]);
  });

  test("exclude by absolute glob and by directory", async () => {
    expect(rel(await discover([input([dir.path("**/*.log")], [dir.path("sub/**")])]))).toEqual(["app.log", "other/o.log", "web.log"]);
    expect(rel(await discover([input([dir.path("**/*.log")], ["**/x/**", "web.*"])]))).toEqual(["app.log", "other/o.log", "sub/deep.log"]);
  });

  test("two globs that reach the same file list it once, for the first input that matched", async () => {
    const found = await discover([input([dir.path("*.log"), dir.path("app.*")]), input([dir.path("**/*.log")], [], "second")]);
    const paths = found.map((c) => c.path);
    expect(new Set(paths).size).toBe(paths.length);
    expect(found.find((c) => c.path === dir.path("app.log"))!.input).toBe(0);
    expect(found.find((c) => c.path === dir.path("app.log.1.gz"))!.input).toBe(0);
    expect(found.find((c) => c.path === dir.path("sub/deep.log"))!.input).toBe(1);
  });

  test("a file excluded by the first input is still taken by a later one", async () => {
    const found = await discover([input([dir.path("*.log")], ["web.log"]), input([dir.path("web.log")])]);
    expect(found.map((c) => [c.path, c.input])).toEqual([
      [dir.path("app.log"), 0],
      [dir.path("web.log"), 1],
    ]);
  });

  test("a missing directory, or a glob matching nothing, is not an error", async () => {
    const errors: string[] = [];
    const found = await discover([input([dir.path("nope/*.log"), dir.path("nope/**/*.log"), dir.path("empty/*.log"), dir.path("nope.log")])], (p, why) => errors.push(`${p}: ${why}`));
    expect(found).toEqual([]);
    expect(errors).toEqual([]);
  });

  test("a plain path (no glob) is listed when it exists", async () => {
    expect(rel(await discover([input([dir.path("sub/deep.log")])]))).toEqual(["sub/deep.log"]);
  });

  test("symlinks are listed under their own names, a dangling one too (identify reports it)", async () => {
    const d = makeLogDir("discover-link");
    try {
      d.append("real.log", "x\n");
      d.append("logs/inner.log", "x\n");
      symlinkSync(d.path("real.log"), d.path("link.log"));
      symlinkSync(d.path("gone"), d.path("broken.log"));
      symlinkSync(d.path("logs"), d.path("linked-dir")); // a directory: walked, not listed
      expect(rel2(d.root, await discover([input([d.path("*.log")])]))).toEqual(["broken.log", "link.log", "real.log"]);
      expect(rel2(d.root, await discover([input([d.path("linked-dir/*.log")])]))).toEqual(["linked-dir/inner.log"]);
    } finally {
      d.cleanup();
    }
  });

  test("a symlink loop under ** ends, listing each file once", async () => {
    const d = makeLogDir("discover-loop");
    try {
      d.append("a.log", "x\n");
      d.append("sub/b.log", "x\n");
      symlinkSync(d.root, d.path("sub/up")); // sub/up → the root again
      expect(rel2(d.root, await discover([input([d.path("**/*.log")])]))).toEqual(["a.log", "sub/b.log"]);
    } finally {
      d.cleanup();
    }
  });

  test('names starting with "." match only a pattern segment starting with "."', async () => {
    const d = makeLogDir("discover-dot");
    try {
      for (const name of ["app.log", ".hidden.log", ".git/x.log", "sub/.y.log"]) d.append(name, "x\n");
      expect(rel2(d.root, await discover([input([d.path("**/*.log")])]))).toEqual(["app.log"]);
      expect(rel2(d.root, await discover([input([d.path(".*.log")])]))).toEqual([".hidden.log"]);
    } finally {
      d.cleanup();
    }
  });

  test("a pattern whose directory cannot be scanned is reported, and the other patterns go on", async () => {
    const d = makeLogDir("discover-err");
    try {
      symlinkSync(d.path("self"), d.path("self")); // stat fails with ELOOP (even for root)
      d.append("open/b.log", "x\n");
      d.append("afile", "x\n"); // not a directory: nothing under it, not an error
      const errors: string[] = [];
      const found = await discover([input([d.path("self/*.log"), d.path("afile/*.log"), d.path("open/*.log")])], (p, why) => errors.push(`${p}: ${why}`));
      expect(rel2(d.root, found)).toEqual(["open/b.log"]);
      expect(errors).toEqual([expect.stringMatching(new RegExp(`^${d.path("self/\\*.log")}: ELOOP`))]);
    } finally {
      d.cleanup();
    }
  });
});

const rel2 = (root: string, found: { path: string }[]) => found.map((c) => c.path.slice(root.length + 1));

describe("splitGlob and Excluder", () => {
  test("splitGlob separates the directory to scan from the pattern", () => {
    expect(splitGlob("/var/log/app/*.log")).toEqual({ root: "/var/log/app", rest: "*.log" });
    expect(splitGlob("/var/log/**/x/*.log")).toEqual({ root: "/var/log", rest: "**/x/*.log" });
    expect(splitGlob("/var/log/app.log")).toEqual({ root: "/var/log/app.log", rest: "" });
    expect(splitGlob("/*.log")).toEqual({ root: "/", rest: "*.log" });
    expect(splitGlob("/var/log/{a,b}/*.log")).toEqual({ root: "/var/log", rest: "{a,b}/*.log" });
  });

  test("Excluder: base-name patterns, ** patterns and absolute patterns", () => {
    const e = new Excluder(["*.gz", "**/archive/**", "/srv/skip/*.log"]);
    expect(e.excludes("/var/log/a.log.gz")).toBe(true);
    expect(e.excludes("/var/log/archive/2024/a.log")).toBe(true);
    expect(e.excludes("/srv/skip/a.log")).toBe(true);
    expect(e.excludes("/srv/skip/deeper/a.log")).toBe(false);
    expect(e.excludes("/var/log/a.log")).toBe(false);
    expect(e.excludes("/var/log/gz/a.log")).toBe(false);
    expect(new Excluder([]).excludes("/x")).toBe(false);
  });
});
