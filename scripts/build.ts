// Builds the standalone binary dist/logship (`npm run build`): Bun's --compile with
// bytecode, plus the plugins that give kafkajs a faster CRC-32C (lib/kafka/patches/crc32c.ts)
// and a linear grouping of messages by partition (lib/kafka/patches/group.ts).
//   bun scripts/build.ts [OUTFILE [TARGET]]   TARGET e.g. bun-linux-arm64: a cross-compiled
//   binary (Bun fetches that platform's runtime from the npm registry once, then caches it).
import { kafkajsCrcPlugin } from "../lib/kafka/patches/crc32c.ts";
import { kafkajsGroupPlugin } from "../lib/kafka/patches/group.ts";

const outfile = process.argv[2] ?? "dist/logship";
const target = process.argv[3] as Bun.Build.CompileTarget | undefined;
const result = await Bun.build({
  entrypoints: ["main.ts"],
  compile: target ? { outfile, target } : { outfile },
  minify: true,
  bytecode: true,
  format: "esm",
  target: "bun",
  plugins: [kafkajsCrcPlugin, kafkajsGroupPlugin],
});
if (!result.success) {
  for (const log of result.logs) console.error(log);
  process.exit(1);
}
console.log(`built ${outfile}`);
