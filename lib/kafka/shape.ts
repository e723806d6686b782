// Shaping records: a file's span of lines becomes the chunks Kafka receives, as the input's
// format says: packed (pack.ts, many lines a record), or line / json events (format.ts), which
// may be multiline. The one owner of the multiline events still open: the next read of their
// file may continue them.
// Invariant: an open event holds a zero-length placeholder range in the checkpoint at its
// start, tracked after the chunks before it, so its file's saved offset stays before it (and
// its row stays) until the event is sent: when a line that does not join it arrives, at its
// timeout, at --once's end, or on a reload. A restart reads it again from its start.

import type { InputConfig } from "../config.ts";
import type { Shipment } from "../files/read.ts";
import type { Checkpoint } from "../state/checkpoint.ts";
import { closeEvent, compileFormat, formatEvents, type EventFormat, type FormatReport, type OpenEvent } from "./format.ts";
import { pack, type Chunk, type PackLimits, type Source } from "./pack.ts";

/** An event left open by a shipment: registered with queued() once its chunks are queued. */
export type Opened = { ev: OpenEvent; source: Source } | null;

export class Shaper {
  private readonly open = new Map<string, { ev: OpenEvent; source: Source }>(); // by file id
  private readonly formats = new WeakMap<InputConfig, EventFormat | null>(); // compiled once per loaded config; null: packed

  constructor(
    private readonly checkpoint: Checkpoint,
    private readonly report: FormatReport,
  ) {}

  /** Multiline events open now. */
  get openCount(): number {
    return this.open.size;
  }

  /** The chunks of a shipment in read order (throws pack's UnshippableError), and the event it leaves open. */
  shape({ source, span }: Shipment, input: InputConfig, limits: PackLimits, wall: number, now: number): { chunks: Chunk[]; opened: Opened } {
    const fmt = this.formatOf(input);
    if (!fmt) return { chunks: pack(span, source, limits), opened: null };
    const before = this.open.get(source.file)?.ev ?? null;
    const r = formatEvents(span, source, fmt, limits, wall, now, before, this.report);
    if (before && r.open !== before) this.checkpoint.untrack(placeholder(source, before)); // it is in the chunks now
    if (r.open && r.open !== before) return { chunks: r.chunks, opened: { ev: r.open, source } };
    if (r.open) this.open.set(source.file, { ev: r.open, source });
    else this.open.delete(source.file);
    return { chunks: r.chunks, opened: null };
  }

  /** After a shipment's chunks were queued: the event it opened holds its placeholder after them. */
  queued(opened: Opened): void {
    if (!opened) return;
    this.checkpoint.track(placeholder(opened.source, opened.ev));
    this.open.set(opened.source.file, opened);
  }

  /** The chunks of the open events whose timeout passed (of all of them with `all`: --once's end, a reload), each event's in order. */
  due(all: boolean, now: number, limits: PackLimits): Chunk[][] {
    const out: Chunk[][] = [];
    for (const [id, { ev, source }] of this.open) {
      if (!all && now - ev.since < ev.fmt.multiline!.timeout) continue;
      this.open.delete(id);
      this.checkpoint.untrack(placeholder(source, ev));
      out.push(closeEvent(ev, source, limits, this.report));
    }
    return out;
  }

  private formatOf(input: InputConfig): EventFormat | null {
    let f = this.formats.get(input);
    if (f === undefined) this.formats.set(input, (f = compileFormat(input)));
    return f;
  }
}

/** The checkpoint's placeholder for an open multiline event: an empty range at its start, never acknowledged. */
function placeholder(source: Source, ev: OpenEvent) {
  return { source, start: ev.start, end: ev.start };
}
