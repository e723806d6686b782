// End to end, `format: line` and `format: json` (issue 14, first slice): the compiled binary
// ships with `run --once` to the mock cluster and the topic is read back with kcat: one
// record per kept line, key and headers as configured, the topic named from a static field,
// excluded lines never sent, secrets redacted, offsets saved to the end of each file.
import { describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { runLogship } from "./helpers/agentProcess.ts";
import { consumeAll } from "./helpers/consume.ts";
import { useCluster } from "./helpers/useCluster.ts";
import { savedOffsetOf, writeConfig, type TopicWorkspace } from "./helpers/workspace.ts";

const e2e = useCluster(1, { build: true });

function config(ws: TopicWorkspace, format: "line" | "json"): string {
  return writeConfig(
    ws.dir,
    `inputs:
  - paths: ["${ws.logs}/*.log"]
    format: ${format}
    fields: { service: checkout, dest: ${ws.topic} }
    exclude_lines: ['GET /health']
    redact: [{ pattern: 'password=\\S+', replace: 'password=***' }]
    key: field:service
    topic: '\${fields.dest}'
kafka:
  brokers: ["${e2e.cluster.bootstraps}"]
  topic: unused
state:
  path: ${ws.dir}/state.db
stats_interval: 0
`,
  );
}

/** 2,000 lines: every 10th a health check (excluded), every 7th with a password, every 501st not UTF-8. */
function logText(): Buffer {
  const parts: Buffer[] = [];
  for (let n = 0; n < 2000; n++) {
    if (n % 10 === 0) parts.push(Buffer.from(`GET /health ${n}\n`));
    else if (n % 501 === 0) parts.push(Buffer.concat([Buffer.from(`bin ${n} `), Buffer.from([0xff, 0xc3]), Buffer.from("\n")]));
    else if (n % 7 === 0) parts.push(Buffer.from(`login ${n} password=s3cret-${n} ok\n`));
    else parts.push(Buffer.from(`line ${n} ${"x".repeat(n % 50)}\n`));
  }
  return Buffer.concat(parts);
}

/** The lines a consumer must get, each with its offset in the file. */
function expected(bytes: Buffer): { offset: number; line: Buffer }[] {
  const out: { offset: number; line: Buffer }[] = [];
  for (let pos = 0; pos < bytes.length; ) {
    const end = bytes.indexOf(0x0a, pos) + 1;
    const line = bytes.subarray(pos, end);
    if (!line.toString("latin1").startsWith("GET /health")) out.push({ offset: pos, line });
    pos = end;
  }
  return out;
}

const redacted = (s: string) => s.replace(/password=\S+/g, "password=***");

describe("run --once with format line and json, read back with kcat", () => {
  for (const format of ["line", "json"] as const) {
    test(`${format}: one record per kept line, keyed by a field, on the topic named by a field, redacted, offsets to the end`, async () => {
      const ws = e2e.topicWorkspace(`events-${format}`);
      const cfg = config(ws, format);
      const bytes = logText();
      writeFileSync(`${ws.logs}/app.log`, bytes);
      const r = await runLogship(["run", "--config", cfg, "--once"], { timeoutMs: 60_000 });
      expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 0 });
      const records = await consumeAll(e2e.cluster.bootstraps, ws.topic);
      const want = expected(bytes);
      expect(records).toHaveLength(want.length);
      const byOffset = new Map(records.map((rec) => [Number(rec.headers.offset), rec]));
      expect(byOffset.size).toBe(want.length); // one record per offset: dedup by (host, file, offset) is exact
      const file = readFileSync(`${ws.logs}/app.log`);
      let invalid = 0;
      for (const { offset, line } of want) {
        const rec = byOffset.get(offset)!;
        expect(rec.key).toBe("checkout");
        expect(rec.headers.path).toBe(`${ws.logs}/app.log`);
        if (format === "line") {
          expect(rec.headers.service).toBe("checkout");
          const text = line.toString("latin1");
          expect(rec.value.toString("latin1")).toBe(text.includes("password=") ? redacted(text) : text);
        } else {
          const o = JSON.parse(rec.value.toString("utf8"));
          expect(o.offset).toBe(offset);
          expect(o.service).toBe("checkout");
          expect(o["@timestamp"]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
          if (o.invalid_utf8) invalid++;
          else expect(o.message).toBe(redacted(line.subarray(0, -1).toString("utf8")));
        }
        expect(file.subarray(offset, offset + line.length).equals(line)).toBe(true);
      }
      if (format === "json") expect(invalid).toBe(3); // lines 501, 1002, 1503 (line 0 is a health check)
      expect(savedOffsetOf(`${ws.dir}/state.db`, `${ws.logs}/app.log`)).toBe(bytes.length);
    }, 90_000);
  }

  test("key: none: records without a key, each file's in one partition (its path's), in file order", async () => {
    const ws = e2e.topicWorkspace("events-nokey");
    const cfg = writeConfig(ws.dir, `inputs:
  - paths: ["${ws.logs}/*.log"]
    format: line
    key: none
kafka:
  brokers: ["${e2e.cluster.bootstraps}"]
  topic: ${ws.topic}
state:
  path: ${ws.dir}/state.db
stats_interval: 0
`);
    const names = ["a", "b", "c", "d", "e", "f"];
    for (const n of names) writeFileSync(`${ws.logs}/${n}.log`, Array.from({ length: 300 }, (_, i) => `${n} ${i}\n`).join(""));
    const r = await runLogship(["run", "--config", cfg, "--once"], { timeoutMs: 60_000 });
    expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 0 });
    const records = await consumeAll(e2e.cluster.bootstraps, ws.topic);
    expect(records).toHaveLength(300 * names.length);
    for (const n of names) {
      const mine = records.filter((rec) => rec.headers.path === `${ws.logs}/${n}.log`);
      expect(new Set(mine.map((rec) => rec.partition)).size).toBe(1);
      expect(mine.map((rec) => rec.value.toString()).join("")).toBe(Array.from({ length: 300 }, (_, i) => `${n} ${i}\n`).join(""));
      expect(mine.every((rec) => rec.key === "")).toBe(true); // kcat prints a null key as null
    }
  }, 90_000);

  test("multiline (Java stack traces) as json: one record per event, its offset the event's first byte, the last event sent at --once's end", async () => {
    const ws = e2e.topicWorkspace("events-multiline");
    const cfg = writeConfig(ws.dir, `inputs:
  - paths: ["${ws.logs}/*.log"]
    format: json
    multiline: { start: '^\\d{4}-\\d{2}-\\d{2} ', max_lines: 50, timeout: 30s }
kafka:
  brokers: ["${e2e.cluster.bootstraps}"]
  topic: ${ws.topic}
state:
  path: ${ws.dir}/state.db
stats_interval: 0
`);
    const events: string[] = [];
    for (let n = 0; n < 500; n++) {
      const frames = n % 3 === 0 ? Array.from({ length: 1 + (n % 7) }, (_, i) => `\tat com.example.C${i}.m(C.java:${n})\n`).join("") : "";
      events.push(`2026-11-30 12:00:${String(n % 60).padStart(2, "0")} ${n % 3 === 0 ? "ERROR boom" : "INFO ok"} ${n}\n${frames}`);
    }
    const text = events.join("");
    writeFileSync(`${ws.logs}/app.log`, text);
    const r = await runLogship(["run", "--config", cfg, "--once"], { timeoutMs: 60_000 });
    expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 0 });
    const records = await consumeAll(e2e.cluster.bootstraps, ws.topic);
    expect(records).toHaveLength(events.length);
    const got = records.map((rec) => JSON.parse(rec.value.toString("utf8"))).sort((a, b) => a.offset - b.offset);
    let at = 0;
    got.forEach((o, i) => {
      expect(o.offset).toBe(at);
      expect(`${o.message}\n`).toBe(events[i]!);
      at += Buffer.byteLength(events[i]!);
    });
    expect(savedOffsetOf(`${ws.dir}/state.db`, `${ws.logs}/app.log`)).toBe(Buffer.byteLength(text));
  }, 90_000);
});
