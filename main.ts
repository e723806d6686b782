// logship's command line: parses arguments, loads the config, starts the agent and maps
// outcomes to exit codes (0 success, 1 runtime failure, 2 invalid config or usage).
// Everything else lives in lib/. Log lines are LogEvents' (lib/events.ts); what is printed
// here is the command line's own output, each line's outside text escaped (lib/text.ts).

import { parseArgs } from "node:util";
import pkg from "./package.json" with { type: "json" };
import { Agent } from "./lib/agent.ts";
import { checkFiles, formatReport } from "./lib/check.ts";
import { checkConnect } from "./lib/kafka/connect.ts";
import { loadConfig, type AgentConfig } from "./lib/config.ts";
import { ConfigError, errorText, formatProblem, StateError } from "./lib/errors.ts";
import { handleSignals } from "./lib/shutdown.ts";
import { resetStore } from "./lib/state/store.ts";
import { escapeText } from "./lib/text.ts";

const HELP = `logship ${pkg.version}: ships log files to Kafka, at least once.

Usage:
  logship run --config FILE [--once] [--reset-state]
  logship check --config FILE [--connect]
  logship --version | --help | COMMAND --help

Commands:
  run     follow the configured files and publish new lines until signalled
  check   validate the config; list matched files with saved offsets and unread bytes;
          with --connect, also connect to Kafka and report brokers, TLS, SASL and topics

Exit codes: 0 success, 1 runtime failure, 2 invalid config or usage.`;

const RUN_HELP = `Usage: logship run --config FILE [--once] [--reset-state]

Follows every file the config's globs match and publishes complete lines to Kafka. Offsets
are saved only after Kafka acknowledged the lines, so nothing is lost across restarts.

Options:
  -c, --config FILE   the YAML config (required)
      --once          ship what the files hold now, wait for acknowledgements, save, exit 0
      --reset-state   delete the state database first: every file is read again as new
  -h, --help          this help

Signals: TERM/INT drain and exit 0 within shutdown_timeout (a second one exits at once);
HUP reloads the config (an invalid one is logged and the old one kept).`;

const CHECK_HELP = `Usage: logship check --config FILE [--connect]

Validates the config (exit 2 with FILE:LINE: field: problem lines if invalid) and lists
every matched file with its size, saved offset and unread bytes (exit 0). Offline.

With --connect it also connects to Kafka with the configured brokers and security and
reports one line each: every broker reached (TLS, and the Kafka version range from its
ApiVersions answer), SASL, and each configured topic (exists and its partitions, or whether
the broker creates it). Nothing is produced. Exit 0 when shipping can work, 1 otherwise,
within about 30 s when no broker answers.

Options:
  -c, --config FILE   the YAML config (required)
      --connect       also check the connection to Kafka
  -h, --help          this help`;

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) return print(HELP, 2, true); // a usage error: say how to use it, on stderr
  if (command === "--help" || command === "-h" || command === "help") return print(HELP, 0);
  if (command === "--version" || command === "-V" || command === "version") return print(`logship ${pkg.version}`, 0);
  if (command === "run") return run(rest);
  if (command === "check") return check(rest);
  throw new UsageError(`unknown command "${command}"; expected run or check (see logship --help)`);
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
  const values = options("run", args, { once: { type: "boolean" }, "reset-state": { type: "boolean" } });
  if (values.help) return print(RUN_HELP, 0);
  let config = configFrom(values);
  if (values["reset-state"]) await resetStore(config.state.path);
  const agent = await Agent.start(config, { once: values.once === true });
  if (values.once) {
    const stopOnSignal = handleSignals(agent, { timeoutMs: () => config.shutdown_timeout, reload: async () => {}, exit: (code) => process.exit(code), events: agent.events });
    await agent.finished;
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
      config = next;
      await agent.reload(next);
    },
  });
  await new Promise(() => {}); // runs until a signal handler exits the process
  return 0;
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
