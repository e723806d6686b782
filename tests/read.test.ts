// read.ts: a Tail hands out complete lines only, byte for byte, each once; a partial last
// line waits for its "\n" (or flushPartial); over-long lines are split, truncated or dropped
// as documented, with bounded buffers and without looping.
import { afterAll, describe, expect, test } from "bun:test";
import { closeSync, openSync } from "node:fs";
import { BufferPool } from "../lib/memory.ts";
import { Tail, type Span, type TailOptions } from "../lib/files/read.ts";
import { makeLogDir } from "./helpers/logDir.ts";

const MiB = 1024 * 1024;
const dir = makeLogDir("read");
afterAll(() => dir.cleanup());

const fds: number[] = [];
afterAll(() => fds.forEach((fd) => closeSync(fd)));

let seq = 0;
/** A fresh file with `content` and a Tail on it from `offset`. */
function tailOf(content: string | Buffer, opts: Partial<TailOptions> = {}, offset = 0): { tail: Tail; name: string } {
  const name = `f${seq++}.log`;
  dir.write(name, content);
  const fd = openSync(dir.path(name), "r");
  fds.push(fd);
  return { tail: new Tail(fd, offset, { maxLineBytes: MiB, longLines: "split", readBytes: MiB, ...opts }), name };
}

/** Reads until null; fails instead of looping for ever. */
function readAll(tail: Tail, limit = 10_000): Span[] {
  const out: Span[] = [];
  for (let s = tail.read(); s !== null; s = tail.read()) {
    out.push(s);
    if (out.length > limit) throw new Error(`read() still returning spans after ${limit}: it loops`);
  }
  return out;
}

const text = (spans: Span[]) => Buffer.concat(spans.map((s) => s.bytes)).toString("latin1");

/** Spans follow each other with no gap or overlap, from `from` to `to`. */
function expectContiguous(spans: Span[], from: number, to: number): void {
  let at = from;
  for (const s of spans) {
    expect(s.start).toBe(at);
    expect(s.end).toBeGreaterThan(s.start);
    at = s.end;
  }
  expect(at).toBe(to);
}

describe("complete lines only", () => {
  test("read() stops at the last complete line", () => {
    const { tail } = tailOf("one\ntwo\nthr");
    const s = tail.read()!;
    expect(s.bytes.toString()).toBe("one\ntwo\n");
    expect([s.start, s.end]).toEqual([0, 8]);
    expect(tail.offset).toBe(8);
    expect(tail.read()).toBeNull();
    expect(tail.partialBytes).toBe(3);
  });

  test("a partial last line is returned whole, once, after its newline arrives", () => {
    const { tail, name } = tailOf("");
    expect(tail.read()).toBeNull();
    dir.append(name, "par");
    expect(tail.read()).toBeNull();
    dir.append(name, "tial");
    expect(tail.read()).toBeNull();
    expect(tail.partialBytes).toBe(7);
    expect(tail.hasNewBytes(dir.size(name))).toBe(false);
    dir.append(name, "\nnext");
    expect(tail.hasNewBytes(dir.size(name))).toBe(true);
    const s = tail.read()!;
    expect(s.bytes.toString()).toBe("partial\n");
    expect([s.start, s.end]).toEqual([0, 8]);
    expect(tail.read()).toBeNull();
    dir.append(name, "\n");
    expect(tail.read()!.bytes.toString()).toBe("next\n");
    expect(tail.read()).toBeNull();
    expect(tail.partialBytes).toBe(0);
  });

  test("reading starts at the given offset", () => {
    const { tail } = tailOf("skip\nkeep\n", {}, 5);
    const s = tail.read()!;
    expect(s.bytes.toString()).toBe("keep\n");
    expect([s.start, s.end]).toEqual([5, 10]);
  });

  test("flushPartial hands out the pending line as it is, and the next line starts after it", () => {
    const { tail, name } = tailOf("done\nhalf");
    expect(tail.flushPartial()).toBeNull(); // nothing seen yet
    expect(tail.read()!.bytes.toString()).toBe("done\n");
    expect(tail.read()).toBeNull();
    const p = tail.flushPartial()!;
    expect(p.bytes.toString()).toBe("half");
    expect([p.start, p.end]).toEqual([5, 9]);
    expect(tail.flushPartial()).toBeNull();
    expect(tail.read()).toBeNull();
    dir.append(name, " more\n");
    const s = tail.read()!;
    expect(s.bytes.toString()).toBe(" more\n");
    expect([s.start, s.end]).toEqual([9, 15]);
  });

  test("model: random appends in random pieces, read in between, deliver exactly the complete lines", () => {
    let state = 12345;
    const rand = (n: number) => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) % n);
    for (let round = 0; round < 30; round++) {
      const maxLineBytes = 1 + rand(64);
      const { tail, name } = tailOf("", { maxLineBytes, readBytes: 1 + rand(100) });
      let file = "";
      const spans: Span[] = [];
      for (let step = 0; step < 40; step++) {
        // Lines of up to max_line_bytes, counting the part of a pending line already written.
        let pending = file.length - (file.lastIndexOf("\n") + 1);
        let add = "";
        for (let l = rand(4); l > 0; l--) {
          add += "abc\r\0\xff".repeat(20).slice(0, rand(maxLineBytes - pending + 1)) + "\n";
          pending = 0;
        }
        add += "xyz".repeat(30).slice(0, rand(Math.min(maxLineBytes - pending, 20) + 1)); // a partial line, maybe
        const cut = rand(add.length + 1);
        for (const piece of [add.slice(0, cut), add.slice(cut)]) {
          dir.append(name, Buffer.from(piece, "latin1"));
          file += piece;
          spans.push(...readAll(tail));
          const complete = file.slice(0, file.lastIndexOf("\n") + 1);
          expect(text(spans)).toBe(complete);
          expect(tail.offset).toBe(complete.length);
          expect(tail.partialBytes).toBe(file.length - complete.length);
        }
      }
      for (const s of spans) expect(s.bytes.at(-1)).toBe(0x0a);
      expectContiguous(spans, 0, tail.offset);
    }
  });
});

describe("byte for byte", () => {
  test("CRLF, NUL and invalid UTF-8 pass through unchanged", () => {
    const content = Buffer.concat([Buffer.from("dos line\r\nnul\0inside\n"), Buffer.from([0xff, 0xfe, 0x80, 0xc3, 0x0a]), Buffer.from("\r\n\n")]);
    const { tail } = tailOf(content);
    const spans = readAll(tail);
    expect(Buffer.concat(spans.map((s) => s.bytes)).equals(content)).toBe(true);
  });

  test("a multi-byte character straddling the 1 MiB read boundary arrives intact", () => {
    const first = Buffer.from("a".repeat(MiB - 10) + "\n"); // ends 9 bytes before the boundary
    const second = Buffer.from("b".repeat(7) + "😀 tail\r\n", "utf8"); // the emoji covers bytes MiB-2 .. MiB+1
    const third = Buffer.from("é".repeat(1000) + "\n", "utf8");
    const content = Buffer.concat([first, second, third]);
    expect(content.subarray(MiB - 2, MiB + 2).toString("utf8")).toBe("😀");
    const { tail } = tailOf(content, { readBytes: MiB });
    const spans = readAll(tail);
    expect(spans.length).toBeGreaterThan(1);
    expect(Buffer.concat(spans.map((s) => s.bytes)).equals(content)).toBe(true);
    expect(spans.map((s) => s.bytes.toString("utf8")).join("")).toContain("bbbbbbb😀 tail\r\n");
    expectContiguous(spans, 0, content.length);
  });

  test("a read boundary inside a multi-byte character, with small reads", () => {
    const content = Buffer.from("ж😀ж\n".repeat(50), "utf8");
    for (const readBytes of [1, 2, 3, 5, 7, 11]) {
      const { tail } = tailOf(content, { readBytes, maxLineBytes: 64 });
      const spans = readAll(tail);
      expect(Buffer.concat(spans.map((s) => s.bytes)).equals(content)).toBe(true);
    }
  });
});

describe("over-long lines (max_line_bytes 16)", () => {
  const long = "x".repeat(40);
  const input = `ok\n${long}\nnext\n`; // the long line covers bytes 3..43, its "\n" is byte 43

  function expectSplit(readBytes: number): void {
    const { tail } = tailOf(input, { maxLineBytes: 16, longLines: "split", readBytes });
    const spans = readAll(tail);
    expect(text(spans)).toBe(input);
    expectContiguous(spans, 0, input.length);
    // Pieces of exactly max_line_bytes; the rest of the line goes with the next lines.
    const pieces = spans.filter((s) => s.bytes.at(-1) !== 0x0a);
    expect(pieces.map((s) => [s.start, s.bytes.length])).toEqual([
      [3, 16],
      [19, 16],
    ]);
    expect(pieces[0]!.longLine).toEqual({ action: "split", offset: 3 });
    for (const s of spans) expect(s.bytes.length).toBeLessThanOrEqual(Math.max(readBytes, 17));
  }

  function expectTruncate(readBytes: number): void {
    const { tail } = tailOf(input, { maxLineBytes: 16, longLines: "truncate", readBytes });
    const spans = readAll(tail);
    expect(text(spans)).toBe(`ok\n${"x".repeat(16)}\nnext\n`);
    expectContiguous(spans, 0, input.length);
    const cut = spans.filter((s) => s.longLine);
    expect(cut).toHaveLength(1);
    expect(cut[0]!.longLine).toEqual({ action: "truncate", offset: 3 });
    expect([cut[0]!.start, cut[0]!.bytes.toString()]).toEqual([3, "x".repeat(16) + "\n"]);
    expect(tail.offset).toBe(input.length);
  }

  function expectDrop(readBytes: number): void {
    const { tail } = tailOf(input, { maxLineBytes: 16, longLines: "drop", readBytes });
    const spans = readAll(tail);
    expect(text(spans)).toBe(`ok\nnext\n`);
    expectContiguous(spans, 0, input.length);
    const dropped = spans.filter((s) => s.longLine);
    expect(dropped).toHaveLength(1);
    expect(dropped[0]!.longLine).toEqual({ action: "drop", offset: 3 });
    expect(dropped[0]!.bytes.length).toBe(0);
  }

  // Reads shorter than the long line, shorter and longer than max_line_bytes.
  test("split: pieces of max_line_bytes, each with its offset, then the rest with the next lines", () => {
    for (const readBytes of [1, 8, 20]) expectSplit(readBytes);
  });

  test('truncate: the first max_line_bytes and a "\\n", the rest skipped up to its end', () => {
    for (const readBytes of [1, 8, 20]) expectTruncate(readBytes);
  });

  test("drop: nothing of the line is handed out, its bytes are accounted for", () => {
    for (const readBytes of [1, 8, 20]) expectDrop(readBytes);
  });

  test("max_line_bytes holds also when the long line and its newline fit in one read", () => {
    // With reads of 1 MiB (the agent's) and max_line_bytes 64KiB, a 100 KB line is otherwise shipped whole.
    for (const readBytes of [64, 4096]) {
      expectSplit(readBytes);
      expectTruncate(readBytes);
      expectDrop(readBytes);
    }
  });

  test("a line of exactly max_line_bytes is not over-long", () => {
    for (const longLines of ["split", "truncate", "drop"] as const) {
      for (const readBytes of [8, 4096]) {
        const { tail } = tailOf(`${"y".repeat(16)}\n`, { maxLineBytes: 16, longLines, readBytes });
        const spans = readAll(tail);
        expect(text(spans)).toBe(`${"y".repeat(16)}\n`);
        expect(spans.some((s) => s.longLine)).toBe(false);
      }
    }
  });

  test("truncate/drop keep skipping while the long line is still being written, then resume", () => {
    for (const longLines of ["truncate", "drop"] as const) {
      const { tail, name } = tailOf("z".repeat(30), { maxLineBytes: 16, longLines, readBytes: 8 });
      const first = readAll(tail);
      expect(first[0]!.longLine?.action).toBe(longLines);
      expect(tail.offset).toBe(30);
      expect(tail.flushPartial()).toBeNull(); // the rest of a cut line is never flushed as a line
      dir.append(name, "z".repeat(30));
      const more = readAll(tail);
      expect(more.every((s) => s.bytes.length === 0)).toBe(true);
      dir.append(name, "zz\nafter\n");
      const rest = readAll(tail);
      expect(text(rest)).toBe("after\n");
      expectContiguous([...first, ...more, ...rest], 0, 69);
    }
  });

  test("a 20 MB line with max_line_bytes 64 KiB finishes in every mode, with bounded buffers", () => {
    const maxLineBytes = 64 * 1024;
    const big = Buffer.alloc(20 * MiB + 123, 0x41);
    big[big.length - 1] = 0x0a;
    const content = Buffer.concat([Buffer.from("before\n"), big, Buffer.from("after\n")]);
    dir.write("huge.log", content);
    for (const longLines of ["split", "truncate", "drop"] as const) {
      const fd = openSync(dir.path("huge.log"), "r");
      fds.push(fd);
      const tail = new Tail(fd, 0, { maxLineBytes, longLines, readBytes: MiB });
      const spans: Span[] = [];
      let delivered = 0;
      let first: Span | null = null;
      let last: Span | null = null;
      let prevEnd = 0;
      for (let s = tail.read(); s !== null; s = tail.read()) {
        expect(s.start).toBe(prevEnd);
        prevEnd = s.end;
        expect(s.bytes.length).toBeLessThanOrEqual(MiB);
        expect(s.bytes.buffer.byteLength).toBeLessThanOrEqual(MiB + 1); // nothing grows with the line
        if (s.start > 7 && s.start < 7 + big.length - MiB) expect(s.bytes.length).toBeLessThanOrEqual(maxLineBytes + 1);
        delivered += s.bytes.length;
        first ??= s;
        last = s;
        if (spans.push(s) > 1_000) throw new Error(`${longLines}: read() loops`);
      }
      expect(prevEnd).toBe(content.length);
      expect(first!.bytes.toString()).toBe("before\n");
      expect(last!.bytes.toString().endsWith("after\n")).toBe(true);
      if (longLines === "split") expect(delivered).toBe(content.length);
      if (longLines === "truncate") expect(delivered).toBe(7 + maxLineBytes + 1 + 6);
      if (longLines === "drop") expect(delivered).toBe(7 + 6);
    }
  });
});

describe("memory", () => {
  test("a small span does not pin a whole read buffer", () => {
    // The agent counts span bytes against max_inflight_bytes while they wait for Kafka; a
    // span that is a view of a larger allocation holds that whole allocation meanwhile.
    const { tail, name } = tailOf("");
    for (let i = 0; i < 5; i++) {
      dir.append(name, `small line ${i}\n`);
      const s = tail.read()!;
      expect(s.bytes.toString()).toBe(`small line ${i}\n`);
      expect(s.bytes.buffer.byteLength).toBeLessThanOrEqual(Math.max(8192, 2 * s.bytes.length));
    }
  });
});

describe("rewind", () => {
  test("rewind(offset) reads again from there", () => {
    const { tail } = tailOf("a\nb\nc\n");
    expect(text(readAll(tail))).toBe("a\nb\nc\n");
    tail.rewind(2);
    const again = readAll(tail);
    expect(text(again)).toBe("b\nc\n");
    expect(again[0]!.start).toBe(2);
  });

  test("rewind after a truncation clears a pending partial line and a skip in progress", () => {
    const { tail, name } = tailOf("k".repeat(40), { maxLineBytes: 16, longLines: "drop", readBytes: 8 });
    readAll(tail); // now skipping the rest of an over-long line
    dir.truncate(name);
    dir.append(name, "fresh\npart");
    tail.rewind(0);
    expect(tail.partialBytes).toBe(0);
    const spans = readAll(tail);
    expect(text(spans)).toBe("fresh\n");
    expect(spans[0]!.start).toBe(0);
    expect(tail.partialBytes).toBe(4);
  });

});

describe("with a buffer pool", () => {
  test("a span filling a quarter of a read buffer or more is handed out in place, marked with its pooled buffer", () => {
    const pool = new BufferPool(16 * MiB);
    const line = "x".repeat(99) + "\n";
    const { tail } = tailOf(line.repeat(8000), { readBytes: 64 * 1024, pool }); // 800 KB
    const span = tail.read()!;
    expect(span.hold).toBeDefined();
    expect(span.bytes.length).toBe(64 * 1024 - ((64 * 1024) % 100));
    expect(pool.heldBytes).toBe(0); // still out: the chunks hold it
    const release = span.hold!(2);
    release();
    expect(pool.heldBytes).toBe(0);
    release();
    expect(pool.heldBytes).toBe(64 * 1024); // back once both chunks let go
    expect(pool.take(64 * 1024).buffer).toBe(span.bytes.buffer); // it was a view of that buffer: no copy
  });

  test("a small span is copied out and its read buffer goes straight back to the pool", () => {
    const pool = new BufferPool(16 * MiB);
    const { tail } = tailOf("short line\n", { readBytes: 64 * 1024, pool });
    const span = tail.read()!;
    expect(span.hold).toBeUndefined();
    expect(span.bytes.toString()).toBe("short line\n");
    expect(pool.heldBytes).toBe(64 * 1024);
    expect(tail.read()).toBeNull();
    expect(pool.heldBytes).toBe(64 * 1024); // an empty read gives its buffer back too
  });

  test("read(limit) reads no more than the limit allows, down to half a read buffer", () => {
    const { tail } = tailOf(("y".repeat(99) + "\n").repeat(20_000), { readBytes: MiB }); // 2 MB
    const span = tail.read(10)!;
    expect(span.bytes.length).toBeLessThanOrEqual(MiB / 2);
    expect(span.bytes.length).toBeGreaterThan(MiB / 2 - 100);
    const next = tail.read(MiB)!;
    expect(next.bytes.length).toBeGreaterThan(MiB - 100);
  });
});
