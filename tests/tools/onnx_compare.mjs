// tests/tools/onnx_compare.mjs — runs an exported .onnx in ONNX Runtime (onnxruntime-node, installed by
// tools/setup.sh into tools/ort/) on the x and t noiseflow used, and compares the output with noiseflow's.
//
//   node tests/tools/onnx_compare.mjs MODEL.onnx DIR [TOLERANCE]
//
// DIR holds x.safetensors, t.safetensors and eps.safetensors (tests/tools/onnx_reference.json writes them).
// The measure: max |ort - noiseflow| / max |noiseflow| over the whole output, which must not exceed
// TOLERANCE (default 1e-4); an all-zero reference output fails (it would prove nothing). Exit 0 if it
// agrees, 1 if not, 2 on a usage or file problem.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "../../tools/ort/package.json"));
const ort = require("onnxruntime-node");

function die(msg, code = 2) {
  console.error(`onnx_compare: ${msg}`);
  process.exit(code);
}

// The one F32 tensor of a safetensors file written by io.save_tensor: { dims, data }.
function readTensor(file) {
  const buf = readFileSync(file);
  if (buf.length < 8) die(`${file}: too short for a safetensors file`);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString("utf8"));
  const names = Object.keys(header).filter((k) => k !== "__metadata__");
  if (names.length !== 1) die(`${file}: expected one tensor, found ${names.length}`);
  const e = header[names[0]];
  if (e.dtype !== "F32") die(`${file}: tensor ${names[0]}: dtype ${e.dtype}, expected F32`);
  const [b, end] = e.data_offsets;
  const bytes = buf.subarray(8 + n + b, 8 + n + end);
  const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  return { dims: e.shape, data };
}

const [model, dir, tolArg] = process.argv.slice(2);
if (!model || !dir) die("usage: node tests/tools/onnx_compare.mjs MODEL.onnx DIR [TOLERANCE]");
const tol = tolArg ? Number(tolArg) : 1e-4;
const x = readTensor(path.join(dir, "x.safetensors"));
const t = readTensor(path.join(dir, "t.safetensors"));
const ref = readTensor(path.join(dir, "eps.safetensors"));

const session = await ort.InferenceSession.create(model, {
  executionProviders: ["cpu"],
  graphOptimizationLevel: "all",
  intraOpNumThreads: 2,
  interOpNumThreads: 1,
});
const feeds = { x: new ort.Tensor("float32", x.data, x.dims), t: new ort.Tensor("float32", t.data, t.dims) };
const out = await session.run(feeds);
const eps = out.eps;
if (!eps) die(`${model}: no output named eps (outputs: ${session.outputNames.join(", ")})`, 1);
if (JSON.stringify(eps.dims) !== JSON.stringify(ref.dims))
  die(`${model}: output shape [${eps.dims}] but noiseflow's is [${ref.dims}]`, 1);

let maxDiff = 0, maxRef = 0, at = 0;
for (let i = 0; i < ref.data.length; ++i) {
  const d = Math.abs(eps.data[i] - ref.data[i]);
  if (!(d <= maxDiff)) maxDiff = d, at = i;  // NaN lands here too
  maxRef = Math.max(maxRef, Math.abs(ref.data[i]));
}
const rel = maxDiff / maxRef;
console.log(`onnx_compare: ${path.basename(model)} in ONNX Runtime ${ort.env.versions.node} vs noiseflow, ` +
            `output [${ref.dims}]: max |diff| ${maxDiff.toExponential(3)} (element ${at}), max |noiseflow| ` +
            `${maxRef.toExponential(3)}, relative ${rel.toExponential(3)} (tolerance ${tol})`);
if (maxRef === 0) die("noiseflow's output is all zeros: the checkpoint is untrained, the comparison proves nothing", 1);
if (!(rel <= tol)) die(`relative difference ${rel.toExponential(3)} exceeds ${tol}`, 1);
