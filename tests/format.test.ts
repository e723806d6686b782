// kafka/format.ts and the event options (issue 14, first slice): `line` and `json` records,
// one per line, each with the offset of its line's first byte; static fields, key, filters,
// redaction; invalid UTF-8 in JSON; and how config.ts validates these options.
import { describe, expect, test } from "bun:test";
import { DEFAULTS, parseConfig, type InputConfig } from "../lib/config.ts";
import { ConfigError } from "../lib/errors.ts";
import type { Span } from "../lib/files/read.ts";
import { closeEvent, compileFormat, formatEvents, formatSpan } from "../lib/kafka/format.ts";
import { BATCH_OVERHEAD, chunkHeaders, chunkKey, recordChunks, type Chunk, type PackLimits, type Source } from "../lib/kafka/pack.ts";

const SOURCE: Source = { file: "2049:77:1700000000000:abcd", path: "/var/log/app/app.log", topic: "logs", host: "edge-7" };
const LIMITS: PackLimits = { maxMessageBytes: 1_000_000, targetMessageBytes: 256 * 1024 };
const WALL = Date.UTC(2026, 10, 30, 12, 0, 0, 123);

function input(o: Partial<InputConfig>): InputConfig {
  return { ...DEFAULTS.input, paths: ["/var/log/app/*.log"], topic: "logs", ...o };
}

function span(text: string | Buffer, start = 1000, extra = 0): Span {
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text);
  return { bytes, start, end: start + bytes.length + extra };
}

function format(text: string | Buffer, o: Partial<InputConfig>, opts: { start?: number; extra?: number; limits?: PackLimits; invalid?: (s: Source, offset: number) => void; filtered?: (s: Source, lines: number) => void } = {}): Chunk[] {
  const fmt = compileFormat(input(o));
  if (!fmt) throw new Error("packed");
  const report = { invalidUtf8: opts.invalid ?? (() => {}), filtered: opts.filtered ?? (() => {}) };
  // A run of lines (one chunk) is as many records: the records are what is compared.
  return formatSpan(span(text, opts.start ?? 1000, opts.extra ?? 0), SOURCE, fmt, opts.limits ?? LIMITS, WALL, report).flatMap(recordChunks);
}

/** The chunks account for [start, end) of the span contiguously, in order. */
function expectContiguous(chunks: Chunk[], start: number, end: number): void {
  let at = start;
  for (const c of chunks) {
    expect(c.start).toBe(at);
    at = c.end;
  }
  expect(at).toBe(end);
}

describe("format: line", () => {
  test("packed compiles to nothing: the agent packs as before", () => {
    expect(compileFormat(input({}))).toBeNull();
  });

  test("one record per line, byte for byte, each with its line's offset; fields as headers; the path as key", () => {
    const raw = Buffer.from([...Buffer.from("one\ntwo\r\n"), 0xff, 0x0a]);
    const chunks = format(raw, { format: "line", fields: { service: "checkout", env: "prod" } });
    expect(chunks.map((c) => c.value)).toEqual([Buffer.from("one\n"), Buffer.from("two\r\n"), Buffer.from([0xff, 0x0a])]);
    expect(chunks.map((c) => c.start)).toEqual([1000, 1004, 1009]);
    expect(chunks.map((c) => c.lines)).toEqual([1, 1, 1]);
    expectContiguous(chunks, 1000, 1000 + raw.length);
    expect(chunkHeaders(chunks[1]!)).toEqual({ host: "edge-7", path: SOURCE.path, offset: "1004", file: SOURCE.file, service: "checkout", env: "prod" });
    expect(chunkKey(chunks[0]!)).toBe(SOURCE.path);
    expect(chunks[0]!.raw).toBeUndefined(); // the value is the file's bytes: the checkpoint marks it
  });

  test("key: none and key: field:NAME", () => {
    expect(chunkKey(format("a\n", { format: "line", key: "none" })[0]!)).toBeNull();
    expect(chunkKey(format("a\n", { format: "line", fields: { service: "checkout" }, key: "field:service" })[0]!)).toBe("checkout");
  });

  test("skipped bytes after the span's lines (a truncated long line) are accounted for by its last chunk", () => {
    const chunks = format("a\nb\n", { format: "line" }, { extra: 50 });
    expectContiguous(chunks, 1000, 1054);
    expect(chunks[1]!.value.toString()).toBe("b\n");
  });

  test("a line too large for one record is cut, each piece with the offset of its first byte, each within max_message_bytes", () => {
    const limits = { maxMessageBytes: 1024, targetMessageBytes: 1024 };
    const long = `${"x".repeat(3000)}\n`;
    const chunks = format(`a\n${long}b\n`, { format: "line" }, { limits });
    expect(chunks.length).toBeGreaterThan(4);
    expectContiguous(chunks, 1000, 1000 + 2 + long.length + 2);
    expect(Buffer.concat(chunks.map((c) => c.value)).toString()).toBe(`a\n${long}b\n`);
    for (const c of chunks) expect(c.size + BATCH_OVERHEAD).toBeLessThanOrEqual(1024);
    expect(chunks.reduce((n, c) => n + c.lines, 0)).toBe(3);
  });
});

describe("format: json", () => {
  test("one object per line: @timestamp, message without its newline, host, path, offset, file, fields at the top", () => {
    const chunks = format("GET /a 200\nPOST /b 500\r\n", { format: "json", fields: { service: "checkout" } });
    const objs = chunks.map((c) => JSON.parse(c.value.toString()));
    expect(objs[0]).toEqual({ "@timestamp": "2026-11-30T12:00:00.123Z", message: "GET /a 200", host: "edge-7", path: SOURCE.path, offset: 1000, file: SOURCE.file, service: "checkout" });
    expect(objs[1].message).toBe("POST /b 500\r"); // only the final "\n" goes
    expect(objs[1].offset).toBe(1011);
    expect(chunks.map((c) => chunkHeaders(c).offset)).toEqual(["1000", "1011"]); // the header agrees: dedup stays exact
    expect(chunkHeaders(chunks[0]!)).toEqual({ host: "edge-7", path: SOURCE.path, offset: "1000", file: SOURCE.file }); // fields go in the value
    expect(chunks[0]!.raw?.toString()).toBe("GET /a 200\n"); // the file's bytes, for the checkpoint's mark
    expectContiguous(chunks, 1000, 1000 + 24);
  });

  test("escapes what JSON must (quotes, backslashes, control characters, NUL); a partial last line is a whole message", () => {
    const line = 'say "hi"\\ \t\u0000\u001b end';
    const [c] = format(line, { format: "json" });
    expect(JSON.parse(c!.value.toString()).message).toBe(line);
  });

  test("invalid UTF-8 becomes U+FFFD with invalid_utf8: true, still valid JSON, and is counted; a real U+FFFD is not flagged", () => {
    const bad = Buffer.concat([Buffer.from("ab"), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from("cd\n")]);
    const good = Buffer.from("ok \uFFFD here\n");
    const seen: number[] = [];
    const chunks = format(Buffer.concat([bad, good]), { format: "json" }, { invalid: (_s, offset) => seen.push(offset) });
    const [a, b] = chunks.map((c) => JSON.parse(c.value.toString()));
    expect(a.message).toBe("ab\uFFFD\uFFFD\uFFFDcd");
    expect(a.invalid_utf8).toBe(true);
    expect(b.message).toBe("ok \uFFFD here");
    expect(b.invalid_utf8).toBeUndefined();
    expect(seen).toEqual([1000]);
  });

  test("values are byte for byte the template the format defines (plain ASCII lines copied, others through JSON.stringify), across slabs", () => {
    const lines = ["plain ascii line 42 key=value", "ctl \b\f\r\u0001\u001f\u0000 end", 'quote " inside', "back\\slash", "tab\there", "del \u007f", "ünïcödé ✓", "", "~ !#$%&'()*+,-./:;<=>?@[]^_`{|}", "x".repeat(70_000)];
    const raw = Buffer.concat([...lines.map((l) => Buffer.from(`${l}\n`)), Buffer.from([0x61, 0xff, 0x0a]), Buffer.from("last, no newline")]);
    const fields = { service: "check\"out", env: "prod" };
    const chunks = format(Buffer.concat([raw, raw, raw, raw]), { format: "json", fields });
    const ts = new Date(WALL).toISOString();
    const fieldsJson = `,"service":${JSON.stringify(fields.service)},"env":"prod"`;
    for (const c of chunks) {
      const bytes = c.raw ?? c.value;
      const text = new TextDecoder().decode(bytes[bytes.length - 1] === 0x0a ? bytes.subarray(0, bytes.length - 1) : bytes);
      const bad = text.includes("\uFFFD");
      const expected = `{"@timestamp":"${ts}","message":${JSON.stringify(text)}${bad ? ',"invalid_utf8":true' : ""},"host":"edge-7","path":${JSON.stringify(SOURCE.path)},"offset":${c.start},"file":${JSON.stringify(SOURCE.file)}${fieldsJson}}`;
      expect(c.value.toString()).toBe(expected);
    }
    expect(chunks.length).toBe(4 * (lines.length + 2) - 3); // a copy's last line runs into the next copy's first
  });

  test("a line whose JSON is too large for a record is cut in pieces, each its own event with its own offset", () => {
    const limits = { maxMessageBytes: 1024, targetMessageBytes: 1024 };
    const long = "\u0001".repeat(2000); // 6 bytes each in JSON
    const chunks = format(`${long}\n`, { format: "json" }, { limits });
    for (const c of chunks) expect(c.size + BATCH_OVERHEAD).toBeLessThanOrEqual(1024);
    const objs = chunks.map((c) => JSON.parse(c.value.toString()));
    expect(objs.map((o) => o.message).join("")).toBe(long);
    expect(objs.map((o) => o.offset)).toEqual(chunks.map((c) => c.start));
    expectContiguous(chunks, 1000, 1000 + 2001);
  });
});

describe("format: filters and redaction", () => {
  const text = "keep 1\nGET /health 200\nGET /health 200\nkeep 2\nnoise\nERROR boom\nGET /health\n";

  test("exclude_lines: the dropped lines become empty chunks in their place, so the ranges stay contiguous and in order", () => {
    let filtered = 0;
    const chunks = format(text, { format: "line", exclude_lines: ["GET /health"] }, { filtered: (_s, n) => (filtered += n) });
    expect(chunks.map((c) => c.value.toString())).toEqual(["keep 1\n", "", "keep 2\n", "noise\n", "ERROR boom\n", ""]);
    expect(filtered).toBe(3);
    expectContiguous(chunks, 1000, 1000 + text.length);
    expect(chunks[1]!.end - chunks[1]!.start).toBe(2 * "GET /health 200\n".length); // a run of dropped lines is one range
    expect(chunks[1]!.lines).toBe(0);
  });

  test("include_lines: only lines matching one of them; exclude_lines wins over include_lines", () => {
    const chunks = format(text, { format: "line", include_lines: ["^keep", "ERROR|WARN"], exclude_lines: ["2$"] });
    expect(chunks.filter((c) => c.value.length > 0).map((c) => c.value.toString())).toEqual(["keep 1\n", "ERROR boom\n"]);
    expectContiguous(chunks, 1000, 1000 + text.length);
  });

  test("a span whose lines are all dropped is one empty chunk over all of it", () => {
    const chunks = format("a\nb\n", { format: "json", exclude_lines: ["."] }, { extra: 3 });
    expect(chunks).toHaveLength(1);
    expect(chunks[0]).toMatchObject({ start: 1000, end: 1007, lines: 0 });
    expect(chunks[0]!.value.length).toBe(0);
  });

  test("redact applies every rule to every match before anything leaves, in line and json", () => {
    const o = { redact: [{ pattern: "password=\\S+", replace: "password=***" }, { pattern: "(\\d{4})-\\d{4}-\\d{4}-(\\d{4})", replace: "$1-****-****-$2" }] };
    const line = "login password=hunter2 card 1234-5678-9012-3456 password=x\n";
    const [l] = format(line, { format: "line", ...o });
    expect(l!.value.toString()).toBe("login password=*** card 1234-****-****-3456 password=***\n");
    expect(l!.raw?.toString()).toBe(line); // the checkpoint marks the file's bytes, not the value
    expect(l!.start).toBe(1000);
    expect(l!.end).toBe(1000 + line.length);
    const [j] = format(line, { format: "json", ...o });
    expect(JSON.parse(j!.value.toString()).message).toBe("login password=*** card 1234-****-****-3456 password=***");
    const [untouched] = format("nothing secret\n", { format: "line", ...o });
    expect(untouched!.raw).toBeUndefined();
  });
});

describe("config: the event options", () => {
  const FILE = "/etc/logship/logship.yaml";
  const base = (inputLines: string) => `inputs:\n  - paths: ["/var/log/app/*.log"]\n${inputLines}kafka:\n  brokers: ["127.0.0.1:9092"]\n  topic: logs\n`;
  const problems = (text: string, env: Record<string, string> = {}): string[] => {
    try {
      parseConfig(text, FILE, env);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as ConfigError).message.split("\n");
    }
    throw new Error("accepted");
  };

  test("every option, with ${fields.X} in the topic and ${ENV} in a field", () => {
    const c = parseConfig(
      base(`    format: json
    fields: { service: checkout, env: "\${ENV_NAME}", port: 8080 }
    include_lines: ['ERROR|WARN']
    exclude_lines: 'GET /health'
    redact:
      - { pattern: 'password=\\S+', replace: 'password=***' }
      - { pattern: 'token=\\w+' }
    key: field:service
    topic: 'logs-\${fields.service}-\${fields.env}'
`),
      FILE,
      { ENV_NAME: "prod" },
    );
    const i = c.inputs[0]!;
    expect(i.format).toBe("json");
    expect(i.fields).toEqual({ service: "checkout", env: "prod", port: "8080" });
    expect(i.include_lines).toEqual(["ERROR|WARN"]);
    expect(i.exclude_lines).toEqual(["GET /health"]);
    expect(i.redact).toEqual([{ pattern: "password=\\S+", replace: "password=***" }, { pattern: "token=\\w+", replace: "" }]);
    expect(i.key).toBe("field:service");
    expect(i.topic).toBe("logs-checkout-prod");
  });

  test("an invalid regex is a located problem, naming the engine's complaint", () => {
    const all = problems(base(`    format: line\n    include_lines: ['ok', '(unclosed']\n    redact: [{ pattern: '[z-a]', replace: x }]\n`));
    expect(all).toHaveLength(2);
    expect(all[0]).toStartWith(`${FILE}:4: inputs[0].include_lines[1]: is not a valid regular expression (JavaScript syntax): `);
    expect(all[0]).toEndWith(`(got "(unclosed")`);
    expect(all[1]).toStartWith(`${FILE}:5: inputs[0].redact[0].pattern: is not a valid regular expression`);
  });

  test("the options that change records need format line or json", () => {
    const all = problems(base(`    fields: { a: b }\n    exclude_lines: [x]\n    key: none\n`));
    expect(all).toEqual([
      `${FILE}:3: inputs[0].fields: needs format: line or json (format: packed ships the file's bytes as they are)`,
      `${FILE}:4: inputs[0].exclude_lines: needs format: line or json (format: packed ships the file's bytes as they are)`,
      `${FILE}:5: inputs[0].key: needs format: line or json (format: packed ships the file's bytes as they are)`,
    ]);
  });

  test("key and topic must name fields that exist; reserved and malformed field names; bad key; redact without a pattern", () => {
    expect(problems(base(`    format: line\n    fields: { a: b }\n    key: field:service\n`))).toEqual([`${FILE}:5: inputs[0].key: names no field of inputs[0].fields (a) (got "field:service")`]);
    expect(problems(base(`    format: line\n    topic: 'logs-\${fields.nope}'\n`))).toEqual([`${FILE}:4: inputs[0].topic: \${fields.nope} names no field of inputs[0].fields (got "logs-\${fields.nope}")`]);
    expect(problems(base(`    format: line\n    fields: { s: "a b" }\n    topic: 'logs-\${fields.s}'\n`))).toEqual([`${FILE}:5: inputs[0].topic: becomes "logs-a b" with the fields, not a Kafka topic name: letters, digits, '.', '_', '-' (got "logs-\${fields.s}")`]);
    expect(problems(base(`    format: line\n    fields: { offset: "1" }\n`))[0]).toContain("inputs[0].fields.offset: is a name every record already carries");
    expect(problems(base(`    format: line\n    key: hostname\n`))).toEqual([`${FILE}:4: inputs[0].key: must be path | none | field:NAME (got "hostname")`]);
    expect(problems(base(`    format: line\n    redact: [{ replace: x }]\n`))).toEqual([`${FILE}:4: inputs[0].redact[0].pattern: missing: the regular expression to replace`]);
    expect(problems(base(`    format: xml\n`))).toEqual([`${FILE}:3: inputs[0].format: must be one of packed | line | json (got "xml")`]);
  });

  test("multiline: defaults, exactly one of start and continue, valid patterns and limits, line or json only", () => {
    const c = parseConfig(base(`    format: json\n    multiline: { start: '^\\d{4}-' }\n`), FILE, {});
    expect(c.inputs[0]!.multiline).toEqual({ start: "^\\d{4}-", max_lines: 500, max_bytes: 1024 * 1024, timeout: 1000 });
    expect(parseConfig(base(`    format: line\n    multiline: { continue: '^\\s', max_lines: 9, max_bytes: 4KiB, timeout: 250ms }\n`), FILE, {}).inputs[0]!.multiline).toEqual({ continue: "^\\s", max_lines: 9, max_bytes: 4096, timeout: 250 });
    expect(problems(base(`    format: line\n    multiline: { start: a, continue: b }\n`))).toEqual([`${FILE}:4: inputs[0].multiline: needs exactly one of start (a line matching it starts an event) and continue (a line matching it continues the one before)`]);
    expect(problems(base(`    format: line\n    multiline: { start: '(', max_lines: 0, timeout: 1, spam: 1 }\n`))).toEqual([
      expect.stringContaining(`${FILE}:4: inputs[0].multiline.spam: unknown key; known keys: start, continue, max_lines, max_bytes, timeout`),
      expect.stringContaining(`${FILE}:4: inputs[0].multiline.start: is not a valid regular expression`),
      `${FILE}:4: inputs[0].multiline.max_lines: must be a whole number, at least 1 (got "0")`,
      `${FILE}:4: inputs[0].multiline.timeout: must be a duration with a unit, e.g. 1s, at least 10ms (got "1")`,
    ]);
    expect(problems(base(`    multiline: { start: a }\n`))).toEqual([`${FILE}:3: inputs[0].multiline: needs format: line or json (format: packed ships the file's bytes as they are)`]);
  });
});

describe("format: multiline events (formatEvents)", () => {
  const ml = (o: Partial<InputConfig["multiline"] & object> = {}): Partial<InputConfig> => ({ format: "line", multiline: { start: "^\\d{4}-", max_lines: 500, max_bytes: 1 << 20, timeout: 1000, ...o } });
  const trace = "2026-11-30 ERROR boom\n  at a.b(C.java:1)\n  at d.e(F.java:2)\n";

  test("lines join the event their start line began; the last event stays open, a copy, until the next start line", () => {
    const fmt = compileFormat(input(ml()))!;
    const cutAt = trace.indexOf("\n", 22) + 1; // a read ends inside the event, after its second line
    const first = Buffer.from(`2026-11-30 INFO one\n${trace.slice(0, cutAt)}`);
    const a = formatEvents({ bytes: first, start: 0, end: first.length }, SOURCE, fmt, LIMITS, WALL, 5, null);
    expect(a.chunks.map((c) => c.value.toString())).toEqual(["2026-11-30 INFO one\n"]);
    expect(a.open).toMatchObject({ start: 20, end: first.length, lines: 2, since: 5 });
    first.fill(0); // the read buffer is reused: the open event holds its own copy
    const rest = Buffer.from(`${trace.slice(cutAt)}2026-11-30 INFO two\n`);
    const b = formatEvents({ bytes: rest, start: first.length, end: first.length + rest.length }, SOURCE, fmt, LIMITS, WALL, 9, a.open);
    expect(b.chunks.map((c) => [c.start, c.end, c.lines, c.value.toString()])).toEqual([[20, 20 + trace.length, 3, trace]]);
    expect(b.open).toMatchObject({ start: 20 + trace.length, lines: 1 });
    expect(closeEvent(b.open!, SOURCE, LIMITS).map((c) => c.value.toString())).toEqual(["2026-11-30 INFO two\n"]);
  });

  test("continue: a line matching it joins the one before; json gets the event as one message", () => {
    const fmt = compileFormat(input({ format: "json", multiline: { continue: "^\\s", max_lines: 500, max_bytes: 1 << 20, timeout: 1000 } }))!;
    const text = "Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: bad\nnext\n";
    const r = formatEvents(span(text, 0), SOURCE, fmt, LIMITS, WALL, 0, null);
    expect(r.chunks.map((c) => JSON.parse(c.value.toString()).message)).toEqual(["Traceback (most recent call last):\n  File \"x.py\", line 1", "ValueError: bad"]);
    expect(r.chunks.map((c) => JSON.parse(c.value.toString()).offset)).toEqual([0, 57]);
    expect(r.open?.start).toBe(73);
  });

  test("max_lines and max_bytes cut an event and say so; include_lines sees the whole event", () => {
    const cuts: string[] = [];
    const report = { invalidUtf8: () => {}, filtered: () => {}, eventCut: (_s: Source, offset: number, reason: string) => cuts.push(`${reason}@${offset}`) };
    const text = "2026 a\n x\n x\n x\n x\n2026 b\n";
    const fmt = compileFormat(input({ ...ml({ start: "^2026", max_lines: 3 }), include_lines: ["^2026 a"] }))!;
    const r = formatEvents(span(text, 0), SOURCE, fmt, LIMITS, WALL, 0, null, report);
    expect(r.chunks.map((c) => c.value.toString())).toEqual(["2026 a\n x\n x\n", ""]); // the cut-off rest does not start with "2026 a": filtered
    expect(cuts).toEqual(["max_lines@0"]);
    expectContiguous(r.chunks, 0, r.open!.start);
    const bytes = compileFormat(input(ml({ start: "^2026", max_bytes: 10 })))!;
    const r2 = formatEvents(span("2026 a\n x\n x\n", 0), SOURCE, bytes, LIMITS, WALL, 0, null, report);
    expect(r2.chunks.map((c) => c.value.toString())).toEqual(["2026 a\n x\n"]); // 10 bytes: one more line would pass max_bytes
    expect(r2.open).toMatchObject({ start: 10, lines: 1 });
    expect(cuts).toEqual(["max_lines@0", "max_bytes@0"]);
  });
});
