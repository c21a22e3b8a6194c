// web/main.js — the studio page's entry point (web/index.html loads it as a module): tabs, the pipeline
// picker, start-up. The page is the browser front end of `noiseflow serve` (docs/API.md).

import { notice, setupSave } from "./check.js";
import { setupPanZoom } from "./draw.js";
import { setupEditing } from "./edit.js";
import { S } from "./model.js";
import { openPipeline } from "./panels.js";
import { connectSocket, drawLoss, loadHistory, runPipeline } from "./run.js";
import { $, api, el, errorMessage } from "./util.js";

// ---------------------------------------------------------------------------------------------------
// Tabs, picker, start-up
// ---------------------------------------------------------------------------------------------------

export function showTab(name) {
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.tab === name);
  for (const t of ["inspector", "params", "history"]) $("#tab-" + t).hidden = t !== name;
  if (name === "history") loadHistory();
}

export async function loadFileList() {
  const r = await api("GET", "/pipelines");
  S.files = r.ok ? r.data.files || [] : [];
  const picker = $("#picker");
  picker.replaceChildren(...S.files.map((f) => el("option", { value: f, text: f.replace(/^pipelines\//, "") })));
  // A new document not saved yet.
  if (S.root && !S.files.includes(S.root.path))
    picker.append(el("option", { value: S.root.path, text: S.root.path.replace(/^pipelines\//, "") + " (new)" }));
  if (S.root) picker.value = S.root.path;
}

async function main() {
  setupPanZoom();
  setupEditing();
  setupSave();
  for (const b of document.querySelectorAll("#tabs button")) b.onclick = () => showTab(b.dataset.tab);
  $("#picker").onchange = (e) => openPipeline(e.target.value);
  $("#check-status").onclick = () => {
    S.diagnosticsFolded = !S.diagnosticsFolded;
    if (S.check?.diagnostics?.length) $("#diagnostics").hidden = S.diagnosticsFolded;
  };
  $("#run").onclick = runPipeline;
  $("#cancel").onclick = async () => {
    const r = await api("POST", "/interrupt", S.run ? { prompt_id: S.run.promptId } : {}).catch(() => null);
    if (r?.ok && r.data?.interrupted === null) notice("nothing was running");
  };
  drawLoss();
  connectSocket();
  const [info] = await Promise.all([api("GET", "/object_info"), loadFileList()]);
  if (info.ok) S.objectInfo = info.data;
  else notice(`GET /object_info failed: ${errorMessage(info)}`, true);
  const wanted = decodeURIComponent(location.hash.slice(1));
  const first = S.files.includes(wanted) ? wanted : S.files.includes("pipelines/train.json") ? "pipelines/train.json" : S.files[0];
  if (first) await openPipeline(first);
  loadHistory();
  document.body.dataset.ready = "true";
}

window.noiseflowStudio = S;   // for debugging from the console
main();
