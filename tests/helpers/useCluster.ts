// One mock cluster for a whole test file (closing one can block ~1 s), and scratch
// directories removed after the file's tests. Call at the top level of a test file:
//
//   const kit = useCluster();                            // 1 broker; { build: true } also builds dist/logship first
//   kit.cluster.bootstraps                               // inside tests (it starts in beforeAll)
//   const dir = kit.scratch("crash")                     // workspace("crash"), removed afterwards
//   const ws = kit.topicWorkspace("once")                // topicWorkspace(cluster, "once"), removed afterwards

import { afterAll, beforeAll } from "bun:test";
import { ensureBuilt } from "./agentProcess.ts";
import { startMockCluster, type MockCluster } from "./mockCluster.ts";
import { removeWorkspace, topicWorkspace, workspace, type TopicWorkspace } from "./workspace.ts";

export interface ClusterKit {
  readonly cluster: MockCluster;
  /** workspace(name, base), removed after the file's tests. */
  scratch(name: string): string;
  /** topicWorkspace(cluster, name, partitions), removed after the file's tests. */
  topicWorkspace(name: string, partitions?: number): TopicWorkspace;
}

/** `base`: where scratch() puts directories (workspace()'s default when not given). */
export function useCluster(brokers = 1, opts: { build?: boolean; base?: string } = {}): ClusterKit {
  let started: MockCluster | undefined;
  const dirs: string[] = [];
  beforeAll(() => {
    if (opts.build) ensureBuilt();
    started = startMockCluster({ brokers });
  }, opts.build ? 120_000 : undefined);
  afterAll(() => {
    started?.close();
    for (const d of dirs) removeWorkspace(d);
  });
  const kit: ClusterKit = {
    get cluster(): MockCluster {
      if (!started) throw new Error("useCluster: the cluster starts in beforeAll; use it inside tests");
      return started;
    },
    scratch(name: string): string {
      const d = opts.base === undefined ? workspace(name) : workspace(name, opts.base);
      dirs.push(d);
      return d;
    },
    topicWorkspace(name: string, partitions?: number): TopicWorkspace {
      const ws = topicWorkspace(kit.cluster, name, partitions);
      dirs.push(ws.dir);
      return ws;
    },
  };
  return kit;
}
