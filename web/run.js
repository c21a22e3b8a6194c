// web/run.js — running: POST /prompt, the WebSocket, the run panel (progress, loss curve, preview), and
// the history.

import { checkTimer, setCheck } from "./check.js";
import { S } from "./model.js";
import { $, api, el, errorMessage, fmtDuration, fmtNum, svg } from "./util.js";

// ---------------------------------------------------------------------------------------------------
// Running: POST /prompt, the WebSocket, the run panel
// ---------------------------------------------------------------------------------------------------

export async function runPipeline() {
  if (!S.root) return;
  clearTimeout(checkTimer);
  $("#run").disabled = true;
  try {
    const r = await api("POST", "/prompt", { path: S.root.path, pipeline: S.root.doc, client_id: S.clientId });
    if (r.status === 400 && r.data?.diagnostics) {
      setCheck({ ok: false, diagnostics: r.data.diagnostics, graph: null });
      setRunStatus("refused", `run refused: ${r.data.error?.message || "invalid pipeline"}`);
      return;
    }
    if (!r.ok) { setRunStatus("error", `run refused: ${errorMessage(r)}`); return; }
    followRun(r.data.prompt_id, { status: "pending", nodeIds: new Set(Object.keys(S.root.doc.nodes || {})) });
    if (S.run.status === "pending") $("#progress-text").textContent = `queued as #${r.data.number}`;
  } catch (e) {
    setRunStatus("error", "server unreachable");
  } finally {
    $("#run").disabled = false;
  }
}

function followRun(promptId, init = {}) {
  if (S.run?.promptId === promptId) {
    // Already followed (its execution_start came first): keep its status.
    const { status, ...rest } = init;
    Object.assign(S.run, rest);
    return;
  }
  S.run = { promptId, status: "pending", value: 0, max: 0, loss: [], ...init };
  showPreview(null, "preview: none yet");   // the previous run's image is not this one's
  drawLoss();
  setRunStatus(S.run.status);
  setProgress(S.run);
}

function setRunStatus(status, error = "") {
  const pill = $("#run-status");
  pill.dataset.status = status;
  pill.textContent = status;
  const err = $("#run-error");
  err.hidden = !error;
  err.textContent = error;
  $("#cancel").disabled = !(status === "running" || status === "pending");
}

function setProgress(p) {
  const max = p.max || 0, value = p.value || 0;
  $("#progress-bar").style.width = max ? `${Math.min(100, (100 * value) / max)}%` : "0";
  if (!max) return;
  const bits = [`tick ${value}/${max}`];
  if (p.lossValue !== undefined && p.lossValue !== null) bits.push(`loss ${fmtNum(p.lossValue)}`);
  if (p.ticks_per_s !== undefined && p.ticks_per_s !== null) bits.push(`${fmtNum(p.ticks_per_s, 3)} ticks/s`);
  const over = ["success", "error", "interrupted"].includes(p.status);
  if (!over && value < max) { if (p.eta_s !== undefined && p.eta_s !== null) bits.push(`ETA ${fmtDuration(p.eta_s)}`); }
  else if (p.elapsed_s !== undefined && p.elapsed_s !== null) bits.push(`took ${fmtDuration(p.elapsed_s)}`);
  $("#progress-text").textContent = bits.join(" · ");
}

// The loss curve: log-y when every loss is positive, axes labelled with their ranges.
export function drawLoss() {
  const chart = $("#loss-chart");
  chart.replaceChildren();
  const pts = (S.run?.loss || []).filter((p) => Number.isFinite(p[1]));
  const W = 240, H = 190, L = 46, R = 8, T = 10, B = 34;
  chart.append(svg("rect", { class: "plot-bg", x: L, y: T, width: W - L - R, height: H - T - B }));
  chart.append(svg("text", { class: "axis-label", x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle", text: "tick" }));
  chart.append(svg("text", { class: "axis-label", x: 11, y: (T + H - B) / 2, "text-anchor": "middle",
                             transform: `rotate(-90 11 ${(T + H - B) / 2})`, text: "loss" }));
  if (!pts.length) {
    const none = S.run && S.run.value > 0 ? "this run logs no loss" : "no loss yet";
    chart.append(svg("text", { class: "axis-tick", x: (L + W - R) / 2, y: (T + H - B) / 2, "text-anchor": "middle", text: none }));
    return;
  }
  const log = pts.every((p) => p[1] > 0);
  const f = (y) => (log ? Math.log10(y) : y);
  const x0 = pts[0][0], x1 = Math.max(pts[pts.length - 1][0], x0 + 1);
  let y0 = Math.min(...pts.map((p) => f(p[1]))), y1 = Math.max(...pts.map((p) => f(p[1])));
  if (y1 - y0 < 1e-9) { y0 -= log ? 0.05 : 0.05 * Math.abs(y0 || 1); y1 += log ? 0.05 : 0.05 * Math.abs(y1 || 1); }
  const X = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const Y = (y) => T + (1 - (f(y) - y0) / (y1 - y0)) * (H - T - B);
  const d = pts.map((p, i) => `${i ? "L" : "M"}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join("");
  chart.append(svg("path", { class: "loss-line", d }));
  if (pts.length === 1 || pts.length < 40) for (const p of pts) chart.append(svg("circle", { class: "loss-dot", cx: X(p[0]), cy: Y(p[1]), r: 2.2 }));
  const yLo = log ? 10 ** y0 : y0, yHi = log ? 10 ** y1 : y1;
  chart.append(svg("text", { class: "axis-tick", x: L - 4, y: T + 8, "text-anchor": "end", text: fmtNum(yHi, 3) }));
  chart.append(svg("text", { class: "axis-tick", x: L - 4, y: H - B, "text-anchor": "end", text: fmtNum(yLo, 3) }));
  chart.append(svg("text", { class: "axis-tick", x: L, y: H - B + 13, "text-anchor": "start", text: String(x0) }));
  chart.append(svg("text", { class: "axis-tick", x: W - R, y: H - B + 13, "text-anchor": "end", text: String(x1) }));
}

function showPreview(url, caption) {
  const img = $("#preview");
  if (S.previewUrl && S.previewUrl.startsWith("blob:")) URL.revokeObjectURL(S.previewUrl);
  S.previewUrl = url;
  if (url) img.src = url; else img.removeAttribute("src");
  $("#preview-caption").textContent = caption;
}

const viewUrl = (im) => `/view?filename=${encodeURIComponent(im.filename)}&subfolder=${encodeURIComponent(im.subfolder || "")}&type=${encodeURIComponent(im.type || "output")}`;

function onMessage(msg) {
  const { type, data = {} } = msg;
  const mine = (id) => S.run && S.run.promptId === id;
  switch (type) {
    case "status": {
      const q = data.status?.exec_info?.queue_remaining;
      // queue_remaining counts the running run too.
      const waiting = S.run?.status === "running" ? q - 1 : q;
      $("#queue-info").textContent = waiting > 0 ? `${waiting} waiting` : "";
      break;
    }
    case "execution_start":
      followRun(data.prompt_id);
      S.run.status = "running";
      S.run.startedAt = data.timestamp;
      setRunStatus("running");
      $("#progress-text").textContent = "starting…";
      break;
    case "progress":
      if (!S.run || (data.prompt_id && !mine(data.prompt_id))) followRun(data.prompt_id, { status: "running" });
      Object.assign(S.run, { value: data.value, max: data.max, lossValue: data.loss, ticks_per_s: data.ticks_per_s,
                             eta_s: data.eta_s, elapsed_s: data.elapsed_s });
      if (data.loss !== null && data.loss !== undefined) {
        const last = S.run.loss[S.run.loss.length - 1];
        if (!last || last[0] !== data.value) S.run.loss.push([data.value, data.loss]);
      }
      setProgress(S.run);
      drawLoss();
      break;
    case "preview":
      S.lastPreview = data;
      break;
    case "executed": {
      const images = data.output?.images || [];
      const im = images[images.length - 1];
      // Shown from /view unless its binary frame already came.
      if (im && isNodePreview(data) && !(S.lastPreview && S.lastPreview.filename === im.filename && S.previewUrl?.startsWith("blob:")))
        showPreview(viewUrl(im), `${data.node}: ${im.filename}`);
      break;
    }
    case "execution_success":
    case "execution_interrupted":
    case "execution_error": {
      if (!mine(data.prompt_id)) followRun(data.prompt_id);
      const status = type === "execution_success" ? "success" : type === "execution_error" ? "error" : "interrupted";
      S.run.status = status;
      let error = "";
      if (status === "error") {
        error = [data.node_id ? `node "${data.node_id}"${data.node_type ? ` (${data.node_type})` : ""}` : "", data.exception_message]
          .filter(Boolean).join(": ");
        if (data.diagnostics?.length) setCheck({ ok: false, diagnostics: data.diagnostics, graph: S.check?.graph ?? null });
      }
      if (status === "interrupted" && data.tick !== undefined) error = `stopped after tick ${data.tick}`;
      setRunStatus(status, error);
      setProgress(S.run);
      finishRun(data.prompt_id);
      break;
    }
    case "executing":
      if (data.node === null && mine(data.prompt_id)) finishRun(data.prompt_id);
      break;
  }
}

// When a run is over: its full loss curve and final progress from the history, and the history list.
async function finishRun(promptId) {
  $("#cancel").disabled = true;
  const r = await api("GET", "/history/" + encodeURIComponent(promptId)).catch(() => null);
  const h = r?.ok ? r.data?.[promptId] : null;
  if (h && mineRun(promptId)) {
    if (Array.isArray(h.loss) && h.loss.length) S.run.loss = h.loss;
    if (h.progress) {
      Object.assign(S.run, { value: h.progress.value, max: h.progress.max, lossValue: h.progress.loss,
                             ticks_per_s: h.progress.ticks_per_s, eta_s: h.progress.eta_s, elapsed_s: h.progress.elapsed_s });
      setProgress(S.run);
    }
    const st = h.status?.status_str;
    if (st && st !== S.run.status && ["success", "error", "interrupted"].includes(st)) {
      S.run.status = st;
      setRunStatus(st, h.error?.message || "");
    }
    drawLoss();
  }
  loadHistory();
}
const mineRun = (id) => S.run && S.run.promptId === id;

// Whether an image comes from a node of the followed run's pipeline (the preview box shows those; the run
// folder's loss.png, announced too, is in the history, and the loss chart draws the same curve).
function isNodePreview(msg) {
  const ids = S.run?.promptId === msg?.prompt_id ? S.run.nodeIds : null;
  if (!ids || !msg.node) return true;
  return [...ids].some((id) => msg.node === id || msg.node.startsWith(id + "."));
}

function onBinary(buf) {
  if (buf.byteLength < 8) return;
  if (!isNodePreview(S.lastPreview)) return;
  const view = new DataView(buf);
  const event = view.getUint32(0), format = view.getUint32(4);
  if (event !== 1) return;
  const mime = format === 2 ? "image/png" : format === 1 ? "image/jpeg" : "image/png";
  const blob = new Blob([buf.slice(8)], { type: mime });
  const p = S.lastPreview;
  const caption = p ? (p.kind === "x0" ? `x0 prediction (${p.node}) · tick ${p.tick}` : `${p.node}: ${p.filename || "image"} · tick ${p.tick}`) : "preview";
  showPreview(URL.createObjectURL(blob), caption);
}

let wsDelay = 500;
export function connectSocket() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${proto}//${location.host}/ws?clientId=${encodeURIComponent(S.clientId)}`);
  ws.binaryType = "arraybuffer";
  const status = $("#ws-status");
  ws.onopen = () => {
    wsDelay = 500;
    status.textContent = "live";
    status.classList.add("live");
    syncQueue();
  };
  ws.onmessage = (ev) => {
    if (typeof ev.data === "string") {
      try { onMessage(JSON.parse(ev.data)); } catch (e) { console.error("bad message", e, ev.data); }
    } else onBinary(ev.data);
  };
  ws.onclose = () => {
    status.textContent = "reconnecting…";
    status.classList.remove("live");
    setTimeout(connectSocket, wsDelay);
    wsDelay = Math.min(wsDelay * 2, 5000);
  };
}

// After (re)connecting: follow a run that is already going.
async function syncQueue() {
  const r = await api("GET", "/queue").catch(() => null);
  const running = r?.ok ? r.data?.queue_running?.[0] : null;
  if (running) {
    const id = running[1];
    followRun(id, { status: "running" });
    setRunStatus("running");
    const h = await api("GET", "/history/" + encodeURIComponent(id)).catch(() => null);
    const e = h?.ok ? h.data?.[id] : null;
    if (e?.loss) S.run.loss = e.loss;
    if (e?.progress) { Object.assign(S.run, { ...e.progress, lossValue: e.progress.loss }); setProgress(S.run); }
    drawLoss();
  }
}

// ---------------------------------------------------------------------------------------------------
// History
// ---------------------------------------------------------------------------------------------------

export async function loadHistory() {
  const r = await api("GET", "/history?max_items=50").catch(() => null);
  const box = $("#tab-history");
  box.replaceChildren();
  if (!r?.ok) { box.append(el("p", { class: "error-text", text: "history unavailable" })); return; }
  const entries = Object.entries(r.data || {}).sort((a, b) => (b[1].number ?? 0) - (a[1].number ?? 0));
  if (!entries.length) { box.append(el("p", { class: "muted", text: "No runs yet." })); return; }
  for (const [id, h] of entries) {
    const st = h.status?.status_str || "?";
    const msgs = h.status?.messages || [];
    const t0 = msgs.find((m) => m[0] === "execution_start")?.[1]?.timestamp;
    const t1 = msgs.find((m) => /^execution_(success|error|interrupted)$/.test(m[0]))?.[1]?.timestamp;
    const bits = [];
    if (h.progress) bits.push(`tick ${h.progress.value}/${h.progress.max}`);
    if (h.progress?.loss !== undefined && h.progress?.loss !== null) bits.push(`loss ${fmtNum(h.progress.loss)}`);
    if (t0 && t1) bits.push(fmtDuration((t1 - t0) / 1000));
    else if (h.progress?.elapsed_s !== undefined) bits.push(fmtDuration(h.progress.elapsed_s));
    const nf = h.noiseflow || {};  // noiseflow's own record; `prompt` is ComfyUI's array
    const params = Object.entries(nf.params || {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(" ");
    const item = el("div", { class: "history-item", "data-prompt-id": id },
      el("div", { class: "history-head" },
        el("span", { class: "num", text: `#${h.number ?? "?"}` }),
        el("span", { class: "name", text: nf.name || "", title: nf.path || "" }),
        el("span", { class: "pill", "data-status": st, text: st }),
        el("span", { class: "muted", text: bits.join(" · ") })),
      el("div", { class: "muted small", text: [nf.path, params, h.run_dir ? `→ ${h.run_dir}/` : ""].filter(Boolean).join("  ") }));
    if (h.error?.message) item.append(el("div", { class: "error-text small", text: (h.error.node_id ? `node "${h.error.node_id}": ` : "") + h.error.message }));
    const thumbs = el("div", { class: "thumbs" });
    const files = el("ul", { class: "files" });
    for (const [node, out] of Object.entries(h.outputs || {})) {
      for (const im of out.images || [])
        thumbs.append(el("a", { href: viewUrl(im), target: "_blank", title: `${node}: ${im.subfolder ? im.subfolder + "/" : ""}${im.filename}` },
          el("img", { src: viewUrl(im), alt: im.filename, loading: "lazy" })));
      for (const f of out.files || [])
        files.append(el("li", { text: `${node}: ${f.subfolder ? f.subfolder + "/" : ""}${f.filename}${f.kind ? ` (${f.kind})` : ""}` }));
    }
    if (thumbs.childElementCount) item.append(thumbs);
    if (files.childElementCount) item.append(files);
    box.append(item);
  }
}
