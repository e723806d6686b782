// `logship status` (lib/http/status.ts) without an agent: where it asks, how the table reads,
// and the README's alert rules, which promtool must accept.

import { expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { formatStatus, statusUrl } from "../lib/http/status.ts";

test("statusUrl asks a wildcard listener on loopback", () => {
  expect(statusUrl("127.0.0.1:9570")).toBe("http://127.0.0.1:9570/status");
  expect(statusUrl("0.0.0.0:9570")).toBe("http://127.0.0.1:9570/status");
  expect(statusUrl("[::]:9570")).toBe("http://[::1]:9570/status");
  expect(statusUrl("[::1]:80")).toBe("http://[::1]:80/status");
  expect(statusUrl("localhost:9570")).toBe("http://localhost:9570/status");
});

test("the table: one row per file, cells escaped, a summary line", () => {
  const now = 1_800_000_000_000;
  const text = formatStatus(
    {
      files: [
        { path: "/var/log/a.log", file: "1:2:x", size: 1000, offset: 400, unread: 600, open: true, lastGrowth: now - 5_000, lastRead: now - 4_000 },
        { path: "/var/log/evil\x1b[2J.log", file: "1:3:y", size: 10, offset: 10, unread: 0, open: false, lastGrowth: now - 3 * 3_600_000, lastRead: null },
      ],
      filesTracked: 2,
      filesOpen: 1,
      inflightBytes: 200,
    },
    now,
  );
  expect(text.split("\n")).toEqual([
    "PATH                      SIZE  OFFSET  UNREAD  OPEN    LAST READ  LAST GROWTH  FILE",
    "/var/log/a.log            1000  400     600     open    4s ago     5s ago       1:2:x",
    "/var/log/evil\\x1b[2J.log  10    10      0       closed  -          3h ago       1:3:y",
    "2 file(s) followed, 1 open, 600 byte(s) unread, 200 byte(s) waiting for Kafka",
  ]);
});

test("the README's alert rules pass promtool check rules", () => {
  const readme = readFileSync(resolve(import.meta.dir, "../README.md"), "utf8");
  const block = /Alert rules to start from:\n\n```yaml\n([\s\S]*?)```/.exec(readme)?.[1];
  expect(block).toContain("logship_bytes_lost_total");
  expect(block).toContain("logship_unread_bytes");
  const dir = mkdtempSync(join(tmpdir(), "logship-rules-"));
  try {
    writeFileSync(join(dir, "rules.yml"), block!);
    const r = Bun.spawnSync(["promtool", "check", "rules", join(dir, "rules.yml")], { stdout: "pipe", stderr: "pipe" });
    expect({ code: r.exitCode, out: r.stdout.toString() + r.stderr.toString() }).toMatchObject({ code: 0, out: expect.stringContaining("SUCCESS: 4 rules found") });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
