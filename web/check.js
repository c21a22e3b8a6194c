// web/check.js — validation as you type (POST /check), diagnostics on the nodes and in the drawer,
// Save, and the notice line.

import { renderGraph } from "./draw.js";
import { recordEdit } from "./edit.js";
import { loadFileList } from "./main.js";
import { S, indexGraph } from "./model.js";
import { renderBreadcrumb, renderInspector, renderParams, select } from "./panels.js";
import { $, api, basename, el, errorMessage, parseDoc, svg } from "./util.js";

// ---------------------------------------------------------------------------------------------------
// Validation (POST /check) and diagnostics
// ---------------------------------------------------------------------------------------------------

export let checkTimer = null, checkSeq = 0;

// After every edit of the root document: dirty, an undo step (typing in one field is one step), checked
// again shortly. `key` names what was edited; by default the field being typed in.
export function documentEdited(key) {
  if (key === undefined) {
    const f = document.activeElement;
    key = f && f.matches?.("input, select") ? f.dataset.key || f.dataset.param || f.dataset.run || f.dataset.attr || "" : "";
  }
  recordEdit(key);
  if (S.root) S.root.dirty = true;
  updateTitle();
  clearTimeout(checkTimer);
  checkTimer = setTimeout(validateNow, 300);
}

export function updateTitle() {
  document.title = (S.root?.dirty ? "• " : "") + (S.root ? basename(S.root.path) + " — " : "") + "noiseflow studio";
  $("#save").classList.toggle("dirty", !!S.root?.dirty);
}

export async function validateNow() {
  clearTimeout(checkTimer);
  if (!S.root) return;
  const seq = ++checkSeq;
  setCheckStatus("checking…", "");
  let r;
  try { r = await api("POST", "/check", { path: S.root.path, pipeline: S.root.doc }); }
  catch (e) { if (seq === checkSeq) setCheckStatus("check failed: server unreachable", "false"); return; }
  if (seq !== checkSeq) return;   // a newer edit is being checked
  if (!r.ok) { setCheckStatus(`check failed: ${errorMessage(r)}`, "false"); showDiagnostics(r.data?.diagnostics || []); return; }
  setCheck(r.data);
}

export function setCheck(answer) {
  S.check = answer;
  if (answer.graph) indexGraph(answer.graph);
  else indexGraph(null);
  const n = answer.diagnostics?.length || 0;
  if (answer.ok) {
    const g = answer.graph || {};
    const bits = ["✓ valid"];
    if (g.ticks !== undefined) bits.push(`${Number(g.ticks).toLocaleString("en")} ticks`);
    if (g.param_count !== undefined) bits.push(`${Number(g.param_count).toLocaleString("en")} parameters`);
    setCheckStatus(bits.join(" · "), "true");
  } else {
    setCheckStatus(`✗ ${n} problem${n === 1 ? "" : "s"}`, "false");
  }
  renderGraph();
  renderInspector();
}

export function setCheckStatus(text, ok) {
  const s = $("#check-status");
  s.textContent = text;
  s.dataset.ok = ok;
}

export function diagnosticsFor(qid) {
  return (S.check?.diagnostics || []).filter((d) => d.node && attachTarget(d.node) === qid);
}

// The drawn node a diagnostic belongs to: the longest drawn id that is the diagnostic's node or a
// prefix of it followed by "." (a problem inside a subgraph shows on the instance's box).
function attachTarget(node) {
  let best = null;
  for (const n of document.querySelectorAll("#nodes .node")) {
    const id = n.dataset.nodeId;
    if ((node === id || node.startsWith(id + ".")) && (!best || id.length > best.length)) best = id;
  }
  return best;
}

export function applyDiagnostics() {
  const diags = S.check?.diagnostics || [];
  const byNode = new Map();
  const loose = [];
  for (const d of diags) {
    const target = d.node ? attachTarget(d.node) : null;
    if (target) (byNode.get(target) || byNode.set(target, []).get(target)).push(d);
    else loose.push(d);
  }
  for (const n of document.querySelectorAll("#nodes .node")) {
    n.querySelector(".badge")?.remove();
    const list = byNode.get(n.dataset.nodeId);
    n.classList.toggle("has-error", !!list);
    if (!list) continue;
    const w = +n.querySelector("rect.body").getAttribute("width");
    n.append(svg("g", { class: "badge", transform: `translate(${w - 2},-2)` },
      svg("circle", { r: 10 }), svg("text", { y: 4, "text-anchor": "middle", text: String(list.length) }),
      svg("title", { text: list.map((d) => d.text).join("\n") })));
  }
  showDiagnostics(diags, loose);
}

// The status drawer: file-level problems and those not on a drawn node first, then every other one.
function showDiagnostics(diags, loose = diags) {
  const box = $("#diagnostics");
  box.replaceChildren();
  if (!diags.length) { box.hidden = true; return; }
  box.hidden = !!S.diagnosticsFolded;
  const attached = diags.filter((d) => !loose.includes(d));
  box.append(el("div", { class: "diag-head" },
    el("span", { text: `${diags.length} problem${diags.length === 1 ? "" : "s"}` }),
    el("button", { class: "mini", text: "hide", title: "Hide the list (the status at the top shows it again)",
                   onclick: () => { S.diagnosticsFolded = true; box.hidden = true; } })));
  const ul = el("ul", { class: "diag-list" });
  for (const d of [...loose, ...attached]) {
    const target = d.node ? attachTarget(d.node) : null;
    ul.append(el("li", { class: target ? "clickable" : "", text: d.text, title: target ? "select the node" : "",
                         onclick: target ? () => select(target) : null }));
  }
  box.append(ul);
}

// ---------------------------------------------------------------------------------------------------
// Save
// ---------------------------------------------------------------------------------------------------

export async function save(path) {
  if (!S.root) return;
  path = path.trim();
  const r = await api("POST", "/save", { path, pipeline: S.root.doc });
  if (!r.ok) { notice(`save failed: ${errorMessage(r)}`, true); return false; }
  const a = r.data;
  S.root.dirty = false;
  if (!S.files.includes(a.saved || path)) await loadFileList();
  if (path !== S.root.path) {
    S.root.path = a.saved || path;
    S.levels[0].path = S.root.path;
    S.levels[0].label = basename(S.root.path);
    history.replaceState(null, "", "#" + S.root.path);
    await loadFileList();
    $("#picker").value = S.root.path;
    renderBreadcrumb();
  }
  S.root.original = parseDoc(JSON.stringify(S.root.doc));
  updateTitle();
  renderParams();
  const n = a.diagnostics?.length || 0;
  notice(`saved ${a.saved} (${a.bytes} bytes)` + (a.ok === false ? `, with ${n} problem${n === 1 ? "" : "s"}` : ""));
  if (a.diagnostics) setCheck({ ok: a.ok, diagnostics: a.diagnostics, graph: S.check?.graph ?? null });
  return true;
}

export function setupSave() {
  $("#save").onclick = () => save($("#save-path").value);
  const dlg = $("#save-as-dialog");
  $("#save-as").onclick = () => {
    const p = S.root?.path || "pipelines/untitled.json";
    $("#save-as-path").value = p.replace(/\.json$/, "_copy.json");
    dlg.showModal();
  };
  dlg.addEventListener("close", async () => {
    if (dlg.returnValue !== "ok") return;
    const p = $("#save-as-path").value.trim();
    if (await save(p)) $("#save-path").value = p;
  });
}

let noticeTimer = null;
export function notice(text, error = false) {
  const n = $("#notice");
  n.textContent = text;
  n.classList.toggle("error", error);
  n.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => (n.hidden = true), 6000);
}
