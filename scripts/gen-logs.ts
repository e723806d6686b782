// Log generator for benchmarks and tests: realistic application log lines (an ISO timestamp,
// a level, a service, a varied message with key=value fields), each exactly as long as asked
// (a length drawn uniformly from [minLine, maxLine], "\n" included), all ASCII. The same seed
// and options always give the same bytes, so a benchmark's inputs can be named by their options.
//
//   bun scripts/gen-logs.ts --dir /dev/shm/logs --size 250MB --files 8 [--min 80] [--max 250]
//                           [--seed 1] [--prefix app] [--concat /dev/shm/all.log]
//
// From code: generateLogs({ dir, files, totalBytes, ... }) writes files; logBytes() returns
// lines in memory; LineMaker.line() makes one line (with a given timestamp, for live tails).

import { closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";

/** A small, fast deterministic PRNG (mulberry32). */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.next() * list.length)]!;
  }
  hex(n: number): string {
    let s = "";
    while (s.length < n) s += ((this.next() * 4294967296) >>> 0).toString(16).padStart(8, "0");
    return s.slice(0, n);
  }
}

const SERVICES = ["api", "auth", "billing", "search", "worker", "gateway", "cache", "scheduler", "mailer", "ingest"] as const;
const METHODS = ["GET", "GET", "GET", "POST", "PUT", "DELETE", "PATCH"] as const;
const ROUTES = ["/api/v1/users/:id", "/api/v1/orders", "/api/v1/orders/:id/items", "/healthz", "/api/v2/search", "/login", "/api/v1/invoices/:id", "/static/app.js"] as const;
const STATUS = [200, 200, 200, 200, 201, 204, 301, 304, 400, 401, 403, 404, 409, 429, 500, 502, 503] as const;
const HOSTS = ["db-primary.internal", "db-replica-2.internal", "redis-0.cache", "payments.example.net", "s3.eu-west-1.amazonaws.com", "kafka-3.internal"] as const;
const ERRORS = ["ECONNRESET", "ETIMEDOUT", "ECONNREFUSED", "EPIPE", "deadline exceeded", "connection pool exhausted", "unexpected EOF"] as const;
const WORDS = ["request", "session", "tenant", "region", "shard", "attempt", "bytes", "rows", "queue", "user", "trace", "span", "cache", "worker", "job", "batch"] as const;
const AGENTS = ["Mozilla/5.0 (X11; Linux x86_64)", "curl/8.5.0", "okhttp/4.12.0", "Go-http-client/2.0", "python-requests/2.31.0"] as const;

/** INFO most of the time, as in real services. */
function level(r: Rng): string {
  const x = r.next();
  return x < 0.8 ? "INFO" : x < 0.9 ? "DEBUG" : x < 0.97 ? "WARN" : "ERROR";
}

type Template = (r: Rng) => string;

const TEMPLATES: Template[] = [
  (r) => `${r.pick(METHODS)} ${r.pick(ROUTES).replace(":id", String(r.int(1, 999_999)))} ${r.pick(STATUS)} ${r.int(1, 2500)}ms ip=10.${r.int(0, 255)}.${r.int(0, 255)}.${r.int(1, 254)} ua="${r.pick(AGENTS)}"`,
  (r) => `connection from 10.0.${r.int(0, 255)}.${r.int(1, 254)}:${r.int(1024, 65535)} closed after ${r.int(1, 5000)} requests`,
  (r) => `cache ${r.next() < 0.7 ? "hit" : "miss"} key=user:${r.int(1, 9_999_999)}:profile took=${(r.next() * 20).toFixed(3)}ms`,
  (r) => `payment ${r.hex(8)}-${r.hex(4)}-${r.hex(4)}-${r.hex(4)}-${r.hex(12)} authorised amount=${r.int(1, 99_999)}.${String(r.int(0, 99)).padStart(2, "0")} currency=${r.pick(["EUR", "USD", "GBP"])}`,
  (r) => `retrying request to ${r.pick(HOSTS)} attempt=${r.int(1, 8)} error="${r.pick(ERRORS)}" backoff_ms=${r.int(50, 30_000)}`,
  (r) => `job ${r.pick(["reindex", "export", "cleanup", "digest", "thumbnail"])} id=${r.int(1, 1e9)} finished in ${(r.next() * 90).toFixed(2)}s rows=${r.int(0, 1e6)}`,
  (r) => `query on ${r.pick(["orders", "users", "events", "invoices"])} took ${r.int(1, 4000)}ms rows=${r.int(0, 50_000)} plan=${r.pick(["index_scan", "seq_scan", "bitmap_heap"])}`,
  (r) => `user ${r.int(1, 9_999_999)} ${r.pick(["logged in", "logged out", "changed password", "enabled 2fa", "failed login"])} session=${r.hex(16)}`,
  (r) => `consumer lag topic=${r.pick(["events", "orders", "audit"])} partition=${r.int(0, 63)} lag=${r.int(0, 100_000)}`,
  (r) => `gc pause ${(r.next() * 40).toFixed(1)}ms heap_used=${r.int(50, 4000)}MB heap_total=${r.int(4000, 8000)}MB`,
];

/** Makes lines one at a time; timestamps advance a few milliseconds per line. */
export class LineMaker {
  private readonly r: Rng;
  private now: number;
  private second = -1;
  private isoSecond = "";

  constructor(
    seed = 1,
    private readonly minLine = 80,
    private readonly maxLine = 250,
    startMs = Date.UTC(2025, 0, 15, 8, 0, 0),
  ) {
    if (minLine < 1 || maxLine < minLine) throw new RangeError(`line length range [${minLine}, ${maxLine}] is empty`);
    this.r = new Rng(seed);
    this.now = startMs;
  }

  /** The next line, "\n" included, `len` bytes long (default: drawn from the range). `at` sets its timestamp (ms epoch). */
  line(len = this.r.int(this.minLine, this.maxLine), at?: number): string {
    const r = this.r;
    if (at === undefined) this.now += r.int(0, 7);
    const text = `${this.timestamp(at ?? this.now)} ${level(r)} [${r.pick(SERVICES)}] ${r.pick(TEMPLATES)(r)}`;
    return fit(r, text, len - 1) + "\n";
  }

  private timestamp(ms: number): string {
    const sec = Math.floor(ms / 1000);
    if (sec !== this.second) {
      this.second = sec;
      this.isoSecond = new Date(sec * 1000).toISOString().slice(0, 19);
    }
    return `${this.isoSecond}.${String(ms - sec * 1000).padStart(3, "0")}Z`;
  }
}

/** Pads `text` with key=value fields (or cuts it) to exactly `len` characters. */
function fit(r: Rng, text: string, len: number): string {
  if (text.length >= len) return text.slice(0, len);
  let out = text;
  if (len - out.length > 2048) {
    // A long line (a dumped payload or stack): build it from a repeated block, cheaply.
    const parts: string[] = [];
    for (let i = 0; i < 24; i++) parts.push(`${r.pick(WORDS)}_${i}=${r.hex(r.int(4, 24))}`);
    const block = " " + parts.join(" ");
    out += block.repeat(Math.ceil((len - out.length) / block.length));
    return out.slice(0, len);
  }
  while (out.length < len) out += ` ${r.pick(WORDS)}=${r.next() < 0.5 ? r.int(0, 1e6) : r.hex(r.int(4, 16))}`;
  return out.slice(0, len);
}

export interface GenerateOptions {
  dir: string; // created if missing
  files: number;
  totalBytes: number; // spread evenly over the files; each file ends at a line end at or past its share
  minLine?: number; // bytes, "\n" included (default 80)
  maxLine?: number; // default 250
  seed?: number; // default 1
  prefix?: string; // file names: PREFIX-00001.log (default "app")
  concat?: string; // also write every file's bytes, in file order, to this path (for `kcat -l`)
  /**
   * Share of lines followed by continuation lines (1–8 lines of a Java stack trace, indented,
   * no timestamp), for multiline events; 0 (default) gives the same bytes as before it existed.
   */
  continuation?: number;
}

export interface GeneratedLogs {
  files: string[];
  bytes: number;
  lines: number;
  /** Lines that start an event (not continuation lines): the records of a multiline `start` pattern. */
  events: number;
}

const FRAMES = ["com.example.api.OrderController.create", "com.example.core.Service.handle", "org.springframework.web.servlet.FrameworkServlet.service", "java.base/java.lang.Thread.run", "com.zaxxer.hikari.pool.HikariPool.getConnection", "io.netty.channel.nio.NioEventLoop.run"] as const;

/** A stack-trace continuation line of exactly `len` bytes ("\n" included), never starting with a digit. */
function continuationLine(r: Rng, len: number): string {
  const frame = r.pick(FRAMES);
  const file = frame.split(".").at(-2)!;
  return fit(r, `    at ${frame}(${file}.java:${r.int(10, 999)})`, len - 1) + "\n";
}

const WRITE_BUFFER = 4 * 1024 * 1024;

/** Writes a log set; deterministic for given options. */
export function generateLogs(opts: GenerateOptions): GeneratedLogs {
  const { dir, files: count, totalBytes } = opts;
  const minLine = opts.minLine ?? 80;
  const maxLine = opts.maxLine ?? 250;
  const seed = opts.seed ?? 1;
  const prefix = opts.prefix ?? "app";
  mkdirSync(dir, { recursive: true });
  const digits = Math.max(5, String(count).length);
  const perFile = Math.max(1, Math.floor(totalBytes / count));
  const buf = Buffer.allocUnsafe(WRITE_BUFFER + maxLine);
  const concatFd = opts.concat ? openSync(opts.concat, "w") : -1;
  const out: GeneratedLogs = { files: [], bytes: 0, lines: 0, events: 0 };
  const continuation = opts.continuation ?? 0;
  try {
    for (let f = 0; f < count; f++) {
      const path = join(dir, `${prefix}-${String(f + 1).padStart(digits, "0")}.log`);
      const maker = new LineMaker(seed * 1_000_003 + f, minLine, maxLine);
      const cr = new Rng(seed * 7_919 + f); // continuation lines draw from their own stream
      const fd = openSync(path, "w");
      let used = 0;
      let written = 0;
      const flush = () => {
        writeAll(fd, buf, used);
        if (concatFd >= 0) writeAll(concatFd, buf, used);
        used = 0;
      };
      try {
        while (written < perFile) {
          const n = buf.write(maker.line(), used, "latin1");
          used += n;
          written += n;
          out.lines++;
          out.events++;
          if (continuation > 0 && cr.next() < continuation) {
            for (let k = cr.int(1, 8); k > 0; k--) {
              if (used >= WRITE_BUFFER) flush();
              const c = buf.write(continuationLine(cr, cr.int(minLine, maxLine)), used, "latin1");
              used += c;
              written += c;
              out.lines++;
            }
          }
          if (used >= WRITE_BUFFER) flush();
        }
        flush();
      } finally {
        closeSync(fd);
      }
      out.bytes += written;
      out.files.push(path);
    }
  } finally {
    if (concatFd >= 0) closeSync(concatFd);
  }
  return out;
}

/** Lines in memory, until at least `bytes` (or `lines` lines) are made. */
export function logBytes(opts: { bytes?: number; lines?: number; minLine?: number; maxLine?: number; seed?: number; startMs?: number }): Buffer {
  const maker = new LineMaker(opts.seed ?? 1, opts.minLine ?? 80, opts.maxLine ?? 250, opts.startMs);
  const parts: string[] = [];
  let size = 0;
  for (let n = 0; (opts.lines === undefined || n < opts.lines) && (opts.bytes === undefined || size < opts.bytes); n++) {
    if (opts.lines === undefined && opts.bytes === undefined) break;
    const l = maker.line();
    parts.push(l);
    size += l.length;
  }
  return Buffer.from(parts.join(""), "latin1");
}

function writeAll(fd: number, buf: Buffer, len: number): void {
  let off = 0;
  while (off < len) off += writeSync(fd, buf, off, len - off);
}

/** "250MB", "20KB", "1GiB", "1000" → bytes (K/M/G are powers of 1000, KiB/MiB/GiB of 1024). */
export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]i?)?b?$/i.exec(s.trim());
  if (!m) throw new Error(`not a size: ${JSON.stringify(s)} (e.g. 250MB, 20KiB)`);
  const unit = (m[2] ?? "").toLowerCase();
  const base = unit.endsWith("i") ? 1024 : 1000;
  const power = { "": 0, k: 1, m: 2, g: 3 }[unit.replace("i", "") as "" | "k" | "m" | "g"];
  return Math.round(Number(m[1]) * base ** power);
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Bun.argv.slice(2),
    strict: true,
    options: {
      dir: { type: "string" },
      size: { type: "string", default: "100MB" },
      files: { type: "string", default: "1" },
      min: { type: "string", default: "80" },
      max: { type: "string", default: "250" },
      seed: { type: "string", default: "1" },
      prefix: { type: "string", default: "app" },
      concat: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help || !values.dir) {
    console.error("usage: bun scripts/gen-logs.ts --dir DIR [--size 100MB] [--files 1] [--min 80] [--max 250] [--seed 1] [--prefix app] [--concat FILE]");
    process.exit(values.help ? 0 : 2);
  }
  const t0 = performance.now();
  const made = generateLogs({
    dir: values.dir,
    files: Number(values.files),
    totalBytes: parseSize(values.size!),
    minLine: Number(values.min),
    maxLine: Number(values.max),
    seed: Number(values.seed),
    prefix: values.prefix,
    concat: values.concat,
  });
  console.log(`${made.files.length} files, ${made.lines} lines, ${made.bytes} bytes in ${((performance.now() - t0) / 1000).toFixed(2)} s → ${values.dir}`);
}
