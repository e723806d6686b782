// Builds the standalone binary dist/logship (`npm run build`): Bun's --compile with
// bytecode, plus the plugin that gives kafkajs a faster CRC-32C (lib/kafka/patches/crc32c.ts).
//   bun scripts/build.ts [OUTFILE [TARGET]]   TARGET e.g. bun-linux-arm64: a cross-compiled
//   binary (Bun fetches that platform's runtime from the npm registry once, then caches it).
import { kafkajsCrcPlugin } from "../lib/kafka/patches/crc32c.ts";

const outfile = process.argv[2] ?? "dist/logship";
const target = process.argv[3] as Bun.Build.CompileTarget | undefined;
const result = await Bun.build({
  entrypoints: ["main.ts"],
  compile: target ? { outfile, target } : { outfile },
  minify: true,
  bytecode: true,
  format: "esm",
  target: "bun",
  plugins: [kafkajsCrcPlugin],
});
if (!result.success) {
  for (const log of result.logs) console.error(log);
  process.exit(1);
}
console.log(`built ${outfile}`);
