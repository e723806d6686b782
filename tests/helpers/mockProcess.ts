// Out-of-process mock Kafka cluster for tests: spawns scripts/mock-cluster.ts
// with the current bun binary, reads its BOOTSTRAP line and drives its stdin
// command protocol (one command line in, one `ok` / `error: ...` line out).
import { resolve } from "node:path";

export interface MockClusterProcess {
  readonly bootstraps: string;
  /** Sends one command line (e.g. "down 1") and returns the reply line. */
  command(line: string): Promise<string>;
  /** Closes stdin (the child then shuts down) and waits; kills it if slow. */
  close(): Promise<void>;
}

const SCRIPT = resolve(import.meta.dir, "../../scripts/mock-cluster.ts");
const START_TIMEOUT_MS = 10_000;
const REPLY_TIMEOUT_MS = 5_000;
const EXIT_TIMEOUT_MS = 3_000;

/** Splits a byte stream into lines; `next()` yields them in order, null at EOF. */
class LineReader {
  private lines: string[] = [];
  private waiters: ((line: string | null) => void)[] = [];
  private ended = false;

  constructor(stream: ReadableStream<Uint8Array>) {
    void this.pump(stream);
  }

  private async pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buf = "";
    try {
      for await (const chunk of stream) {
        buf += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          this.push(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
        }
      }
    } finally {
      this.ended = true;
      for (const w of this.waiters.splice(0)) w(null);
    }
  }

  private push(line: string): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(line);
    else this.lines.push(line);
  }

  next(timeoutMs: number): Promise<string | null> {
    const ready = this.lines.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    if (this.ended) return Promise.resolve(null);
    return new Promise((res, rej) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        rej(new Error(`no line from mock cluster process within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (line: string | null) => {
        clearTimeout(timer);
        res(line);
      };
      this.waiters.push(waiter);
    });
  }
}

/** Keeps the tail of the child's stderr for error messages. */
function collectStderr(stream: ReadableStream<Uint8Array>): () => string {
  let text = "";
  void (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) text = (text + decoder.decode(chunk, { stream: true })).slice(-4000);
  })();
  return () => text;
}

function cliArgs(opts: { brokers?: number; topics?: string[] }): string[] {
  const args: string[] = [];
  if (opts.brokers !== undefined) args.push("--brokers", String(opts.brokers));
  for (const t of opts.topics ?? []) args.push("--topic", t);
  return args;
}

export async function spawnMockCluster(
  opts: { brokers?: number; topics?: string[] } = {},
): Promise<MockClusterProcess> {
  const proc = Bun.spawn([process.execPath, SCRIPT, ...cliArgs(opts)], {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
  });
  const stdout = new LineReader(proc.stdout);
  const stderr = collectStderr(proc.stderr);

  const close = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    try {
      proc.stdin.end();
    } catch {
      // already closed
    }
    const exited = await Promise.race([proc.exited.then(() => true), Bun.sleep(EXIT_TIMEOUT_MS).then(() => false)]);
    if (!exited) {
      proc.kill("SIGKILL");
      await proc.exited;
    }
  };

  const first = await stdout.next(START_TIMEOUT_MS).catch(async (e: unknown) => {
    proc.kill("SIGKILL");
    throw e;
  });
  if (first === null || !first.startsWith("BOOTSTRAP=")) {
    await close();
    throw new Error(`mock cluster process did not print BOOTSTRAP (got ${JSON.stringify(first)}); stderr: ${stderr()}`);
  }

  let queue: Promise<unknown> = Promise.resolve();
  const command = (line: string): Promise<string> => {
    if (line.includes("\n")) return Promise.reject(new Error("command must be a single line"));
    const run = async (): Promise<string> => {
      proc.stdin.write(`${line}\n`);
      proc.stdin.flush();
      const reply = await stdout.next(REPLY_TIMEOUT_MS);
      if (reply === null) throw new Error(`mock cluster process exited; stderr: ${stderr()}`);
      return reply;
    };
    const result = queue.then(run, run);
    queue = result.catch(() => undefined);
    return result;
  };

  return { bootstraps: first.slice("BOOTSTRAP=".length), command, close };
}
