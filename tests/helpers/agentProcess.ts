// The compiled agent as a child process, for end-to-end tests: builds dist/logship when it
// is missing or older than its sources, starts it with arguments, keeps its stderr as lines
// (the agent's log), waits for a log line, sends signals, reports the exit code and the
// peak resident memory. Nothing here sleeps to assert: waits end on a line or on exit, with
// a timeout that fails loudly and quotes the tail of the log.
//
//   ensureBuilt()                         build dist/logship if stale; returns its path
//   writeConfig(dir, yaml)                write DIR/logship.yaml; returns its path (workspace.ts)
//   const agent = AgentProcess.start(["run", "--config", cfg])   // or AgentProcess.run(cfg)
//   await agent.waitForLine(/file added/) // a line already seen counts too (see `after`)
//   agent.count(/ERROR/, from)            // log lines matching, from line index `from`
//   agent.signal("SIGTERM"); const code = await agent.waitForExit(10_000)
//   agent.peakRssKiB                      max of sampled VmHWM and the kernel's rusage
//   const r = await runLogship(["check", "--config", cfg]) // run to completion: code, stdout, stderr
//   checkDelivery(await consumeAll(bootstraps, topic), files, { host }) // what arrived, line by line (delivery.ts)
//
// $LOGSHIP_BIN, when set, names the binary to test instead (it is then never built), e.g. to
// run the e2e tests against a release build or while a lib file is half-edited.
// Exit codes: a process ended by a signal reports 128 + the signal number, as shells do
// (kill -9 → 137).

import { statSync, readFileSync, readdirSync } from "node:fs";
import { constants } from "node:os";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dir, "../..");
/** The binary under test: $LOGSHIP_BIN when set (used as it is, never built), else dist/logship. */
export const LOGSHIP = process.env.LOGSHIP_BIN ? resolve(process.env.LOGSHIP_BIN) : join(ROOT, "dist/logship");

// --- building ------------------------------------------------------------------------------

/** Sources whose change makes dist/logship stale. */
function sourceFiles(): string[] {
  const lib = readdirSync(join(ROOT, "lib"), { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts")).map((f) => join(ROOT, "lib", f));
  return [...lib, join(ROOT, "main.ts"), join(ROOT, "package.json")];
}

function mtimeMs(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return -1;
  }
}

let upToDate = false; // checked (and built if need be) once per test process

/**
 * Builds dist/logship with `bun run build` when it is missing or older than main.ts, any .ts under lib/
 * or package.json; with $LOGSHIP_BIN set, returns that binary untouched.
 */
export function ensureBuilt(): string {
  if (process.env.LOGSHIP_BIN || upToDate) return LOGSHIP;
  const built = mtimeMs(LOGSHIP);
  const newest = Math.max(...sourceFiles().map(mtimeMs));
  upToDate = built >= newest;
  if (upToDate) return LOGSHIP;
  const r = Bun.spawnSync([process.execPath, "scripts/build.ts"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" }); // the amd64 binary only: what the tests run
  if (r.exitCode !== 0) {
    throw new Error(`bun run build failed (exit ${r.exitCode}):\n${r.stdout.toString()}\n${r.stderr.toString()}`);
  }
  upToDate = true;
  return LOGSHIP;
}

/** The config writer lives in workspace.ts; re-exported here for existing imports. */
export { writeConfig } from "./workspace.ts";

// --- one running agent ---------------------------------------------------------------------

export interface StartOptions {
  cwd?: string;
  env?: Record<string, string | undefined>; // merged over process.env
  binary?: string; // default dist/logship (built first when stale)
  wrap?: string[]; // a command line in front, e.g. ["bash", "-c", "ulimit -f 64; exec \"$0\" \"$@\""]
  rssSampleMs?: number; // how often VmHWM is read while it runs (default 50)
}

export type LineMatch = RegExp | string | ((line: string) => boolean);

const SIGNALS = constants.signals as Record<string, number>;

export class AgentProcess {
  readonly pid: number;
  /** Complete stderr lines so far, in order. */
  readonly lines: string[] = [];
  /** Resolves with the exit code (128 + signal number when killed). */
  readonly exited: Promise<number>;
  private stdoutText = "";
  private partial = "";
  private waiters: { match: (line: string) => boolean; resolve: (line: string) => void }[] = [];
  private sampledHwmKiB = 0;
  private code: number | null = null;

  private constructor(private readonly proc: Bun.Subprocess<"ignore", "pipe", "pipe">, readonly args: string[], rssSampleMs: number) {
    this.pid = proc.pid;
    const stderrDone = this.readStderr(proc.stderr);
    const stdoutDone = new Response(proc.stdout).text().then((t) => void (this.stdoutText = t));
    const sampler = setInterval(() => this.sampleRss(), rssSampleMs);
    this.sampleRss();
    this.exited = proc.exited.then(async () => {
      clearInterval(sampler);
      await Promise.all([stderrDone, stdoutDone]);
      this.code = proc.exitCode ?? 128 + (SIGNALS[proc.signalCode ?? ""] ?? 0);
      return this.code;
    });
  }

  /** Starts `logship ARGS...`. */
  static start(args: string[], opts: StartOptions = {}): AgentProcess {
    const proc = Bun.spawn([...(opts.wrap ?? []), opts.binary ?? ensureBuilt(), ...args], {
      cwd: opts.cwd ?? ROOT,
      env: { ...process.env, ...opts.env },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    return new AgentProcess(proc, args, opts.rssSampleMs ?? 50);
  }

  /** Starts `logship run --config CONFIG [EXTRA...]`. */
  static run(config: string, ...extra: string[]): AgentProcess {
    return AgentProcess.start(["run", "--config", config, ...extra]);
  }

  /** True until the process has exited. */
  get running(): boolean {
    return this.code === null && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Log lines matching `re`, from line index `from`. */
  matching(re: RegExp, from = 0): string[] {
    return this.lines.slice(from).filter((l) => re.test(l));
  }

  count(re: RegExp, from = 0): number {
    return this.matching(re, from).length;
  }

  /** The last `n` lines of the log, for failure messages. */
  tail(n = 40): string {
    return this.lines.slice(-n).join("\n");
  }

  /** Everything written to stdout; complete once the process has exited. */
  get stdout(): string {
    return this.stdoutText;
  }

  /** The log so far as one string. */
  get stderr(): string {
    return this.lines.join("\n") + (this.partial ? `\n${this.partial}` : "");
  }

  /** The exit code once exited, else null. */
  get exitCode(): number | null {
    return this.code;
  }

  /**
   * Peak resident set size in KiB: the highest VmHWM read from /proc/PID/status while it
   * ran, and once it has exited, the kernel's ru_maxrss for it (exact) if higher.
   */
  get peakRssKiB(): number {
    if (this.code === null) this.sampleRss();
    const rusage = this.code === null ? 0 : Math.round((this.proc.resourceUsage()?.maxRSS ?? 0) / 1024);
    return Math.max(this.sampledHwmKiB, rusage);
  }

  /**
   * The first stderr line at index `after` or later (default 0: lines already seen count)
   * that matches; rejects after `timeoutMs` or when the process exits first.
   */
  waitForLine(match: LineMatch, opts: { timeoutMs?: number; after?: number } = {}): Promise<string> {
    const test = matcher(match);
    const found = this.lines.slice(opts.after ?? 0).find(test);
    if (found !== undefined) return Promise.resolve(found);
    const timeoutMs = opts.timeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      const fail = (why: string) => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`logship ${this.args.join(" ")}: no stderr line matching ${String(match)} ${why}; last lines:\n${this.tail(15)}`));
      };
      const timer = setTimeout(() => fail(`within ${timeoutMs} ms`), timeoutMs);
      const waiter = {
        match: test,
        resolve: (line: string) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      this.waiters.push(waiter);
      void this.exited.then((code) => {
        clearTimeout(timer);
        if (this.waiters.includes(waiter)) fail(`before it exited with ${code}`);
      });
    });
  }

  /** Sends a signal (e.g. "SIGTERM", "SIGHUP", "SIGKILL"). */
  signal(sig: NodeJS.Signals): void {
    this.proc.kill(sig);
  }

  /** The exit code; rejects if the process is still running after `timeoutMs`. */
  async waitForExit(timeoutMs = 30_000): Promise<number> {
    let timer: Timer | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`logship ${this.args.join(" ")} still running after ${timeoutMs} ms; last lines:\n${this.tail(15)}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Cleanup for afterEach/finally: SIGKILL if still running, then wait for it. */
  async kill(): Promise<void> {
    if (this.code === null) this.proc.kill("SIGKILL");
    await this.exited;
  }

  private async readStderr(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      this.partial += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = this.partial.indexOf("\n")) >= 0) {
        const line = this.partial.slice(0, nl);
        this.partial = this.partial.slice(nl + 1);
        this.lines.push(line);
        for (const w of this.waiters.filter((w) => w.match(line))) {
          this.waiters = this.waiters.filter((x) => x !== w);
          w.resolve(line);
        }
      }
    }
    if (this.partial) {
      this.lines.push(this.partial);
      this.partial = "";
    }
  }

  private sampleRss(): void {
    try {
      const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${this.pid}/status`, "utf8"));
      if (m) this.sampledHwmKiB = Math.max(this.sampledHwmKiB, Number(m[1]));
    } catch {
      // exited between samples: rusage covers the rest
    }
  }
}

function matcher(m: LineMatch): (line: string) => boolean {
  if (typeof m === "function") return m;
  if (typeof m === "string") return (line) => line.includes(m);
  return (line) => m.test(line);
}

// --- run to completion ---------------------------------------------------------------------

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  lines: string[]; // stderr lines
  peakRssKiB: number;
  ms: number; // wall time
}

/** Runs `logship ARGS...` to its end; kills it and throws if it runs longer than `timeoutMs` (default 30 s). */
export async function runLogship(args: string[], opts: StartOptions & { timeoutMs?: number } = {}): Promise<RunResult> {
  const started = performance.now();
  const agent = AgentProcess.start(args, opts);
  try {
    const code = await agent.waitForExit(opts.timeoutMs ?? 30_000);
    return { code, stdout: agent.stdout, stderr: agent.stderr, lines: agent.lines, peakRssKiB: agent.peakRssKiB, ms: Math.round(performance.now() - started) };
  } finally {
    await agent.kill();
  }
}

// --- what arrived: delivery.ts (re-exported here for existing imports) -----------------------

export { checkDelivery, completeLines, defaultHost, type DeliveryReport, type FileDelivery } from "./delivery.ts";
