// What metrics cost on the hot path: the per-send work of an acknowledged send
// (chunksAcked: three counters, one histogram observation, two gauges) through MetricsEvents
// and LogEvents, against LogEvents alone; and what one scrape (the exposition) costs.
// With PROM_CLIENT=/path/to/node_modules/prom-client, the same updates through prom-client
// (the well-kept library the choice was weighed against) are timed too.
//
//   bun scripts/bench-metrics.ts
//   PROM_CLIENT=/tmp/promclient-eval/node_modules/prom-client bun scripts/bench-metrics.ts
//
// Prints nanoseconds per call, median of 7 rounds of 1,000,000 calls.

import { systemClock } from "../lib/clock.ts";
import { LogEvents } from "../lib/events.ts";
import { Metrics } from "../lib/http/metrics.ts";

const N = 1_000_000;
const ROUNDS = 7;

function nsPerCall(fn: (i: number) => void): number {
  const times: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = Bun.nanoseconds();
    for (let i = 0; i < N; i++) fn(i);
    times.push((Bun.nanoseconds() - t0) / N);
  }
  times.sort((a, b) => a - b);
  return times[ROUNDS >> 1]!;
}

const quiet = () => {};
const logOnly = new LogEvents(quiet);
const metrics = new Metrics(systemClock);
const withMetrics = metrics.events(new LogEvents(quiet));

const results: [string, number][] = [];
results.push(["chunksAcked, LogEvents alone", nsPerCall((i) => logOnly.chunksAcked(4, 900, 250_000, i & 63))]);
results.push(["chunksAcked, MetricsEvents + LogEvents", nsPerCall((i) => withMetrics.chunksAcked(4, 900, 250_000, i & 63))]);
const load = { filesTracked: 1000, filesOpen: 100, inflightBytes: 1 << 20, unreadBytes: 1 << 30 };
const t0 = Bun.nanoseconds();
let size = 0;
for (let i = 0; i < 1000; i++) size = metrics.expose(load).length;
results.push([`one scrape (exposition of ${size} bytes, process metrics read from /proc)`, (Bun.nanoseconds() - t0) / 1000]);

if (process.env.PROM_CLIENT) {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- not a dependency: no types
  const prom: any = await import(process.env.PROM_CLIENT);
  const reg = new prom.Registry();
  const lines = new prom.Counter({ name: "lines_total", help: "h", registers: [reg] });
  const bytes = new prom.Counter({ name: "bytes_total", help: "h", registers: [reg] });
  const records = new prom.Counter({ name: "records_total", help: "h", registers: [reg] });
  const up = new prom.Gauge({ name: "up_g", help: "h", registers: [reg] });
  const last = new prom.Gauge({ name: "last_g", help: "h", registers: [reg] });
  const lat = new prom.Histogram({ name: "lat_seconds", help: "h", buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: [reg] });
  const log = new LogEvents(quiet);
  results.push([
    "chunksAcked, prom-client + LogEvents",
    nsPerCall((i) => {
      records.inc(4);
      lines.inc(900);
      bytes.inc(250_000);
      lat.observe((i & 63) / 1000);
      up.set(1);
      last.set(Date.now() / 1000);
      log.chunksAcked(4, 900, 250_000, i & 63);
    }),
  ]);
  prom.collectDefaultMetrics({ register: reg });
  const t1 = Bun.nanoseconds();
  let psize = 0;
  for (let i = 0; i < 1000; i++) psize = (await reg.metrics()).length;
  results.push([`one scrape, prom-client (${psize} bytes, its default metrics included)`, (Bun.nanoseconds() - t1) / 1000]);
}

for (const [what, ns] of results) console.log(`${ns >= 10_000 ? `${(ns / 1000).toFixed(1)} µs` : `${ns.toFixed(1)} ns`}\t${what}`);
