// Topic read-back for tests: reads a whole topic with kcat (an independent
// librdkafka client) and recovers every record byte-exactly.
//
// Why `kcat -J` and not `-f`: the `-f` token %h prints headers as unescaped
// "name=value,name=value" and truncates values at NUL, so headers cannot be
// framed reliably. `-J` emits one JSON object per line via yajl, which escapes
// '"', '\\' and every byte < 0x20 (so NUL, CR, LF are \uXXXX/\r/\n) and copies
// bytes >= 0x80 raw, also invalid UTF-8. Decoding stdout as latin1 before
// JSON.parse therefore maps each payload byte to one char, and
// Buffer.from(str, "latin1") restores the exact bytes.
//
// Caveat: any librdkafka consumer (kcat included) auto-creates a missing
// topic on the mock cluster (4 partitions); we list topics first and return []
// for a topic that does not exist, so reading never creates it.

export interface ConsumedRecord {
  partition: number;
  offset: number;
  key: string;
  value: Buffer;
  headers: Record<string, string>;
  /** The key's exact bytes (null: no key); `key` is them decoded as UTF-8. */
  keyBytes?: Buffer | null;
  /** The headers' exact bytes; `headers` are them decoded as UTF-8. */
  headerBytes?: Record<string, Buffer>;
}

interface KcatJsonRecord {
  partition: number;
  offset: number;
  headers?: (string | null)[];
  key: string | null;
  payload: string | null;
}

const DEFAULT_TIMEOUT_MS = 10_000;

function latin1ToBytes(s: string | null): Buffer {
  return Buffer.from(s ?? "", "latin1");
}

function latin1ToUtf8(s: string | null): string {
  return latin1ToBytes(s).toString("utf8");
}

/** kcat -J headers are a flat [name, value, name, value, ...] array. */
function parseHeaders(flat: (string | null)[] | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  if (!flat) return headers;
  for (let i = 0; i + 1 < flat.length; i += 2) {
    headers[latin1ToUtf8(flat[i] ?? "")] = latin1ToUtf8(flat[i + 1] ?? null);
  }
  return headers;
}

function toRecord(line: string): ConsumedRecord {
  const j = JSON.parse(line) as KcatJsonRecord;
  const headerBytes: Record<string, Buffer> = {};
  for (let i = 0; j.headers && i + 1 < j.headers.length; i += 2) headerBytes[latin1ToUtf8(j.headers[i] ?? "")] = latin1ToBytes(j.headers[i + 1] ?? null);
  return {
    partition: j.partition,
    offset: j.offset,
    key: latin1ToUtf8(j.key),
    value: latin1ToBytes(j.payload),
    headers: parseHeaders(j.headers),
    keyBytes: j.key === null ? null : latin1ToBytes(j.key),
    headerBytes,
  };
}

function byPartitionThenOffset(a: ConsumedRecord, b: ConsumedRecord): number {
  return a.partition - b.partition || a.offset - b.offset;
}

/** Runs kcat to completion; returns stdout bytes or throws with stderr. */
async function runKcat(args: string[], timeoutMs: number): Promise<Buffer> {
  const proc = Bun.spawn(["kcat", ...args], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill("SIGKILL");
  }, timeoutMs);
  try {
    const [out, err, code] = await Promise.all([
      new Response(proc.stdout).arrayBuffer(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    if (timedOut) throw new Error(`kcat ${args.join(" ")}: timed out after ${timeoutMs} ms; stderr: ${err}`);
    if (code !== 0) throw new Error(`kcat ${args.join(" ")}: exit ${code}; stderr: ${err}`);
    return Buffer.from(out);
  } finally {
    clearTimeout(timer);
  }
}

function metadataTimeoutSec(timeoutMs: number): string {
  return String(Math.max(1, Math.floor(timeoutMs / 1000)));
}

/** Lists all topics (no topic named, so nothing gets auto-created). */
export async function listTopics(bootstraps: string, opts: { timeoutMs?: number } = {}): Promise<string[]> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const out = await runKcat(["-L", "-J", "-q", "-b", bootstraps, "-m", metadataTimeoutSec(timeoutMs)], timeoutMs);
  const md = JSON.parse(out.toString("utf8")) as { topics: { topic: string }[] };
  return md.topics.map((t) => t.topic);
}

/** Every record of `topic`, all partitions, ordered by partition then offset. */
export async function consumeAll(
  bootstraps: string,
  topic: string,
  opts: { timeoutMs?: number } = {},
): Promise<ConsumedRecord[]> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const started = Date.now();
  if (!(await listTopics(bootstraps, { timeoutMs })).includes(topic)) return [];
  const remaining = Math.max(1000, timeoutMs - (Date.now() - started));
  const args = [
    "-C", "-b", bootstraps, "-t", topic, "-o", "beginning", "-e", "-q", "-J",
    "-m", metadataTimeoutSec(remaining),
    "-X", "fetch.wait.max.ms=10", // reach end-of-partition quickly on idle partitions
  ];
  const out = await runKcat(args, remaining);
  const lines = out.toString("latin1").split("\n").filter((l) => l.length > 0);
  return lines.map(toRecord).sort(byPartitionThenOffset);
}

/**
 * Each partition's high watermark (how many records it holds) of `topic`, read with kafkajs'
 * admin client: a count without reading the records.
 */
export async function highWatermarks(brokers: string | string[], topic: string): Promise<Map<number, number>> {
  const { Kafka, logLevel } = await import("kafkajs");
  const admin = new Kafka({ brokers: typeof brokers === "string" ? brokers.split(",") : brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    return new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, Number(o.high)]));
  } finally {
    await admin.disconnect();
  }
}

/** How many records `topic` holds, over all its partitions. */
export async function storedRecords(brokers: string | string[], topic: string): Promise<number> {
  return [...(await highWatermarks(brokers, topic)).values()].reduce((a, n) => a + n, 0);
}
