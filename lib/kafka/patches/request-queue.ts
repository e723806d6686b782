// The idle RequestQueue timer fix.
//
// kafkajs' RequestQueue, with nothing pending and no throttling, re-arms a timer with a
// negative delay (run as 1 ms) for ever: about 800 wake-ups a second per broker
// connection, 4.5% of a core on an idle agent (kafkajs issues #1556, #1704). With nothing
// pending there is nothing to check: a new request schedules its own check when it comes.
// (Those negative delays were also what made Bun print TimeoutNegativeWarning on stderr.)
//
// Invariant: a queue with pending requests, or throttled, still has a check scheduled, as in
// kafkajs; only an idle, unthrottled queue arms no timer.

import RequestQueue from "kafkajs/src/network/requestQueue/index.js";

const CHECK_PENDING_MS = 10; // kafkajs' CHECK_PENDING_REQUESTS_INTERVAL

function scheduleCheckPendingRequests(this: RequestQueue): void {
  if (this.throttleCheckTimeoutId) return;
  let wait = this.throttledUntil - Date.now();
  if (this.pending.length > 0) wait = wait > 0 ? wait : CHECK_PENDING_MS;
  else if (wait <= 0) return; // nothing pending, not throttled: nothing to check
  this.throttleCheckTimeoutId = setTimeout(() => {
    this.throttleCheckTimeoutId = null;
    this.checkPendingRequests();
  }, wait);
}

/** Replaces RequestQueue's scheduling of pending checks. Called once, by installKafkajsPatches (index.ts). */
export function installIdleQueueFix(): void {
  RequestQueue.prototype.scheduleCheckPendingRequests = scheduleCheckPendingRequests;
}
