// logship's command line: parses arguments, loads the config, starts the agent and maps
// outcomes to exit codes (0 success, 1 runtime failure, 2 invalid config or usage).
// Everything else lives in lib/. Log lines are LogEvents' (lib/events.ts); what is printed
// here is the command line's own output, each line's outside text escaped (lib/text.ts).

import { parseArgs } from "node:util";
import pkg from "./package.json" with { type: "json" };
import { Agent } from "./lib/agent.ts";
import { checkFiles, formatReport } from "./lib/check.ts";
import { loadConfig, type AgentConfig } from "./lib/config.ts";
import { ConfigError, errorText, formatProblem, StateError } from "./lib/errors.ts";
import { handleSignals } from "./lib/shutdown.ts";
import { systemClock } from "./lib/clock.ts";
import { LogEvents } from "./lib/events.ts";
import { ProgressLine } from "./lib/progress.ts";
import { resetStore } from "./lib/state/store.ts";
import { fetchStatus, formatStatus } from "./lib/http/status.ts";
import { escapeText } from "./lib/text.ts";

const HELP = `logship ${pkg.version}: ships log files to Kafka, at least once.

Usage:
  logship run --config FILE [--once [--progress | --no-progress]] [--reset-state]
  logship check --config FILE
  logship status --config FILE
  logship --version | --help | COMMAND --help

Commands:
  run     follow the configured files and publish new lines until signalled
  check   validate the config; list matched files with saved offsets and unread bytes
  status  ask the running agent (through http.listen) for its followed files

Exit codes: 0 success, 1 runtime failure, 2 invalid config or usage.`;

const RUN_HELP = `Usage: logship run --config FILE [--once [--progress | --no-progress]] [--reset-state]

Follows every file the config's globs match and publishes complete lines to Kafka. Offsets
are saved only after Kafka acknowledged the lines, so nothing is lost across restarts.

Options:
  -c, --config FILE   the YAML config (required)
      --once          ship what the files hold now, wait for acknowledgements, save, exit 0
      --progress      with --once: one updating line on stderr (files, MB, MB/s, ETA);
                      the default when stderr is a terminal
      --no-progress   with --once: no progress line, even on a terminal
      --reset-state   delete the state database first: every file is read again as new
  -h, --help          this help

Signals: TERM/INT drain and exit 0 within shutdown_timeout (a second one exits at once);
HUP reloads the config (an invalid one is logged and the old one kept).`;

const CHECK_HELP = `Usage: logship check --config FILE

Validates the config (exit 2 with FILE:LINE: field: problem lines if invalid) and lists
every matched file with its size, saved offset and unread bytes (exit 0).

Options:
  -c, --config FILE   the YAML config (required)
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
  return loadConfig(values.config);
}

async function run(args: string[]): Promise<number> {
  const values = options("run", args, { once: { type: "boolean" }, "reset-state": { type: "boolean" }, progress: { type: "boolean" }, "no-progress": { type: "boolean" } });
  if (values.help) return print(RUN_HELP, 0);
  if ((values.progress || values["no-progress"]) && !values.once) throw new UsageError("--progress and --no-progress go with --once (see logship run --help)");
  if (values.progress && values["no-progress"]) throw new UsageError("--progress or --no-progress, not both");
  let config = configFrom(values);
  if (values["reset-state"]) await resetStore(config.state.path);
  // --once on a terminal: a progress line, which log lines clear and redraw (lib/progress.ts).
  const showProgress = values.once === true && (values.progress === true || (values["no-progress"] !== true && process.stderr.isTTY === true));
  let progress: ProgressLine | null = null;
  const toStderr = (text: string) => void process.stderr.write(text);
  const events = showProgress ? new LogEvents((line) => (progress ? progress.writer((l) => toStderr(l + "\n"))(line) : toStderr(line + "\n")), undefined, config.log) : undefined;
  const agent = await Agent.start(config, { once: values.once === true }, { events });
  if (values.once) {
    if (showProgress) {
      progress = new ProgressLine(toStderr, () => agent.status(), systemClock);
      progress.start();
    }
    const stopOnSignal = handleSignals(agent, { timeoutMs: () => config.shutdown_timeout, reload: async () => {}, exit: (code) => process.exit(code), events: agent.events });
    await agent.finished;
    progress?.finish();
    stopOnSignal();
    await agent.stop(config.shutdown_timeout);
    return 0;
  }
  handleSignals(agent, {
    timeoutMs: () => config.shutdown_timeout,
    exit: (code) => process.exit(code),
    events: agent.events,
    reload: async () => {
      let next: AgentConfig;
      try {
        next = loadConfig(config.file);
      } catch (err) {
        agent.events.configRejected(config.file, errorText(err).replace(/\n/g, "; "));
        return;
      }
      // Read at start only: the endpoint's address and the log's form.
      const atStart = [["http.listen", next.http.listen, config.http.listen], ["log.format", next.log.format, config.log.format], ["log.level", next.log.level, config.log.level]];
      const changed = atStart.filter(([, a, b]) => a !== b).map(([key]) => key as string);
      config = next;
      await agent.reload(next);
      if (changed.length > 0) agent.events.restartNeeded(next.file, changed);
    },
  });
  await new Promise(() => {}); // runs until a signal handler exits the process
  return 0;
}

async function check(args: string[]): Promise<number> {
  const values = options("check", args, {});
  if (values.help) return print(CHECK_HELP, 0);
  const config = configFrom(values);
  const { files, stateNote } = await checkFiles(config);
  console.log(escapeText(`config ${config.file} is valid: ${config.inputs.length} input(s), brokers ${config.kafka.brokers.join(",")}`));
  console.log(escapeText(stateNote));
  console.log(files.length === 0 ? "no files match the configured paths" : formatReport(files)); // escapes its cells
  return 0;
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

main(Bun.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof ConfigError) {
      const problems = err.problems.map((p) => escapeText(formatProblem(p))).join("\n");
      process.stderr.write(`${problems}\nlogship: invalid config (${err.problems.length} problem${err.problems.length === 1 ? "" : "s"}); nothing was started\n`);
      process.exit(2);
    }
    if (err instanceof UsageError) {
      process.stderr.write(`logship: ${escapeText(err.message)}\n`);
      process.exit(2);
    }
    const kind = err instanceof StateError ? "state" : "error";
    process.stderr.write(`logship: ${kind}: ${escapeText(errorText(err))}\n`);
    process.exit(1);
  },
);
