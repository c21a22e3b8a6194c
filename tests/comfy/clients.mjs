#!/usr/bin/env node
// `noiseflow serve` driven by two stock ComfyUI clients from npm, unchanged, through their own public APIs:
//
//   node tests/comfy/clients.mjs NOISEFLOW REPOSITORY
//
// Starts `NOISEFLOW serve --port 0 --root TMP` on an empty temporary project folder and, with each of
// @saintno/comfyui-sdk and @stable-canvas/comfyui-client (tests/comfy/package.json, installed by
// tools/test.sh): connects, reads /object_info and /system_stats, queues a prompt in ComfyUI's API format (a
// DDIM sampler over the exact denoiser of Gaussian data, writing an image grid at its end: about a second),
// follows its progress to the end, reads the history and fetches the image through the client's own URL
// helper, which must be a PNG. The order of the run's WebSocket messages is ComfyUI's. Exits 77 (ctest's
// skip) when the packages are missing, non-zero with a message (and the server's stderr) on any failure.
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const STEP_TIMEOUT_MS = 60 * 1000;
const RUN_TIMEOUT_MS = 4 * 60 * 1000;  // a sanitizer build samples slowly
const here = path.dirname(fileURLToPath(import.meta.url));
const t0 = Date.now();

class Failure extends Error {}
const fail = (msg) => { throw new Failure(msg); };
const check = (cond, msg) => { if (!cond) fail(msg); };
const log = (msg) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)} s] ${msg}`);
const withTimeout = (promise, ms, what) =>
  Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Failure(`${what}: no answer within ${ms / 1000} s`)), ms))]);

const [bin, repo] = process.argv.slice(2);
let server = null, serverErr = "", serverUrl = null, project = null;

// ComfyUI's API format: node id -> {class_type, inputs}; [id, slot] links an input to output `slot` of node
// id (in /object_info's output order), the other inputs are the node's attributes. noiseflow.run carries
// the run settings (docs/API.md).
function samplerPrompt(name, steps) {
  return {
    "1": { class_type: "diffusion.schedule", inputs: { T: 1000 } },
    "2": { class_type: "random.normal", inputs: { shape: [64, 3, 32, 32] } },
    "3": { class_type: "sampler.timesteps",
           inputs: { like: ["2", 0], schedule: ["1", 0], sampler: "ddim", steps, spacing: "trailing" } },
    "4": { class_type: "state", inputs: { init: ["2", 0], next: ["6", 0] } },
    "5": { class_type: "state", inputs: { init: ["3", 2], next: ["6", 1] } },
    "6": { class_type: "sampler.ddim",
           inputs: { x: ["4", 0], pred: ["7", 0], t: ["3", 0], points: ["3", 1], history: ["5", 0] } },
    "7": { class_type: "diffusion.gaussian_denoiser",
           inputs: { x: ["4", 0], t: ["3", 0], schedule: ["1", 0], mu: 0.5, sigma: 0.1 }, _meta: { title: "denoiser" } },
    "8": { class_type: "io.write_images",
           inputs: { images: ["6", 0], path: `runs/${name}/samples.png`, cols: 8, at_end: true } },
    "9": { class_type: "noiseflow.run", inputs: { ticks: "auto", seed: 1, name } },
  };
}
const STEPS = 200;

async function expectPng(url, who) {
  const r = await fetch(url);
  check(r.ok, `${who}: GET ${url} answered ${r.status}`);
  const bytes = new Uint8Array(await r.arrayBuffer());
  check(bytes.length > 100 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47,
        `${who}: ${url} is no PNG (${bytes.length} bytes)`);
  log(`${who}: ${url} is a PNG of ${bytes.length} bytes`);
}

// ComfyUI's order of a run's messages (types of one prompt, repeats of executing/progress collapsed; the
// preview messages noiseflow adds left out).
function checkOrder(types, who) {
  const own = types.filter((t) => t !== "preview");  // noiseflow's announcement of a binary preview frame
  const collapsed = own.filter((t, i) => t !== own[i - 1]);
  const expected = ["execution_start", "execution_cached", "executing", "progress", "executed", "execution_success", "executing"];
  check(JSON.stringify(collapsed) === JSON.stringify(expected),
        `${who}: the run's messages came as ${JSON.stringify(collapsed)}, not ComfyUI's ${JSON.stringify(expected)}`);
}

async function saintno() {
  const who = "@saintno/comfyui-sdk";
  const { ComfyApi, PromptBuilder, CallWrapper } = await import("@saintno/comfyui-sdk");
  const api = new ComfyApi(serverUrl.replace(/\/$/, ""), "saintno-test");
  const connected = new Promise((resolve) => api.on("connected", resolve));
  const errors = [];
  api.on("connection_error", (e) => errors.push(e.detail));
  api.init(3, 500);
  await withTimeout(Promise.all([api.waitForReady(), connected]), STEP_TIMEOUT_MS, `${who}: connect (errors: ${errors})`);
  log(`${who}: connected`);

  const defs = await api.getNodeDefs();
  check(defs && defs["sampler.ddim"]?.output_name?.[0] === "x_next", `${who}: /object_info lacks sampler.ddim`);
  const one = await api.getNodeDefs("io.write_images");
  check(one?.["io.write_images"]?.output_node === true, `${who}: /object_info/io.write_images is no output node`);
  check((await api.getNodeDefs("NoSuchNode")) === null, `${who}: an unknown node type is not {}`);
  const stats = await api.getSystemStats();
  check(stats.devices?.[0]?.type === "cpu" && stats.devices[0].vram_total > 0, `${who}: /system_stats has no CPU device`);
  log(`${who}: object_info (${Object.keys(defs).length} node types), system_stats`);

  const all = [];  // every JSON message: [type, prompt_id]
  let promptId = null;
  api.on("all", (ev) => all.push([ev.detail.type, ev.detail.data?.prompt_id]));
  const builder = new PromptBuilder(samplerPrompt("saintno", STEPS), ["steps"], ["grid"])
    .setInputNode("steps", "3.inputs.steps")
    .setOutputNode("grid", "8");
  const progress = [];
  const result = await withTimeout(new Promise((resolve, reject) => {
    new CallWrapper(api, builder.input("steps", STEPS))
      .onPending((id) => { promptId = id; log(`${who}: queued ${id}`); })
      .onProgress((p) => progress.push(p))
      .onFinished((out) => resolve(out))
      .onFailed((err) => reject(new Failure(`${who}: the run failed: ${err.message} ${JSON.stringify(err.cause ?? "")}`)))
      .run();
  }), RUN_TIMEOUT_MS, `${who}: the run`);
  check(promptId, `${who}: no prompt id`);
  const images = result.grid?.images;
  check(images?.length === 1 && images[0].filename === "samples.png", `${who}: the output is ${JSON.stringify(result)}`);
  check(progress.length >= 1 && progress[progress.length - 1].value === STEPS && progress[progress.length - 1].max === STEPS,
        `${who}: the progress did not reach ${STEPS}/${STEPS}: ${JSON.stringify(progress.slice(-2))}`);
  log(`${who}: finished, ${progress.length} progress events`);

  const h = await api.getHistory(promptId);
  check(h?.status?.completed === true && h.status.status_str === "success", `${who}: the history says ${JSON.stringify(h?.status)}`);
  check(Array.isArray(h.prompt) && h.prompt[1] === promptId && h.prompt[2]["8"].class_type === "io.write_images",
        `${who}: the history's prompt is not ComfyUI's [number, id, prompt, ...]`);
  check(h.outputs["8"].images[0].type === "output", `${who}: the history's outputs are ${JSON.stringify(h.outputs)}`);
  await expectPng(api.getPathImage(h.outputs["8"].images[0]), who);
  await new Promise((r) => setTimeout(r, 300));  // the last messages
  checkOrder(all.filter(([, id]) => id === promptId).map(([t]) => t), who);

  // A bad prompt: 400 with ComfyUI's node_errors.
  const bad = samplerPrompt("saintno", STEPS);
  bad["7"].class_type = "diffusion.gausian_denoiser";
  const r = await api.queuePrompt(null, bad).then(() => null, (e) => e);
  check(r && r.status === 400, `${who}: a prompt with an unknown node type was not refused with 400`);
  const body = await r.json();
  check(body.node_errors?.["7"]?.errors?.[0]?.type === "missing_node_type", `${who}: node_errors are ${JSON.stringify(body.node_errors)}`);

  await api.clearHistory({ delete: [promptId] });
  check((await api.getHistory(promptId)) === undefined, `${who}: the history entry was not deleted`);
  api.destroy();
}

async function stableCanvas() {
  const who = "@stable-canvas/comfyui-client";
  const { Client } = await import("@stable-canvas/comfyui-client");
  const { default: WebSocket } = await import("ws");
  const client = new Client({ api_host: new URL(serverUrl).host, clientId: "stable-canvas-test", WebSocket });
  await withTimeout(client.connect(), STEP_TIMEOUT_MS, `${who}: connect`);
  log(`${who}: connected`);

  const defs = await client.getNodeDefs();
  check(defs["io.write_images"]?.input?.required?.images?.[0] === "TENSOR", `${who}: /object_info lacks io.write_images`);
  const stats = await client.getSystemStats();
  check(stats.devices?.[0]?.type === "cpu", `${who}: /system_stats has no CPU device`);
  log(`${who}: object_info (${Object.keys(defs).length} node types), system_stats`);

  const all = [];  // every JSON message: [type, prompt_id]
  client.on("message", (ev) => {
    if (typeof ev.data !== "string") return;
    const m = JSON.parse(ev.data);
    all.push([m.type, m.data?.prompt_id]);
  });
  const progress = [];
  const out = await withTimeout(client.enqueue(samplerPrompt("stable_canvas", STEPS), {
    progress: (p) => { progress.push(p); },
    workflow: {},
  }), RUN_TIMEOUT_MS, `${who}: the run`);
  const promptId = out.prompt_id;
  log(`${who}: queued and finished ${promptId}, ${progress.length} progress events`);
  // The client keeps the binary preview frames of the run (x0 of the sampler's steps) as "buff" images, and
  // resolves the executed node's images to URLs.
  const urls = out.images.filter((i) => i.type === "url"), frames = out.images.filter((i) => i.type === "buff");
  check(urls.length === 1 && frames.every((f) => f.mime === "image/png"),
        `${who}: the result has ${urls.length} image URLs and frames of ${[...new Set(frames.map((f) => f.mime))]}`);
  log(`${who}: ${frames.length} preview frames`);
  check(progress.length >= 1 && progress[progress.length - 1].value === STEPS, `${who}: the progress did not reach ${STEPS}`);
  await expectPng(urls[0].data, who);

  await new Promise((r) => setTimeout(r, 300));  // the last messages
  const status = await client.getPromptStatus(promptId);
  check(status.done, `${who}: the run is still in the queue`);
  const { History } = await client.getHistory();
  const item = History.find((h) => h.prompt[1] === promptId);
  check(item && item.status.status_str === "success", `${who}: the run is not in the history as a success`);
  const result = await client.getPromptResult(promptId);
  check(result.images.length === 1, `${who}: getPromptResult found ${result.images.length} images`);
  await expectPng(result.images[0].data, who);
  checkOrder(all.filter(([, id]) => id === promptId).map(([t]) => t), who);

  const bad = samplerPrompt("stable_canvas", STEPS);
  bad["6"].inputs.t = ["3", 7];
  const err = await client.enqueue(bad).then(() => null, (e) => e);
  check(err, `${who}: a prompt linking to a missing output slot was accepted`);
  log(`${who}: a bad prompt refused: ${err.message}`);
  await client.clearItems("history");
  check((await client.getHistory()).History.length === 0, `${who}: the history was not cleared`);
  client.close();
}

async function main() {
  if (!bin || !repo) fail("usage: node clients.mjs NOISEFLOW REPOSITORY");
  if (!fs.existsSync(bin)) fail(`no noiseflow binary at ${bin}`);
  for (const pkg of ["@saintno/comfyui-sdk", "@stable-canvas/comfyui-client", "ws"])
    if (!fs.existsSync(path.join(here, "node_modules", pkg, "package.json"))) {
      console.log(`SKIP: ${pkg} is missing (tests/comfy/node_modules): run tools/test.sh, which installs the ComfyUI clients`);
      process.exit(77);
    }
  project = fs.mkdtempSync(path.join(os.tmpdir(), "noiseflow-comfy-"));
  fs.mkdirSync(path.join(project, "pipelines"));
  serverUrl = await startServer();
  log(`server at ${serverUrl}`);
  await saintno();
  await stableCanvas();
}

function startServer() {
  return new Promise((resolve, reject) => {
    server = spawn(bin, ["serve", "--port", "0", "--root", project, "--threads", "2"], { cwd: repo, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    const timer = setTimeout(() => reject(new Failure("the server printed no URL within 60 s")), STEP_TIMEOUT_MS);
    server.stderr.on("data", (d) => { serverErr += d; });
    server.stdout.on("data", (d) => {
      out += d;
      const nl = out.indexOf("\n");
      if (nl < 0) return;
      const m = /^noiseflow studio: (http:\/\/\S+)$/.exec(out.slice(0, nl).trim());
      clearTimeout(timer);
      if (m) resolve(m[1]);
      else reject(new Failure(`unexpected first line from the server: "${out.slice(0, nl)}"`));
    });
    server.on("error", (e) => { clearTimeout(timer); reject(new Failure(`cannot start ${bin}: ${e.message}`)); });
    server.on("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Failure(`the server exited (${signal || "code " + code}) before printing its URL`));
    });
  });
}

async function cleanup() {
  if (server && server.exitCode === null && server.signalCode === null) {
    const exited = new Promise((r) => server.once("exit", r));
    server.kill("SIGTERM");
    const killer = setTimeout(() => server.kill("SIGKILL"), 10000);
    await exited;
    clearTimeout(killer);
  }
  if (project) fs.rmSync(project, { recursive: true, force: true });
}

let status = 0;
try {
  await main();
  console.log(`ComfyUI clients test passed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
} catch (e) {
  status = 1;
  console.error(`FAIL: ${e instanceof Failure ? e.message : e.stack || e}`);
  if (serverUrl)
    for (const what of ["queue", "history"]) {
      const text = await fetch(serverUrl + what, { signal: AbortSignal.timeout(3000) }).then((r) => r.text(), (e) => `(no answer: ${e.message})`);
      console.error(`--- GET /${what} ---\n${text.length > 4000 ? text.slice(0, 4000) + " ..." : text}`);
    }
}
await cleanup();
if (status && server) console.error("--- server stderr ---\n" + (serverErr.trim().split("\n").slice(-100).join("\n") || "(empty)"));
process.exit(status);
