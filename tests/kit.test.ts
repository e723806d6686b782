// The test kit's own checks: the delivery checker finds what it is there to find (a gap, a
// duplicate, a missing tail, a corrupt line), the line generator's shapes, the config writer's
// two forms and the state reader on a missing file. Synthetic records, no cluster.

import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ConsumedRecord } from "./helpers/consume.ts";
import { checkDelivery, shortfall, verifyDelivery } from "./helpers/delivery.ts";
import { fixedLines, lines, seqLine, seqLines } from "./helpers/lines.ts";
import { removeWorkspace, savedRows, workspace, writeConfig } from "./helpers/workspace.ts";

const HOST = "kit-host";

/** Records of `path` cut at the given line boundaries of `content` (each piece one record). */
function recordsOf(path: string, content: Buffer, pieces: [number, number][], partition = 0): ConsumedRecord[] {
  return pieces.map(([from, to], i) => ({
    partition,
    offset: i,
    key: path,
    value: content.subarray(from, to),
    headers: { host: HOST, path, offset: String(from), file: "id-1" },
  }));
}

describe("checkDelivery", () => {
  const path = "/logs/a.log";
  const content = Buffer.from(lines("a", 0, 4)); // 4 lines of 7 bytes
  const at = (n: number) => n * 7;

  test("whole, in order, once: passes and counts", () => {
    const r = checkDelivery(recordsOf(path, content, [[0, at(2)], [at(2), at(4)]]), new Map([[path, content]]), { host: HOST });
    expect([r.lines, r.bytes, r.duplicateLines]).toEqual([4, content.length, 0]);
  });

  test("a gap, a duplicate, a missing tail and a wrong host each throw", () => {
    const files = new Map([[path, content]]);
    expect(() => checkDelivery(recordsOf(path, content, [[0, at(1)], [at(2), at(4)]]), files, { host: HOST })).toThrow(/bytes 7\.\.14 are missing/);
    expect(() => checkDelivery(recordsOf(path, content, [[0, at(2)], [at(1), at(4)]]), files, { host: HOST })).toThrow(/already delivered/);
    expect(() => checkDelivery(recordsOf(path, content, [[0, at(3)]]), files, { host: HOST })).toThrow(/bytes 21\.\.28 never arrived/);
    expect(() => checkDelivery(recordsOf(path, content, [[0, at(4)]]), files, { host: "other" })).toThrow(/host header/);
  });

  test("duplicates: count counts them; prefixOnly accepts a first part", () => {
    const r = checkDelivery(recordsOf(path, content, [[0, at(2)], [at(1), at(4)]]), new Map([[path, content]]), { host: HOST, duplicates: "count" });
    expect([r.lines, r.duplicateLines, r.duplicateRecords]).toEqual([4, 1, 0]);
    expect(checkDelivery(recordsOf(path, content, [[0, at(3)]]), new Map([[path, content]]), { host: HOST, prefixOnly: true }).lines).toBe(3);
  });
});

describe("verifyDelivery", () => {
  const record = (text: string, offset = 0): ConsumedRecord => ({ partition: 0, offset, key: "k", value: Buffer.from(text, "latin1"), headers: {} });

  test("in order: no errors; again: duplicates; ahead: a gap; skipped lines are stepped over", () => {
    const d = verifyDelivery([record(seqLines("t", 0, 3)), record(seqLine("t", 1)), record(seqLines("t", 3, 2))]);
    expect(d).toEqual({ next: new Map([["t", 5]]), duplicates: 1, errors: [] });
    expect(verifyDelivery([record(seqLine("t", 0) + seqLine("t", 2))]).errors).toEqual(["t: line 2 arrived where 1 was due"]);
    expect(verifyDelivery([record(seqLine("t", 0) + seqLine("t", 2))], new Map([["t", new Set([1])]])).errors).toEqual([]);
    expect(shortfall(d, { t: 6, u: 1 })).toEqual(["t: 5 of 6 lines arrived", "u: 0 of 1 lines arrived"]);
  });

  test("a changed payload, an unparseable line and a partial record are errors", () => {
    const bad = seqLine("t", 0).replace(/.\n$/, "?\n");
    expect(verifyDelivery([record(bad)]).errors).toEqual([`corrupt line ${JSON.stringify(bad.slice(0, -1).slice(0, 60))}`]);
    expect(verifyDelivery([record("hello\n")]).errors).toEqual(['unparseable line "hello"']);
    expect(verifyDelivery([record(seqLine("t", 0).slice(0, -1))]).errors).toEqual(["record p0@0 does not end with a newline"]);
  });
});

describe("lines", () => {
  test("the shapes", () => {
    expect(lines("app", 9, 2)).toBe("app 0009\napp 0010\n");
    expect(seqLine("a", 3)).toMatch(/^a 00000003 ([a-z])\1{39}\n$/);
    expect(seqLine("a", 3, 0)).toBe("a 00000003\n");
    const fixed = fixedLines("b0", 1, 101).toString();
    expect(fixed.length).toBe(100 * 40);
    expect(fixed.startsWith("b0 000001 ")).toBe(true);
  });
});

describe("workspace", () => {
  const dir = workspace("kit");
  afterAll(() => removeWorkspace(dir));

  test("writeConfig: YAML text into DIR/NAME, or the test defaults at PATH", () => {
    expect(writeConfig(dir, "a: 1\n")).toBe(join(dir, "logship.yaml"));
    expect(readFileSync(writeConfig(dir, "b: 2\n", "other.yaml"), "utf8")).toBe("b: 2\n");
    const path = writeConfig(join(dir, "t.yaml"), { inputs: [{ paths: ["/l/*.log"] }], brokers: "h:1,h:2", topic: "t", state: "/s.db" });
    const text = readFileSync(path, "utf8");
    expect(text).toContain('  - paths: ["/l/*.log"]\n');
    expect(text).toContain('  brokers: ["h:1", "h:2"]\n  topic: "t"\n');
    expect(text).toContain('state:\n  path: "/s.db"\n  flush_interval: "100ms"\n');
  });

  test("savedRows of a state file not there yet is empty", () => {
    expect(savedRows(join(dir, "none.db"))).toEqual([]);
  });
});
