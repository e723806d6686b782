// The progress line's arithmetic (lib/progress.ts) on a manual clock: files done, bytes of
// what was unread at the start, speed over the last seconds, ETA; log lines clear and redraw it.

import { expect, test } from "bun:test";
import { ProgressLine } from "../lib/progress.ts";
import { ManualClock } from "./helpers/manualClock.ts";

test("files done, MB shipped of the starting backlog, MB/s and ETA; log lines clear and redraw it", () => {
  const clock = new ManualClock();
  const files = [
    { file: "a", unread: 30_000_000 },
    { file: "b", unread: 10_000_000 },
  ];
  const out: string[] = [];
  const p = new ProgressLine((t) => out.push(t), () => files, clock);
  p.start();
  expect(out.at(-1)).toBe("\r\x1b[Klogship: 0/2 files, 0.0/40.0 MB, 0.0 MB/s, ETA -");
  files[1]!.unread = 0; // b done
  files[0]!.unread = 20_000_000;
  clock.advance(1_000); // drawn every 250 ms
  expect(out.at(-1)).toBe("\r\x1b[Klogship: 1/2 files, 20.0/40.0 MB, 20.0 MB/s, ETA 1s");
  // A file that grows after it was first seen does not grow the total: what it held at the start counts.
  files[1]!.unread = 5_000_000;
  files[0]!.unread = 10_000_000;
  clock.advance(1_000);
  expect(out.at(-1)).toBe("\r\x1b[Klogship: 0/2 files, 25.0/40.0 MB, 12.5 MB/s, ETA 2s");
  const logged: string[] = [];
  const write = p.writer((l) => logged.push(l));
  out.length = 0;
  write("2026-11-30T00:00:00.000Z INFO file added");
  expect(out).toEqual(["\r\x1b[K", "\r\x1b[Klogship: 0/2 files, 25.0/40.0 MB, 12.5 MB/s, ETA 2s"]);
  expect(logged).toEqual(["2026-11-30T00:00:00.000Z INFO file added"]);
  files[0]!.unread = 0;
  files[1]!.unread = 0;
  clock.advance(2_000);
  p.finish();
  expect(out.slice(-2)).toEqual(["\r\x1b[Klogship: 2/2 files, 40.0/40.0 MB, 10.0 MB/s, done", "\n"]);
  clock.advance(1_000);
  expect(out.at(-1)).toBe("\n"); // no more draws after finish()
});
