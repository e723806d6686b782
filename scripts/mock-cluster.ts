// Standalone mock Kafka cluster process (librdkafka mock via tests/helpers).
//
//   bun scripts/mock-cluster.ts [--brokers N] [--topic T[:partitions]]...
//
// Prints exactly one line `BOOTSTRAP=<host:port,...>` on stdout, then serves
// until SIGTERM/SIGINT or until stdin closes (so a dead parent cannot leave it
// running), closes the cluster and exits 0. Each stdin line is a fault
// injection command, answered on stdout with `ok` or `error: ...`:
//   down ID | up ID | rtt ID MS | errors APIKEY ERR[,ERR...] | clear APIKEY
//   topic NAME[:PARTITIONS] | topicerror NAME ERR
// APIKEY and ERR are numbers or names from ApiKey / KafkaErr (e.g. Produce,
// MSG_SIZE_TOO_LARGE).
import { writeSync } from "node:fs";
import { parseArgs } from "node:util";
import { ApiKey, KafkaErr, startMockCluster, type MockCluster } from "../tests/helpers/mockCluster.ts";
import { stdinLines } from "./stdin-lines.ts";

function println(line: string): void {
  writeSync(1, `${line}\n`); // synchronous: the parent sees each line at once
}

function parseIntArg(what: string, s: string | undefined): number {
  if (s === undefined || !/^-?\d+$/.test(s)) throw new Error(`${what}: expected an integer, got ${JSON.stringify(s ?? "")}`);
  return Number(s);
}

/** A number, or a key of `names` (e.g. "Produce", "MSG_SIZE_TOO_LARGE"). */
function parseCode(what: string, s: string | undefined, names: Record<string, number>): number {
  if (s !== undefined && Object.hasOwn(names, s)) return names[s] as number;
  return parseIntArg(what, s);
}

/** "name" or "name:partitions" */
function parseTopicSpec(spec: string): { name: string; partitions: number } {
  const i = spec.lastIndexOf(":");
  if (i < 0) return { name: spec, partitions: 1 };
  return { name: spec.slice(0, i), partitions: parseIntArg("partitions", spec.slice(i + 1)) };
}

function runCommand(cluster: MockCluster, line: string): void {
  const [cmd, ...args] = line.trim().split(/\s+/);
  const [a, b] = args;
  switch (cmd) {
    case "down":
      return cluster.brokerDown(parseIntArg("broker id", a));
    case "up":
      return cluster.brokerUp(parseIntArg("broker id", a));
    case "rtt":
      return cluster.setRtt(parseIntArg("broker id", a), parseIntArg("rtt ms", b));
    case "errors": {
      const errs = (b ?? "").split(",").map((e) => parseCode("error code", e, KafkaErr));
      return cluster.pushRequestErrors(parseCode("api key", a, ApiKey), errs);
    }
    case "clear":
      return cluster.clearRequestErrors(parseCode("api key", a, ApiKey));
    case "topic": {
      const t = parseTopicSpec(a ?? "");
      return cluster.createTopic(t.name, t.partitions);
    }
    case "topicerror":
      if (!a) throw new Error("topicerror: missing topic");
      return cluster.setTopicError(a, parseCode("error code", b, KafkaErr));
    case "":
    case undefined:
      throw new Error("empty command");
    default:
      throw new Error(`unknown command ${JSON.stringify(cmd)}`);
  }
}

function answer(cluster: MockCluster, line: string): string {
  try {
    runCommand(cluster, line);
    return "ok";
  } catch (e) {
    return `error: ${e instanceof Error ? e.message : String(e)}`;
  }
}

/** Answers stdin commands line by line; resolves when stdin closes. */
async function serveStdin(cluster: MockCluster): Promise<void> {
  for await (const line of stdinLines()) println(answer(cluster, line));
}

function parseCli(argv: string[]): { brokers: number; topics: string[] } {
  const { values } = parseArgs({
    args: argv,
    options: { brokers: { type: "string" }, topic: { type: "string", multiple: true } },
    strict: true,
  });
  const brokers = values.brokers === undefined ? 1 : parseIntArg("--brokers", values.brokers);
  return { brokers, topics: values.topic ?? [] };
}

const USAGE = "usage: bun scripts/mock-cluster.ts [--brokers N] [--topic T[:partitions]]...";

function main(): void {
  let cli: { brokers: number; topics: string[] };
  try {
    cli = parseCli(Bun.argv.slice(2));
  } catch (e) {
    console.error(`mock-cluster: ${e instanceof Error ? e.message : String(e)}\n${USAGE}`);
    process.exit(2);
  }
  const { brokers, topics } = cli;
  const cluster = startMockCluster({ brokers });
  const shutdown = () => {
    cluster.close();
    process.exit(0);
  };
  try {
    for (const spec of topics) {
      const t = parseTopicSpec(spec);
      cluster.createTopic(t.name, t.partitions);
    }
  } catch (e) {
    cluster.close();
    throw e;
  }
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
  println(`BOOTSTRAP=${cluster.bootstraps}`);
  serveStdin(cluster).then(shutdown, (e) => {
    console.error("mock-cluster: stdin failed:", e);
    shutdown();
  });
}

main();
