// A Clock that moves only when the test moves it. Timers fire inside advance(), in the order
// of their due times, with now() set to each one's due time as it fires, so a run on this
// clock is the same run every time (the file system and the event loop aside).
//
//   const clock = new ManualClock();
//   const agent = await Agent.start(config, opts, { clock, watch: false, ... });
//   clock.advance(1_000);          // one second of the agent's time, at once
//   clock.stepWall(3_600_000);     // the wall clock jumps an hour (NTP); now() does not move

import type { Cancel, Clock } from "../../lib/clock.ts";

interface Timer {
  id: number;
  due: number;
  every: number | null; // interval, or null for a one-shot timer
  fn: () => void;
}

export class ManualClock implements Clock {
  private t = 1_000_000; // an arbitrary origin, far from 0, as performance.now() after start-up
  private wallAtZero = Date.UTC(2026, 10, 30, 12, 0, 0) - this.t;
  private timers: Timer[] = [];
  private seq = 0;

  now(): number {
    return this.t;
  }

  wall(): number {
    return this.wallAtZero + this.t;
  }

  /** The wall clock jumps by `ms` (either way); monotonic time and timers do not move. */
  stepWall(ms: number): void {
    this.wallAtZero += ms;
  }

  every(ms: number, fn: () => void): Cancel {
    return this.add(Math.max(1, ms), Math.max(1, ms), fn);
  }

  after(ms: number, fn: () => void): Cancel {
    return this.add(Math.max(0, ms), null, fn);
  }

  /** Timers waiting now. */
  get pending(): number {
    return this.timers.length;
  }

  /** Moves time forward by `ms`, firing every timer that comes due on the way, in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: Timer | undefined;
      for (const tm of this.timers) if (tm.due <= end && (!next || tm.due < next.due || (tm.due === next.due && tm.id < next.id))) next = tm;
      if (!next) break;
      this.t = Math.max(this.t, next.due);
      if (next.every === null) this.timers = this.timers.filter((x) => x !== next);
      else next.due += next.every;
      next.fn();
    }
    this.t = end;
  }

  private add(ms: number, every: number | null, fn: () => void): Cancel {
    const timer: Timer = { id: this.seq++, due: this.t + ms, every, fn };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((x) => x !== timer);
    };
  }
}
