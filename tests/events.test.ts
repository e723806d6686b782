// The agent with `format: line | json` and filters (issue 14, first slice), in-process on a
// manual clock (tests/helpers/agentHarness.ts): offsets advance only over acknowledged
// events; a line dropped by exclude_lines counts as handled only once every line before it
// is acknowledged, so a restart never skips an unsent line; and dedup by (host, file, offset)
// gives back each file exactly, whatever was sent twice.
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { chunkHeaders, type Chunk } from "../lib/kafka/pack.ts";
import { AgentHarness, lines } from "./helpers/agentHarness.ts";

let h: AgentHarness;
afterEach(async () => {
  await h?.close();
});

/** Every record ever sent (acked, held, rejected; all runs), kept once per (host, file, offset) header, in offset order. */
function deduped(): Chunk[] {
  const seen = new Map<string, Chunk>();
  for (const c of h.fakes.flatMap((f) => f.sent)) {
    if (c.value.length === 0) continue;
    const hd = chunkHeaders(c);
    seen.set(`${hd.host}\0${hd.file}\0${hd.offset}`, c);
  }
  return [...seen.values()].sort((a, b) => (a.source.file === b.source.file ? a.start - b.start : a.source.file < b.source.file ? -1 : 1));
}

const offsetOf = (name: string) => h.agent!.status().find((s) => s.path === h.dir.path(name))?.offset;

describe("format: json, in the agent", () => {
  test("one object per line, its offset (value and header) the offset of the line in the file; the saved offset reaches the end", async () => {
    h = new AgentHarness({ input: { format: "json", fields: { service: "checkout" } } });
    await h.start();
    h.dir.append("app.log", lines("a", 0, 40));
    h.dir.append("app.log", Buffer.from([0x62, 0xff, 0x0a]));
    await h.until(() => h.acked.length === 41);
    await h.until(() => offsetOf("app.log") === 40 * 7 + 3);
    const file = readFileSync(h.dir.path("app.log"));
    for (const c of h.acked) {
      const o = JSON.parse(c.value.toString());
      expect(o.offset).toBe(c.start);
      expect(chunkHeaders(c).offset).toBe(String(c.start));
      expect(o.service).toBe("checkout");
      expect(o.host).toBe("test-host");
      if (!o.invalid_utf8) expect(file.subarray(c.start, c.end).toString()).toBe(`${o.message}\n`);
    }
    expect(JSON.parse(h.acked[40]!.value.toString())).toMatchObject({ message: "b\uFFFD", invalid_utf8: true });
    expect(h.events.count("invalidUtf8")).toBe(1);
    expect(h.events.logged(/not valid UTF-8/)).toHaveLength(1);
  });
});

describe("exclude_lines: a dropped line is handled only after every line before it", () => {
  test("while the line before it waits for Kafka the offset stays put; on the ack it moves over both", async () => {
    h = new AgentHarness({ input: { format: "line", exclude_lines: ["health"] } });
    await h.start();
    h.kafka.holdAll();
    h.dir.append("app.log", "keep 1\n");
    await h.until(() => h.kafka.pending.length === 1);
    h.dir.append("app.log", "GET /health\nGET /health\n");
    await h.settle();
    expect(offsetOf("app.log")).toBe(0); // the dropped lines wait for "keep 1"
    expect(h.kafka.calls).toHaveLength(1); // and are never sent
    h.kafka.ackAll();
    await h.until(() => offsetOf("app.log") === 7 + 24);
    h.dir.append("app.log", "keep 2\nGET /health\n");
    await h.until(() => offsetOf("app.log") === 7 + 24 + 19);
    expect(h.acked.map((c) => c.value.toString())).toEqual(["keep 1\n", "keep 2\n"]);
    expect(h.acked.map((c) => c.start)).toEqual([0, 31]);
  });

  test("a restart before the ack sends the line before the dropped ones again, never skips it", async () => {
    h = new AgentHarness({ input: { format: "line", exclude_lines: ["health"] } });
    await h.start();
    h.kafka.holdAll();
    h.dir.append("app.log", "keep 1\nGET /health\n");
    await h.until(() => h.kafka.pending.length === 1);
    await h.settle();
    await h.stop(); // the drain times out: nothing acknowledged, nothing saved
    expect(h.savedRows().find((r) => r.path === h.dir.path("app.log"))?.offset ?? 0).toBe(0);
    await h.start();
    await h.until(() => offsetOf("app.log") === 19);
    expect(h.acked.map((c) => c.value.toString())).toEqual(["keep 1\n"]);
  });
});

describe("dedup by (host, file, offset) stays exact", () => {
  for (const format of ["line", "json"] as const) {
    test(`${format}: records sent twice around a restart give back the file exactly, each line once`, async () => {
      h = new AgentHarness({ input: { format } });
      await h.start();
      h.dir.append("app.log", lines("a", 0, 30));
      await h.until(() => offsetOf("app.log") === 30 * 7);
      h.kafka.holdAll(); // Kafka stores these but the acks never come (a send that timed out)
      h.dir.append("app.log", lines("a", 30, 30));
      await h.until(() => h.kafka.pending.reduce((n, c) => n + c.chunks.length, 0) === 30);
      await h.stop();
      await h.start(); // sends lines 30..59 again
      h.dir.append("app.log", lines("a", 60, 10));
      await h.until(() => offsetOf("app.log") === 70 * 7);
      const records = deduped();
      expect(records).toHaveLength(70);
      const asLines = records.map((c) => (format === "line" ? c.value.toString() : `${JSON.parse(c.value.toString()).message}\n`));
      expect(asLines.join("")).toBe(lines("a", 0, 70));
      expect(h.fakes.flatMap((f) => f.sent).filter((c) => c.value.length > 0).length).toBeGreaterThan(70); // there were duplicates to drop
    });
  }
});

describe("reload", () => {
  test("a SIGHUP that changes the format applies to lines read after it, none lost or sent twice", async () => {
    h = new AgentHarness({ input: { format: "line" } });
    await h.start();
    h.dir.append("app.log", lines("a", 0, 20));
    await h.until(() => offsetOf("app.log") === 20 * 7);
    await h.agent!.reload({ ...h.config, inputs: [{ ...h.config.inputs[0]!, format: "json", exclude_lines: ["a 002"] }] });
    h.dir.append("app.log", lines("a", 20, 20));
    await h.until(() => offsetOf("app.log") === 40 * 7);
    const values = h.acked.map((c) => c.value.toString());
    expect(values.slice(0, 20).join("")).toBe(lines("a", 0, 20));
    const later = values.slice(20).map((v) => JSON.parse(v).message);
    expect(later).toEqual(lines("a", 30, 10).trimEnd().split("\n")); // a 0020..a 0029 excluded after the reload
    expect(h.acked.map((c) => c.start)).toEqual([...Array.from({ length: 20 }, (_, i) => i * 7), ...Array.from({ length: 10 }, (_, i) => (30 + i) * 7)]);
  });
});
