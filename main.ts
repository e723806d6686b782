// logship's command line: parses arguments, loads the config, starts the agent and maps
// outcomes to exit codes (0 success, 1 runtime failure, 2 invalid config or usage).
// Everything else lives in lib/. Log lines are LogEvents' (lib/events.ts); what is printed
// here is the command line's own output, each line's outside text escaped (lib/text.ts).

import { join } from "node:path";
import { parseArgs } from "node:util";
import pkg from "./package.json" with { type: "json" };
import { Agent } from "./lib/agent.ts";
import { checkFiles, formatReport } from "./lib/check.ts";
import { checkConnect } from "./lib/kafka/connect.ts";
import { loadConfig, type AgentConfig } from "./lib/config.ts";
import { ConfigError, errorText, formatProblem, StateError, type ConfigProblem } from "./lib/errors.ts";
import { splitGlob } from "./lib/files/discover.ts";
import { roomForLines } from "./lib/kafka/pack.ts";
import { LogEvents } from "./lib/events.ts";
import { guardStdio, writeStderr } from "./lib/stdio.ts";
import { FD_RESERVE, raiseFileLimit, usableOpenFiles } from "./lib/limits.ts";
import { handleSignals } from "./lib/shutdown.ts";
import { systemClock } from "./lib/clock.ts";
import { ProgressLine } from "./lib/progress.ts";
import { resetStore } from "./lib/state/store.ts";
import { runStateWriter } from "./lib/state/writer-child.ts";
import { WRITER_ENV } from "./lib/state/writer.ts";
import { fetchStatus, formatStatus } from "./lib/http/status.ts";
import { escapeText } from "./lib/text.ts";

const HELP = `logship ${pkg.version}: ships log files to Kafka, at least once.

Usage:
  logship run --config FILE [--once [--progress | --no-progress]] [--reset-state]
  logship check --config FILE [--connect]
  logship status --config FILE
  logship --version | --help | COMMAND --help

Commands:
  run     follow the configured files and publish new lines until signalled
  check   validate the config; list matched files with saved offsets and unread bytes;
          with --connect, also connect to Kafka and report brokers, TLS, SASL and topics
  status  ask the running agent (through http.listen) for its followed files

Exit codes: 0 success, 1 runtime failure, 2 invalid config or usage, 3 run --once did not
ship everything matched (a file unreadable or unshippable, records dropped, or stopped early).`;

const RUN_HELP = `Usage: logship run --config FILE [--once [--progress | --no-progress]] [--reset-state]

Follows every file the config's globs match and publishes complete lines to Kafka. Offsets
are saved only after Kafka acknowledged the lines, so nothing is lost across restarts.

Options:
  -c, --config FILE   the YAML config (required)
      --once          ship what the files hold now, wait for acknowledgements, save, exit 0
                      (3, with a summary line, when not everything matched was shipped)
      --progress      with --once: one updating line on stderr (files, MB, MB/s, ETA);
                      the default when stderr is a terminal
      --no-progress   with --once: no progress line, even on a terminal
      --reset-state   delete the state database first: every file is read again as new
  -h, --help          this help

Signals: TERM/INT drain and exit 0 within shutdown_timeout (a second one exits at once);
HUP reloads the config (an invalid one is logged and the old one kept).`;

const CHECK_HELP = `Usage: logship check --config FILE [--connect]

Validates the config (exit 2 with FILE:LINE: field: problem lines if invalid) and lists
every matched file with its size, saved offset and unread bytes (exit 0). Offline.

With --connect it also connects to Kafka with the configured brokers and security and
reports one line each: every broker reached (TLS, and the Kafka release its ApiVersions
answer fits), SASL, a producer id when kafka.idempotent is on, and each configured topic
(exists, its partitions, whether this client may write to it, or whether the broker creates
it). Nothing is produced. Exit 0 when shipping can work, 1 otherwise,
within about 30 s when no broker answers.

Options:
  -c, --config FILE   the YAML config (required)
      --connect       also check the connection to Kafka
  -h, --help          this help`;

const STATUS_HELP = `Usage: logship status --config FILE

Asks the agent running with this config for its followed files, through its operations
endpoint (GET /status on http.listen), and prints each with its size, acknowledged offset,
unread bytes, whether it is open, and when it last grew (exit 0). Exit 1 when the config has
no http.listen or no agent answers there, with a line saying why.

Options:
  -c, --config FILE   the YAML config (required)
  -h, --help          this help`;

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) return print(HELP, 2, true); // a usage error: say how to use it, on stderr
  if (command === "--help" || command === "-h" || command === "help") return print(HELP, 0);
  if (command === "--version" || command === "-V" || command === "version") return print(`logship ${pkg.version}`, 0);
  if (command === "run") return run(rest);
  if (command === "check") return check(rest);
  if (command === "status") return status(rest);
  throw new UsageError(`unknown command "${command}"; expected run, check or status (see logship --help)`);
}

function options(command: string, args: string[], extra: Record<string, { type: "boolean" }>) {
  try {
    return parseArgs({ args, strict: true, allowPositionals: false, options: { config: { type: "string", short: "c" }, help: { type: "boolean", short: "h" }, ...extra } }).values as Record<string, string | boolean | undefined>;
  } catch (err) {
    throw new UsageError(`${errorText(err)} (see logship ${command} --help)`);
  }
}

function configFrom(values: Record<string, string | boolean | undefined>): AgentConfig {
  if (typeof values.config !== "string") throw new UsageError("--config FILE is required");
  if (values.config === "") throw new UsageError("--config was given an empty file name (--config= or --config \"\"); give the YAML file, e.g. --config /etc/logship.yaml");
  return loadChecked(values.config);
}

/** loadConfig, and refuses inputs none of whose files could ship (see shippable). */
function loadChecked(file: string): AgentConfig {
  const config = loadConfig(file);
  const problems = shippable(config);
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/**
 * Inputs whose every file would be unshippable: even the shortest path a pattern can match
 * makes a record's key and headers fill kafka.max_message_bytes. (A longer path matched later
 * is logged as unshippable and skipped while the others ship.)
 */
function shippable(config: AgentConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const limits = { maxMessageBytes: config.kafka.max_message_bytes, targetMessageBytes: config.kafka.target_message_bytes };
  config.inputs.forEach((input, i) => {
    for (const pattern of input.paths) {
      const { root, rest } = splitGlob(pattern);
      const shortest = rest === "" ? root : join(root, "x");
      if (roomForLines(config.host, shortest, input.topic, limits) >= 1) continue;
      problems.push({
        file: config.file,
        line: 0,
        field: `inputs[${i}].paths`,
        message: `kafka.max_message_bytes (${config.kafka.max_message_bytes}) leaves no room for a line of ${pattern}: a record's key and headers (path, host, file id, offset) fill it; raise kafka.max_message_bytes or shorten the path`,
      });
    }
  });
  return problems;
}

async function run(args: string[]): Promise<number> {
  const values = options("run", args, { once: { type: "boolean" }, "reset-state": { type: "boolean" }, progress: { type: "boolean" }, "no-progress": { type: "boolean" } });
  if (values.help) return print(RUN_HELP, 0);
  if ((values.progress || values["no-progress"]) && !values.once) throw new UsageError("--progress and --no-progress go with --once (see logship run --help)");
  if (values.progress && values["no-progress"]) throw new UsageError("--progress or --no-progress, not both");
  let config = configFrom(values);
  // --once on a terminal: a progress line, which log lines clear and redraw (lib/progress.ts).
  const showProgress = values.once === true && (values.progress === true || (values["no-progress"] !== true && process.stderr.isTTY === true));
  let progress: ProgressLine | null = null;
  const toStderr = (text: string) => writeStderr(text);
  // Signals are handled from here on, before the slow startup (reset, state, the first scan):
  // a TERM then stops the agent as soon as it exists (lib/shutdown.ts).
  const events = new LogEvents((line) => (progress ? progress.writer((l) => toStderr(l + "\n"))(line) : toStderr(line + "\n")), undefined, config.log);
  let agentReady!: { resolve: (a: Agent) => void; reject: (err: unknown) => void };
  const starting = new Promise<Agent>((resolve, reject) => (agentReady = { resolve, reject }));
  let finished = false; // --once: everything matched at start was acknowledged
  const signals = {
    timeoutMs: () => config.shutdown_timeout,
    // --once stopped by TERM/INT: exit 3 unless it had finished (the drain's 0 becomes the run's outcome)
    exit: (code: number) => process.exit(values.once && code === 0 ? onceOutcome(events, finished ? null : "signal") : code),
    events,
    reload: async () => {
      if (values.once) return;
      let next: AgentConfig;
      try {
        next = loadChecked(config.file);
      } catch (err) {
        events.configRejected(config.file, errorText(err).replace(/\n/g, "; "));
        return;
      }
      // Read at start only: the state file (locked and open: moving it is a restart's job), the
      // endpoint's address and the log's form. The running values stay; the rest applies.
      const atStart: [string, string, string][] = [
        ["state.path", config.state.path, next.state.path],
        ["http.listen", config.http.listen ?? "(off)", next.http.listen ?? "(off)"],
        ["log.format", config.log.format, next.log.format],
        ["log.level", config.log.level, next.log.level],
      ];
      const changed = atStart.filter(([, running, wanted]) => running !== wanted).map(([key, running, wanted]) => ({ key, running, wanted }));
      next = { ...next, state: { ...next.state, path: config.state.path } };
      config = fitOpenFiles(next, fileLimit.soft, events);
      await (await starting).reload(config);
      if (changed.length > 0) events.restartNeeded(next.file, changed);
    },
  };
  const stopOnSignal = handleSignals(starting, signals);
  const fileLimit = raiseFileLimit();
  config = fitOpenFiles(config, fileLimit.soft, events);
  let agent: Agent;
  try {
    if (values["reset-state"]) await resetStore(config.state.path);
    agent = await Agent.start(config, { once: values.once === true }, { events });
  } catch (err) {
    agentReady.reject(err);
    throw err;
  }
  agentReady.resolve(agent);
  if (values.once) {
    if (showProgress) {
      progress = new ProgressLine(toStderr, () => agent.status(), systemClock);
      progress.start();
    }
    await agent.finished;
    finished = true;
    progress?.finish();
    stopOnSignal();
    await agent.stop(config.shutdown_timeout);
    return onceOutcome(events, null);
  }
  await new Promise(() => {}); // runs until a signal handler exits the process
  return 0;
}

/** max_open_files kept FD_RESERVE below the open-file limit (lib/limits.ts), with a WARN when that lowers it. */
function fitOpenFiles(config: AgentConfig, softLimit: number, events: LogEvents): AgentConfig {
  const usable = usableOpenFiles(config.max_open_files, softLimit);
  if (usable === config.max_open_files) return config;
  events.openFilesLowered(config.max_open_files, usable, softLimit, FD_RESERVE);
  return { ...config, max_open_files: usable };
}

/** Exit code of a --once run that did not ship everything matched. */
const ONCE_INCOMPLETE = 3;

/** A --once run's exit code (after the agent stopped): 0, or 3 with a summary line naming what was not shipped. */
function onceOutcome(events: LogEvents, stoppedBy: string | null): number {
  const gaps = events.onceGaps();
  if (stoppedBy === null && Object.keys(gaps).length === 0) return 0;
  events.onceIncomplete(gaps, stoppedBy);
  return ONCE_INCOMPLETE;
}

async function check(args: string[]): Promise<number> {
  const values = options("check", args, { connect: { type: "boolean" } });
  if (values.help) return print(CHECK_HELP, 0);
  const config = configFrom(values);
  const { files, stateNote } = await checkFiles(config);
  console.log(escapeText(`config ${config.file} is valid: ${config.inputs.length} input(s), brokers ${config.kafka.brokers.join(",")}`));
  const k = config.kafka;
  const security = [
    k.tls ? `TLS (${k.tls.ca ? `ca ${k.tls.ca}` : "system CAs"}${k.tls.cert ? `, client certificate ${k.tls.cert}` : ""}${k.tls.verify ? "" : ", NOT verified"})` : "plaintext",
    ...(k.sasl ? [`SASL ${k.sasl.mechanism} as ${k.sasl.username}${k.sasl.password_file ? ` (password from ${k.sasl.password_file})` : ""}`] : []),
  ];
  console.log(escapeText(`kafka security: ${security.join(", ")}`)); // names files, never what they hold
  for (const w of config.warnings) console.log(escapeText(`WARN ${w}`));
  console.log(escapeText(stateNote));
  console.log(files.length === 0 ? "no files match the configured paths" : formatReport(files)); // escapes its cells
  if (!values.connect) return 0;
  const report = await checkConnect(config);
  for (const l of report.lines) console.log(escapeText(`${l.warn ? "WARN" : l.ok ? "ok  " : "FAIL"} ${l.text}`));
  console.log(report.ok ? "kafka: shipping can work" : "kafka: shipping cannot work as configured (see FAIL above)");
  return report.ok ? 0 : 1;
}

async function status(args: string[]): Promise<number> {
  const values = options("status", args, {});
  if (values.help) return print(STATUS_HELP, 0);
  const config = configFrom(values);
  let reply;
  try {
    reply = await fetchStatus(config.http.listen, config.file);
  } catch (err) {
    process.stderr.write(`logship: ${errorText(err).split("\n").map(escapeText).join("\n")}\n`); // the message's own lines kept
    return 1;
  }
  console.log(formatStatus(reply, Date.now())); // escapes its cells
  return 0;
}

/** Prints the command line's own text (help, version: no outside text in it). */
function print(text: string, code: number, toStderr = false): number {
  (toStderr ? console.error : console.log)(text);
  return code;
}

// The state writer process (lib/state/writer.ts) is this same program started with its variable set.
const writerOf = process.env[WRITER_ENV];
if (writerOf !== undefined) {
  delete process.env[WRITER_ENV];
  runStateWriter(writerOf);
} else {
  guardStdio(); // a broken stdout or stderr pipe never ends the process (issue 11, item 16)
  main(Bun.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      if (err instanceof ConfigError) {
        const problems = err.problems.map((p) => escapeText(formatProblem(p))).join("\n");
        writeStderr(`${problems}\nlogship: invalid config (${err.problems.length} problem${err.problems.length === 1 ? "" : "s"}); nothing was started\n`);
        process.exit(2);
      }
      if (err instanceof UsageError) {
        writeStderr(`logship: ${escapeText(err.message)}\n`);
        process.exit(2);
      }
      const kind = err instanceof StateError ? "state" : "error";
      writeStderr(`logship: ${kind}: ${escapeText(errorText(err))}\n`);
      process.exit(1);
    },
  );
}
