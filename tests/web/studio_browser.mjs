#!/usr/bin/env node
// The studio page (web/) in a real browser against the real server:
//
//   node tests/web/studio_browser.mjs NOISEFLOW REPOSITORY SCREENSHOT.png
//
// Starts `NOISEFLOW serve --port 0 --root TMP` on a temporary project folder (a copy of pipelines/ and a
// symlink to the repository's data/, so runs/ starts empty and the repository's runs/ is never touched),
// opens the page in Debian's chromium (headless, driven by playwright-core, which downloads no browser),
// opens pipelines/train.json, checks its graph, sets the param steps to 3, runs it, waits for "tick 3/3",
// the run's success and a preview image, and saves a full-page screenshot. Then the editor: from a new, empty
// canvas it builds a small training pipeline by the page's own gestures (double-click, palette search, wires
// dragged between ports, attributes typed), sees a wire the shape check refuses with the check's words, undoes
// and redoes, moves a node, saves (the positions in the file's "layout"), runs it to its loss, reopens the
// file at the same positions, and saves a screenshot of it beside the first (SCREENSHOT_editor.png).
// Exits non-zero with a message
// (and the server's stderr) on any failure, including a missing chromium or playwright-core: tools/test.sh
// installs both.
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const CHROMIUM = process.env.NOISEFLOW_CHROMIUM || "/usr/bin/chromium";
const RUN_TIMEOUT_MS = 4 * 60 * 1000;      // a sanitizer build trains slowly
const STEP_TIMEOUT_MS = 60 * 1000;
const here = path.dirname(fileURLToPath(import.meta.url));
const t0 = Date.now();

class Failure extends Error {}
const fail = (msg) => { throw new Failure(msg); };
const log = (msg) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)} s] ${msg}`);

const [bin, repo, screenshot] = process.argv.slice(2);
let server = null, serverErr = "", serverUrl = null, context = null, project = null, profile = null, openPage = null;
const pageLog = [];
// The page's console, a repeated line (a WebSocket reconnecting) counted rather than repeated.
function logPage(line) {
  const last = pageLog[pageLog.length - 1];
  if (last && last.line === line) last.count++;
  else pageLog.push({ line, count: 1 });
}

async function main() {
  if (!bin || !repo || !screenshot) fail("usage: node studio_browser.mjs NOISEFLOW REPOSITORY SCREENSHOT.png");
  if (!fs.existsSync(bin)) fail(`no noiseflow binary at ${bin}`);
  if (!fs.existsSync(CHROMIUM))
    fail(`chromium is missing (${CHROMIUM}): run tools/test.sh, which installs Debian's chromium for this test`);
  let chromium;
  try {
    ({ chromium } = await import(pathToFileURL(path.join(here, "node_modules/playwright-core/index.mjs")).href));
  } catch (e) {
    fail(`playwright-core is missing (tests/web/node_modules): run tools/test.sh, which installs it (${e.message})`);
  }
  if (!fs.existsSync(path.join(repo, "web/node_modules/@dagrejs/dagre/package.json")))
    fail("the page's graph layout library is missing (web/node_modules/@dagrejs/dagre): run tools/setup.sh");

  // The project folder: pipelines/ copied, data/ linked (the MNIST digits), runs/ empty.
  project = fs.mkdtempSync(path.join(os.tmpdir(), "noiseflow-studio-"));
  fs.cpSync(path.join(repo, "pipelines"), path.join(project, "pipelines"), { recursive: true });
  fs.symlinkSync(path.resolve(repo, "data"), path.join(project, "data"));
  log(`project folder ${project}`);

  const url = (serverUrl = await startServer());
  log(`server at ${url}`);

  profile = fs.mkdtempSync(path.join(os.tmpdir(), "noiseflow-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1600, height: 1000 },
    // No internet here: without these chromium hangs on network look-ups.
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync"],
  });
  const page = (openPage = context.pages()[0] || (await context.newPage()));
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const pageErrors = [];
  page.on("console", (m) => logPage(`console.${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => { pageErrors.push(e.message); logPage(`page error: ${e.stack || e.message}`); });

  await page.goto(url);
  await page.waitForSelector("body[data-ready=true]").catch(() => fail("the page did not finish loading"));
  log("page loaded");

  // Open train.json from the picker and check its graph.
  const files = await page.$$eval("#picker option", (os) => os.map((o) => o.value));
  if (!files.includes("pipelines/train.json")) fail(`the picker does not offer pipelines/train.json: ${files.join(", ")}`);
  await page.selectOption("#picker", "pipelines/train.json");
  for (const id of ["data", "net", "loss", "opt", "ema", "ckpt"])
    await page.waitForSelector(`#nodes .node[data-node-id="${id}"]`)
      .catch(() => fail(`the graph of train.json has no node "${id}"`));
  if (!(await page.$('#nodes .node.subgraph[data-node-id="net"]'))) fail(`"net" is not drawn as a subgraph instance`);
  const drawn = await page.$$eval("#nodes .node", (ns) => ns.map((n) => n.dataset.nodeId));
  log(`graph drawn: ${drawn.length} nodes (${drawn.join(", ")})`);
  await page.waitForSelector('#check-status[data-ok="true"]')
    .catch(async () => fail(`train.json is not reported valid: ${await page.textContent("#check-status")}`));

  // steps = 3 in the params panel; the live check then reports 3 ticks.
  await page.click('#tabs button[data-tab="params"]');
  await page.fill('[data-param="steps"]', "3");
  await page.waitForFunction(() => {
    const s = document.querySelector("#check-status");
    return s.dataset.ok === "true" && /\b3 ticks\b/.test(s.textContent);
  }).catch(async () => fail(`after steps = 3 the check says: ${await page.textContent("#check-status")}`));
  log(`check after the edit: ${await page.textContent("#check-status")}`);

  // Run, and follow it to its end.
  await page.click("#run");
  log("run queued");
  const outcome = await page.waitForFunction(() => {
    const st = document.querySelector("#run-status").dataset.status;
    const text = document.querySelector("#progress-text").textContent;
    if (["error", "refused", "interrupted"].includes(st)) return { st, text, error: document.querySelector("#run-error").textContent };
    return st === "success" && /\btick 3\/3\b/.test(text) ? { st, text } : false;
  }, null, { timeout: RUN_TIMEOUT_MS, polling: 250 }).then((h) => h.jsonValue()).catch(async () =>
    fail(`the run did not finish with "tick 3/3" within ${RUN_TIMEOUT_MS / 1000} s: status ` +
         `${await page.getAttribute("#run-status", "data-status")}, progress "${await page.textContent("#progress-text")}"`));
  if (outcome.st !== "success") fail(`the run ended "${outcome.st}": ${outcome.error} (progress "${outcome.text}")`);
  log(`run finished: ${outcome.text}`);

  await page.waitForFunction(() => {
    const img = document.querySelector("#preview");
    return img.complete && img.naturalWidth > 0;
  }).catch(() => fail("no preview image was shown (#preview)"));
  const caption = await page.textContent("#preview-caption");
  log(`preview: ${caption}`);
  // The sample grid eval.sample_grid draws at the end of the run: samples/step_000003.png.
  if (!caption.includes("step_000003.png")) fail(`the preview is not the run's sample grid step_000003.png: "${caption}"`);

  // The history lists the run with its outputs.
  await page.click('#tabs button[data-tab="history"]');
  await page.waitForSelector('.history-item .pill[data-status="success"]')
    .catch(() => fail("the history does not list the successful run"));
  await page.waitForFunction(() => [...document.querySelectorAll(".history-item .thumbs img")].some((i) => i.complete && i.naturalWidth > 0))
    .catch(() => fail("the history shows no image of the run"));
  if (pageErrors.length) fail(`the page threw: ${pageErrors.join("; ")}`);

  fs.mkdirSync(path.dirname(path.resolve(screenshot)), { recursive: true });
  await page.screenshot({ path: screenshot, fullPage: true });
  log(`screenshot ${screenshot}`);

  await editorTest(page);
  if (pageErrors.length) fail(`the page threw: ${pageErrors.join("; ")}`);
  const shot = screenshot.replace(/(\.png)?$/, "_editor.png");
  await page.screenshot({ path: shot });
  log(`screenshot ${shot}`);
}

// ---------------------------------------------------------------------------------------------------
// The editor: a pipeline built, saved and run from an empty canvas
// ---------------------------------------------------------------------------------------------------

const nodeSel = (id) => `#nodes .node-box[data-local-id="${id}"]`;
const portSel = (id, dir, port) => `${nodeSel(id)} .port-hit.${dir}[data-port="${port}"]`;
const wireSel = (to, toPort) => `#wires .wire[data-to="${to}"][data-to-port="${toPort}"]`;

// The centre of an element on the screen. The page redraws the graph when a check answers (the boxes stay
// where they are), so an element found may be replaced before it is measured: then it is found again.
async function center(page, sel) {
  for (let i = 0; ; i++) {
    const b = await page.waitForSelector(sel).then((h) => h.boundingBox()).catch(() => null);
    if (b) return { x: b.x + b.width / 2, y: b.y + b.height / 2 };
    if (i === 20) fail(`${sel} is not on the screen`);
    await page.waitForTimeout(50);
  }
}

// Double-click the canvas at (x, y), search the palette, take the first hit: it must be `op`.
async function addNode(page, x, y, query, op, id) {
  await page.mouse.dblclick(x, y);
  await page.waitForSelector("#palette:not([hidden])").catch(() => fail("a double-click on the canvas did not open the palette"));
  await page.fill("#palette-search", query);
  const first = await page.getAttribute("#palette-list .pal-item.active", "data-key");
  if (first !== op) fail(`the palette's first hit for "${query}" is ${first}, not ${op}`);
  await page.keyboard.press("Enter");
  await page.waitForSelector(nodeSel(id)).catch(() => fail(`adding ${op} drew no node "${id}"`));
}

// Drags from an output port to an input port, as a user does.
async function dragWire(page, from, fromPort, to, toPort) {
  const a = await center(page, portSel(from, "out", fromPort)), b = await center(page, portSel(to, "in", toPort));
  await page.mouse.move(a.x, a.y);
  await page.mouse.down();
  await page.mouse.move((a.x + b.x) / 2, (a.y + b.y) / 2 + 20, { steps: 4 });
  await page.mouse.move(b.x, b.y, { steps: 4 });
  await page.mouse.up();
}

async function wireTo(page, from, to, toPort) {
  await page.waitForSelector(`${wireSel(to, toPort)}[data-from="${from}"]`, { state: "attached" })
    .catch(() => fail(`no wire ${from} → ${to}.${toPort} was drawn`));
}

const translateOf = (page, id) => page.getAttribute(nodeSel(id), "transform");

async function editorTest(page) {
  // Dialogs are accepted: New's "discard the edits of train.json?" (steps = 3), the rename prompt's answer.
  let answer;
  page.on("dialog", (d) => d.accept(answer));
  await page.click("#new");
  await page.waitForSelector("#empty-hint:not([hidden])").catch(() => fail("New did not show an empty canvas"));
  log(`new document ${await page.inputValue("#save-path")}`);
  await page.click("#zoom-out");

  // A DDPM on 2-D points with an MLP denoiser (a net file, as a subgraph instance), node by node.
  const g = await (await page.$("#graph")).boundingBox();
  const at = (fx, fy) => [g.x + fx * g.width, g.y + fy * g.height];
  await addNode(page, ...at(0.01, 0.30), "toy2d", "data.toy2d", "toy2d");
  await addNode(page, ...at(0.01, 0.55), "diffusion.schedule", "diffusion.schedule", "schedule");
  await addNode(page, ...at(0.18, 0.12), "random.normal", "random.normal", "normal");
  await addNode(page, ...at(0.18, 0.50), "diffusion.timesteps", "diffusion.timesteps", "timesteps");
  await addNode(page, ...at(0.36, 0.12), "diffusion.add_noise", "diffusion.add_noise", "add_noise");
  await addNode(page, ...at(0.36, 0.52), "diffusion.target", "diffusion.target", "target");
  await addNode(page, ...at(0.56, 0.24), "mlp_denoiser", "pipelines/nets/mlp_denoiser.json", "mlp_denoiser_net");
  if (!(await page.$(`${nodeSel("mlp_denoiser_net")}.subgraph`))) fail("the net file was not added as a subgraph instance");
  await addNode(page, ...at(0.79, 0.36), "mse", "loss.mse", "mse");
  await addNode(page, ...at(0.79, 0.62), "adam", "optim.adam", "adam");
  log("9 nodes added from the palette");

  // The schedule's T, typed in the inspector.
  await page.click(`${nodeSel("schedule")} .nid`);
  await page.fill('#tab-inspector [data-attr="T"]', "100");

  const wires = [["toy2d", "points", "timesteps", "like"], ["schedule", "table", "timesteps", "schedule"],
                 ["toy2d", "points", "normal", "like"], ["toy2d", "points", "add_noise", "x0"], ["normal", "y", "add_noise", "noise"],
                 ["timesteps", "t", "add_noise", "t"], ["schedule", "table", "add_noise", "schedule"],
                 ["add_noise", "xt", "mlp_denoiser_net", "x"], ["timesteps", "t", "mlp_denoiser_net", "t"],
                 ["mlp_denoiser_net", "out", "mse", "pred"]];
  for (const [from, fromPort, to, toPort] of wires) {
    await dragWire(page, from, fromPort, to, toPort);
    await wireTo(page, from, to, toPort);
  }

  // labels [256] into target, where pred is [256, 2]: the check refuses it, in its words.
  await dragWire(page, "toy2d", "labels", "mse", "target");
  await page.waitForFunction(() => /wire refused/.test(document.querySelector("#notice").textContent) &&
                                   !document.querySelector("#notice").hidden)
    .catch(() => fail("a labels → target wire (shapes [256] and [256, 2]) was not refused"));
  const refusal = await page.textContent("#notice");
  if (!/node "mse".*target \[256\] does not match pred \[256, 2\]/.test(refusal)) fail(`the refusal does not give the check's words: "${refusal}"`);
  if (await page.$(wireSel("mse", "target"))) fail("the refused wire was drawn");
  log(`refused: ${refusal}`);

  for (const [from, fromPort, to, toPort] of [["toy2d", "points", "target", "x0"], ["normal", "y", "target", "noise"],
                                              ["timesteps", "t", "target", "t"], ["schedule", "table", "target", "schedule"],
                                              ["target", "target", "mse", "target"], ["mse", "loss", "adam", "loss"]]) {
    await dragWire(page, from, fromPort, to, toPort);
    await wireTo(page, from, to, toPort);
  }
  log("16 wires drawn");

  // Undo takes the last wire away, redo brings it back.
  await page.click("#graph", { position: { x: 5, y: g.height - 5 } });
  await page.keyboard.press("Control+z");
  await page.waitForSelector(wireSel("adam", "loss"), { state: "detached" }).catch(() => fail("Ctrl+Z did not remove the last wire"));
  await page.keyboard.press("Control+Shift+z");
  await wireTo(page, "mse", "adam", "loss");
  await page.click("#undo");
  await page.waitForSelector(wireSel("adam", "loss"), { state: "detached" }).catch(() => fail("the undo button did not remove the last wire"));
  await page.keyboard.press("Control+y");
  await wireTo(page, "mse", "adam", "loss");
  log("undo and redo");

  // An input's wire dragged off onto the canvas is removed; undo brings it back.
  const end = await center(page, portSel("mse", "in", "target"));
  await page.mouse.move(end.x, end.y);
  await page.mouse.down();
  await page.mouse.move(...at(0.6, 0.92), { steps: 5 });
  await page.mouse.up();
  await page.waitForSelector(wireSel("mse", "target"), { state: "detached" }).catch(() => fail("a wire dragged off its input was not removed"));
  await page.keyboard.press("Control+z");
  await wireTo(page, "target", "mse", "target");
  log("a wire removed by dragging it off, and back by undo");

  // Copy and paste a node (its input wires come along), deleted from the inspector; the net instance
  // duplicated and the copy deleted with the Delete key (the include stays: the first instance uses it).
  await page.click(`${nodeSel("mse")} .nid`);
  await page.keyboard.press("Control+c");
  await page.keyboard.press("Control+v");
  await wireTo(page, "mlp_denoiser_net", "mse_2", "pred");
  await page.click("#tab-inspector button.danger");
  await page.waitForSelector(nodeSel("mse_2"), { state: "detached" }).catch(() => fail("the inspector's Delete did not remove the pasted node"));
  await page.click(`${nodeSel("mlp_denoiser_net")} .nid`);
  await page.keyboard.press("Control+d");
  await page.waitForSelector(nodeSel("mlp_denoiser_net_2")).catch(() => fail("Ctrl+D did not duplicate the instance"));
  await page.keyboard.press("Delete");
  await page.waitForSelector(nodeSel("mlp_denoiser_net_2"), { state: "detached" }).catch(() => fail("Delete did not remove the duplicate"));
  log("copy, paste, duplicate, delete");

  // Params: add lr, make adam's lr "$lr" (the "$" switch of its editor), rename lr (the reference follows);
  // add one more and delete it.
  await page.click('#tabs button[data-tab="params"]');
  await page.fill("#new-param-name", "lr");
  await page.fill("#new-param-value", "0.004");
  await page.click("#add-param");
  await page.waitForSelector('[data-param="lr"]').catch(() => fail("Add param did not add lr"));
  await page.click(`${nodeSel("adam")} .nid`);
  await page.click('#tab-inspector .form-row:has([data-attr="lr"]) button.mini');
  await page.fill('#tab-inspector [data-attr="lr"]', "$lr");
  await page.click('#tabs button[data-tab="params"]');
  answer = "learning_rate";
  await page.click('[data-rename-param="lr"]');
  await page.waitForSelector('[data-param="learning_rate"]').catch(() => fail("renaming the param lr did not happen"));
  await page.fill("#new-param-name", "unused");
  await page.fill("#new-param-value", "1");
  await page.click("#add-param");
  await page.click('[data-delete-param="unused"]');
  await page.waitForSelector('[data-param="unused"]', { state: "detached" }).catch(() => fail("deleting the param unused did not happen"));
  log("params added, renamed, deleted");

  // A node renamed in the inspector: the wires from it follow.
  await page.click(`${nodeSel("normal")} .nid`);
  await page.fill("#tab-inspector .node-id-field", "eps");
  await page.press("#tab-inspector .node-id-field", "Enter");
  await page.waitForSelector(nodeSel("eps")).catch(() => fail("renaming the node normal to eps did not happen"));
  await wireTo(page, "eps", "add_noise", "noise");

  // Move the optimizer down by dragging its box.
  const before = await translateOf(page, "adam");
  const head = await center(page, `${nodeSel("adam")} .nid`);
  await page.mouse.move(head.x, head.y);
  await page.mouse.down();
  await page.mouse.move(head.x + 10, head.y + 90, { steps: 5 });
  await page.mouse.up();
  if ((await translateOf(page, "adam")) === before) fail("dragging the adam box did not move it");

  // 3 ticks, then save and run.
  await page.click('#tabs button[data-tab="params"]');
  await page.fill('[data-run="ticks"]', "3");
  await page.waitForFunction(() => {
    const s = document.querySelector("#check-status");
    return s.dataset.ok === "true" && /\b3 ticks\b/.test(s.textContent);
  }).catch(async () => fail(`the built pipeline is not valid: ${await page.textContent("#check-status")}; ` +
                            await page.textContent("#diagnostics")));
  const saved = "pipelines/editor_toy.json";
  await page.fill("#save-path", saved);
  await page.click("#save");
  await page.waitForFunction((p) => document.querySelector("#notice").textContent.startsWith("saved " + p), saved)
    .catch(async () => fail(`Save did not save: "${await page.textContent("#notice")}"`));
  const file = JSON.parse(fs.readFileSync(path.join(project, saved), "utf8"));
  if (Object.keys(file.nodes).length !== 9) fail(`the saved file has not the 9 nodes built: ${Object.keys(file.nodes)}`);
  if (file.nodes.mse.inputs.target !== "target" || file.nodes.adam.inputs.loss !== "mse" ||
      file.nodes.mlp_denoiser_net.inputs.x !== "add_noise" || file.nodes.target.inputs.noise !== "eps" || file.nodes.mlp_denoiser_net.op !== "mlp_denoiser" ||
      file.include?.mlp_denoiser !== "nets/mlp_denoiser.json" || file.nodes.schedule.attrs?.T !== 100)
    fail(`the saved document is not the one built: ${JSON.stringify(file)}`);
  if (file.nodes.adam.attrs?.lr !== "$learning_rate" || file.params?.learning_rate !== 0.004 || "unused" in file.params)
    fail(`the saved params are not the ones edited: ${JSON.stringify(file.params)}, adam ${JSON.stringify(file.nodes.adam)}`);
  const positions = {};
  for (const id of Object.keys(file.nodes)) positions[id] = await translateOf(page, id);
  for (const [id, t] of Object.entries(positions))
    if (t !== `translate(${file.layout?.nodes?.[id]?.join(",")})`) fail(`node ${id} is drawn at ${t}, saved at ${JSON.stringify(file.layout?.nodes?.[id])}`);
  log(`saved ${saved}: ${Object.keys(file.nodes).length} nodes, layout ${JSON.stringify(file.layout.nodes)}`);

  // The run panel still shows train.json's run: wait for this one's (another prompt id) to end.
  const previous = await page.evaluate(() => window.noiseflowStudio.run?.promptId ?? null);
  await page.click("#run");
  const outcome = await page.waitForFunction((prev) => {
    const id = window.noiseflowStudio.run?.promptId;
    if (!id || id === prev) return false;
    const st = document.querySelector("#run-status").dataset.status;
    const text = document.querySelector("#progress-text").textContent;
    if (["error", "refused", "interrupted"].includes(st)) return { st, text, error: document.querySelector("#run-error").textContent };
    return st === "success" && /\btick 3\/3\b/.test(text) ? { st, text } : false;
  }, previous, { timeout: RUN_TIMEOUT_MS, polling: 250 }).then((h) => h.jsonValue()).catch(async () =>
    fail(`the built pipeline's run did not finish: progress "${await page.textContent("#progress-text")}"`));
  if (outcome.st !== "success") fail(`the built pipeline's run ended "${outcome.st}": ${outcome.error}`);
  if (!/\bloss \d/.test(outcome.text)) fail(`the run shows no loss: "${outcome.text}"`);
  const history = await fetch(serverUrl + "history").then((r) => r.json());
  const entry = Object.values(history).find((h) => h.noiseflow?.path === saved);
  if (entry?.status?.status_str !== "success" || entry.loss?.length !== 3 || !entry.loss.every(([, l]) => Number.isFinite(l)))
    fail(`the history has no successful 3-tick run of ${saved} with its losses: ${JSON.stringify(entry)}`);
  log(`built pipeline ran: ${outcome.text}`);

  // Reopened, the file is drawn where it was left.
  await page.selectOption("#picker", "pipelines/train.json");
  await page.waitForSelector(nodeSel("ckpt"));
  await page.selectOption("#picker", saved);
  await page.waitForSelector(nodeSel("adam"));
  for (const [id, t] of Object.entries(positions))
    if ((await translateOf(page, id)) !== t) fail(`reopened, node ${id} is at ${await translateOf(page, id)}, not ${t}`);
  log("reopened at the saved positions");
  await page.click(`${nodeSel("add_noise")} .nid`);   // the inspector, for the screenshot
}

// Starts the server and reads its URL from the first line it prints.
function startServer() {
  return new Promise((resolve, reject) => {
    server = spawn(bin, ["serve", "--port", "0", "--root", project], { cwd: repo, stdio: ["ignore", "pipe", "pipe"] });
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
  if (context) await context.close().catch(() => {});
  if (server && server.exitCode === null && server.signalCode === null) {
    const exited = new Promise((r) => server.once("exit", r));
    server.kill("SIGTERM");
    const killer = setTimeout(() => server.kill("SIGKILL"), 10000);
    await exited;
    clearTimeout(killer);
  }
  for (const dir of [profile, project]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
}

let status = 0;
try {
  await main();
  console.log(`studio browser test passed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
} catch (e) {
  status = 1;
  console.error(`FAIL: ${e instanceof Failure ? e.message : e.stack || e}`);
  // What the page showed when it failed.
  if (openPage && screenshot) {
    const shot = screenshot.replace(/(\.png)?$/, "_failure.png");
    await openPage.screenshot({ path: shot }).then(() => console.error(`the page when it failed: ${shot}`), () => {});
  }
  if (pageLog.length)
    console.error("--- page console ---\n" +
                  pageLog.slice(-60).map((l) => l.line + (l.count > 1 ? ` (${l.count} times)` : "")).join("\n"));
  // What the server says of its runs, when it still answers.
  for (const what of ["queue", "history"]) {
    if (!serverUrl) break;
    const text = await fetch(serverUrl + what, { signal: AbortSignal.timeout(3000) }).then((r) => r.text(), (e) => `(no answer: ${e.message})`);
    console.error(`--- GET /${what} ---\n${text.length > 4000 ? text.slice(0, 4000) + " ..." : text}`);
  }
}
await cleanup();
if (status && server) console.error("--- server stderr ---\n" + (serverErr.trim().split("\n").slice(-100).join("\n") || "(empty)"));
process.exit(status);
