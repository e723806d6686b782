// The agent with `format: line | json` and filters (issue 14, first slice), in-process on a
// manual clock (tests/helpers/agentHarness.ts): offsets advance only over acknowledged
// events; a line dropped by exclude_lines counts as handled only once every line before it
// is acknowledged, so a restart never skips an unsent line; and dedup by (host, file, offset)
// gives back each file exactly, whatever was sent twice.
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { chunkHeaders, recordsOf, type Chunk } from "../lib/kafka/pack.ts";
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
      await h.until(() => h.kafka.pending.reduce((n, c) => n + c.chunks.reduce((m, x) => m + recordsOf(x), 0), 0) === 30);
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

describe("multiline events in the agent", () => {
  const ML = { format: "line" as const, multiline: { start: "^\\d{4}-", max_lines: 500, max_bytes: 1 << 20, timeout: 1_000 } };
  const ev = (n: number, extra = 2) => `2026-11-30 ERROR ${n}\n${Array.from({ length: extra }, (_, i) => `  at f${i}(X.java:${n})\n`).join("")}`;

  test("an event split across two reads is one record, with the offset of its first byte; the offset waits for it", async () => {
    h = new AgentHarness({ input: ML });
    await h.start();
    h.dir.append("app.log", ev(1) + "2026-11-30 ERROR 2\n  at g(");
    await h.until(() => h.acked.length === 1);
    h.dir.append("app.log", "Y.java:1)\n");
    await h.settle(); // event 2 may go on: it stays open (within its timeout), and the offset stays at its start
    expect(h.acked.map((c) => c.value.toString())).toEqual([ev(1)]);
    expect(offsetOf("app.log")).toBe(ev(1).length);
    h.dir.append("app.log", ev(3));
    await h.until(() => h.acked.length === 2);
    expect(h.acked[1]!.value.toString()).toBe("2026-11-30 ERROR 2\n  at g(Y.java:1)\n");
    expect(chunkHeaders(h.acked[1]!).offset).toBe(String(ev(1).length));
    expect(offsetOf("app.log")).toBe(ev(1).length + 36); // up to event 3, open now
  });

  test("the timeout sends an event no next line completes, not before", async () => {
    h = new AgentHarness({ input: ML });
    await h.start();
    h.dir.append("app.log", ev(1));
    await h.advance(600);
    expect(h.acked).toHaveLength(0);
    expect(offsetOf("app.log")).toBe(0);
    await h.until(() => h.acked.length === 1);
    expect(h.acked[0]!.value.toString()).toBe(ev(1));
    await h.until(() => offsetOf("app.log") === ev(1).length);
  });

  test("a restart in the middle of an event reads it again from its first byte: nothing lost, nothing sent twice", async () => {
    h = new AgentHarness({ input: { ...ML, multiline: { ...ML.multiline, timeout: 60_000 } } });
    await h.start();
    h.dir.append("app.log", ev(1) + ev(2, 1));
    await h.until(() => h.acked.length === 1);
    await h.settle();
    await h.stop(); // event 2 is open: not sent, its start not saved past
    expect(h.savedRows().find((r) => r.path === h.dir.path("app.log"))!.offset).toBe(ev(1).length);
    await h.start();
    h.dir.append("app.log", "  at more(Z.java:9)\n" + ev(3));
    await h.until(() => h.acked.length === 2);
    expect(h.acked.map((c) => c.value.toString())).toEqual([ev(1), ev(2, 1) + "  at more(Z.java:9)\n"]);
    expect(h.acked.map((c) => c.start)).toEqual([0, ev(1).length]);
  });

  test("a rotation in the middle of an event: lines written to the renamed file still join it; the new file starts its own", async () => {
    h = new AgentHarness({ input: ML });
    await h.start();
    h.dir.append("app.log", ev(1, 1) + "2026-11-30 ERROR 2\n");
    await h.until(() => h.acked.length === 1);
    h.dir.rename("app.log", "app.log.1"); // *.log no longer matches it
    h.dir.append("app.log.1", "  at late(R.java:1)\n"); // the writer still holds the old file
    h.dir.append("app.log", ev(3, 1));
    await h.until(() => h.acked.length === 3); // event 2 by its timeout (or the old file's end), event 3 by its timeout
    const old = h.acked[0]!.source.file;
    expect(h.acked.filter((c) => c.source.file === old).map((c) => c.value.toString())).toEqual([ev(1, 1), "2026-11-30 ERROR 2\n  at late(R.java:1)\n"]);
    expect(h.acked.filter((c) => c.source.file !== old).map((c) => c.value.toString())).toEqual([ev(3, 1)]);
    h.expectStreams([ev(1, 1) + "2026-11-30 ERROR 2\n  at late(R.java:1)\n", ev(3, 1)]);
  });

  test("max_lines cuts an event, said once per file; --once sends the last open event at the end", async () => {
    h = new AgentHarness({ input: { ...ML, multiline: { ...ML.multiline, max_lines: 3, timeout: 60_000 } } });
    h.dir.append("app.log", ev(1, 4) + ev(2, 4));
    const agent = await h.start({ once: true });
    await h.until(() => h.acked.length === 4 && offsetOf("app.log") === ev(1, 4).length * 2, "all four pieces acknowledged");
    await agent.finished;
    expect(h.acked.map((c) => c.value.toString())).toEqual([ev(1, 4).split("\n").slice(0, 3).join("\n") + "\n", ev(1, 4).split("\n").slice(3).join("\n"), ev(2, 4).split("\n").slice(0, 3).join("\n") + "\n", ev(2, 4).split("\n").slice(3).join("\n")]);
    expect(h.events.count("eventCut")).toBe(2);
    expect(h.events.logged(/multiline event cut at max_lines/)).toHaveLength(1);
  });

  test("a file deleted, or truncated, with an event open: the event still ships at its timeout, under the file it was read from", async () => {
    h = new AgentHarness({ input: { ...ML, close_removed: 100 } });
    await h.start();
    h.dir.append("gone.log", ev(1) + ev(2));
    h.dir.append("cut.log", ev(5) + ev(6));
    await h.until(() => h.acked.length === 2);
    h.dir.remove("gone.log"); // drained, finished and retired while event 2 is open: its row waits for the event
    h.dir.truncate("cut.log"); // a new identity; event 6 belongs to the old one
    h.dir.append("cut.log", ev(7));
    await h.until(() => h.acked.length === 5);
    const text = h.acked.map((c) => c.value.toString());
    expect(text.slice(0, 2).sort()).toEqual([ev(1), ev(5)].sort());
    expect(text.slice(2).sort()).toEqual([ev(2), ev(6), ev(7)].sort());
    const six = h.acked.find((c) => c.value.toString() === ev(6))!;
    expect(six.source.file).toBe(h.acked.find((c) => c.value.toString() === ev(5))!.source.file);
    expect(six.start).toBe(ev(5).length);
    await h.settle();
    expect(h.agent!.status().some((s) => s.path === h.dir.path("gone.log"))).toBe(false);
  });

  test("a reload sends the open event under the settings it was read with; later lines follow the new ones", async () => {
    h = new AgentHarness({ input: { ...ML, multiline: { ...ML.multiline, timeout: 60_000 } } });
    await h.start();
    h.dir.append("app.log", ev(1) + ev(2));
    await h.until(() => h.acked.length === 1);
    await h.settle();
    expect(h.acked).toHaveLength(1); // event 2 is open
    await h.agent!.reload({ ...h.config, inputs: [{ ...h.config.inputs[0]!, format: "json", multiline: undefined }] });
    await h.until(() => h.acked.length === 2);
    expect(h.acked[1]!.value.toString()).toBe(ev(2)); // as a line-format event
    h.dir.append("app.log", "plain 1\nplain 2\n");
    await h.until(() => h.acked.length === 4);
    expect(h.acked.slice(2).map((c) => JSON.parse(c.value.toString()).message)).toEqual(["plain 1", "plain 2"]);
    await h.until(() => offsetOf("app.log") === (ev(1) + ev(2) + "plain 1\nplain 2\n").length);
    expect(h.acked.map((c) => c.start)).toEqual([0, ev(1).length, ev(1).length + ev(2).length, ev(1).length + ev(2).length + 8]);
  });
});
