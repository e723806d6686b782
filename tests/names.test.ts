// File names as bytes (lib/names.ts, issue 11 item 4): the surrogateescape mapping round-trips
// every byte sequence and leaves valid UTF-8 as it is; directories list exact names; the path
// functions keep escaped bytes; printing shows them as \xHH and reads them back; the state
// database keeps them; and every node:fs call of lib/files/ goes through exactName. The agent
// with such names: lifecycle-names.test.ts; the compiled binary: e2e-names.test.ts.

import { afterAll, describe, expect, test } from "bun:test";
import { isUtf8 } from "node:buffer";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import * as nodePath from "node:path";
import { tmpdir } from "node:os";
import { Database } from "bun:sqlite";
import { DEFAULTS } from "../lib/config.ts";
import { LogEvents } from "../lib/events.ts";
import { discover } from "../lib/files/discover.ts";
import { formatStatus, type StatusReply } from "../lib/http/status.ts";
import { basename, dirname, exactName, isBytesName, join, lossyName, nameBytes, nameFromBytes, readEntries, readNames } from "../lib/names.ts";
import { openStore, readSaved, type SavedFile } from "../lib/state/store.ts";
import { escapeText, unescapeText } from "../lib/text.ts";
import { mulberry32 } from "./helpers/prng.ts";

const scratch = mkdtempSync(nodePath.join(tmpdir(), "logship-names-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const hexOf = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** Every sequence of 1 and 2 bytes, and `n` random ones of 3 to 8 bytes biased to UTF-8's interesting bytes. */
function* byteSequences(n: number): Generator<Buffer> {
  for (let a = 0; a < 256; a++) {
    yield Buffer.of(a);
    for (let b = 0; b < 256; b++) yield Buffer.of(a, b);
  }
  const rnd = mulberry32(11);
  const pick = [0x00, 0x2f, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff];
  for (let i = 0; i < n; i++) {
    const len = 3 + Math.floor(rnd() * 6);
    yield Buffer.from(Array.from({ length: len }, () => (rnd() < 0.7 ? pick[Math.floor(rnd() * pick.length)]! : Math.floor(rnd() * 256))));
  }
}

describe("the mapping: bytes ↔ name", () => {
  test("round trip of every 1- and 2-byte sequence and 200,000 longer ones; a name is no text exactly when its bytes are not UTF-8", () => {
    let invalid = 0;
    const names = new Set<string>();
    for (const b of byteSequences(200_000)) {
      const name = nameFromBytes(b);
      if (hexOf(nameBytes(name)) !== hexOf(b)) throw new Error(`${hexOf(b)} → ${JSON.stringify(name)} → ${hexOf(nameBytes(name))}`);
      if (hexOf(exactName(name) as Uint8Array) !== hexOf(Buffer.from(exactName(name)))) throw new Error("exactName is the string or the bytes");
      expect(isBytesName(name)).toBe(!isUtf8(b));
      if (!isUtf8(b)) invalid++;
      if (b.length <= 2) names.add(name);
    }
    expect(invalid).toBeGreaterThan(100_000);
    expect(names.size).toBe(256 + 65536); // one to one
  });

  test("valid UTF-8 is unchanged: the name is the decoded text, exactName the string itself", () => {
    const rnd = mulberry32(5);
    const samples = ["", "/var/log/app.log", "zürich-日志-🙂.log", "\uFFFD.log", "\u0085\u009b", "\ud800\udc80"]; // U+FFFD and U+10080 are text
    for (let i = 0; i < 20_000; i++) {
      let s = "";
      for (let k = 0; k < 6; k++) {
        let cp = Math.floor(rnd() * 0x110000);
        if (cp >= 0xd800 && cp <= 0xdfff) cp = 0x41;
        s += String.fromCodePoint(cp);
      }
      samples.push(s);
    }
    for (const s of samples) {
      const b = Buffer.from(s, "utf8");
      expect(nameFromBytes(b)).toBe(s);
      expect(exactName(s)).toBe(s);
      expect(isBytesName(s)).toBe(false);
    }
  });

  test("each byte that is not part of valid UTF-8 is U+DC80 + byte, as Python's surrogateescape", () => {
    const cases: [number[], string][] = [
      [[0x61, 0xff, 0x2e, 0x6c, 0x6f, 0x67], "a\udcff.log"],
      [[0xe2, 0x82, 0x41], "\udce2\udc82A"], // a 3-byte sequence cut short
      [[0xe2, 0x82, 0xac], "€"],
      [[0xed, 0xa0, 0x80], "\udced\udca0\udc80"], // a UTF-16 surrogate encoded (CESU-8) is not UTF-8
      [[0xc0, 0xaf], "\udcc0\udcaf"], // overlong "/"
      [[0xf4, 0x90, 0x80, 0x80], "\udcf4\udc90\udc80\udc80"], // beyond U+10FFFF
      [[0xf0, 0x9f, 0x99, 0x82, 0x80], "🙂\udc80"],
      [[0xc3, 0xc3, 0xa9], "\udcc3é"],
    ];
    for (const [bytes, name] of cases) {
      expect(nameFromBytes(Buffer.from(bytes))).toBe(name);
      expect([...nameBytes(name)]).toEqual(bytes);
    }
    expect(lossyName("a\udcff\udcfe.log")).toBe("a\uFFFD\uFFFD.log");
    expect(lossyName("a.log")).toBe("a.log");
  });

  test("join, dirname and basename are node:path's, and keep escaped bytes (Bun's node:path turns them into U+FFFD)", () => {
    expect(join("/var/log/d\udcfe", "a\udcff.log")).toBe("/var/log/d\udcfe/a\udcff.log");
    expect(join("/x/", "..", "y\udc80", "./a")).toBe("/y\udc80/a");
    expect(dirname("/d\udcfe/a\udcff.log")).toBe("/d\udcfe");
    expect(basename("/d\udcfe/a\udcff.log")).toBe("a\udcff.log");
    // A name that holds the stand-in's private-use characters too keeps them apart.
    const odd = "/p/\u{f0000}\u{f007f}\udcff\u{f0080}/x";
    expect(dirname(odd)).toBe("/p/\u{f0000}\u{f007f}\udcff\u{f0080}");
    expect(basename(odd.slice(0, -2))).toBe("\u{f0000}\u{f007f}\udcff\u{f0080}");
    for (const p of ["/a/b.log", "/a/b/", "rel/x", "/"]) {
      expect(join(p, "c")).toBe(nodePath.join(p, "c"));
      expect(dirname(p)).toBe(nodePath.dirname(p));
      expect(basename(p)).toBe(nodePath.basename(p));
    }
  });
});

describe("listing a directory", () => {
  test("readEntries and readNames give exact names and types, whatever readdir decodes lossily", () => {
    const dir = join(scratch, "list");
    mkdirSync(dir);
    writeFileSync(nameBytes(join(dir, "a\udcff.log")), "x\n");
    writeFileSync(join(dir, "ok.log"), "x\n");
    writeFileSync(join(dir, "real-\uFFFD.log"), "x\n"); // a name that really holds U+FFFD (EF BF BD)
    mkdirSync(nameBytes(join(dir, "d\udcfe")));
    symlinkSync(join(dir, "ok.log"), nameBytes(join(dir, "l\udcfd.log")));
    expect(readdirSync(dir).filter((n) => n.includes("\uFFFD")).length).toBe(4); // what node:fs says
    const entries = readEntries(dir).map((e) => [e.name, e.isDirectory(), e.isSymbolicLink()]);
    expect(entries.sort()).toEqual(
      [
        ["a\udcff.log", false, false],
        ["d\udcfe", true, false],
        ["l\udcfd.log", false, true],
        ["ok.log", false, false],
        ["real-\uFFFD.log", false, false],
      ].sort(),
    );
    expect(readNames(dir).sort()).toEqual(["a\udcff.log", "d\udcfe", "l\udcfd.log", "ok.log", "real-\uFFFD.log"].sort());
    expect(readEntries(join(dir, "d\udcfe"))).toEqual([]); // the directory itself is reached by its bytes
  });

  test("discover lists such names exactly; a glob's ? and * match an escaped byte like one character, in paths and excludes", async () => {
    const dir = join(scratch, "globs");
    mkdirSync(nameBytes(join(dir, "d\udcfe")), { recursive: true });
    for (const n of ["a\udcff.log", "ab.log", "abc.log", "d\udcfe/x\udc80.log"]) writeFileSync(nameBytes(join(dir, n)), "x\n");
    const input = (paths: string[], exclude: string[] = []) => ({ ...DEFAULTS.input, topic: "t", paths: paths.map((p) => join(dir, p)), exclude });
    const listed = async (paths: string[], exclude?: string[]) => (await discover([input(paths, exclude)])).map((c) => c.path.slice(dir.length + 1));
    expect(await listed(["a?.log"])).toEqual(["ab.log", "a\udcff.log"]); // sorted as strings: U+DCFF after "b", as 0xff is after it
    expect(await listed(["*.log"], ["a?.log"])).toEqual(["abc.log"]);
    expect(await listed(["**/*.log"])).toEqual(["ab.log", "abc.log", "a\udcff.log", "d\udcfe/x\udc80.log"]);
    expect(await listed(["d\udcfe/*"])).toEqual(["d\udcfe/x\udc80.log"]); // a pattern's fixed part holding such a byte (not from YAML: config text is UTF-8)
  });
});

describe("printing", () => {
  test("a byte that is not UTF-8 shows as \\xHH, and reads back", () => {
    expect(escapeText("/l/a\udcff.log")).toBe("/l/a\\xff.log");
    expect(escapeText("\udcc3\u009b\x1b")).toBe("\\xc3\\xc2\\x9b\\x1b"); // the byte C3, then U+009B (C2 9B), then ESC
    expect(escapeText("\ud800\udc80")).toBe("\ud800\udc80"); // U+10080, a character: its second half is no escaped byte
    for (const b of byteSequences(20_000)) {
      const name = nameFromBytes(b);
      const shown = escapeText(name);
      if (/[\x00-\x1f\x7f-\x9f]/.test(shown) || !shown.isWellFormed()) throw new Error(`not printable: ${JSON.stringify(shown)}`);
      if (unescapeText(shown) !== name) throw new Error(`${hexOf(b)}: ${shown} reads back as ${JSON.stringify(unescapeText(shown))}`);
    }
  });

  test("log.format json: the line is ASCII JSON; the name comes back with JSON.parse (\\udcff, Python's surrogateescape)", () => {
    const lines: string[] = [];
    new LogEvents((l) => lines.push(l), 60_000, { format: "json", level: "info" }).fileAdded("/l/a\udcff.log", "f1", 0, "new");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('"path":"/l/a\\udcff.log"');
    expect(JSON.parse(lines[0]!).path).toBe("/l/a\udcff.log");
  });

  test("logship status: /status's JSON carries the name (\\udcff), and the table shows \\xff", async () => {
    const file = { path: "/l/a\udcff.log", file: "f1", size: 8, offset: 8, unread: 0, open: true, lastGrowth: 0, lastRead: 0 };
    const body = Buffer.from(await Response.json({ files: [file], filesTracked: 1, filesOpen: 1, inflightBytes: 0 }).arrayBuffer()); // as server.ts answers
    expect(body.toString("latin1")).toContain('"path":"/l/a\\udcff.log"');
    const reply = JSON.parse(body.toString("utf8")) as StatusReply;
    expect(reply.files[0]!.path).toBe(file.path);
    expect(formatStatus(reply, 0).split("\n")[1]).toStartWith("/l/a\\xff.log  8");
  });
});

describe("the state database", () => {
  test("keeps a name's exact bytes in the TEXT path column (schema 2); an older reader sees the lossy name, as its own readdir would", () => {
    const path = join(scratch, "state.db");
    const row = (id: string, p: string): SavedFile => ({ id, dev: 1, ino: Number(id.length), fingerprint: "00", fpLen: 0, path: p, offset: 7, seenAt: 1, goneSince: null, born: 0, size: 7, mtimeMs: 0, markLen: 0, markCrc: 0 });
    const names = ["/l/a\udcff.log", "/l/ok.log", "/l/real-\uFFFD.log", "/l/\udcc3(\udcff"];
    const store = openStore(path);
    store.save(names.map((p, i) => row(`f${i}`, p)));
    expect(store.all().map((r) => r.path)).toEqual(names);
    store.save([row("f0", "/l/a\udcff.log.1")]); // the update statement too
    expect(store.all().find((r) => r.id === "f0")!.path).toBe("/l/a\udcff.log.1");
    store.close();
    expect(readSaved(path).map((r) => r.path)).toEqual(["/l/a\udcff.log.1", ...names.slice(1)]);
    const db = new Database(path, { readonly: true });
    const stored = db.query("SELECT path, typeof(path) AS kind, hex(path) AS bytes FROM files ORDER BY id").all();
    const version = db.query("PRAGMA user_version").get();
    db.close();
    expect(version).toEqual({ user_version: 2 });
    expect(stored).toEqual([
      { path: "/l/a\uFFFD.log.1", kind: "text", bytes: "2F6C2F61FF2E6C6F672E31" },
      { path: "/l/ok.log", kind: "text", bytes: Buffer.from("/l/ok.log").toString("hex").toUpperCase() },
      { path: "/l/real-\uFFFD.log", kind: "text", bytes: Buffer.from("/l/real-\uFFFD.log").toString("hex").toUpperCase() },
      { path: "/l/\uFFFD(\uFFFD", kind: "text", bytes: "2F6C2FC328FF" },
    ]);
  });
});

describe("the boundary", () => {
  // A path handed to node:fs as a string is encoded as UTF-8, and a name's escaped byte with
  // it as U+FFFD: ENOENT, and the file silently not read. The exceptions name fixed paths.
  const FIXED = new Set([
    "identify.ts: readlinkSync(`/proc/self/fd/${fd}`", // a descriptor's link, read as bytes
    "links.ts: statSync(\"/\"", // the root
    "links.ts: statSync(dir", // /proc, /sys, /dev
    "scan.ts: statSync(p", // the state files: state.path is config text
  ]);

  test("every node:fs call of lib/files/ that takes a path passes it through exactName; path functions come from names.ts", () => {
    const dir = nodePath.resolve(import.meta.dir, "../lib/files");
    const bad: string[] = [];
    for (const f of readdirSync(dir).filter((n) => n.endsWith(".ts"))) {
      const src = readFileSync(nodePath.join(dir, f), "utf8");
      for (const m of src.matchAll(/\b(statSync|lstatSync|statfsSync|openSync|readdirSync|realpathSync|readlinkSync|existsSync|watch|readFileSync|writeFileSync|accessSync|unlinkSync|renameSync)\(([^,)]*)/g)) {
        if (m[2]!.startsWith("exactName(")) continue;
        const call = `${f}: ${m[1]}(${m[2]}`;
        if (!FIXED.has(call)) bad.push(call);
      }
      const path = /import \{([^}]*)\} from "node:path"/.exec(src);
      if (path && path[1]!.split(",").some((n) => n.trim() !== "sep")) bad.push(`${f}: imports ${path[1]!.trim()} from node:path (names.ts has join, dirname, basename)`);
    }
    expect(bad).toEqual([]);
  });
});
