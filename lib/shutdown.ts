// Signals: the first SIGTERM or SIGINT drains what is in flight and saves offsets, within
// shutdown_timeout; a second one exits at once (offsets already saved stay; nothing
// unacknowledged is marked done). SIGHUP asks for a config reload: reloads run one at a
// time, a failed one is logged (never an unhandled rejection, which would end the process),
// and a SIGHUP while draining is ignored, so a reload cannot restart what is being stopped.
// What happens is told through the agent's events (LogEvents prints it), never printed here.
// The handlers are installed before the slow startup work (opening the state, the first scan
// of thousands of files): the agent is then still a promise. A TERM/INT meanwhile is logged at
// once and stops the agent as soon as it exists (exit 0); a HUP reloads once it runs; a second
// TERM/INT exits 1 at once. If startup itself fails, the command line reports it, not this.

import { errorText } from "./errors.ts";
import type { AgentEvents } from "./events.ts";

export interface Stoppable {
  stop(timeoutMs: number): Promise<void>;
  stopNow(): void;
}

export interface SignalOptions {
  timeoutMs: () => number; // read at signal time, so a reload can change it
  reload: () => Promise<void>;
  exit: (code: number) => void;
  events: Pick<AgentEvents, "reloadFailed" | "reloadIgnored" | "stopRequested" | "stopForced" | "shutdownFailed">;
}

/** Installs the handlers; returns a function that removes them. `agent` may still be starting. */
export function handleSignals(starting: Stoppable | Promise<Stoppable>, opts: SignalOptions): () => void {
  let draining = false;
  let started: Stoppable | null = null;
  const agent = Promise.resolve(starting);
  agent.then((a) => (started = a)).catch(() => {}); // a failed start is the command line's to report
  const onStop = (signal: NodeJS.Signals) => {
    if (draining) {
      opts.events.stopForced(signal);
      started?.stopNow();
      opts.exit(1);
      return;
    }
    draining = true;
    const timeout = opts.timeoutMs();
    opts.events.stopRequested(signal, timeout);
    // The backstop: whatever hangs, the process leaves shortly after the deadline.
    const backstop = setTimeout(() => {
      started?.stopNow();
      opts.exit(0);
    }, timeout + 1_000);
    agent.then(
      (a) => a.stop(timeout),
      () => new Promise<void>(() => clearTimeout(backstop)), // startup failed: the command line exits
    ).then(
      () => {
        clearTimeout(backstop);
        opts.exit(0);
      },
      (err: unknown) => {
        clearTimeout(backstop);
        opts.events.shutdownFailed(errorText(err));
        opts.exit(1);
      },
    );
  };
  let reloads: Promise<void> = Promise.resolve();
  const onHup = () => {
    if (draining) return opts.events.reloadIgnored("SIGHUP");
    reloads = reloads
      .then(() => agent)
      .then(() => (draining ? undefined : opts.reload()))
      .catch((err: unknown) => opts.events.reloadFailed(errorText(err)));
  };
  process.on("SIGTERM", onStop);
  process.on("SIGINT", onStop);
  process.on("SIGHUP", onHup);
  return () => {
    process.off("SIGTERM", onStop);
    process.off("SIGINT", onStop);
    process.off("SIGHUP", onHup);
  };
}
