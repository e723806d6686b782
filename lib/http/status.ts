// `logship status`: asks a running agent for its followed files through the operations
// endpoint (GET /status) and prints them as a table. Without http.listen in the config
// there is nothing to ask; the message says how to turn the endpoint on.

import { escapeText } from "../text.ts";
import type { FileStatus } from "./server.ts";

/** The reply of GET /status. */
export interface StatusReply {
  files: FileStatus[];
  filesTracked: number;
  filesOpen: number;
  inflightBytes: number;
}

/** The URL of /status for a listen address: a wildcard host is asked on loopback. */
export function statusUrl(listen: string): string {
  const at = listen.lastIndexOf(":");
  let host = listen.slice(0, at);
  if (host === "0.0.0.0") host = "127.0.0.1";
  if (host === "[::]") host = "[::1]";
  return `http://${host}:${listen.slice(at + 1)}/status`;
}

/** Fetches /status; throws an Error whose message is the one line to print. */
export async function fetchStatus(listen: string | undefined, configFile: string, timeoutMs = 5_000): Promise<StatusReply> {
  if (listen === undefined) throw new Error(`the agent's endpoint is off in ${configFile}: add\n  http:\n    listen: 127.0.0.1:9570\nto it and restart logship (http.listen is read at start only)`);
  if (listen.endsWith(":0")) throw new Error(`http.listen in ${configFile} asks for any free port (0), so the port is not known here; the agent logs it on its "http endpoint listening" line: set a fixed port to use logship status`);
  const url = statusUrl(listen);
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    throw new Error(`no logship agent answers at ${url} (${(err as Error).message}); is \`logship run --config ${configFile}\` running?`);
  }
  if (!res.ok) throw new Error(`${url} answered ${res.status}: ${(await res.text()).trim()}`);
  return (await res.json()) as StatusReply;
}

/** The table of followed files and a summary line; every cell escaped (lib/text.ts). */
export function formatStatus(s: StatusReply, wallNow: number): string {
  const head = ["PATH", "SIZE", "OFFSET", "UNREAD", "OPEN", "LAST READ", "LAST GROWTH", "FILE"];
  const when = (at: number | null | undefined) => (at === null || at === undefined ? "-" : ago(wallNow - at));
  const rows = s.files.map((f) => [f.path, String(f.size), String(f.offset), String(f.unread), f.open ? "open" : "closed", when(f.lastRead), when(f.lastGrowth), f.file].map(escapeText));
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd();
  const unread = s.files.reduce((n, f) => n + f.unread, 0);
  const summary = `${s.filesTracked} file(s) followed, ${s.filesOpen} open, ${unread} byte(s) unread, ${s.inflightBytes} byte(s) waiting for Kafka`;
  return s.files.length === 0 ? `no files followed\n${summary}` : [line(head), ...rows.map(line), summary].join("\n");
}

function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  if (s < 172800) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}
