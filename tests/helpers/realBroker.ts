// What the real-broker tests do again and again, around one RealCluster (realKafka.ts): a
// workspace of two awkward log files and a topic name, the config of one security mode, what
// arrived (read back through the internal listener), and the failure drill — one error line,
// offsets held, the cause fixed, everything shipped exactly once. Imports nothing from lib/.
//
//   const kit = realBrokerKit(() => cluster, dirs);     // dirs: removed by the test file's afterAll
//   const ws = kit.workspace("name");                    // ws.files: path → content
//   const cfg = kit.config(ws, "ssl", kit.security("ssl", { ca }));
//   await kit.failThenRecover(ws, cfg, /TLS: .../, async () => { /* fix files or the broker */ });

import { expect } from "bun:test";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AgentProcess, checkDelivery, defaultHost, runLogship, writeConfig } from "./agentProcess.ts";
import { consumeAll } from "./consume.ts";
import type { RealCluster, SecurityMode } from "./realKafka.ts";

export interface Workspace {
  dir: string;
  logs: string;
  topic: string;
  files: Map<string, Buffer>;
}

export function realBrokerKit(clusterOf: () => RealCluster, dirs: string[]) {
  /** Two log files with awkward bytes (CRLF, NUL, invalid UTF-8, a long line). */
  function workspace(name: string): Workspace {
    const dir = mkdtempSync(join(tmpdir(), `logship-real-${name}-`));
    dirs.push(dir);
    const logs = join(dir, "logs");
    mkdirSync(logs);
    const files = new Map<string, Buffer>();
    for (const tag of ["a", "b"]) {
      const parts: Buffer[] = [];
      for (let i = 0; i < 2000; i++) parts.push(Buffer.from(`${name} ${tag} line ${i} ${"x".repeat(i % 50)}\n`));
      parts.push(Buffer.from([0x00, 0xff, 0xfe, 0x0d, 0x0a]), Buffer.from("é ünïcode\r\n"), Buffer.from("L".repeat(300_000) + "\n"));
      const content = Buffer.concat(parts);
      const path = join(logs, `${tag}.log`);
      writeFileSync(path, content);
      files.set(path, content);
    }
    return { dir, logs, topic: `real-${name}-${Date.now().toString(36)}`, files };
  }

  /** The kafka security keys for `mode`, as the broker expects them. */
  function security(mode: SecurityMode, paths: { ca?: string; cert?: string; key?: string; passwordFile?: string } = {}): string {
    const env = clusterOf().env(mode);
    const out: string[] = [];
    if (env.CA) {
      out.push(`  tls:\n    ca: ${paths.ca ?? env.CA}`);
      if (env.CLIENT_CERT) out.push(`    cert: ${paths.cert ?? env.CLIENT_CERT}\n    key: ${paths.key ?? env.CLIENT_KEY}`);
    }
    if (env.USERNAME) {
      const mechanism = mode === "sasl-plain" ? "plain" : mode === "sasl-scram-256" ? "scram-sha-256" : "scram-sha-512";
      const pw = paths.passwordFile ? `password_file: ${paths.passwordFile}` : `password: \${KAFKA_PASSWORD}`;
      out.push(`  sasl:\n    mechanism: ${mechanism}\n    username: ${env.USERNAME}\n    ${pw}`);
    }
    return out.join("\n");
  }

  function config(ws: Workspace, mode: SecurityMode, kafka: string): string {
    return writeConfig(
      ws.dir,
      `inputs:
  - paths: ["${ws.logs}/*.log"]
kafka:
  brokers: ["${clusterOf().env(mode).BOOTSTRAP}"]
  topic: ${ws.topic}
  request_timeout: 5s
  retry_backoff: 50ms
  retry_backoff_max: 500ms
${kafka}
state:
  path: ${ws.dir}/state.db
poll_interval: 50ms
stats_interval: 0
`,
    );
  }

  const env = () => ({ KAFKA_PASSWORD: clusterOf().password });

  async function delivered(ws: Workspace) {
    const records = await consumeAll(clusterOf().internalBootstrap, ws.topic, { timeoutMs: 20_000 });
    return checkDelivery(records, ws.files, { host: defaultHost() });
  }

  /**
   * Runs the agent with a broken setting, checks the one error line and held offsets, fixes it
   * with `fix`, SIGHUPs (unless `sighup: false`: a fix on the broker side needs none), and checks
   * exactly-once delivery.
   */
  async function failThenRecover(ws: Workspace, cfg: string, expected: RegExp, fix: () => void | Promise<void>, opts: { sighup?: boolean } = {}): Promise<void> {
    const cluster = clusterOf();
    const agent = AgentProcess.start(["run", "--config", cfg], { env: env() });
    try {
      const line = await agent.waitForLine(expected, { timeoutMs: 30_000 });
      expect(line).toContain(" ERROR ");
      await Bun.sleep(1500); // several retries (backoff 50..500 ms): still one line, no crash
      expect(agent.count(expected)).toBe(1);
      expect(agent.running).toBe(true);
      expect(agent.stderr).not.toContain(cluster.password);
      // Offsets hold: nothing acknowledged, so check sees every byte unread.
      const check = await runLogship(["check", "--config", cfg], { env: env() });
      expect(check.code).toBe(0);
      for (const [path, content] of ws.files) expect(check.stdout).toMatch(new RegExp(`${path}\\s.*\\b${content.length}\\s+(0|-)\\s+${content.length}\\b`));
      await fix();
      const from = agent.lines.length;
      if (opts.sighup !== false) agent.signal("SIGHUP");
      await agent.waitForLine("Kafka sends succeed again", { timeoutMs: 30_000, after: from });
      const total = [...ws.files.values()].reduce((n, b) => n + b.length, 0);
      const after = await (async () => {
        for (let i = 0; i < 100; i++) {
          const c = await runLogship(["check", "--config", cfg], { env: env() });
          if ([...ws.files.keys()].every((p) => new RegExp(`${p}\\s.*\\s0\\s*$`, "m").test(c.stdout))) return c;
          await Bun.sleep(200);
        }
        throw new Error("offsets never reached the end of the files");
      })();
      expect(after.code).toBe(0);
      agent.signal("SIGTERM");
      expect(await agent.waitForExit(30_000)).toBe(0);
      const report = await delivered(ws);
      expect(report.bytes).toBe(total);
      expect(report.duplicateLines).toBe(0);
    } finally {
      await agent.kill();
    }
  }

  return { workspace, security, config, env, delivered, failThenRecover };
}
