// Saving offsets without waiting on the state disk (issue 11, item 14). The checkpoint's changed
// rows go to the state writer (writer.ts) and the answer is not waited for: one write at a time,
// and changes made meanwhile go in the next. A write that failed gives its rows back to the
// checkpoint (written again later); one unanswered for max(flush_interval, 5 s) counts as
// failing too (a stuck disk), and stays in flight: it is never written twice at once. While
// saving fails the agent pauses reading (failingSince); the flush timer retries. At shutdown the
// last save waits at most until the deadline: offsets not saved are re-sent by the next start.

import { settledWithin, type Clock } from "../clock.ts";
import { errorText } from "../errors.ts";
import type { AgentEvents } from "../events.ts";
import type { Checkpoint } from "./checkpoint.ts";
import type { StateWriter } from "./writer.ts";

/** A state write unanswered this long (or flush_interval, if longer) counts as failing: the disk is stuck. */
export const STATE_STUCK_MS = 5_000;
/**
 * Rows per write at most; more changed rows (a start or restart over 100,000 files changes
 * every row) go in consecutive writes, at once. One write of 100,000 rows held a copy of each
 * and their JSON for the writer process at once: 35 MB more peak RSS.
 */
export const SAVE_BATCH_ROWS = 8192;

export interface SaverOptions {
  clock: Clock;
  events: Pick<AgentEvents, "offsetsSaved" | "stateError" | "stateRecovered" | "stateFileReplaced">;
  flushInterval: () => number;
  /** Saving works again after failing (the agent resumes reading). */
  recovered: () => void;
}

export class OffsetSaver {
  /** clock.now() offsets first failed to save; null while they save. */
  failingSince: number | null = null;
  private writing: Promise<void> | null = null;
  private writingSince = 0;
  private again = false;
  private failures = 0;
  private last = false; // shutting down: finalSave() writes, nothing more is started by itself

  constructor(
    private readonly writer: StateWriter,
    private readonly checkpoint: Checkpoint,
    private readonly opts: SaverOptions,
  ) {}

  /** A write is in flight. */
  get busy(): boolean {
    return this.writing !== null;
  }

  /** Starts writing what changed; while a write is in flight, only notes that another is due (and whether this one is stuck). */
  save(): void {
    const { clock, events } = this.opts;
    if (this.writing) {
      this.again = true;
      const waited = clock.now() - this.writingSince;
      if (waited >= Math.max(this.opts.flushInterval(), STATE_STUCK_MS)) this.failed(`state disk not answering: a write has waited ${Math.round(waited / 1000)} s`);
      return;
    }
    this.again = false;
    const batch = this.checkpoint.take(SAVE_BATCH_ROWS);
    if (!batch) return this.worked();
    this.writingSince = clock.now();
    this.writing = this.writer
      .write(batch)
      .then(
        (r) => {
          if (r.replaced) {
            this.checkpoint.unwritten(batch);
            events.stateFileReplaced(this.writer.path, this.checkpoint.size);
            this.checkpoint.dirtyAll();
            this.again = true; // at once: every row, to the file created anew
            return;
          }
          if (batch.rows.length > 0) events.offsetsSaved(batch.rows.length);
          if (batch.rows.length >= SAVE_BATCH_ROWS) this.again = true; // more rows wait: the next batch at once
          this.worked();
        },
        (err: unknown) => {
          this.failures++;
          this.checkpoint.unwritten(batch);
          this.again = false; // the flush timer retries
          this.failed(errorText(err));
        },
      )
      .finally(() => {
        this.writing = null;
        if (this.again && !this.last) this.save();
      });
  }

  /** The last save: waits for the write in flight, then writes what changed, until `deadline` (clock.now() time). */
  async finalSave(deadline: number): Promise<void> {
    this.last = true;
    const failuresBefore = this.failures;
    for (;;) {
      if (this.writing && !(await settledWithin(this.opts.clock, this.writing, deadline))) {
        this.failed("state disk not answering at shutdown: the offsets acknowledged since the last save are not saved (a restart sends those lines again)");
        return;
      }
      // Batch after batch while writes work; three failed writes end it (the rows are re-sent by the next start).
      if (!this.checkpoint.changed || this.failures - failuresBefore >= 3) return;
      this.save();
    }
  }

  /** Closes the writer, waiting for it until `deadline` at most (at least 100 ms). */
  close(deadline: number): Promise<void> {
    return this.writer.close(Math.max(100, deadline - this.opts.clock.now()));
  }

  private failed(reason: string): void {
    this.failingSince ??= this.opts.clock.now();
    this.opts.events.stateError(reason);
  }

  private worked(): void {
    if (this.failingSince === null) return;
    this.opts.events.stateRecovered(this.opts.clock.now() - this.failingSince);
    this.failingSince = null;
    this.opts.recovered();
  }
}
