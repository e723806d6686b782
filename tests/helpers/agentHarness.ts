// The in-process seam for file-lifecycle tests: runs the real Agent against a log directory
// with a FakePublisher that acknowledges at once, and records every event. Restarts keep
// the state file, so a test can stop the agent, change files, and start it again.
//
//   const h = new AgentHarness({ input: { partial_line_timeout: 0 } });
//   await h.start();
//   h.dir.append("app.log", "one\n");
//   await h.until(() => h.text().includes("one\n"));
//   h.expectStreams(["one\n"]);   // per file identity: delivered bytes, contiguous, each once
//   await h.close();
//
// The agent runs on a ManualClock (tests/helpers/manualClock.ts) with inotify off: only the
// harness moves its time. until() and settle() advance it a poll interval at a time and let
// the event loop run in between (the file system is real), so "wait 5 s" costs what the
// agent's work costs, not 5 s, and timeouts (close_removed, partial_line_timeout, backoff)
// fire exactly when the clock says. advance(ms) lets time pass on purpose.
// Intervals are short (scan 40 ms, poll 15 ms), so a test's virtual seconds are few ticks.
// The config is built by spreading DEFAULTS rather than parsed, so tests may use values the
// YAML validation would refuse (a state.ttl of 300 ms, say).

import { expect } from "bun:test";
import { Agent, type AgentOptions } from "../../lib/agent.ts";
import { DEFAULTS, type AgentConfig, type InputConfig } from "../../lib/config.ts";
import { LogEvents, type AgentEvents } from "../../lib/events.ts";
import type { Chunk } from "../../lib/kafka/pack.ts";
import type { Publisher } from "../../lib/kafka/publish.ts";
import { openStore, type SavedFile } from "../../lib/state/store.ts";
import { FakePublisher } from "./fakePublisher.ts";
import { makeLogDir, type LogDir } from "./logDir.ts";
import { ManualClock } from "./manualClock.ts";
import { savedRows } from "./workspace.ts";

export type EventName = keyof AgentEvents;

/** One call of an AgentEvents method. */
export interface EventCall {
  event: EventName;
  args: unknown[];
  at: number;
}

/**
 * Records every event call and also feeds a real LogEvents (so its counters and its
 * "said once" rules apply); the log lines it would write to stderr are kept in `lines`.
 */
export class RecordedEvents {
  readonly calls: EventCall[] = [];
  readonly lines: string[] = [];
  readonly log = new LogEvents((line) => this.lines.push(line));
  readonly events: AgentEvents;

  constructor() {
    const log = this.log as unknown as Record<string, (...a: unknown[]) => void>;
    this.events = new Proxy({} as AgentEvents, {
      get: (_t, name: string) => (...args: unknown[]) => {
        this.calls.push({ event: name as EventName, args, at: Date.now() });
        log[name]?.apply(this.log, args);
      },
    });
  }

  of(event: EventName): unknown[][] {
    return this.calls.filter((c) => c.event === event).map((c) => c.args);
  }

  count(event: EventName, pred: (args: unknown[]) => boolean = () => true): number {
    return this.of(event).filter(pred).length;
  }

  /** Log lines (as LogEvents writes them) that match `re`. */
  logged(re: RegExp): string[] {
    return this.lines.filter((l) => re.test(l));
  }
}

/** A run of delivered bytes of one file identity, in offset order. */
export interface Stream {
  file: string;
  path: string; // path of its last chunk
  start: number; // offset of its first delivered byte
  end: number;
  bytes: Buffer;
}

export interface HarnessOptions {
  /** Overrides for the one input (paths default to `<dir>/*.log`). */
  input?: Partial<InputConfig>;
  /** Several inputs instead of one. */
  inputs?: Partial<InputConfig>[];
  /** Top-level overrides (intervals, max_open_files, ...). */
  agent?: Partial<Omit<AgentConfig, "inputs" | "kafka" | "state">>;
  state?: Partial<AgentConfig["state"]>;
  kafka?: Partial<AgentConfig["kafka"]>;
  dir?: LogDir;
  /** A publisher of our own for the next start (e.g. a hashing one for huge files). */
  publisher?: () => Publisher;
  /** Offsets written by the agent's writer process, as in production (default: in this thread). */
  writerProcess?: boolean;
  /** inotify on (default off: only the clock drives the agent); its settle timers run on the manual clock. */
  watch?: boolean;
}

export class AgentHarness {
  readonly dir: LogDir;
  readonly statePath: string;
  config: AgentConfig;
  readonly recorded = new RecordedEvents();
  /** One fake per run (a closed fake refuses sends); their acked chunks, in ack order, across runs. */
  readonly fakes: FakePublisher[] = [];
  agent: Agent | null = null;
  /** The agent's time: moved only by until(), settle(), advance() and stop(). */
  readonly clock = new ManualClock();
  private readonly writerProcess: boolean;
  private readonly watch: boolean;
  private readonly makePublisher: (() => Publisher) | undefined;

  constructor(opts: HarnessOptions = {}) {
    this.dir = opts.dir ?? makeLogDir("lifecycle");
    this.statePath = this.dir.path(".state/state.db");
    this.makePublisher = opts.publisher;
    this.writerProcess = opts.writerProcess ?? false;
    this.watch = opts.watch ?? false;
    const input = (o: Partial<InputConfig> = {}): InputConfig => ({
      ...DEFAULTS.input,
      paths: [this.dir.path("*.log")],
      topic: "logs",
      partial_line_timeout: 0,
      ...o,
    });
    this.config = {
      ...DEFAULTS,
      file: this.dir.path("logship.yaml"),
      host: "test-host",
      inputs: opts.inputs ? opts.inputs.map(input) : [input(opts.input)],
      kafka: { ...DEFAULTS.kafka, brokers: ["127.0.0.1:9"], topic: "logs", ...opts.kafka },
      state: { ...DEFAULTS.state, path: this.statePath, flush_interval: 50, ...opts.state },
      scan_interval: 40,
      poll_interval: 15,
      stats_interval: 0,
      ...opts.agent,
    };
  }

  get events(): RecordedEvents {
    return this.recorded;
  }

  /** The fake of the current (or last) run. */
  get kafka(): FakePublisher {
    const f = this.fakes[this.fakes.length - 1];
    if (!f) throw new Error("not started");
    return f;
  }

  async start(opts: Partial<AgentOptions> = {}): Promise<Agent> {
    if (this.agent) throw new Error("already running");
    let publisher: Publisher;
    if (this.makePublisher) publisher = this.makePublisher();
    else {
      const fake = new FakePublisher();
      this.fakes.push(fake);
      publisher = fake;
    }
    // The state is read and written in this thread (state/writer.ts' InlineWriter): these tests are
    // about the file lifecycle, and a writer process per start would be one more process per
    // restart; the writer process has its own tests (agent.test.ts, faults-stuck.test.ts).
    const store = this.writerProcess ? undefined : openStore(this.config.state.path);
    this.agent = await this.whileTimePasses(Agent.start(this.config, { once: false, ...opts }, { publisher, events: this.recorded.events, clock: this.clock, watch: this.watch, store }));
    return this.agent;
  }

  /** Graceful stop: drains what was read (the fake acks), saves offsets. */
  async stop(): Promise<void> {
    const a = this.agent;
    this.agent = null;
    if (a) await this.whileTimePasses(a.stop(5_000));
  }

  /** The copy rule of the running agent (tests land a truncation mid-comparison through its onCompare). */
  get copies(): import("../../lib/files/copies.ts").Copies {
    return (this.agent as unknown as { files: { copies: import("../../lib/files/copies.ts").Copies } }).files.copies;
  }

  /** Awaits `work` while the clock moves on a poll interval per turn of the event loop. */
  private async whileTimePasses<T>(work: Promise<T>): Promise<T> {
    let done = false;
    const out = work.finally(() => (done = true));
    while (!done) {
      await turn();
      if (!done) this.clock.advance(this.config.poll_interval);
    }
    return out;
  }

  /** One poll interval of the agent's time, then the event loop runs what it started (a scan, acks). */
  async tick(ms = this.config.poll_interval): Promise<void> {
    this.clock.advance(ms);
    await this.agent?.settled();
    await turn();
  }

  /** Lets `ms` of the agent's time pass, a poll interval at a time. */
  async advance(ms: number): Promise<void> {
    const step = this.config.poll_interval;
    for (let left = ms; left > 0; left -= step) await this.tick(Math.min(step, left));
  }

  async restart(): Promise<Agent> {
    await this.stop();
    return this.start();
  }

  async close(): Promise<void> {
    await this.stop();
    this.dir.cleanup();
  }

  /** Every acknowledged chunk of every run, in ack order. */
  get acked(): Chunk[] {
    return this.fakes.flatMap((f) => f.acked);
  }

  /** All acknowledged bytes as text, in ack order. */
  text(): string {
    return Buffer.concat(this.acked.map((c) => c.value)).toString("utf8");
  }

  /** Acknowledged bytes of one path (by the chunk's path at send time), in ack order. */
  textOf(path: string): string {
    const full = path.startsWith("/") ? path : this.dir.path(path);
    return Buffer.concat(this.acked.filter((c) => c.source.path === full).map((c) => c.value)).toString("utf8");
  }

  /**
   * Delivered bytes grouped by file identity. Within an identity each chunk must start where
   * the previous one ended (nothing twice, nothing skipped), unless `allowGaps` (dropped lines).
   */
  streams(opts: { allowGaps?: boolean } = {}): Stream[] {
    const by = new Map<string, { file: string; path: string; start: number; end: number; parts: Buffer[] }>();
    for (const c of this.acked) {
      const s = by.get(c.source.file);
      if (!s) {
        by.set(c.source.file, { file: c.source.file, path: c.source.path, start: c.start, end: c.end, parts: [c.value] });
        continue;
      }
      if (c.start !== s.end && !(opts.allowGaps && c.start > s.end)) {
        throw new Error(`file ${c.source.file} (${c.source.path}): chunk at ${c.start} after ${s.end} — ${c.start < s.end ? "delivered twice" : "bytes skipped"}`);
      }
      s.parts.push(c.value);
      s.end = c.end;
      s.path = c.source.path;
    }
    return [...by.values()].map((s) => ({ file: s.file, path: s.path, start: s.start, end: s.end, bytes: Buffer.concat(s.parts) }));
  }

  /** Asserts the delivered identities hold exactly these texts (any order), each from byte `start` 0. */
  expectStreams(texts: string[], opts: { allowGaps?: boolean; fromZero?: boolean } = {}): void {
    const streams = this.streams(opts);
    if (opts.fromZero ?? true) for (const s of streams) expect({ file: s.file, start: s.start }).toEqual({ file: s.file, start: 0 });
    expect(streams.map((s) => s.bytes.toString("utf8")).sort()).toEqual([...texts].sort());
  }

  /**
   * Advances the clock until `fn` is truthy (a throw counts as "not yet"): at most `timeoutMs`
   * of the agent's time (5 s), and at most 30 s of real time, whichever comes first.
   */
  async until<T>(fn: () => T, message?: string, timeoutMs = 5_000): Promise<T> {
    const end = this.clock.now() + timeoutMs;
    const realEnd = Date.now() + 30_000;
    let last: unknown;
    for (;;) {
      try {
        const v = fn();
        if (v) return v;
        last = v;
      } catch (err) {
        last = err;
      }
      if (this.clock.now() >= end || Date.now() >= realEnd) break;
      await this.tick();
    }
    const why = last instanceof Error ? `last error: ${last.message}` : `last value: ${String(last)}`;
    throw new Error(`until: ${message ?? "condition not met"} (after ${timeoutMs} ms of agent time; ${why})`, { cause: last });
  }

  /** Waits until the acknowledged text of all paths contains every given piece. */
  async untilDelivered(...pieces: string[]): Promise<void> {
    await this.until(() => {
      const t = this.text();
      return pieces.every((p) => t.includes(p));
    }, `delivered: ${pieces.map((p) => JSON.stringify(p.slice(0, 60))).join(", ")}`);
  }

  /** Lets the agent look at the files a few more times (to show nothing more arrives). */
  async settle(ticks = 4): Promise<void> {
    await this.advance(ticks * Math.max(this.config.scan_interval, this.config.poll_interval) + 20);
  }

  /** The rows saved in the state file (read-only beside the agent; WAL lets both read). */
  savedRows(): SavedFile[] {
    return savedRows(this.statePath);
  }

  /** Descriptors this process holds on files under the log directory. */
  openDescriptors(): string[] {
    return openFdsUnder(this.dir.root);
  }
}

/** One turn of the event loop: promises settle and I/O callbacks run. */
function turn(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

/** Paths of this process' open descriptors under `root` ("(deleted)" suffix kept). */
export function openFdsUnder(root: string): string[] {
  const out: string[] = [];
  const { readdirSync, readlinkSync } = require("node:fs") as typeof import("node:fs");
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(root) && !target.includes("/.state/")) out.push(target);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** The line generator lives in lines.ts; re-exported here for existing imports. */
export { lines } from "./lines.ts";
