// Everything observable that the agent does, as one typed interface with a method per event.
// Production wires it to counters and one-line stderr logs (LogEvents); tests pass a recorder.
// LogEvents is the only writer of log lines (TIMESTAMP LEVEL message key=value...), signal
// handling's included, so this file is the agent's whole log vocabulary. What main.ts prints
// itself is the command line's output, not log lines: usage, help and --version; check's
// report (stdout); and the one reason a command ends with when it cannot run (a usage error
// or an invalid config: exit 2, the config's problems as FILE:LINE: field: problem lines;
// a runtime failure such as an unusable state file: exit 1, one "logship: ..." line).
// Every line logship prints, log line or not, passes its outside text (paths, reasons, config
// values) through escapeText (lib/text.ts), so no control character reaches the terminal raw.

import { systemClock, type Clock } from "./clock.ts";
import { writeStderr } from "./stdio.ts";
import { escapeText } from "./text.ts";

export type FileAddReason = "new" | "resumed" | "start_at_end";

/** An option read at start only whose reloaded value differs from the running one. */
export interface StartOnlyChange {
  key: string;
  running: string;
  wanted: string;
}

export interface AgentEvents {
  started(info: { inputs: number; brokers: string[]; state: string; once: boolean }): void;
  stopped(info: { unacknowledgedBytes: number }): void;
  /** The operations endpoint (http.listen) is serving at `address` (the bound port, when 0 was asked). */
  httpListening(address: string): void;
  fileAdded(path: string, file: string, offset: number, reason: FileAddReason): void;
  fileRenamed(from: string, to: string, file: string): void;
  fileTruncated(path: string, file: string, offset: number, size: number): void;
  fileRemoved(path: string, file: string, unreadBytes: number): void;
  fileFinished(path: string, file: string, offset: number): void;
  fileClosedInactive(path: string, file: string): void;
  fileUnreadable(path: string, reason: string): void;
  /** A matched path logship must not read (a symlink that fails the protected_symlinks rule, /proc, /sys, /dev). */
  fileRefused(path: string, reason: string): void;
  fileSkippedCompressed(path: string, format: string): void;
  lineTooLong(path: string, offset: number, bytes: number, action: "split" | "truncate" | "drop"): void;
  dataLost(path: string, file: string, from: number, to: number, reason: string): void;
  recordDropped(path: string, offset: number, bytes: number, reason: string): void;
  /** A line shipped as `json` (or redacted) held bytes that are not UTF-8: they became U+FFFD (kafka/format.ts). */
  invalidUtf8(path: string, offset: number): void;
  /** A multiline event was cut at max_lines or max_bytes: the rest starts a new event (said once per file). */
  eventCut(path: string, offset: number, reason: "max_lines" | "max_bytes"): void;
  /** `lines` read lines of a file were dropped by include_lines / exclude_lines (counted, not logged). */
  linesFiltered(path: string, lines: number): void;
  /** A file's path makes key + headers too large for max_message_bytes: `bytes` of it skipped. */
  fileUnshippable(path: string, file: string, bytes: number, reason: string): void;
  /** `latencyMs`: from the send's oldest record entering the send queue to the acknowledgement. */
  chunksAcked(records: number, lines: number, bytes: number, latencyMs?: number): void;
  sendFailed(reason: string, code: string, retriable: boolean, attempt: number, retryInMs: number): void;
  sendRecovered(downMs: number): void;
  /** The idempotent producer started over with a new producer id (kafka.idempotent; `reason` is one line). */
  producerReset(reason: string): void;
  /** Acknowledged offsets of `rows` files were written to the state database; not logged. */
  offsetsSaved(rows: number): void;
  stateError(reason: string): void;
  stateRecovered(downMs: number): void;
  stateFileReplaced(path: string, files: number): void;
  configReloaded(file: string): void;
  /** A config that is valid but risky (kafka.tls.verify: false, a readable password): at every start and reload. */
  configWarning(file: string, warning: string): void;
  configRejected(file: string, reason: string): void;
  /**
   * A reloaded config changed options read at start only (state.path, http.listen, log.*): the
   * rest applied; these keep their running values until the next start. One line per reload.
   */
  restartNeeded(file: string, changes: StartOnlyChange[]): void;
  /** The reload a SIGHUP asked for threw (a config that loads but cannot be applied). */
  reloadFailed(reason: string): void;
  /** SIGHUP while draining: no reload. */
  reloadIgnored(signal: string): void;
  /** First SIGTERM/SIGINT: draining for up to `timeoutMs`. */
  stopRequested(signal: string, timeoutMs: number): void;
  /** A second SIGTERM/SIGINT: exiting without draining. */
  stopForced(signal: string): void;
  /** Draining after a signal threw; the process exits 1. */
  shutdownFailed(reason: string): void;
  summary(info: { filesTracked: number; filesOpen: number; inflightBytes: number }): void;
  /** An idle agent dropped the buffers it kept for reuse (memory.ts' IdleTrim); not logged. */
  buffersDropped(): void;
}

/** Running totals; the summary line and tests read them. */
export class Counters {
  records = 0;
  lines = 0;
  bytes = 0;
  filesAdded = 0;
  truncations = 0;
  rotations = 0;
  sendFailures = 0;
  linesTruncated = 0;
  linesDropped = 0;
  linesSplit = 0;
  recordsDropped = 0;
  linesInvalidUtf8 = 0;
  linesFiltered = 0;
  eventsCut = 0;
  bytesLost = 0;
  filesUnshippable = 0;
  bytesUnshippable = 0;
  unacknowledgedBytes = 0; // at the last stop
}

type Level = "DEBUG" | "INFO" | "WARN" | "ERROR";

const SEVERITY: Record<Level, number> = { DEBUG: 0, INFO: 1, WARN: 2, ERROR: 3 };

/** How lines are written: `text` (TIME LEVEL message key=value ...) or `json` (one object per line), from `level` up. */
export interface LogStyle {
  format: "text" | "json";
  level: "debug" | "info" | "warn" | "error";
}

/** The production events: counters plus one line per event on stderr. */
export class LogEvents implements AgentEvents {
  readonly counters = new Counters();
  private outageSince: number | null = null; // clock.now() sends began to fail
  private lastReminder = 0;
  private stateFailingSince: number | null = null; // clock.now() saves began to fail
  private lastStateReminder = 0;
  private readonly warnedOnce = new Set<string>();
  private readonly lastUnreadable = new Map<string, string>();
  /** Paths found unreadable and not followed since (--once's summary). */
  private readonly unreadable = new Set<string>();

  private readonly minSeverity: number;
  private readonly json: boolean;

  constructor(
    private readonly write: (line: string) => void = (line) => writeStderr(line + "\n"),
    private readonly reminderMs = 60_000,
    style: LogStyle = { format: "text", level: "info" },
    private readonly clock: Clock = systemClock,
  ) {
    this.minSeverity = SEVERITY[style.level.toUpperCase() as Level];
    this.json = style.format === "json";
  }

  /**
   * The one log-line formatter. Text: message and values escaped (see lib/text.ts), values
   * quoted when needed. JSON: {"time","level","message", then the same keys}, numbers and
   * booleans as such, every control character (C1 and DEL too) as a \u escape.
   */
  private log(level: Level, msg: string, fields: Record<string, unknown> = {}): void {
    if (SEVERITY[level] < this.minSeverity) return;
    const time = new Date(this.clock.wall()).toISOString();
    if (this.json) {
      const obj: Record<string, unknown> = { time, level, message: msg };
      for (const [k, v] of Object.entries(fields)) obj[k] = typeof v === "number" || typeof v === "boolean" ? v : String(v);
      this.write(JSON.stringify(obj).replace(/[\x7f-\x9f]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`));
      return;
    }
    let line = `${time} ${level} ${escapeText(msg)}`;
    for (const [k, v] of Object.entries(fields)) line += ` ${k}=${quote(v)}`;
    this.write(line);
  }

  started(info: { inputs: number; brokers: string[]; state: string; once: boolean }): void {
    this.log("INFO", "logship started", { inputs: info.inputs, brokers: info.brokers.join(","), state: info.state, mode: info.once ? "once" : "run" });
  }
  stopped(info: { unacknowledgedBytes: number }): void {
    const c = this.counters;
    c.unacknowledgedBytes = info.unacknowledgedBytes;
    const fields: Record<string, unknown> = { lines: c.lines, bytes: c.bytes, records: c.records, ...this.losses() };
    if (info.unacknowledgedBytes > 0) fields.unacknowledged_bytes = info.unacknowledgedBytes;
    this.log(info.unacknowledgedBytes > 0 ? "WARN" : "INFO", info.unacknowledgedBytes > 0 ? "logship stopped; unacknowledged data will be sent again on the next start" : "logship stopped", fields);
  }
  httpListening(address: string): void {
    this.log("INFO", "http endpoint listening", { address, paths: "/metrics /health /ready /status" });
  }
  fileAdded(path: string, file: string, offset: number, reason: FileAddReason): void {
    this.counters.filesAdded++;
    this.lastUnreadable.delete(path);
    this.unreadable.delete(path);
    this.log("INFO", "file added", { path, file, offset, reason });
  }
  fileRenamed(from: string, to: string, file: string): void {
    this.counters.rotations++;
    this.log("INFO", "file renamed", { from, to, file });
  }
  fileTruncated(path: string, file: string, offset: number, size: number): void {
    this.counters.truncations++;
    this.log("WARN", "file truncated; reading again from byte 0", { path, file, offset, size });
  }
  fileRemoved(path: string, file: string, unreadBytes: number): void {
    this.log("INFO", "file removed", { path, file, unread_bytes: unreadBytes });
  }
  fileFinished(path: string, file: string, offset: number): void {
    this.log("INFO", "file finished", { path, file, offset });
  }
  fileClosedInactive(path: string, file: string): void {
    this.log("INFO", "file inactive; closed until it grows", { path, file });
  }
  fileUnreadable(path: string, reason: string): void {
    this.unreadable.add(path);
    if (this.lastUnreadable.get(path) === reason) return; // said once; retried silently
    this.lastUnreadable.set(path, reason);
    this.log("WARN", "cannot read file; will retry", { path, reason });
  }
  fileRefused(path: string, reason: string): void {
    if (!this.once(`refused:${path}:${reason}`)) return;
    this.log("WARN", "file not followed", { path, reason });
  }
  fileSkippedCompressed(path: string, format: string): void {
    if (!this.once(`compressed:${path}`)) return;
    this.log("WARN", "skipping compressed file (logship ships text; exclude it to silence this)", { path, format });
  }
  lineTooLong(path: string, offset: number, bytes: number, action: "split" | "truncate" | "drop"): void {
    if (action === "split") this.counters.linesSplit++;
    if (action === "truncate") this.counters.linesTruncated++;
    if (action === "drop") this.counters.linesDropped++;
    if (!this.once(`long:${action}:${path}`)) return;
    this.log("WARN", `line longer than max_line_bytes (${action}; said once per file)`, { path, offset, bytes });
  }
  dataLost(path: string, file: string, from: number, to: number, reason: string): void {
    this.counters.bytesLost += to - from;
    this.log("ERROR", "data lost", { path, file, from, to, bytes: to - from, reason });
  }
  invalidUtf8(path: string, offset: number): void {
    this.counters.linesInvalidUtf8++;
    if (!this.once(`utf8:${path}`)) return;
    this.log("WARN", "line is not valid UTF-8: its invalid bytes are shipped as U+FFFD (json: with invalid_utf8 true; said once per file)", { path, offset });
  }
  eventCut(path: string, offset: number, reason: "max_lines" | "max_bytes"): void {
    this.counters.eventsCut++;
    if (!this.once(`cut:${path}`)) return;
    this.log("WARN", `multiline event cut at ${reason}: the rest ships as another event (said once per file)`, { path, offset });
  }
  linesFiltered(_path: string, lines: number): void {
    this.counters.linesFiltered += lines;
  }
  recordDropped(path: string, offset: number, bytes: number, reason: string): void {
    this.counters.recordsDropped++;
    this.log("ERROR", "record rejected by Kafka and dropped", { path, offset, bytes, reason });
  }
  fileUnshippable(path: string, file: string, bytes: number, reason: string): void {
    this.counters.bytesUnshippable += bytes;
    if (!this.once(`unshippable:${file}`)) return;
    this.counters.filesUnshippable++;
    this.log("ERROR", "file cannot be shipped: its lines are skipped (said once per file; raise kafka.max_message_bytes or shorten the path)", { path, file, bytes, reason });
  }
  chunksAcked(records: number, lines: number, bytes: number, _latencyMs?: number): void {
    const c = this.counters;
    c.records += records;
    c.lines += lines;
    c.bytes += bytes;
  }
  sendFailed(reason: string, code: string, retriable: boolean, attempt: number, retryInMs: number): void {
    this.counters.sendFailures++;
    const now = this.clock.now();
    if (this.outageSince === null) {
      this.outageSince = now;
      this.lastReminder = now;
      this.log("ERROR", "Kafka send failed; reading paused, retrying with backoff", { code, retriable, reason, retry_in_ms: retryInMs });
    } else if (now - this.lastReminder >= this.reminderMs) {
      this.lastReminder = now;
      this.log("ERROR", "Kafka still failing", { code, reason, down_for_s: Math.round((now - this.outageSince) / 1000), attempts: attempt });
    }
  }
  sendRecovered(downMs: number): void {
    if (this.outageSince === null) return;
    this.outageSince = null;
    this.log("INFO", "Kafka sends succeed again", { down_for_ms: downMs });
  }
  producerReset(reason: string): void {
    this.log("WARN", reason);
  }
  offsetsSaved(_rows: number): void {
    // routine: counted by the metrics, not logged
  }
  stateError(reason: string): void {
    const now = this.clock.now();
    if (this.stateFailingSince === null) {
      this.stateFailingSince = now;
      this.lastStateReminder = now;
      this.log("ERROR", "cannot save offsets; reading paused, offsets held in memory, retrying", { reason });
    } else if (now - this.lastStateReminder >= this.reminderMs) {
      this.lastStateReminder = now;
      this.log("ERROR", "still cannot save offsets", { reason, failing_for_s: Math.round((now - this.stateFailingSince) / 1000) });
    }
  }
  stateRecovered(downMs: number): void {
    if (this.stateFailingSince === null) return;
    this.stateFailingSince = null;
    this.log("INFO", "offsets saved again", { failed_for_ms: downMs });
  }
  stateFileReplaced(path: string, files: number): void {
    this.log("ERROR", "state file was deleted or replaced while logship ran; created it again and writing the offsets of all files to it", { path, files });
  }
  configReloaded(file: string): void {
    this.log("INFO", "config reloaded", { file });
  }
  configWarning(file: string, warning: string): void {
    this.log("WARN", warning, { config: file });
  }
  configRejected(file: string, reason: string): void {
    this.log("ERROR", "new config rejected; keeping the old one", { file, reason });
  }
  restartNeeded(file: string, changes: StartOnlyChange[]): void {
    const each = Object.fromEntries(changes.map((c) => [c.key, `${c.running} (wanted ${c.wanted})`]));
    this.log("WARN", "config reloaded, but these keys apply only at the next start; they keep their running values", { file, keys: changes.map((c) => c.key).join(","), ...each });
  }
  // The signal lines keep the words (and the INFO level) they had when main.ts printed them.
  reloadFailed(reason: string): void {
    this.log("INFO", `reload failed: ${reason}`);
  }
  reloadIgnored(signal: string): void {
    this.log("INFO", `${signal} ignored: shutting down`);
  }
  stopRequested(signal: string, timeoutMs: number): void {
    this.log("INFO", `${signal}: draining in-flight data (up to ${timeoutMs} ms); send ${signal} again to exit at once`);
  }
  stopForced(signal: string): void {
    this.log("INFO", `${signal} again: exiting now without draining; unacknowledged lines will be sent again on the next start`);
  }
  shutdownFailed(reason: string): void {
    this.log("INFO", `shutdown failed: ${reason}`);
  }
  buffersDropped(): void {
    // routine: nothing for the operator to see
  }
  summary(info: { filesTracked: number; filesOpen: number; inflightBytes: number }): void {
    const c = this.counters;
    this.log("INFO", "stats", { lines: c.lines, bytes: c.bytes, records: c.records, files_tracked: info.filesTracked, files_open: info.filesOpen, inflight_bytes: info.inflightBytes, ...this.losses() });
  }

  /**
   * What a `--once` run did not ship (after stopped()): files unreadable, bytes left
   * unacknowledged, files unshippable, records Kafka refused; empty when it shipped everything.
   */
  onceGaps(): Record<string, number> {
    const c = this.counters;
    const out: Record<string, number> = {};
    if (this.unreadable.size > 0) out.unreadable_files = this.unreadable.size;
    if (c.unacknowledgedBytes > 0) out.unacknowledged_bytes = c.unacknowledgedBytes;
    if (c.filesUnshippable > 0) out.unshippable_files = c.filesUnshippable;
    if (c.recordsDropped > 0) out.records_dropped = c.recordsDropped;
    return out;
  }

  /** max_open_files was lowered to stay below the open-file limit (RLIMIT_NOFILE) with a reserve. */
  openFilesLowered(configured: number, used: number, limit: number, reserve: number): void {
    this.log("WARN", `max_open_files lowered to ${used}: the open-file limit (RLIMIT_NOFILE) is ${limit} and ${reserve} descriptors are kept for Kafka connections, the state database and watches`, { configured, used, limit });
  }

  /** The summary line of a `--once` run that did not ship everything matched (exit 3). */
  onceIncomplete(gaps: Record<string, number>, stoppedBy: string | null): void {
    const fields: Record<string, unknown> = { ...gaps };
    if (stoppedBy) fields.stopped_by = stoppedBy;
    this.log("WARN", "--once finished, but not everything matched was shipped (exit 3)", fields);
  }

  /** Counters of data not shipped as written, shown only when non-zero. */
  private losses(): Record<string, number> {
    const c = this.counters;
    const out: Record<string, number> = {};
    if (c.bytesLost > 0) out.bytes_lost = c.bytesLost;
    if (c.recordsDropped > 0) out.records_dropped = c.recordsDropped;
    if (c.linesTruncated > 0) out.lines_truncated = c.linesTruncated;
    if (c.linesDropped > 0) out.lines_dropped = c.linesDropped;
    if (c.linesInvalidUtf8 > 0) out.lines_invalid_utf8 = c.linesInvalidUtf8;
    if (c.linesFiltered > 0) out.lines_filtered = c.linesFiltered;
    if (c.eventsCut > 0) out.events_cut = c.eventsCut;
    if (c.filesUnshippable > 0) out.files_unshippable = c.filesUnshippable;
    if (c.bytesUnshippable > 0) out.bytes_unshippable = c.bytesUnshippable;
    return out;
  }

  private once(key: string): boolean {
    if (this.warnedOnce.has(key)) return false;
    this.warnedOnce.add(key);
    return true;
  }
}

/**
 * A value of a log line: escaped, and in double quotes (a quote inside as \") when it is
 * empty or holds white space, '"' or '='. Apart from \xHH escapes of control characters,
 * a quoted value reads as a JSON string, as it did before the escaping.
 */
function quote(v: unknown): string {
  const s = escapeText(String(v));
  return /[\s"=]/.test(s) || s === "" ? `"${s.replace(/"/g, '\\"')}"` : s;
}
