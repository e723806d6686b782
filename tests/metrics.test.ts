// The hand-written Prometheus exposition (lib/http/exposition.ts) and the metrics fed from
// the agent's events (lib/http/metrics.ts): format details, bounded label values, and the
// mapping of every `data lost` reason in lib/files/ to a label of logship_bytes_lost_total.

import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { LogEvents } from "../lib/events.ts";
import { Counter, Gauge, Histogram, labelValue, Registry } from "../lib/http/exposition.ts";
import { lostReason, Metrics } from "../lib/http/metrics.ts";
import { ManualClock } from "./helpers/manualClock.ts";

const LOAD = { filesTracked: 2, filesOpen: 1, inflightBytes: 300, unreadBytes: 4096 };

/** The value of one sample line `name{labels} value` in an exposition. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe("exposition", () => {
  test("counters, gauges and a histogram in the text format", () => {
    const r = new Registry();
    const c = r.add(new Counter("x_total", "An x.\nSecond line."));
    const g = r.add(new Gauge("y_bytes", "A y.", { label: "reason", values: ["a"] }));
    const h = r.add(new Histogram("z_seconds", "A z.", [0.1, 1]));
    c.inc(3);
    g.set(7, "b");
    h.observe(0.05);
    h.observe(0.5);
    h.observe(5);
    expect(r.expose()).toBe(
      [
        "# HELP x_total An x.\\nSecond line.",
        "# TYPE x_total counter",
        "x_total 3",
        "# HELP y_bytes A y.",
        "# TYPE y_bytes gauge",
        'y_bytes{reason="a"} 0',
        'y_bytes{reason="b"} 7',
        "# HELP z_seconds A z.",
        "# TYPE z_seconds histogram",
        'z_seconds_bucket{le="0.1"} 1',
        'z_seconds_bucket{le="1"} 2',
        'z_seconds_bucket{le="+Inf"} 3',
        "z_seconds_sum 5.55",
        "z_seconds_count 3",
        "",
      ].join("\n"),
    );
  });

  test("label values are escaped and bounded: past maxValues they count as \"other\"", () => {
    expect(labelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
    const c = new Counter("e_total", "E.", { label: "code", maxValues: 3 });
    for (const code of ["A", "B", "C", "D", "E", "A"]) c.inc(1, code);
    const r = new Registry();
    r.add(c);
    const text = r.expose();
    expect(sample(text, 'e_total{code="A"}')).toBe(2);
    expect(sample(text, 'e_total{code="B"}')).toBe(1);
    expect(sample(text, 'e_total{code="other"}')).toBe(3);
    expect(text.split("\n").filter((l) => l.startsWith("e_total{"))).toHaveLength(3);
  });

  test("bad names are refused at creation", () => {
    expect(() => new Counter("lines", "no _total")).toThrow(/_total/);
    expect(() => new Gauge("a-b", "dash")).toThrow(/bad metric/);
    expect(() => new Histogram("h", "h", [1, 1])).toThrow(/ascend/);
  });
});

describe("metrics from the agent's events", () => {
  test("lines not valid UTF-8 (format json, issue 14) are counted, and still logged once per file; filtered lines are counted", () => {
    const m = new Metrics(new ManualClock());
    const lines: string[] = [];
    const ev = m.events(new LogEvents((l) => lines.push(l)));
    expect(sample(m.expose(LOAD), "logship_lines_invalid_utf8_total")).toBe(0);
    ev.invalidUtf8("/l/a.log", 10);
    ev.invalidUtf8("/l/a.log", 90);
    expect(sample(m.expose(LOAD), "logship_lines_invalid_utf8_total")).toBe(2);
    expect(lines.filter((l) => l.includes("not valid UTF-8"))).toHaveLength(1);
    ev.linesFiltered("/l/a.log", 5);
    expect(sample(m.expose(LOAD), "logship_lines_filtered_total")).toBe(5);
    expect(lines).toHaveLength(1); // filtered lines are counted, not logged
  });

  test("acknowledged sends, failures, losses and drops are counted; every event still reaches the log", () => {
    const clock = new ManualClock();
    const m = new Metrics(clock);
    const lines: string[] = [];
    const ev = m.events(new LogEvents((l) => lines.push(l)));
    ev.chunksAcked(2, 10, 400, 30);
    ev.chunksAcked(1, 5, 100, 2_000);
    ev.sendFailed("broker down", "NETWORK_EXCEPTION", true, 1, 100);
    ev.dataLost("/l/a.log", "f1", 100, 350, "written to the original between the copy and the truncation");
    ev.dataLost("/l/b.log", "f2", 0, 10, "deleted and not read within close_removed (300000 ms)");
    ev.lineTooLong("/l/a.log", 0, 5000, "drop");
    ev.lineTooLong("/l/a.log", 0, 5000, "truncate");
    ev.recordDropped("/l/a.log", 0, 2_000_000, "MESSAGE_TOO_LARGE");
    ev.offsetsSaved(3);
    ev.stateError("disk full");
    ev.configRejected("/c.yaml", "bad");
    ev.configReloaded("/c.yaml");
    const text = m.expose(LOAD);
    expect(sample(text, "logship_lines_shipped_total")).toBe(15);
    expect(sample(text, "logship_bytes_shipped_total")).toBe(500);
    expect(sample(text, "logship_records_sent_total")).toBe(3);
    expect(sample(text, 'logship_send_errors_total{code="NETWORK_EXCEPTION"}')).toBe(1);
    expect(sample(text, "logship_kafka_up")).toBe(0);
    expect(sample(text, 'logship_send_latency_seconds_bucket{le="0.05"}')).toBe(1);
    expect(sample(text, 'logship_send_latency_seconds_bucket{le="2.5"}')).toBe(2);
    expect(sample(text, "logship_send_latency_seconds_sum")).toBeCloseTo(2.03, 9);
    expect(sample(text, 'logship_bytes_lost_total{reason="copytruncate"}')).toBe(250);
    expect(sample(text, 'logship_bytes_lost_total{reason="close_removed"}')).toBe(10);
    expect(sample(text, 'logship_bytes_lost_total{reason="renamed_out"}')).toBe(0);
    expect(sample(text, 'logship_lines_dropped_total{reason="long_line"}')).toBe(1);
    expect(sample(text, 'logship_lines_dropped_total{reason="too_large_for_kafka"}')).toBe(1);
    expect(sample(text, 'logship_lines_truncated_total{reason="long_line"}')).toBe(1);
    expect(sample(text, "logship_state_saves_total")).toBe(1);
    expect(sample(text, "logship_state_save_failures_total")).toBe(1);
    expect(sample(text, "logship_config_reloads_total")).toBe(1);
    expect(sample(text, "logship_config_reload_failures_total")).toBe(1);
    expect(sample(text, "logship_unread_bytes")).toBe(4096);
    expect(sample(text, "logship_inflight_bytes")).toBe(300);
    expect(sample(text, "logship_files_tracked")).toBe(2);
    expect(sample(text, "logship_files_open")).toBe(1);
    expect(sample(text, "process_resident_memory_bytes")).toBeGreaterThan(1_000_000);
    expect(sample(text, "process_open_fds")).toBeGreaterThan(2);
    expect(sample(text, "process_cpu_seconds_total")).toBeGreaterThan(0);
    expect(m.sendFailing?.code).toBe("NETWORK_EXCEPTION");
    expect(m.saveFailing?.reason).toBe("disk full");
    // The log saw the events too (and no secret or path reached a metric label).
    expect(lines.filter((l) => l.includes("data lost"))).toHaveLength(2);
    expect(text).not.toContain("/l/a.log");
    ev.chunksAcked(1, 1, 10, 1);
    expect(sample(m.expose(LOAD), "logship_kafka_up")).toBe(1);
    expect(m.sendFailing).toBeNull();
  });

  test("every `data lost` reason written in lib/files/ maps to its own label, not \"other\"", () => {
    const dir = resolve(import.meta.dir, "../lib/files");
    const reasons: string[] = [];
    for (const f of readdirSync(dir)) {
      const src = readFileSync(join(dir, f), "utf8");
      // dataLost(path, file, from, to, "reason") and carryOn(was, read, size, "reason"): the last string argument.
      for (const m of src.matchAll(/(?:dataLost|carryOn)\([^;]*?(["`])([^"`]+)\1\)/g)) reasons.push(m[2]!);
    }
    expect(reasons.length).toBeGreaterThanOrEqual(5);
    for (const r of reasons) expect({ r, label: lostReason(r) }).not.toEqual({ r, label: "other" });
  });
});
