// Control characters from outside (a hostile file name, an error message, a config value)
// never reach the terminal raw: lib/text.ts escapes them visibly and reversibly, and every
// printer applies it — LogEvents' log lines, all fields and the message; check's table; the
// signal lines that main.ts used to print itself. The compiled binary is tested end to end
// in e2e-escape.test.ts.
import { describe, expect, test } from "bun:test";
import { formatReport, type FileReport } from "../lib/check.ts";
import { LogEvents } from "../lib/events.ts";
import { handleSignals } from "../lib/shutdown.ts";
import { escapeText, unescapeText } from "../lib/text.ts";
import { fields } from "./helpers/faults.ts";

/** C0, DEL and C1: what must never be printed raw. */
const CONTROL = /[\x00-\x1f\x7f-\x9f]/;
const HOSTILE = "/var/log/\x1b]0;pwned\x07evil\n2024-01-01T00:00:00.000Z ERROR forged\r\t\x7f\x9b31m\\x1b.log";

function logLines(act: (ev: LogEvents) => void): string[] {
  const lines: string[] = [];
  act(new LogEvents((l) => lines.push(l)));
  return lines;
}

describe("escapeText", () => {
  test("C0, DEL and C1 become visible escapes (of their UTF-8 bytes); \\n \\r \\t by name; the backslash doubles", () => {
    expect(escapeText("a\x1b]0;pwned\x07b")).toBe("a\\x1b]0;pwned\\x07b");
    expect(escapeText("one\ntwo\rthree\tfour")).toBe("one\\ntwo\\rthree\\tfour");
    expect(escapeText("\x00\x1f\x7f\x80\x9b\x9f")).toBe("\\x00\\x1f\\x7f\\xc2\\x80\\xc2\\x9b\\xc2\\x9f"); // C1: its two UTF-8 bytes (U+009B is C2 9B)
    expect(escapeText("C:\\logs\\x1b")).toBe("C:\\\\logs\\\\x1b"); // a literal "\x1b" stays distinct from an ESC
  });

  test("printable text is unchanged: ASCII, quotes, non-ASCII letters, U+00A0 and beyond", () => {
    for (const s of ["", "/var/log/app.log", `say "hi" = 1`, "zürich-日志-🙂.log", "\xa0\xff\u2028"]) expect(escapeText(s)).toBe(s);
  });

  test("every code point below U+00A0 that is not printable ASCII is escaped; the output has no control character", () => {
    for (let c = 0; c < 0xa0; c++) {
      const s = String.fromCharCode(c);
      const e = escapeText(s);
      expect(CONTROL.test(e)).toBe(false);
      expect(e === s).toBe(c >= 0x20 && c < 0x7f && c !== 0x5c);
    }
  });

  test("reversible: unescapeText(escapeText(s)) === s, also for text that looks escaped already", () => {
    const samples = [HOSTILE, "\\", "\\\\x1b", "\\n\n", "\\x1", "a\\\x1bb", "plain"];
    let all = "";
    for (let c = 0; c < 0x100; c++) all += String.fromCharCode(c);
    for (const s of [...samples, all]) expect(unescapeText(escapeText(s))).toBe(s);
  });
});

describe("LogEvents escapes every part of a log line", () => {
  test("a hostile path in file added: one line, no control character, the path read back intact", () => {
    const lines = logLines((ev) => ev.fileAdded(HOSTILE, "f1", 0, "new"));
    expect(lines).toHaveLength(1);
    const line = lines[0]!;
    expect(CONTROL.test(line)).toBe(false);
    expect(line).toContain("\\x1b]0;pwned\\x07evil\\n2024-01-01T00:00:00.000Z ERROR forged\\r\\t\\x7f\\xc2\\x9b31m\\\\x1b.log");
    expect(fields(line)).toMatchObject({ path: HOSTILE, file: "f1", offset: "0", reason: "new" });
  });

  test("unquoted values are escaped too (no white space: an ESC alone does not make a value quoted)", () => {
    const [line] = logLines((ev) => ev.fileFinished("/l/\x1b[2J\x1b[H.log", "f\x9b", 7));
    expect(line).toMatch(/ INFO file finished path=\/l\/\\x1b\[2J\\x1b\[H\.log file=f\\xc2\\x9b offset=7$/);
    expect(fields(line!)).toMatchObject({ path: "/l/\x1b[2J\x1b[H.log", file: "f\x9b" });
  });

  test("quotes and backslashes inside a quoted value read back", () => {
    const reason = `bad "value" at C:\\x = 1\n\tmore`;
    const [line] = logLines((ev) => ev.configRejected("/etc/l.yaml", reason));
    expect(CONTROL.test(line!)).toBe(false);
    expect(line).toContain(`reason="bad \\"value\\" at C:\\\\x = 1\\n\\tmore"`);
    expect(fields(line!).reason).toBe(reason);
  });

  test("every event with text in it: reasons, renames, the message of the signal lines", () => {
    const h = HOSTILE;
    const lines = logLines((ev) => {
      ev.started({ inputs: 1, brokers: [h], state: h, once: false });
      ev.fileRenamed(h, h, h);
      ev.fileTruncated(h, h, 1, 0);
      ev.fileRemoved(h, h, 0);
      ev.fileClosedInactive(h, h);
      ev.fileUnreadable(h, h);
      ev.fileSkippedCompressed(h, h);
      ev.lineTooLong(h, 0, 9, "split");
      ev.dataLost(h, h, 0, 1, h);
      ev.recordDropped(h, 0, 1, h);
      ev.sendFailed(h, h, true, 1, 10);
      ev.stateError(h);
      ev.configReloaded(h);
      ev.configRejected(h, h);
      ev.reloadFailed(h);
      ev.shutdownFailed(h);
      ev.reloadIgnored(h);
      ev.stopRequested(h, 5);
      ev.stopForced(h);
    });
    expect(lines).toHaveLength(19);
    for (const line of lines) {
      expect(CONTROL.test(line)).toBe(false);
      expect(line).toContain("\\x1b]0;pwned\\x07evil\\n");
    }
  });
});

describe("the signal lines, now events, read as main.ts printed them", () => {
  const TS = "\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z";
  test("exact words and level", () => {
    const lines = logLines((ev) => {
      ev.stopRequested("SIGTERM", 2000);
      ev.stopForced("SIGINT");
      ev.reloadIgnored("SIGHUP");
      ev.reloadFailed("cannot open x");
      ev.shutdownFailed("boom");
    });
    const want = [
      "INFO SIGTERM: draining in-flight data (up to 2000 ms); send SIGTERM again to exit at once",
      "INFO SIGINT again: exiting now without draining; unacknowledged lines will be sent again on the next start",
      "INFO SIGHUP ignored: shutting down",
      "INFO reload failed: cannot open x",
      "INFO shutdown failed: boom",
    ];
    expect(lines).toHaveLength(want.length);
    lines.forEach((l, i) => expect(l).toMatch(new RegExp(`^${TS} ${want[i]!.replace(/[().;]/g, "\\$&")}$`)));
  });

  test("handleSignals tells its events, a failed reload's reason escaped", async () => {
    const lines: string[] = [];
    const events = new LogEvents((l) => lines.push(l));
    const off = handleSignals(
      { stop: () => new Promise(() => {}), stopNow: () => {} },
      {
        timeoutMs: () => 1_000,
        exit: () => {},
        events,
        reload: async () => {
          throw new Error("bad\x1b[31m\nline");
        },
      },
    );
    try {
      process.kill(process.pid, "SIGHUP");
      for (let i = 0; i < 100 && lines.length === 0; i++) await Bun.sleep(10);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toEndWith(" INFO reload failed: bad\\x1b[31m\\nline");
    } finally {
      off();
    }
    expect(lines.every((l) => !CONTROL.test(l))).toBe(true);
  });
});

describe("check's table", () => {
  const row = (path: string, note = "new"): FileReport => ({ path, topic: "t", size: 3, offset: null, unread: 3, note });

  test("a hostile path stays on its row, escaped, and the columns stay aligned", () => {
    const table = formatReport([row(HOSTILE), row("/var/log/ok.log", "unreadable: EACCES \x1b[5m")]);
    const lines = table.split("\n");
    expect(lines).toHaveLength(3);
    for (const l of lines) expect(CONTROL.test(l)).toBe(false);
    expect(lines[1]!.startsWith(escapeText(HOSTILE) + "  t  ")).toBe(true);
    expect(lines[2]).toEndWith("unreadable: EACCES \\x1b[5m");
    const topicAt = lines[0]!.indexOf("TOPIC");
    expect(lines.slice(1).map((l) => l.indexOf("  t  ") + 2)).toEqual([topicAt, topicAt]);
  });
});
