// `run --once` on a terminal: one line, redrawn in place, saying how far the run is:
//   logship: 3/8 files, 120.4/250.0 MB, 85.3 MB/s, ETA 2s
// Files count as done when everything they held at the start is acknowledged; bytes are
// what each file held unread when logship first saw it in this run, and what of it Kafka has
// acknowledged since. Shown only when stderr is a terminal (or --progress): logs written to a
// file or a pipe stay clean. Log lines still go to stderr: the progress line is cleared
// before each and drawn again after it (writer()). Not a log line, so not LogEvents'.

import type { Cancel, Clock } from "./clock.ts";

/** What the progress line reads from the agent: its followed files. */
export type FilesView = () => readonly { file: string; unread: number }[];

/** How often the line is redrawn. */
const EVERY_MS = 250;
/** The speed is averaged over about this long. */
const RATE_WINDOW_MS = 3_000;

export class ProgressLine {
  private readonly startUnread = new Map<string, number>(); // file id → unread bytes when first seen
  private timer: Cancel | null = null;
  private shown = "";
  private samples: { at: number; bytes: number }[] = [];
  private readonly began: number;

  constructor(
    private readonly out: (text: string) => void,
    private readonly files: FilesView,
    private readonly clock: Clock,
  ) {
    this.began = clock.now();
  }

  start(): void {
    this.draw();
    this.timer = this.clock.every(EVERY_MS, () => this.draw());
  }

  /** The final state, and the line left in place with a newline after it. */
  finish(): void {
    this.timer?.();
    this.timer = null;
    this.draw(true);
    this.out("\n");
    this.shown = "";
  }

  /** Wraps a writer of log lines: the progress line is cleared before the line and drawn again after it. */
  writer(write: (line: string) => void): (line: string) => void {
    return (line) => {
      if (this.shown === "") return write(line);
      this.out("\r\x1b[K");
      write(line);
      this.out(this.shown);
    };
  }

  /** The line for the agent's files now. */
  line(final = false): string {
    let files = 0;
    let done = 0;
    let total = 0;
    let left = 0;
    for (const f of this.files()) {
      let start = this.startUnread.get(f.file);
      if (start === undefined) this.startUnread.set(f.file, (start = f.unread));
      files++;
      total += start;
      left += Math.min(f.unread, start);
      if (f.unread === 0) done++;
    }
    const shipped = total - left;
    const now = this.clock.now();
    this.samples.push({ at: now, bytes: shipped });
    while (this.samples.length > 2 && now - this.samples[1]!.at >= RATE_WINDOW_MS) this.samples.shift();
    const first = final ? { at: this.began, bytes: 0 } : this.samples[0]!;
    const secs = (now - first.at) / 1000;
    const rate = secs > 0 ? (shipped - first.bytes) / secs : 0;
    const eta = final ? "done" : rate > 0 ? `ETA ${duration(left / rate)}` : "ETA -";
    return `logship: ${done}/${files} files, ${mb(shipped)}/${mb(total)} MB, ${mb(rate)} MB/s, ${eta}`;
  }

  private draw(final = false): void {
    this.shown = "\r\x1b[K" + this.line(final);
    this.out(this.shown);
  }
}

function mb(bytes: number): string {
  return (bytes / 1e6).toFixed(1);
}

function duration(s: number): string {
  if (s < 60) return `${Math.ceil(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.ceil(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}
