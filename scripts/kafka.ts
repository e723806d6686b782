// A real Apache Kafka cluster (KRaft) on loopback, from the jars scripts/setup.sh fetched.
//
//   bun scripts/kafka.ts [--brokers 1|3] [--security MODE] [--dir DIR]
//   MODE: plaintext | ssl | mtls | sasl-plain | sasl-scram-256 | sasl-scram-512 | sasl-ssl-scram-512
//
// When the cluster is ready it prints what a client needs, one KEY=value per line:
//   BOOTSTRAP=127.0.0.1:p1,...   and where the mode needs them:
//   CA=FILE  CLIENT_CERT=FILE  CLIENT_KEY=FILE  USERNAME=...  PASSWORD=...
// then runs until SIGTERM/SIGINT or until its stdin closes, and stops the brokers (SIGTERM,
// SIGKILL after 10 s). Stdin commands, one per line, each answered `ok` or `error: ...` when
// done (so answers can come out of order):
//   kill N    SIGKILL broker N (1-based)
//   start N   start broker N again (answered once it is back in the cluster: after all 3 were
//             killed, once a second one is started too)
// Certificates (openssl), configs, logs (nodeN.log) and data live in DIR (default: a fresh
// directory under /tmp, removed at exit; a DIR given is kept). The tests use the same code
// (tests/helpers/realKafka.ts).
import { writeSync } from "node:fs";
import { parseArgs } from "node:util";
import { SECURITY_MODES, startRealCluster, removeClusterDir, type RealCluster, type SecurityMode } from "../tests/helpers/realKafka.ts";
import { stdinLines } from "./stdin-lines.ts";

const USAGE = `usage: bun scripts/kafka.ts [--brokers 1|3] [--security ${SECURITY_MODES.join("|")}] [--dir DIR]`;

function println(line: string): void {
  writeSync(1, `${line}\n`);
}

function fail(msg: string): never {
  console.error(`kafka: ${msg}\n${USAGE}`);
  process.exit(2);
}

function parseCli(argv: string[]): { brokers: 1 | 3; security: SecurityMode; dir: string | undefined } {
  let values;
  try {
    values = parseArgs({
      args: argv,
      options: { brokers: { type: "string" }, security: { type: "string" }, dir: { type: "string" } },
      strict: true,
    }).values;
  } catch (e) {
    fail(e instanceof Error ? e.message : String(e));
  }
  const brokers = values.brokers ?? "1";
  if (brokers !== "1" && brokers !== "3") fail(`--brokers: 1 or 3, got ${JSON.stringify(brokers)}`);
  const security = values.security ?? "plaintext";
  if (!(SECURITY_MODES as readonly string[]).includes(security)) fail(`--security: unknown mode ${JSON.stringify(security)}`);
  return { brokers: brokers === "3" ? 3 : 1, security: security as SecurityMode, dir: values.dir };
}

async function runCommand(cluster: RealCluster, line: string): Promise<void> {
  const [cmd, arg, ...rest] = line.split(/\s+/);
  const n = Number(arg);
  if (rest.length > 0 || !/^\d+$/.test(arg ?? "")) throw new Error(`expected "kill N" or "start N", got ${JSON.stringify(line)}`);
  if (cmd === "kill") cluster.kill(n);
  else if (cmd === "start") await cluster.start(n);
  else throw new Error(`unknown command ${JSON.stringify(cmd)}`);
}

async function serveStdin(cluster: RealCluster): Promise<void> {
  for await (const raw of stdinLines()) {
    const line = raw.trim();
    // Not awaited: "start 1" after all 3 brokers were killed completes only once "start 2"
    // has come too (a quorum needs 2 of 3), so each command answers when it is done.
    void runCommand(cluster, line).then(() => println("ok"), (e) => println(`error: ${e instanceof Error ? e.message : String(e)}`));
  }
}

async function main(): Promise<void> {
  const cli = parseCli(Bun.argv.slice(2));
  let cluster: RealCluster;
  try {
    cluster = await startRealCluster({ brokers: cli.brokers, modes: [cli.security], dir: cli.dir });
  } catch (e) {
    console.error(`kafka: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  }
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    await cluster.stop();
    if (cli.dir === undefined) removeClusterDir(cluster.dir);
    process.exit(0);
  };
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
  for (const [k, v] of Object.entries(cluster.env(cli.security))) println(`${k}=${v}`);
  serveStdin(cluster).then(shutdown, (e) => {
    console.error("kafka: stdin failed:", e);
    void shutdown();
  });
}

await main();
