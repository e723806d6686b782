// Builds the standalone binary dist/logship (`npm run build`): Bun's --compile with
// bytecode, plus the plugin that gives kafkajs a faster CRC-32C (lib/kafka/patches/crc32c.ts).
import { kafkajsCrcPlugin } from "../lib/kafka/patches/crc32c.ts";

const outfile = process.argv[2] ?? "dist/logship";
const result = await Bun.build({
  entrypoints: ["main.ts"],
  compile: { outfile },
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
