// The layout's import rules, checked from the import lines of lib/. The folders follow the
// data flow: files/ (which bytes to read) → kafka/ (get them acknowledged) → state/ (what
// survives a restart), with a few leaves every part may use.
//   - files/ never imports kafka/ (the input half does not know where its bytes go);
//   - state/ imports neither files/ nor kafka/ (it only remembers);
//   - kafka/ sees files/ only through the types of read.ts (Span, Source);
//   - the leaves (config, options, errors, events, clock, memory, text, values, limits, config-source, security, config-events, config-reader, names, stdio, inode) import no part;
//   - no module is over 400 lines: a newcomer reads each in one sitting.
//   - only agent.ts (the wiring) and the commands beside it import from all three parts.
import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const LIB = resolve(import.meta.dir, "../lib");
const LEAVES = ["config.ts", "options.ts", "errors.ts", "events.ts", "clock.ts", "memory.ts", "text.ts", "values.ts", "limits.ts", "config-source.ts", "security.ts", "config-events.ts", "config-reader.ts", "names.ts", "stdio.ts", "inode.ts"];

/** Every relative import of every module in lib/, as [importer, imported, typeOnly], paths relative to lib/. */
function imports(): [string, string, boolean][] {
  const out: [string, string, boolean][] = [];
  for (const f of readdirSync(LIB, { recursive: true, encoding: "utf8" })) {
    if (!f.endsWith(".ts")) continue;
    const src = readFileSync(join(LIB, f), "utf8");
    for (const m of src.matchAll(/^(?:import|export)\s+(type\s+)?[^;]*?from\s+"(\.{1,2}\/[^"]+)"/gms)) {
      out.push([f, relative(LIB, resolve(dirname(join(LIB, f)), m[2]!)), m[1] !== undefined]);
    }
  }
  return out;
}

const part = (p: string) => (p.includes("/") ? p.split("/")[0]! : "leaf");

test("layout: the import lines are found", () => {
  const all = imports();
  expect(all.length).toBeGreaterThan(50);
  expect(all.some(([f, t]) => f === "files/copies.ts" && t === "files/identify.ts")).toBe(true); // a multi-line import
});

test("layout: every import follows the rules of the folders", () => {
  const broken: string[] = [];
  for (const [from, to, typeOnly] of imports()) {
    const a = part(from);
    const b = part(to);
    if (a === "files" && b === "kafka") broken.push(`${from} → ${to}: files/ never imports kafka/`);
    if (a === "state" && (b === "files" || b === "kafka")) broken.push(`${from} → ${to}: state/ imports neither files/ nor kafka/`);
    if (a === "kafka" && b === "files" && !(to === "files/read.ts" && typeOnly)) broken.push(`${from} → ${to}: kafka/ sees files/ only through read.ts' types`);
    if (LEAVES.includes(from) && b !== "leaf") broken.push(`${from} → ${to}: a leaf imports no part`);
  }
  expect(broken).toEqual([]);
});

test("layout: of the modules outside the parts, only the wiring imports from all three", () => {
  const parts = new Map<string, Set<string>>();
  for (const [from, to] of imports()) {
    const b = part(to);
    if (b === "leaf" || part(from) !== "leaf") continue; // inside a part, the rules above say what it may reach
    if (!parts.has(from)) parts.set(from, new Set());
    parts.get(from)!.add(b);
  }
  const all = [...parts].filter(([, s]) => s.has("files") && s.has("kafka") && s.has("state")).map(([f]) => f);
  expect(all).toEqual(["agent.ts"]);
});

test("layout: no module of lib/ (nor main.ts) is over 400 lines", () => {
  const files = [...readdirSync(LIB, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts")).map((f) => join(LIB, f)), resolve(LIB, "../main.ts")];
  const long = files.map((f) => [relative(resolve(LIB, ".."), f), readFileSync(f, "utf8").split("\n").length - 1] as const).filter(([, n]) => n > 400);
  expect(long).toEqual([]);
});
