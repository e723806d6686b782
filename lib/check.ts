// `logship check`: what the agent would follow with this config, without following it.
// Lists each matched file with its saved offset and the bytes not yet shipped, reading the
// state database read-only, so it is safe to run beside a running agent.

import { existsSync } from "node:fs";
import type { AgentConfig } from "./config.ts";
import { discover } from "./files/discover.ts";
import { compressedFormat, identify, inodeKey, sameFile } from "./files/identify.ts";
import { judgePath } from "./files/links.ts";
import { checkStatePath } from "./state/place.ts";
import { readSaved, type SavedFile } from "./state/store.ts";
import { escapeText } from "./text.ts";

export interface FileReport {
  path: string;
  topic: string;
  size: number | null;
  offset: number | null; // saved offset; null when never shipped
  unread: number | null;
  note: string; // "", "new", "compressed: skipped", or why it cannot be read
}

export async function checkFiles(config: AgentConfig): Promise<{ files: FileReport[]; stateNote: string }> {
  const { rows, note } = readRows(config.state.path);
  const byInode = new Map(rows.map((r) => [inodeKey(r.dev, r.ino), r]));
  const problems: FileReport[] = [];
  const refusedNote = (path: string, reason: string): FileReport => ({ path, topic: "", size: null, offset: null, unread: null, note: `not followed: ${reason}` });
  const candidates = await discover(
    config.inputs,
    (pattern, reason) => problems.push({ path: pattern, topic: "", size: null, offset: null, unread: null, note: `cannot scan: ${reason}` }),
    (path, reason) => problems.push(refusedNote(path, reason)),
  );
  const files = candidates.map((c): FileReport => {
    const input = config.inputs[c.input]!;
    const topic = input.topic;
    try {
      const judged = judgePath(c.path, input.follow_symlinks);
      if ("refused" in judged) return { ...refusedNote(c.path, judged.refused), topic };
      const seen = identify(c.path);
      const format = compressedFormat(seen);
      if (format) return { path: c.path, topic, size: seen.size, offset: null, unread: null, note: `${format}-compressed: skipped` };
      const row = byInode.get(inodeKey(seen.dev, seen.ino));
      if (row && sameFile(row, seen)) return { path: c.path, topic, size: seen.size, offset: row.offset, unread: seen.size - row.offset, note: "" };
      return { path: c.path, topic, size: seen.size, offset: null, unread: seen.size, note: "new" };
    } catch (err) {
      return { path: c.path, topic, size: null, offset: null, unread: null, note: `unreadable: ${(err as Error).message}` };
    }
  });
  return { files: [...files, ...problems], stateNote: note };
}

function readRows(path: string): { rows: SavedFile[]; note: string } {
  checkStatePath(path); // a FIFO would hang the read: refused (exit 1)
  if (!existsSync(path)) return { rows: [], note: `no state file yet at ${path}` };
  try {
    return { rows: readSaved(path), note: `state: ${path}` };
  } catch (err) {
    return { rows: [], note: `state file ${path} cannot be read: ${(err as Error).message}` };
  }
}

/** Plain-text table of the report; every cell escaped (lib/text.ts), so a row is one line. */
export function formatReport(files: FileReport[]): string {
  const head = ["PATH", "TOPIC", "SIZE", "OFFSET", "UNREAD", "NOTE"];
  const rows = files.map((f) => [f.path, f.topic, show(f.size), show(f.offset), show(f.unread), f.note].map(escapeText));
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd();
  return [line(head), ...rows.map(line)].join("\n");
}

function show(n: number | null): string {
  return n === null ? "-" : String(n);
}
