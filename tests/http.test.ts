// The operations endpoint in-process (lib/http/server.ts wired by lib/agent.ts): the real
// agent on a manual clock with a fake Kafka, asked over real HTTP on loopback. What it
// answers follows what the agent did; stop() closes the server; a taken port starts nothing.
// The compiled binary under a real Prometheus is tests/e2e-http.test.ts.

import { afterEach, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { Agent } from "../lib/agent.ts";
import { ListenError } from "../lib/http/server.ts";
import { AgentHarness, lines } from "./helpers/agentHarness.ts";
import { FakePublisher, retriableError } from "./helpers/fakePublisher.ts";

let h: AgentHarness;
afterEach(async () => {
  await h?.close();
});

function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function get(base: string, path: string): Promise<{ status: number; body: string; type: string | null }> {
  const r = await fetch(base + path);
  return { status: r.status, body: await r.text(), type: r.headers.get("content-type") };
}

describe("operations endpoint (in-process)", () => {
  test("metrics, status, health and readiness follow the agent; stop() closes the server", async () => {
    h = new AgentHarness({ agent: { http: { listen: "127.0.0.1:0" } } });
    h.dir.append("a.log", lines("a", 0, 300));
    h.dir.append("b.log", lines("b", 0, 50));
    await h.start();
    const [address] = h.events.of("httpListening")[0] as [string];
    expect(address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(address).not.toBe("127.0.0.1:0");
    const base = `http://${address}`;
    await h.untilDelivered("a 0299\n", "b 0049\n");
    await h.settle(1);

    const m = await get(base, "/metrics");
    expect(m.status).toBe(200);
    expect(m.type).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(sample(m.body, "logship_lines_shipped_total")).toBe(350);
    expect(sample(m.body, "logship_bytes_shipped_total")).toBe(Buffer.byteLength(lines("a", 0, 300) + lines("b", 0, 50)));
    expect(sample(m.body, "logship_unread_bytes")).toBe(0);
    expect(sample(m.body, "logship_files_tracked")).toBe(2);
    expect(sample(m.body, "logship_kafka_up")).toBe(1);

    const s = await get(base, "/status");
    const status = JSON.parse(s.body) as { files: { path: string; size: number; offset: number; unread: number; open: boolean; file: string }[]; filesTracked: number };
    expect(status.filesTracked).toBe(2);
    expect(status.files.map((f) => [f.path, f.size === f.offset, f.unread]).sort()).toEqual([
      [h.dir.path("a.log"), true, 0],
      [h.dir.path("b.log"), true, 0],
    ]);
    expect(await get(base, "/ready")).toMatchObject({ status: 200, body: "ready\n" });
    expect(await get(base, "/health")).toMatchObject({ status: 200, body: "ok\n" });
    expect((await get(base, "/nope")).status).toBe(404);
    expect((await fetch(base + "/metrics", { method: "POST" })).status).toBe(405);

    // Kafka fails: not ready, with the reason; the backlog shows as unread bytes.
    h.kafka.next(...Array.from({ length: 1000 }, () => retriableError()));
    h.dir.append("a.log", lines("c", 0, 10));
    await h.until(() => h.events.count("sendFailed") >= 2, "sends failed");
    const r = await get(base, "/ready");
    expect(r.status).toBe(503);
    expect(r.body).toMatch(/^Kafka sends failing for \d+ s \(LEADER_NOT_AVAILABLE\)\n$/);
    const failing = (await get(base, "/metrics")).body;
    expect(sample(failing, "logship_kafka_up")).toBe(0);
    expect(sample(failing, 'logship_send_errors_total{code="LEADER_NOT_AVAILABLE"}')).toBeGreaterThanOrEqual(2);
    expect(sample(failing, "logship_unread_bytes")).toBe(Buffer.byteLength(lines("c", 0, 10)));
    expect(sample(failing, "logship_inflight_bytes")).toBe(Buffer.byteLength(lines("c", 0, 10)));

    await h.stop();
    await expect(fetch(base + "/health")).rejects.toThrow();
  });

  test("a taken port ends the start with a ListenError before the state file is opened", async () => {
    const taken = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("other") });
    try {
      h = new AgentHarness({ agent: { http: { listen: `127.0.0.1:${taken.port}` } } });
      const start = Agent.start(h.config, { once: false }, { publisher: new FakePublisher(), events: h.events.events, clock: h.clock, watch: false });
      await expect(start).rejects.toThrow(ListenError);
      await expect(start).rejects.toThrow(`cannot listen on 127.0.0.1:${taken.port} (http.listen): the address is already in use`);
      expect(existsSync(h.statePath)).toBe(false);
    } finally {
      taken.stop(true);
    }
  });
});
