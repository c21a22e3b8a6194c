#!/usr/bin/env node
// The studio page (web/) in a real browser against the real server:
//
//   node tests/web/studio_browser.mjs NOISEFLOW REPOSITORY SCREENSHOT.png
//
// Starts `NOISEFLOW serve --port 0 --root TMP` on a temporary project folder (a copy of pipelines/ and a
// symlink to the repository's data/, so runs/ starts empty and the repository's runs/ is never touched),
// opens the page in Debian's chromium (headless, driven by playwright-core, which downloads no browser),
// opens pipelines/train.json, checks its graph, sets the param steps to 3, runs it, waits for "tick 3/3",
// the run's success and a preview image, and saves a full-page screenshot. Exits non-zero with a message
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
let server = null, serverErr = "", serverUrl = null, context = null, project = null, profile = null;
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
  const page = context.pages()[0] || (await context.newPage());
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
