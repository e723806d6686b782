// log.format and log.level (lib/events.ts' LogEvents): the JSON form carries the same keys as
// the text form, one object per line, with no raw control character; the level filters.

import { expect, test } from "bun:test";
import { LogEvents, type LogStyle } from "../lib/events.ts";

function logOf(style: LogStyle, act: (e: LogEvents) => void): string[] {
  const lines: string[] = [];
  act(new LogEvents((l) => lines.push(l), 60_000, style));
  return lines;
}

test("json: one object per line with time, level, message and the text form's keys, typed", () => {
  const act = (e: LogEvents) => {
    e.fileAdded("/var/log/app.log", "1:2:abc", 0, "new");
    e.dataLost("/var/log/app.log", "1:2:abc", 10, 30, "deleted and not read within close_removed (1000 ms)");
  };
  const json = logOf({ format: "json", level: "info" }, act);
  const text = logOf({ format: "text", level: "info" }, act);
  expect(json).toHaveLength(2);
  const [added, lost] = json.map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(added).toEqual({ time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/), level: "INFO", message: "file added", path: "/var/log/app.log", file: "1:2:abc", offset: 0, reason: "new" });
  expect(lost).toMatchObject({ level: "ERROR", message: "data lost", from: 10, to: 30, bytes: 20 });
  // The same keys as the text form, in the same order.
  const keys = (l: string) => [...l.matchAll(/ ([a-z_]+)=/g)].map((m) => m[1]!);
  expect(Object.keys(added!).slice(3)).toEqual(keys(text[0]!));
  expect(Object.keys(lost!).slice(3)).toEqual(keys(text[1]!));
});

test("json: control characters of outside text, C1 and DEL included, never reach the line raw", () => {
  const evil = "/logs/a\x1b]0;x\x07\n{\"level\":\"ERROR\"}\x9b\x7f.log";
  const [line] = logOf({ format: "json", level: "info" }, (e) => e.fileAdded(evil, "f", 0, "new"));
  expect(line).not.toMatch(/[\x00-\x1f\x7f-\x9f]/);
  expect((JSON.parse(line!) as { path: string }).path).toBe(evil);
});

test("log.level: lines below it are not written", () => {
  const act = (e: LogEvents) => {
    e.fileAdded("/a.log", "f", 0, "new"); // INFO
    e.fileTruncated("/a.log", "f", 10, 0); // WARN
    e.dataLost("/a.log", "f", 0, 5, "x"); // ERROR
  };
  const levels = (style: LogStyle) => logOf(style, act).map((l) => l.split(" ")[1]);
  expect(levels({ format: "text", level: "debug" })).toEqual(["INFO", "WARN", "ERROR"]);
  expect(levels({ format: "text", level: "info" })).toEqual(["INFO", "WARN", "ERROR"]);
  expect(levels({ format: "text", level: "warn" })).toEqual(["WARN", "ERROR"]);
  expect(levels({ format: "text", level: "error" })).toEqual(["ERROR"]);
});
