// The state writer process (writer.ts): opens the database at $LOGSHIP_STATE_WRITER without its
// lock (the agent, its parent, holds it) and writes the batches it is sent, one at a time, in
// the order sent, answering each. Ends when told to close or when the agent is gone.

import { errorText } from "../errors.ts";
import { openUnlocked, type SavedFile, type Store } from "./store.ts";
import { WRITER_ENV } from "./writer.ts";

type Request = { type: "write"; id: number; rows: SavedFile[]; removed: string[] } | { type: "close" };

export function runStateWriter(path: string): void {
  const send = (m: unknown) => process.send?.(m);
  let store: Store;
  try {
    store = openUnlocked(path);
  } catch (err) {
    send({ type: "failed", message: errorText(err) });
    process.exit(1);
  }
  process.on("message", (m: Request) => {
    if (m.type === "close") {
      store.close();
      process.exit(0);
    }
    try {
      send({ type: "done", id: m.id, replaced: store.write(m) });
    } catch (err) {
      send({ type: "error", id: m.id, message: errorText(err) });
    }
  });
  process.on("disconnect", () => {
    store.close();
    process.exit(0);
  });
  send({ type: "ready" });
}

if (import.meta.main) runStateWriter(process.env[WRITER_ENV] ?? "");
