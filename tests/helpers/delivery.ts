// The test kit's one delivery checker: what arrived in Kafka (read back with consumeAll),
// walked line by line. Every line is placed in a stream at a position; a line at the stream's
// next position is new and moves it on, one before it is a duplicate (a re-send), one after
// it a gap (something lost or reordered). Two ways to place a line, for two kinds of test:
//
//   checkDelivery(records, fileContents(paths), { host })   by the files' contents: stream =
//       the record key (path), position = its offset header; also holds the published
//       contract (headers, one partition and identity per path, byte-exact whole lines, the
//       files covered exactly). Throws on the first violation. For files still there.
//   verifyDelivery(records, skip)                           by the lines themselves
//       (lines.ts' seqLine, `TAG SEQ PAYLOAD`): stream = TAG, position = SEQ, each line
//       re-derived; collects problems in `errors`. For files rotated, removed or cut.
//   shortfall(verifyDelivery(...), { tag: linesWritten })   per tag, what is missing

import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import type { ConsumedRecord } from "./consume.ts";
import { seqLine } from "./lines.ts";

// --- the walk ------------------------------------------------------------------------------

type Placed = "new" | "duplicate" | "gap";

/** Per stream, the position the next new line must start at; `skipped` positions are stepped over. */
class LineWalk {
  readonly due = new Map<string, number>();
  constructor(private readonly skipped: (stream: string, at: number) => boolean = () => false) {}

  /** Where the next new line of `stream` must start. */
  next(stream: string): number {
    let want = this.due.get(stream) ?? 0;
    while (this.skipped(stream, want)) want++;
    return want;
  }

  /** A line taking `size` positions at `at`: new (the stream moves past it), a duplicate, or after a gap. */
  place(stream: string, at: number, size: number): Placed {
    const want = this.next(stream);
    if (at === want) {
      this.due.set(stream, at + size);
      return "new";
    }
    return at < want ? "duplicate" : "gap";
  }
}

/** Each line of a record value as [start, end) (end past its "\n"); a partial last line is not one. */
function* linesOf(v: Buffer): Generator<[number, number]> {
  for (let pos = 0, nl; (nl = v.indexOf(0x0a, pos)) >= 0; pos = nl + 1) yield [pos, nl + 1];
}

// --- by the files' contents ----------------------------------------------------------------

export interface FileDelivery {
  partition: number;
  fileId: string;
  records: number;
  lines: number; // distinct lines delivered
  bytes: number; // distinct bytes delivered
  duplicateLines: number;
  duplicateRecords: number; // records made only of lines already delivered
}

export interface DeliveryReport {
  records: number;
  lines: number; // distinct
  bytes: number; // distinct
  duplicateLines: number;
  duplicateRecords: number;
  files: Map<string, FileDelivery>;
}

/** The bytes a file has shipped once it is caught up: everything through its last "\n". */
export function completeLines(content: Buffer): Buffer {
  return content.subarray(0, content.lastIndexOf(0x0a) + 1);
}

/** The host header logship sends by default: $HOSTNAME, else the OS hostname. */
export function defaultHost(): string {
  return process.env.HOSTNAME || hostname();
}

/** path → the file's content now, for checkDelivery. */
export function fileContents(paths: string[]): Map<string, Buffer> {
  return new Map(paths.map((p) => [p, readFileSync(p)]));
}

/**
 * Holds records against the files they came from, by the published contract: key = path;
 * headers host, path, offset (byte offset in the file of the value's first byte) and file
 * (one identity per path here); values are whole lines, byte for byte; a file's records sit
 * in one partition, in file order. A line at an offset already delivered is a duplicate (an
 * error unless `duplicates: "count"`), any other line must start where the previous one
 * ended, and the lines together must cover the file's complete lines exactly (with
 * `prefixOnly`, a first part of them: a stopped run). Throws naming file, offset and what differs.
 */
export function checkDelivery(
  records: ConsumedRecord[],
  files: Map<string, Buffer>, // path → file content now (a partial last line is not expected)
  opts: { host: string; duplicates?: "forbid" | "count"; prefixOnly?: boolean },
): DeliveryReport {
  const byPath = new Map<string, ConsumedRecord[]>();
  for (const r of records) {
    if (!files.has(r.key)) throw new Error(`record ${r.partition}/${r.offset} has key ${JSON.stringify(r.key)}, not one of the shipped files`);
    const list = byPath.get(r.key) ?? [];
    list.push(r);
    byPath.set(r.key, list);
  }
  const report: DeliveryReport = { records: records.length, lines: 0, bytes: 0, duplicateLines: 0, duplicateRecords: 0, files: new Map() };
  const walk = new LineWalk();
  for (const [path, content] of files) {
    const want = completeLines(content);
    const list = (byPath.get(path) ?? []).sort((a, b) => a.offset - b.offset);
    const first = list[0];
    if (!first) {
      if (want.length > 0 && !opts.prefixOnly) throw new Error(`${path}: nothing arrived, ${want.length} bytes expected`);
      continue;
    }
    const f: FileDelivery = { partition: first.partition, fileId: first.headers.file ?? "", records: list.length, lines: 0, bytes: 0, duplicateLines: 0, duplicateRecords: 0 };
    if (!f.fileId) throw new Error(`${path}: record ${first.partition}/${first.offset} has no file header`);
    for (const r of list) {
      const at = `${path} record ${r.partition}/${r.offset}`;
      const h = r.headers;
      if (r.partition !== f.partition) throw new Error(`${at}: in partition ${r.partition}, the file's first record in ${f.partition}`);
      if (h.path !== path) throw new Error(`${at}: path header ${JSON.stringify(h.path)} differs from the key`);
      if (h.host !== opts.host) throw new Error(`${at}: host header ${JSON.stringify(h.host)}, expected ${JSON.stringify(opts.host)}`);
      if (h.file !== f.fileId) throw new Error(`${at}: file header ${JSON.stringify(h.file)}, the file's first record has ${JSON.stringify(f.fileId)}`);
      if (!/^\d+$/.test(h.offset ?? "")) throw new Error(`${at}: offset header ${JSON.stringify(h.offset)} is not a byte offset`);
      const start = Number(h.offset);
      const v = r.value;
      if (v.length === 0 || v[v.length - 1] !== 0x0a) throw new Error(`${at}: value (${v.length} bytes at ${start}) does not end with a complete line`);
      if (start + v.length > want.length || !v.equals(want.subarray(start, start + v.length))) {
        throw new Error(`${at}: value (${v.length} bytes) differs from the file's bytes at offset ${start}: ${JSON.stringify(v.subarray(0, 60).toString("latin1"))}`);
      }
      let fresh = 0;
      for (const [pos, end] of linesOf(v)) {
        const lineAt = start + pos;
        const next = walk.next(path);
        const placed = walk.place(path, lineAt, end - pos);
        if (placed === "duplicate") {
          if (opts.duplicates !== "count") throw new Error(`${at}: line at offset ${lineAt} was already delivered (duplicate)`);
          f.duplicateLines++;
          // a duplicate must still be a line boundary of the file
          if (lineAt > 0 && want[lineAt - 1] !== 0x0a) throw new Error(`${at}: duplicate at ${lineAt} does not start a line`);
        } else if (placed === "gap") {
          throw new Error(`${at}: bytes ${next}..${lineAt} are missing (or out of order): the line at ${lineAt} came before them`);
        } else {
          fresh++;
          f.lines++;
          f.bytes += end - pos;
        }
      }
      if (fresh === 0) f.duplicateRecords++;
    }
    const next = walk.next(path);
    if (next !== want.length && !opts.prefixOnly) throw new Error(`${path}: bytes ${next}..${want.length} never arrived`);
    report.files.set(path, f);
    report.lines += f.lines;
    report.bytes += f.bytes;
    report.duplicateLines += f.duplicateLines;
    report.duplicateRecords += f.duplicateRecords;
  }
  return report;
}

// --- by the lines themselves -----------------------------------------------------------------

export interface Delivery {
  /** Lines delivered per tag, duplicates excluded (the next seq expected). */
  next: Map<string, number>;
  /** Lines that arrived again (re-sends after a crash or a retried send). */
  duplicates: number;
  /** Problems: gaps (a line arrived before an earlier one), corrupt lines, partial records. */
  errors: string[];
}

/**
 * Checks records of seqLine lines: every record holds whole lines; for each tag, lines
 * arrive in order, each one byte-exact; a line seen again is counted as a duplicate; a line
 * that skips ahead is an error (lost or reordered). `skip` lists (tag, seq) known to be gone
 * (dropped on purpose), which the walk steps over.
 */
export function verifyDelivery(records: ConsumedRecord[], skip: Map<string, Set<number>> = new Map()): Delivery {
  const walk = new LineWalk((tag, seq) => skip.get(tag)?.has(seq) ?? false);
  const errors: string[] = [];
  let duplicates = 0;
  for (const r of records) {
    const v = r.value;
    if (v[v.length - 1] !== 0x0a) errors.push(`record p${r.partition}@${r.offset} does not end with a newline`);
    for (const [pos, end] of linesOf(v)) {
      const line = v.toString("latin1", pos, end - 1);
      const m = /^(\S+) (\d{8}) /.exec(line);
      if (!m) {
        errors.push(`unparseable line ${JSON.stringify(line.slice(0, 60))}`);
        continue;
      }
      const tag = m[1]!;
      const seq = Number(m[2]);
      if (`${line}\n` !== seqLine(tag, seq, line.length - m[0].length)) errors.push(`corrupt line ${JSON.stringify(line.slice(0, 60))}`);
      const due = walk.next(tag);
      const placed = walk.place(tag, seq, 1);
      if (placed === "duplicate") duplicates++;
      else if (placed === "gap") errors.push(`${tag}: line ${seq} arrived where ${due} was due`);
    }
  }
  return { next: walk.due, duplicates, errors };
}

/** Asserts-friendly summary: for each tag, how many lines arrived against how many were written. */
export function shortfall(d: Delivery, written: Record<string, number>): string[] {
  const out: string[] = [];
  for (const [tag, n] of Object.entries(written)) {
    const got = d.next.get(tag) ?? 0;
    if (got !== n) out.push(`${tag}: ${got} of ${n} lines arrived`);
  }
  for (const tag of d.next.keys()) if (!(tag in written)) out.push(`${tag}: unexpected tag`);
  return out;
}
