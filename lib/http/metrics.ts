// logship's metrics: every series /metrics exposes, fed from the agent's events (MetricsEvents
// passes each event on to the log, LogEvents, and counts it here), plus what is read when a
// scrape comes (the agent's load, its files' backlog, the process's CPU, memory and fds).
// Names follow Prometheus' conventions; the names dashboards rely on (issue 13) are fixed:
// logship_lines_shipped_total, logship_bytes_shipped_total, logship_records_sent_total,
// logship_bytes_lost_total{reason}, logship_unread_bytes.
// Cardinality is bounded: no series is labelled by file; `reason` takes the few values of
// LOST_REASONS / DROP_REASONS, `code` at most 32 Kafka error names (then "other").
// The readiness rule (/ready) is here too, since it is judged from the same events.

import { readdirSync, readFileSync } from "node:fs";
import type { Clock } from "../clock.ts";
import type { AgentEvents, FileAddReason, StartOnlyChange } from "../events.ts";
import { Counter, Gauge, Histogram, Registry } from "./exposition.ts";

/** The `reason` values of logship_bytes_lost_total, and how a `data lost` line's reason maps to them. */
export const LOST_REASONS = ["copytruncate", "close_removed", "renamed_out", "deleted_while_closed", "truncated_unread", "unshippable", "other"] as const;
export type LostReason = (typeof LOST_REASONS)[number];

/** Maps the text of a `data lost` event (lib/files/) to its label; tests/metrics.test.ts holds every such text to a label other than "other". */
export function lostReason(text: string): LostReason {
  if (text.includes("between the copy and the truncation")) return "copytruncate";
  if (text.includes("close_removed")) return "close_removed";
  if (text.includes("renamed out of the globs")) return "renamed_out";
  if (text.includes("deleted while closed")) return "deleted_while_closed";
  if (text.includes("truncated before it was read")) return "truncated_unread";
  return "other";
}

/** The `reason` values of the dropped and truncated line counters. */
export const DROP_REASONS = ["long_line", "too_large_for_kafka"] as const;

/** Send latency buckets, seconds: from a local mock's milliseconds to a minute of retries. */
const LATENCY_BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** What a scrape reads from the agent. */
export interface AgentLoad {
  filesTracked: number;
  filesOpen: number;
  inflightBytes: number;
  /** Size minus acknowledged offset, summed over the followed files. */
  unreadBytes: number;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly r = this.registry;
  readonly lines = this.r.add(new Counter("logship_lines_shipped_total", "Lines Kafka acknowledged."));
  readonly bytes = this.r.add(new Counter("logship_bytes_shipped_total", "Bytes of lines Kafka acknowledged (record values)."));
  readonly records = this.r.add(new Counter("logship_records_sent_total", "Records Kafka acknowledged."));
  readonly sendErrors = this.r.add(new Counter("logship_send_errors_total", "Failed sends to Kafka, by Kafka error code (each is retried).", { label: "code" }));
  readonly latency = this.r.add(new Histogram("logship_send_latency_seconds", "From a send's oldest record entering the send queue to Kafka's acknowledgement.", LATENCY_BOUNDS));
  readonly kafkaUp = this.r.add(new Gauge("logship_kafka_up", "1 after Kafka acknowledged a send, 0 while sends fail (and before the first acknowledgement)."));
  readonly lastAck = this.r.add(new Gauge("logship_last_ack_timestamp_seconds", "Unix time of Kafka's latest acknowledgement; 0 before the first."));
  readonly inflight = this.r.add(new Gauge("logship_inflight_bytes", "Bytes read but not yet acknowledged by Kafka."));
  readonly unread = this.r.add(new Gauge("logship_unread_bytes", "The backlog: size minus acknowledged offset, summed over the followed files."));
  readonly tracked = this.r.add(new Gauge("logship_files_tracked", "Files followed."));
  readonly open = this.r.add(new Gauge("logship_files_open", "Followed files holding a descriptor."));
  readonly filesAdded = this.r.add(new Counter("logship_files_added_total", "Files that began to be followed (new, or resumed at start)."));
  readonly renames = this.r.add(new Counter("logship_file_renames_total", "Renames of followed files (rotations)."));
  readonly truncations = this.r.add(new Counter("logship_file_truncations_total", "Followed files truncated or replaced in place."));
  readonly lost = this.r.add(new Counter("logship_bytes_lost_total", "Bytes never shipped, by reason (each range is also an ERROR `data lost` log line).", { label: "reason", values: LOST_REASONS }));
  readonly dropped = this.r.add(new Counter("logship_lines_dropped_total", "Lines not shipped: longer than max_line_bytes with long_lines: drop, or alone too large for Kafka.", { label: "reason", values: DROP_REASONS }));
  readonly truncated = this.r.add(new Counter("logship_lines_truncated_total", "Lines shipped cut to max_line_bytes (long_lines: truncate).", { label: "reason", values: ["long_line"] }));
  readonly invalidUtf8 = this.r.add(new Counter("logship_lines_invalid_utf8_total", "Lines shipped as json (or redacted) whose bytes were not UTF-8: shipped with U+FFFD in their place."));
  readonly filtered = this.r.add(new Counter("logship_lines_filtered_total", "Lines read and not shipped by design: dropped by include_lines / exclude_lines."));
  readonly eventsCut = this.r.add(new Counter("logship_multiline_events_cut_total", "Multiline events cut at max_lines or max_bytes (the rest shipped as another event)."));
  readonly split = this.r.add(new Counter("logship_lines_split_total", "Lines longer than max_line_bytes shipped in pieces (long_lines: split)."));
  readonly saves = this.r.add(new Counter("logship_state_saves_total", "Writes of acknowledged offsets to the state database."));
  readonly saveFailures = this.r.add(new Counter("logship_state_save_failures_total", "Failed writes of offsets (reading pauses while they fail)."));
  readonly reloads = this.r.add(new Counter("logship_config_reloads_total", "Configs applied on SIGHUP."));
  readonly reloadFailures = this.r.add(new Counter("logship_config_reload_failures_total", "Configs rejected or failing on SIGHUP (the old one is kept)."));
  private readonly cpu = this.r.add(new Counter("process_cpu_seconds_total", "User and system CPU time spent, in seconds."));
  private readonly rss = this.r.add(new Gauge("process_resident_memory_bytes", "Resident memory size in bytes."));
  private readonly vsz = this.r.add(new Gauge("process_virtual_memory_bytes", "Virtual memory size in bytes."));
  private readonly fds = this.r.add(new Gauge("process_open_fds", "Open file descriptors."));
  private readonly maxFds = this.r.add(new Gauge("process_max_fds", "The limit of open file descriptors."));
  private readonly startTime = this.r.add(new Gauge("process_start_time_seconds", "Start time of the process since the Unix epoch, in seconds."));

  /** clock.now() of the latest acknowledgement; null before the first. */
  lastAckAt: number | null = null;
  /** clock.now() sends began to fail, with the error code; null while they succeed. */
  sendFailing: { since: number; code: string } | null = null;
  /** clock.now() offsets began to fail to save, with the reason; null while they save. */
  saveFailing: { since: number; reason: string } | null = null;

  /** clock.now() the metrics began: the agent's start. */
  readonly startedAt: number;

  constructor(readonly clock: Clock) {
    this.startedAt = clock.now();
    this.startTime.set(Math.round((clock.wall() / 1000 - process.uptime()) * 1000) / 1000);
  }

  /** The events the agent emits: counted here, then passed on to `inner` (the log). */
  events(inner: AgentEvents): AgentEvents {
    return new MetricsEvents(inner, this);
  }

  /** The exposition, with the agent's load and the process's figures read now. */
  expose(load: AgentLoad): string {
    this.inflight.set(load.inflightBytes);
    this.unread.set(load.unreadBytes);
    this.tracked.set(load.filesTracked);
    this.open.set(load.filesOpen);
    this.readProcess();
    return this.registry.expose();
  }

  private readProcess(): void {
    const cpu = process.cpuUsage();
    this.cpu.setTotal((cpu.user + cpu.system) / 1e6);
    this.rss.set(process.memoryUsage.rss());
    try {
      const statm = readFileSync("/proc/self/statm", "utf8").split(" ");
      this.vsz.set(Number(statm[0]) * PAGE_BYTES);
      this.fds.set(readdirSync("/proc/self/fd").length - 1); // less the descriptor reading the directory
      const limit = /^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"));
      if (limit) this.maxFds.set(Number(limit[1]));
    } catch {
      // not Linux: these stay 0
    }
  }
}

/** The kernel's page size; 4 KiB on the platforms logship is built for (x64, arm64 Linux with 4K pages). */
const PAGE_BYTES = 4096;

/** Counts each event into Metrics, then passes it on. Every event of AgentEvents is listed, so a new one is a compile error here until it is decided whether it counts. */
class MetricsEvents implements AgentEvents {
  constructor(
    private readonly inner: AgentEvents,
    private readonly m: Metrics,
  ) {}

  started(info: { inputs: number; brokers: string[]; state: string; once: boolean }): void {
    this.inner.started(info);
  }
  stopped(info: { unacknowledgedBytes: number }): void {
    this.inner.stopped(info);
  }
  httpListening(address: string): void {
    this.inner.httpListening(address);
  }
  fileAdded(path: string, file: string, offset: number, reason: FileAddReason): void {
    this.m.filesAdded.inc();
    this.inner.fileAdded(path, file, offset, reason);
  }
  fileRenamed(from: string, to: string, file: string): void {
    this.m.renames.inc();
    this.inner.fileRenamed(from, to, file);
  }
  fileTruncated(path: string, file: string, offset: number, size: number): void {
    this.m.truncations.inc();
    this.inner.fileTruncated(path, file, offset, size);
  }
  fileRemoved(path: string, file: string, unreadBytes: number): void {
    this.inner.fileRemoved(path, file, unreadBytes);
  }
  fileFinished(path: string, file: string, offset: number): void {
    this.inner.fileFinished(path, file, offset);
  }
  fileClosedInactive(path: string, file: string): void {
    this.inner.fileClosedInactive(path, file);
  }
  fileUnreadable(path: string, reason: string): void {
    this.inner.fileUnreadable(path, reason);
  }
  fileSkippedCompressed(path: string, format: string): void {
    this.inner.fileSkippedCompressed(path, format);
  }
  lineTooLong(path: string, offset: number, bytes: number, action: "split" | "truncate" | "drop"): void {
    if (action === "split") this.m.split.inc();
    else if (action === "truncate") this.m.truncated.inc(1, "long_line");
    else this.m.dropped.inc(1, "long_line");
    this.inner.lineTooLong(path, offset, bytes, action);
  }
  dataLost(path: string, file: string, from: number, to: number, reason: string): void {
    this.m.lost.inc(to - from, lostReason(reason));
    this.inner.dataLost(path, file, from, to, reason);
  }
  invalidUtf8(path: string, offset: number): void {
    this.m.invalidUtf8.inc();
    this.inner.invalidUtf8(path, offset);
  }
  eventCut(path: string, offset: number, reason: "max_lines" | "max_bytes"): void {
    this.m.eventsCut.inc();
    this.inner.eventCut(path, offset, reason);
  }
  linesFiltered(path: string, lines: number): void {
    this.m.filtered.inc(lines);
    this.inner.linesFiltered(path, lines);
  }
  recordDropped(path: string, offset: number, bytes: number, reason: string): void {
    this.m.dropped.inc(1, "too_large_for_kafka"); // only a single line is ever dropped (sender.ts)
    this.inner.recordDropped(path, offset, bytes, reason);
  }
  chunksAcked(records: number, lines: number, bytes: number, latencyMs?: number): void {
    const m = this.m;
    m.records.inc(records);
    m.lines.inc(lines);
    m.bytes.inc(bytes);
    if (latencyMs !== undefined) m.latency.observe(latencyMs / 1000);
    m.kafkaUp.set(1);
    m.lastAck.set(m.clock.wall() / 1000);
    m.lastAckAt = m.clock.now();
    m.sendFailing = null;
    this.inner.chunksAcked(records, lines, bytes, latencyMs);
  }
  sendFailed(reason: string, code: string, retriable: boolean, attempt: number, retryInMs: number): void {
    this.m.sendErrors.inc(1, code);
    this.m.kafkaUp.set(0);
    this.m.sendFailing ??= { since: this.m.clock.now(), code };
    this.inner.sendFailed(reason, code, retriable, attempt, retryInMs);
  }
  sendRecovered(downMs: number): void {
    this.inner.sendRecovered(downMs);
  }
  producerReset(reason: string): void {
    this.inner.producerReset(reason);
  }
  offsetsSaved(rows: number): void {
    this.m.saves.inc();
    this.m.saveFailing = null;
    this.inner.offsetsSaved(rows);
  }
  stateError(reason: string): void {
    this.m.saveFailures.inc();
    this.m.saveFailing ??= { since: this.m.clock.now(), reason };
    this.inner.stateError(reason);
  }
  stateRecovered(downMs: number): void {
    this.m.saveFailing = null;
    this.inner.stateRecovered(downMs);
  }
  stateFileReplaced(path: string, files: number): void {
    this.inner.stateFileReplaced(path, files);
  }
  configReloaded(file: string): void {
    this.m.reloads.inc();
    this.inner.configReloaded(file);
  }
  configRejected(file: string, reason: string): void {
    this.m.reloadFailures.inc();
    this.inner.configRejected(file, reason);
  }
  restartNeeded(file: string, changes: StartOnlyChange[]): void {
    this.inner.restartNeeded(file, changes);
  }
  configWarning(file: string, warning: string): void {
    this.inner.configWarning(file, warning);
  }
  fileRefused(path: string, reason: string): void {
    this.inner.fileRefused(path, reason);
  }
  fileUnshippable(path: string, file: string, bytes: number, reason: string): void {
    this.m.lost.inc(bytes, "unshippable"); // a path too long for max_message_bytes: skipped, logged once per file
    this.inner.fileUnshippable(path, file, bytes, reason);
  }
  reloadFailed(reason: string): void {
    this.m.reloadFailures.inc();
    this.inner.reloadFailed(reason);
  }
  reloadIgnored(signal: string): void {
    this.inner.reloadIgnored(signal);
  }
  stopRequested(signal: string, timeoutMs: number): void {
    this.inner.stopRequested(signal, timeoutMs);
  }
  stopForced(signal: string): void {
    this.inner.stopForced(signal);
  }
  shutdownFailed(reason: string): void {
    this.inner.shutdownFailed(reason);
  }
  summary(info: { filesTracked: number; filesOpen: number; inflightBytes: number }): void {
    this.inner.summary(info);
  }
  buffersDropped(): void {
    this.inner.buffersDropped();
  }
}
