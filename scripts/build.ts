// Builds the standalone binary dist/logship (`npm run build`): Bun's --compile with
// bytecode. (kafkajs' producer, which two bundler plugins once patched, is no longer used:
// logship writes its own Produce requests, lib/kafka/records.ts.)
export {}; // a module: top-level await
//   bun scripts/build.ts [OUTFILE [TARGET]]   TARGET e.g. bun-linux-arm64: a cross-compiled
//   binary (Bun fetches that platform's runtime from the npm registry once, then caches it).

const outfile = process.argv[2] ?? "dist/logship";
const target = process.argv[3] as Bun.Build.CompileTarget | undefined;
const result = await Bun.build({
  entrypoints: ["main.ts"],
  compile: target ? { outfile, target } : { outfile },
  minify: true,
  bytecode: true,
  format: "esm",
  target: "bun",
});
if (!result.success) {
  for (const log of result.logs) console.error(log);
  process.exit(1);
}
console.log(`built ${outfile}`);
