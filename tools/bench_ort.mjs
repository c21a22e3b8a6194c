// tools/bench_ort.mjs — ONNX Runtime side of tools/bench: the exported unet-small's forward timed the way
// noiseflow and tools/bench_torch.py time theirs (warm-up runs, then the median of the repeats).
//
//   node tools/bench_ort.mjs --model unet.onnx --batch 64 --threads 2 --repeats 10 --warmup 2
//
// Session: CPU execution provider, intraOpNumThreads = --threads, interOpNumThreads 1, graph optimisation
// level "all", sequential execution. Inputs: x ~ N(0, 1) [batch, 1, 28, 28] (fixed seed) and t = 500 for
// every image, as pipelines/bench_unet_forward.json. ONNX Runtime comes from tools/ort/ (tools/setup.sh).
// Prints one machine-readable line:
//   ort forward b=64 median_ms=... min_ms=... max_ms=... repeats=10 warmup=2
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "ort/package.json"));
let ort;
try {
  ort = require("onnxruntime-node");
} catch (e) {
  console.error(`bench_ort: onnxruntime-node is not installed in ${path.join(here, "ort")}: run tools/setup.sh`);
  process.exit(1);
}

const opts = { model: "", batch: 64, threads: 2, repeats: 10, warmup: 2 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const key = argv[i].replace(/^--/, "");
  if (!(key in opts) || i + 1 >= argv.length) {
    console.error(`bench_ort: unknown or incomplete option ${argv[i]}`);
    process.exit(2);
  }
  opts[key] = key === "model" ? argv[i + 1] : Number(argv[i + 1]);
}
if (!opts.model) {
  console.error("usage: node tools/bench_ort.mjs --model M.onnx [--batch 64] [--threads 2] [--repeats 10] [--warmup 2]");
  process.exit(2);
}

// x ~ N(0, 1) from a fixed-seed generator (xorshift32, Box-Muller).
let s = 12345;
const uniform = () => {
  s ^= s << 13, s >>>= 0, s ^= s >>> 17, s ^= s << 5, s >>>= 0;
  return (s + 1) / 4294967297;
};
const b = opts.batch;
const x = new Float32Array(b * 784);
for (let i = 0; i < x.length; ++i) x[i] = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
const t = new Float32Array(b).fill(500);

const session = await ort.InferenceSession.create(opts.model, {
  executionProviders: ["cpu"],
  intraOpNumThreads: opts.threads,
  interOpNumThreads: 1,
  graphOptimizationLevel: "all",
  executionMode: "sequential",
});
const feeds = { x: new ort.Tensor("float32", x, [b, 1, 28, 28]), t: new ort.Tensor("float32", t, [b]) };
console.log(`ort version=${ort.env.versions.node} threads=${opts.threads} model=${opts.model}`);
for (let i = 0; i < opts.warmup; ++i) await session.run(feeds);
const ms = [];
for (let i = 0; i < opts.repeats; ++i) {
  const t0 = performance.now();
  await session.run(feeds);
  ms.push(performance.now() - t0);
}
const sorted = [...ms].sort((p, q) => p - q);
const median = sorted[Math.floor(sorted.length / 2)];
console.log(`ort forward b=${b} median_ms=${median.toFixed(3)} min_ms=${sorted[0].toFixed(3)} ` +
            `max_ms=${sorted[sorted.length - 1].toFixed(3)} repeats=${ms.length} warmup=${opts.warmup}`);
await session.release();
