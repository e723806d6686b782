// Time as a dependency. Every reading of the time and every timer in lib/ goes through a
// Clock handed down from the agent, so in-process tests run on a manual clock that they
// advance (tests/helpers/manualClock.ts): a run is then the same run every time.
//
// Two readings, for two purposes:
//   now()   monotonic milliseconds, for durations, timeouts and deadlines (close_removed,
//           close_inactive, partial_line_timeout, backoff, shutdown). It never jumps: a
//           wall-clock step (NTP, a VM resumed after hours) neither fires a timeout early
//           (a deleted file still being drained would lose its rest) nor delays one.
//   wall()  milliseconds since the epoch, for what outlives the process or is shown to a
//           person: seenAt/goneSince of saved files (state.ttl spans restarts), file ids,
//           log timestamps.
// Invariant: a value of now() is compared only with other values of now() of the same clock.

/** Stops a timer; calling it again does nothing. */
export type Cancel = () => void;

export interface Clock {
  /** Monotonic milliseconds (arbitrary origin): for durations and deadlines only. */
  now(): number;
  /** Milliseconds since the epoch: for what is saved or shown. */
  wall(): number;
  /** Calls `fn` every `ms` until cancelled. */
  every(ms: number, fn: () => void): Cancel;
  /** Calls `fn` once after `ms`, unless cancelled first. */
  after(ms: number, fn: () => void): Cancel;
}

/** The process's clocks: performance.now() is monotonic, Date.now() is the wall. */
export const systemClock: Clock = {
  now: () => performance.now(),
  wall: () => Date.now(),
  every(ms, fn) {
    const t = setInterval(fn, ms);
    return () => clearInterval(t);
  },
  after(ms, fn) {
    const t = setTimeout(fn, Math.max(0, ms));
    return () => clearTimeout(t);
  },
};

/** Whether `p` settled (either way) before `deadline` on `clock`, waiting at least 100 ms from now. */
export async function settledWithin(clock: Clock, p: Promise<unknown>, deadline: number): Promise<boolean> {
  let cancel: Cancel = () => {};
  const timeUp = new Promise<boolean>((r) => (cancel = clock.after(Math.max(100, deadline - clock.now()), () => r(false))));
  const done = await Promise.race([p.then(() => true, () => true), timeUp]);
  cancel();
  return done;
}
