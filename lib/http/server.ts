// The operations endpoint (http.listen): a Bun.serve HTTP server the agent owns and closes.
//   GET /metrics  Prometheus text exposition (metrics.ts)
//   GET /health   liveness: 200 "ok" while the agent's event loop answers
//   GET /ready    readiness: 200 "ready: ..." or 503 with a one-line reason (see ready())
//   GET /status   JSON: one entry per followed file, for `logship status`
// Nothing here reads files or Kafka: what it shows comes from the agent (AgentView) and the
// metrics fed by the agent's events. It binds before the agent opens anything else, so a
// taken port ends the start with one clear line (exit 1) and nothing half started.

import type { Clock } from "../clock.ts";
import { CONTENT_TYPE } from "./exposition.ts";
import type { AgentLoad, Metrics } from "./metrics.ts";

/** One followed file as /status shows it. */
export interface FileStatus {
  path: string;
  file: string; // the file's stable identity
  size: number; // at the last look
  offset: number; // acknowledged
  unread: number; // size - offset
  open: boolean; // holds a descriptor
  lastGrowth: number | null; // Unix ms the file last grew as logship saw it (when it was added, if it has not grown since)
  lastRead: number | null; // Unix ms logship last read lines of it (null: none read since it started following it)
}

/** What the endpoint reads from the agent. */
export interface AgentView {
  status(): FileStatus[];
  unreadBytes(): number;
  load(): Omit<AgentLoad, "unreadBytes">;
}

/** A send that waits this long for its first acknowledgement makes the agent not ready. */
export const READY_ACK_WITHIN_MS = 30_000;

/** The runtime failure of binding http.listen (exit 1, one line). */
export class ListenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ListenError";
  }
}

export class OpsServer {
  private view: AgentView | null = null;
  private metrics: Metrics | null = null;
  private stopping = false;

  private constructor(
    private readonly server: ReturnType<typeof Bun.serve>,
    private readonly clock: Clock,
  ) {}

  /** Binds `listen` ("HOST:PORT", "[V6]:PORT"); throws ListenError when it cannot. Requests get 503 until serve(). */
  static listen(listen: string, clock: Clock): OpsServer {
    const at = listen.lastIndexOf(":");
    const hostname = listen.slice(0, at).replace(/^\[(.*)\]$/, "$1");
    const port = Number(listen.slice(at + 1));
    let ops: OpsServer | null = null;
    let server: ReturnType<typeof Bun.serve>;
    try {
      server = Bun.serve({ hostname, port, reusePort: false, fetch: (req) => ops?.handle(req) ?? new Response("starting\n", { status: 503 }) });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === "EADDRINUSE" ? "the address is already in use (another logship, or another program, listens there)" : code === "EADDRNOTAVAIL" ? "no interface of this machine has that address" : code === "EACCES" ? "permission denied (ports below 1024 need privileges)" : (err as Error).message;
      throw new ListenError(`cannot listen on ${listen} (http.listen): ${why}`);
    }
    ops = new OpsServer(server, clock);
    return ops;
  }

  /** The address bound: HOST:PORT with the real port. */
  get address(): string {
    const host = this.server.hostname ?? "";
    return `${host.includes(":") ? `[${host}]` : host}:${this.server.port}`;
  }

  /** Starts answering from the agent and its metrics. */
  serve(view: AgentView, metrics: Metrics): void {
    this.view = view;
    this.metrics = metrics;
  }

  /** The agent is draining: /ready answers 503 from now on. */
  draining(): void {
    this.stopping = true;
  }

  close(): void {
    this.stopping = true;
    this.server.stop(true);
  }

  private handle(req: Request): Response {
    const view = this.view;
    const metrics = this.metrics;
    if (!view || !metrics) return text(503, "starting");
    if (req.method !== "GET" && req.method !== "HEAD") return text(405, "only GET", { allow: "GET, HEAD" });
    const path = new URL(req.url).pathname;
    switch (path) {
      case "/metrics": {
        return new Response(metrics.expose({ ...view.load(), unreadBytes: view.unreadBytes() }), { headers: { "content-type": CONTENT_TYPE } });
      }
      case "/health":
        return text(200, "ok");
      case "/ready": {
        const why = this.notReady(view, metrics);
        return why === null ? text(200, "ready") : text(503, why);
      }
      case "/status":
        return Response.json({ files: view.status(), ...view.load() });
      default:
        return text(404, "not found; try /metrics, /health, /ready or /status");
    }
  }

  /**
   * Why the agent is not ready, or null when it is: offsets save, sends to Kafka do not fail,
   * and whatever waits for Kafka has been acknowledged recently (a send that waits
   * READY_ACK_WITHIN_MS without any acknowledgement counts as Kafka not answering).
   */
  private notReady(view: AgentView, m: Metrics): string | null {
    const now = this.clock.now();
    const secs = (since: number) => Math.round((now - since) / 1000);
    if (this.stopping) return "shutting down";
    if (m.saveFailing) return `cannot save offsets for ${secs(m.saveFailing.since)} s: ${oneLine(m.saveFailing.reason)}`;
    if (m.sendFailing) return `Kafka sends failing for ${secs(m.sendFailing.since)} s (${oneLine(m.sendFailing.code)})`;
    const waiting = view.load().inflightBytes > 0;
    if (waiting && m.lastAckAt === null && now - m.startedAt > READY_ACK_WITHIN_MS) return `no acknowledgement from Kafka in ${secs(m.startedAt)} s`;
    if (waiting && m.lastAckAt !== null && now - m.lastAckAt > READY_ACK_WITHIN_MS) return `no acknowledgement from Kafka for ${secs(m.lastAckAt)} s while ${view.load().inflightBytes} bytes wait`;
    return null;
  }
}

function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, " ");
}

function text(status: number, body: string, headers: Record<string, string> = {}): Response {
  return new Response(body + "\n", { status, headers: { "content-type": "text/plain; charset=utf-8", ...headers } });
}
