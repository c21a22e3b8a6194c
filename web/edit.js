// web/edit.js — editing the opened document in the graph: the node palette (double-click the canvas), moving
// nodes (their positions kept in the document's "layout" section, which the loader ignores), drawing,
// moving and removing wires (a wire the shape check refuses is not drawn, and the check's words are shown),
// delete, duplicate, copy and paste, subgraph instances, params, a new empty document, and undo and redo.

import { documentEdited, notice, setCheckStatus, updateTitle, validateNow } from "./check.js";
import { portY, renderGraph, wirePath } from "./draw.js";
import { S, loadDoc, preloadIncludes } from "./model.js";
import { openDocument, renderBreadcrumb, renderInspector, renderParams, select } from "./panels.js";
import { $, api, basename, dirname, el, parseDoc, plain, svg } from "./util.js";

// ---------------------------------------------------------------------------------------------------
// What can be edited
// ---------------------------------------------------------------------------------------------------

// The root document at its own level (an opened subgraph instance is read-only).
export const editable = () => !!S.root && S.levels.length === 1 && !S.levels[0].readOnly;

const NODE_ID = /^[A-Za-z_][A-Za-z0-9_\-]*$/;

// A node id not yet used by the document: base, base_2, base_3, ...
function uniqueId(doc, base) {
  base = String(base).replace(/[^A-Za-z0-9_\-]/g, "_").replace(/^[^A-Za-z_]+/, "") || "node";
  const used = (id) => id in (doc.nodes || {});
  if (!used(base)) return base;
  for (let i = 2; ; i++) if (!used(`${base}_${i}`)) return `${base}_${i}`;
}

const clone = (v) => parseDoc(JSON.stringify(v));

// Sets obj[key] = value, the key placed before `before` when it is new (documents keep a readable order).
function setKeyBefore(obj, key, value, before) {
  if (key in obj || !(before in obj)) { obj[key] = value; return; }
  const entries = Object.entries(obj);
  for (const k of Object.keys(obj)) delete obj[k];
  for (const [k, v] of entries) { if (k === before) obj[key] = value; obj[k] = v; }
}

// Rebuilds obj in place with the key `from` renamed `to`, in the same place.
function renameKey(obj, from, to) {
  const entries = Object.entries(obj);
  for (const k of Object.keys(obj)) delete obj[k];
  for (const [k, v] of entries) obj[k === from ? to : k] = v;
}

// ---------------------------------------------------------------------------------------------------
// Undo and redo: snapshots of the root document
// ---------------------------------------------------------------------------------------------------

const history_ = { undo: [], redo: [], last: null, lastKey: null, lastAt: 0 };
const UNDO_LIMIT = 200;

// A freshly opened document: no history.
export function resetHistory() {
  history_.undo = []; history_.redo = []; history_.last = S.root ? JSON.stringify(S.root.doc) : null; history_.lastKey = null;
  updateUndoButtons();
}

// After every edit (check.js's documentEdited): the state before it becomes an undo step. Typing in one
// field (the same key, less than 1.5 s apart) is one step.
export function recordEdit(key) {
  if (!S.root) return;
  const now = Date.now();
  const text = JSON.stringify(S.root.doc);
  if (text === history_.last) return;
  if (!(key && key === history_.lastKey && now - history_.lastAt < 1500)) {
    history_.undo.push(history_.last);
    if (history_.undo.length > UNDO_LIMIT) history_.undo.shift();
  }
  history_.redo = [];
  history_.last = text;
  history_.lastKey = key || null;
  history_.lastAt = now;
  updateUndoButtons();
}

function undo() { travel(history_.undo, history_.redo); }
function redo() { travel(history_.redo, history_.undo); }

async function travel(from, to) {
  if (!S.root || !from.length) return;
  to.push(history_.last);
  const text = from.pop();
  history_.last = text;
  history_.lastKey = null;
  const doc = parseDoc(text);
  S.root.doc = doc;
  S.levels.length = 1;
  Object.assign(S.levels[0], { doc, params: doc.params || {} });
  S.root.dirty = text !== JSON.stringify(S.root.original);
  if (S.selected && !doc.nodes?.[S.selected]) S.selected = null;
  S.selectedWire = null;
  updateUndoButtons();
  await preloadIncludes(doc, S.root.path, doc.params || {});
  renderBreadcrumb();
  renderGraph();
  renderInspector();
  renderParams();
  updateTitle();
  validateNow();
}

function updateUndoButtons() {
  $("#undo").disabled = !history_.undo.length;
  $("#redo").disabled = !history_.redo.length;
}

// A structural edit: recorded, redrawn, checked; the view stays where the user put it.
function structureEdited() {
  S.viewTouched = true;
  documentEdited("");
  renderGraph();
  renderInspector();
}

// ---------------------------------------------------------------------------------------------------
// Layout: {"layout": {"nodes": {ID: [x, y]}, "inputs": {NAME: [x, y]}, "outputs": {NAME: [x, y]}}}
// ---------------------------------------------------------------------------------------------------

// The positions a level is drawn at: the root document's layout section, if it has one.
export function layoutOf(level) {
  return level === S.levels[0] && level.doc.layout && typeof level.doc.layout === "object" ? level.doc.layout : null;
}

function layoutSlot(v) {
  if (v.kind === "input") return ["inputs", v.title];
  if (v.kind === "output") return ["outputs", v.title];
  return ["nodes", v.id];
}

export function layoutGet(layout, v) {
  const [section, key] = layoutSlot(v);
  const at = layout[section]?.[key];
  return Array.isArray(at) && at.length === 2 && at.every(Number.isFinite) ? at : null;
}

function layoutSet(doc, v, x, y) {
  doc.layout ||= {};
  const [section, key] = layoutSlot(v);
  doc.layout[section] ||= {};
  doc.layout[section][key] = [Math.round(x), Math.round(y)];
}

// The first edit that places a node writes where every drawn node is now, so nothing else moves.
function freezeLayout() {
  const doc = S.root.doc;
  if (!S.drawn) return;
  for (const [id, p] of S.drawn.positions) {
    const v = S.drawn.vnodes.get(id);
    if (!layoutGet(doc.layout || {}, v)) layoutSet(doc, v, p.x, p.y);
  }
}

// Client coordinates to the drawing's.
function toGraph(clientX, clientY) {
  const r = $("#graph").getBoundingClientRect();
  return { x: (clientX - r.left - S.view.x) / S.view.k, y: (clientY - r.top - S.view.y) / S.view.k };
}

// ---------------------------------------------------------------------------------------------------
// Gestures on the canvas: drag a node, drag a wire from a port, pick a wire
// ---------------------------------------------------------------------------------------------------

let gesture = null;

// pointerdown on the canvas (draw.js): true when it starts an edit gesture rather than a pan.
export function startGesture(ev) {
  if (!editable()) return false;
  const port = ev.target.closest(".port-hit");
  if (port) {
    ev.preventDefault();
    const { node, port: name, dir } = port.dataset;
    if (dir === "out") {
      gesture = { kind: "wire", from: node, fromPort: name, x: ev.clientX, y: ev.clientY };
    } else {
      // From a connected input: the wire is picked up (dropped elsewhere it moves; on nothing it goes).
      const w = S.drawn.edges.find((e) => e.to === node && e.toPort === name && !e.stub);
      if (!w) return true;
      gesture = { kind: "wire", from: w.from, fromPort: w.fromPort, lifted: { to: node, toPort: name }, x: ev.clientX, y: ev.clientY };
      document.querySelector(`#wires .wire[data-to="${CSS.escape(node)}"][data-to-port="${CSS.escape(name)}"]`)?.classList.add("lifted");
    }
    drawPendingWire(ev);
    return true;
  }
  const hit = ev.target.closest(".wire-hit");
  if (hit) {
    selectWire({ from: hit.dataset.from, fromPort: hit.dataset.fromPort, to: hit.dataset.to, toPort: hit.dataset.toPort });
    return true;
  }
  const box = ev.target.closest(".node-box[data-local-id]");
  if (box) {
    const id = box.dataset.localId;
    const p = S.drawn.positions.get(id);
    gesture = { kind: "move", id, x: ev.clientX, y: ev.clientY, x0: p.x, y0: p.y, moved: false };
    return true;
  }
  return false;
}

function onGestureMove(ev) {
  if (!gesture) return;
  if (gesture.kind === "wire") { drawPendingWire(ev); return; }
  const dx = (ev.clientX - gesture.x) / S.view.k, dy = (ev.clientY - gesture.y) / S.view.k;
  if (!gesture.moved && Math.hypot(dx, dy) * S.view.k < 3) return;
  if (!gesture.moved) { freezeLayout(); gesture.moved = true; }
  const v = S.drawn.vnodes.get(gesture.id);
  layoutSet(S.root.doc, v, gesture.x0 + dx, gesture.y0 + dy);
  if (!gesture.frame) gesture.frame = requestAnimationFrame(() => { if (gesture) gesture.frame = 0; S.viewTouched = true; renderGraph(); });
}

async function onGestureEnd(ev) {
  const g = gesture;
  gesture = null;
  if (!g) return;
  if (g.frame) cancelAnimationFrame(g.frame);
  if (g.kind === "move") {
    if (g.moved) {
      // A drag is not a click: swallow the click that may follow (none does when the box was redrawn).
      const swallow = (e) => e.stopPropagation();
      window.addEventListener("click", swallow, { capture: true, once: true });
      setTimeout(() => window.removeEventListener("click", swallow, { capture: true }), 0);
      structureEdited();
    }
    return;
  }
  $("#pending-wire")?.remove();
  const target = document.elementFromPoint(ev.clientX, ev.clientY)?.closest(".port-hit[data-dir=in]");
  if (target) {
    const to = target.dataset.node, toPort = target.dataset.port;
    if (g.lifted && g.lifted.to === to && g.lifted.toPort === toPort) { renderGraph(); return; }
    await connect(g.from, g.fromPort, to, toPort, g.lifted);
  } else if (g.lifted) {
    disconnect(g.lifted.to, g.lifted.toPort);
    structureEdited();
  }
}

function drawPendingWire(ev) {
  const v = S.drawn.vnodes.get(gesture.from);
  const p = S.drawn.positions.get(gesture.from);
  const i = Math.max(0, v.outs.findIndex((o) => o.name === gesture.fromPort));
  const a = { x: p.x + p.w, y: p.y + portY(p, i) };
  const b = toGraph(ev.clientX, ev.clientY);
  let path = $("#pending-wire");
  if (!path) $("#wires").append((path = svg("path", { id: "pending-wire", class: "wire pending" })));
  path.setAttribute("d", wirePath([a, b]));
}

// ---------------------------------------------------------------------------------------------------
// Wires
// ---------------------------------------------------------------------------------------------------

// How a document names output `port` of view node `id`: a subgraph input by its name, a node with one
// output by its id, else "id.port".
function refFor(id, port) {
  const v = S.drawn.vnodes.get(id);
  if (v.kind === "input") return v.title;
  return v.outs.length === 1 ? id : `${id}.${port}`;
}

// Where a wire into (to, toPort) is written in a document: a node's input, or a subgraph file's output.
function setInput(doc, to, toPort, ref) {
  const v = S.drawn.vnodes.get(to);
  if (v.kind === "output") {
    if (Array.isArray(doc.outputs)) return false;
    doc.outputs ||= {};
    if (ref === undefined) delete doc.outputs[v.title]; else doc.outputs[v.title] = ref;
    return true;
  }
  const node = doc.nodes[to];
  if (!node) return false;
  if (ref === undefined) {
    if (node.inputs) delete node.inputs[toPort];
    if (node.inputs && !Object.keys(node.inputs).length) delete node.inputs;
    return true;
  }
  if (!node.inputs) setKeyBefore(node, "inputs", {}, "attrs");
  node.inputs[toPort] = ref;
  return true;
}

function disconnect(to, toPort) {
  setInput(S.root.doc, to, toPort, undefined);
  if (S.selectedWire?.to === to && S.selectedWire?.toPort === toPort) S.selectedWire = null;
}

// Whether a wire from `from` into `to` closes a loop (only a state's "next" may).
function closesLoop(from, to, toPort) {
  if (S.drawn.vnodes.get(to)?.op === "state" && toPort === "next") return false;
  const seen = new Set(), stack = [from];
  while (stack.length) {
    const n = stack.pop();
    if (n === to) return true;
    if (seen.has(n)) continue;
    seen.add(n);
    for (const e of S.drawn.edges) {
      if (e.to !== n) continue;
      if (S.drawn.vnodes.get(e.to)?.op === "state" && e.toPort === "next") continue;
      stack.push(e.from);
    }
  }
  return false;
}

const SHAPE_CODES = new Set(["shape_mismatch", "shape_error"]);

// The check's shape problem on node `to` in a candidate document, one the current document does not have.
function shapeProblem(answer, to) {
  const before = new Set((S.check?.diagnostics || []).map((d) => d.text));
  return (answer?.diagnostics || []).find((d) => SHAPE_CODES.has(d.code) && (d.node === to || d.node?.startsWith(to + ".")) &&
                                                 !before.has(d.text));
}

// The nodes the candidate's `to` depends on, with `to`: a document the check can infer shapes of even
// while other parts of the pipeline are unfinished (the check stops before shapes on any missing input).
function upstreamDocument(doc, to) {
  const keep = new Set(), stack = [to];
  while (stack.length) {
    const id = stack.pop();
    if (keep.has(id) || !doc.nodes[id]) continue;
    keep.add(id);
    for (const ref of Object.values(doc.nodes[id].inputs || {})) {
      const r = String(plain(ref));
      if (doc.nodes[r]) stack.push(r);
      else if (r.includes(".")) stack.push(r.slice(0, r.lastIndexOf(".")));
    }
  }
  const probe = { ...doc, nodes: Object.fromEntries(Object.entries(doc.nodes).filter(([id]) => keep.has(id))) };
  delete probe.outputs;
  return probe;
}

// Why the shape check refuses the wire, or null. The whole candidate document is checked; when that stops
// before shapes (an unfinished pipeline), the part of it upstream of the wire's end is.
async function wireRefusal(candidate, to) {
  const check = (doc) => api("POST", "/check", { path: S.root.path, pipeline: doc }).then((r) => (r.ok ? r.data : null), () => null);
  const whole = await check(candidate);
  let d = shapeProblem(whole, to);
  if (!d && whole && !whole.ok && candidate.nodes[to]) d = shapeProblem(await check(upstreamDocument(candidate, to)), to);
  return d || null;
}

// Draws a wire from output (from, fromPort) into input (to, toPort), unless it closes a loop or the
// shape check says the shapes cannot meet; `lifted` is the wire it moves.
async function connect(from, fromPort, to, toPort, lifted = null) {
  if (from === to) { refuse("a node cannot feed itself"); renderGraph(); return false; }
  if (closesLoop(from, to, toPort)) {
    refuse(`wire refused: ${from} → ${to}.${toPort} closes a loop (only a state node's "next" input may)`);
    renderGraph();
    return false;
  }
  const ref = refFor(from, fromPort);
  const candidate = clone(S.root.doc);
  if (lifted) setInput(candidate, lifted.to, lifted.toPort, undefined);
  if (!setInput(candidate, to, toPort, ref)) { renderGraph(); return false; }
  setCheckStatus("checking the wire…", "");
  const d = await wireRefusal(candidate, to);
  if (d) {
    refuse(`wire refused: ${d.text}`);
    renderGraph();
    validateNow();
    return false;
  }
  if (lifted) setInput(S.root.doc, lifted.to, lifted.toPort, undefined);
  setInput(S.root.doc, to, toPort, ref);
  structureEdited();
  return true;
}

function refuse(text) {
  notice(text, true);
  $("#notice").dataset.kind = "refused";
}

function selectWire(w) {
  S.selectedWire = w;
  select(null);
  S.selectedWire = w;
  for (const p of document.querySelectorAll("#wires .wire"))
    p.classList.toggle("picked", p.dataset.to === w.to && p.dataset.toPort === w.toPort);
}

// ---------------------------------------------------------------------------------------------------
// Nodes: add, delete, duplicate, copy, paste, rename
// ---------------------------------------------------------------------------------------------------

function addNode(op, at) {
  const doc = S.root.doc;
  doc.nodes ||= {};
  const id = uniqueId(doc, op.includes(".") ? op.slice(op.lastIndexOf(".") + 1) : op);
  freezeLayout();
  doc.nodes[id] = { op };
  layoutSet(doc, { kind: "op", id }, at.x, at.y);
  structureEdited();
  select(id);
  return id;
}

// An instance of a subgraph file: an include alias for it (reused when the document has one), and a node.
async function addSubgraph(file, at) {
  const doc = S.root.doc;
  const rel = relativePath(dirname(S.root.path), file);
  const sub = await loadDoc(file);
  if (!sub) { notice(`cannot open ${file}`, true); return null; }
  await preloadIncludes(sub, file, sub.params || {});
  let alias = Object.entries(doc.include || {}).find(([, p]) => plain(p) === rel)?.[0];
  if (!alias) {
    const base = basename(file).replace(/\.json$/, "").replace(/[^A-Za-z0-9_]/g, "_");
    alias = base;
    for (let i = 2; doc.include && alias in doc.include; i++) alias = `${base}_${i}`;
    if (!doc.include) setKeyBefore(doc, "include", {}, "nodes");
    doc.include[alias] = rel;
  }
  doc.nodes ||= {};
  const id = uniqueId(doc, alias === "net" ? "net" : alias + "_net");
  freezeLayout();
  doc.nodes[id] = { op: alias };
  layoutSet(doc, { kind: "subgraph", id }, at.x, at.y);
  structureEdited();
  select(id);
  return id;
}

function relativePath(fromDir, to) {
  const a = fromDir ? fromDir.split("/") : [], b = to.split("/");
  let i = 0;
  while (i < a.length && i < b.length - 1 && a[i] === b[i]) i++;
  return [...a.slice(i).map(() => ".."), ...b.slice(i)].join("/");
}

// Removes node `id` and every wire into or out of it.
export function deleteNode(id) {
  const doc = S.root.doc;
  if (!doc.nodes?.[id]) return;
  const alias = plain(doc.nodes[id].op);
  delete doc.nodes[id];
  // An include only this node used goes with it.
  if (doc.include && alias in doc.include && !Object.values(doc.nodes).some((n) => plain(n.op) === alias)) {
    delete doc.include[alias];
    if (!Object.keys(doc.include).length) delete doc.include;
  }
  const from = (r) => { r = String(plain(r)); return r === id || r.startsWith(id + "."); };
  for (const n of Object.values(doc.nodes)) {
    for (const [port, r] of Object.entries(n.inputs || {})) if (from(r)) delete n.inputs[port];
    if (n.inputs && !Object.keys(n.inputs).length) delete n.inputs;
  }
  if (doc.outputs && !Array.isArray(doc.outputs))
    for (const [name, r] of Object.entries(doc.outputs)) if (from(r)) delete doc.outputs[name];
  if (doc.layout?.nodes) delete doc.layout.nodes[id];
  if (S.selected === id) S.selected = null;
  structureEdited();
}

function copyNode(id) {
  const node = S.root.doc.nodes?.[id];
  if (!node) return;
  const p = S.drawn.positions.get(id);
  S.clipboard = { id, node: clone(node), at: p ? { x: p.x, y: p.y } : { x: 0, y: 0 } };
  notice(`copied ${id}`);
}

// A copy of the clipboard's node (its inputs still wired to the same sources), beside the original.
function paste() {
  if (!S.clipboard || !editable()) return null;
  const doc = S.root.doc;
  doc.nodes ||= {};
  const id = uniqueId(doc, S.clipboard.id.replace(/_\d+$/, ""));
  freezeLayout();
  S.clipboard.at = { x: S.clipboard.at.x + 30, y: S.clipboard.at.y + 30 };
  doc.nodes[id] = clone(S.clipboard.node);
  layoutSet(doc, { kind: "op", id }, S.clipboard.at.x, S.clipboard.at.y);
  structureEdited();
  select(id);
  return id;
}

export function duplicateNode(id) {
  const saved = S.clipboard;
  copyNode(id);
  const made = paste();
  S.clipboard = saved;
  return made;
}

// Renames node `from` to `to`, and every reference to it; an error text when the name cannot be used.
export function renameNode(from, to) {
  const doc = S.root.doc;
  if (to === from || !doc.nodes?.[from]) return null;
  if (!NODE_ID.test(to)) return "an id is letters, digits, _ and -, not starting with a digit";
  if (doc.nodes[to]) return `"${to}" is taken`;
  renameKey(doc.nodes, from, to);
  const re = (r) => { const s = String(plain(r)); return s === from ? to : s.startsWith(from + ".") ? to + s.slice(from.length) : r; };
  for (const n of Object.values(doc.nodes)) for (const [port, r] of Object.entries(n.inputs || {})) n.inputs[port] = re(r);
  if (doc.outputs && !Array.isArray(doc.outputs)) for (const [k, r] of Object.entries(doc.outputs)) doc.outputs[k] = re(r);
  if (doc.layout?.nodes?.[from]) renameKey(doc.layout.nodes, from, to);
  S.selected = to;
  structureEdited();
  return null;
}

// ---------------------------------------------------------------------------------------------------
// Params: add, rename, delete
// ---------------------------------------------------------------------------------------------------

const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function addParam(name, value) {
  const doc = S.root.doc;
  if (!PARAM_NAME.test(name)) return "a param name is letters, digits and _, not starting with a digit";
  if (doc.params && name in doc.params) return `"${name}" exists`;
  if (!doc.params) setKeyBefore(doc, "params", {}, doc.include ? "include" : "nodes");
  doc.params[name] = value;
  S.levels[0].params = doc.params;
  documentEdited("");
  renderParams();
  renderGraph();
  return null;
}

// Renames a param and every "$name" and "${name}" that uses it.
export function renameParam(from, to) {
  const doc = S.root.doc;
  if (from === to) return null;
  if (!PARAM_NAME.test(to)) return "a param name is letters, digits and _, not starting with a digit";
  if (to in doc.params) return `"${to}" exists`;
  renameKey(doc.params, from, to);
  const walk = (v) => {
    if (typeof v === "string") return v === "$" + from ? "$" + to : v.split("${" + from + "}").join("${" + to + "}");
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === "object" && !JSON.isRawJSON?.(v)) { for (const k of Object.keys(v)) v[k] = walk(v[k]); return v; }
    return v;
  };
  for (const key of ["params", "include", "nodes", "run"]) if (doc[key]) walk(doc[key]);
  if (S.root.original.params && from in S.root.original.params) renameKey(S.root.original.params, from, to);
  documentEdited("");
  renderParams();
  renderGraph();
  renderInspector();
  return null;
}

export function deleteParam(name) {
  delete S.root.doc.params[name];
  documentEdited("");
  renderParams();
  renderGraph();
  renderInspector();
}

// ---------------------------------------------------------------------------------------------------
// The palette: every node type of GET /object_info (plugins included) and the subgraph files
// ---------------------------------------------------------------------------------------------------

function paletteEntries() {
  const out = [];
  for (const [op, info] of Object.entries(S.objectInfo))
    out.push({ kind: "op", key: op, label: op, detail: info.description || "", category: info.category || op.split(".")[0] });
  for (const f of S.files) {
    if (f === S.root?.path || !/(^|\/)nets\//.test(f)) continue;
    out.push({ kind: "subgraph", key: f, label: f.replace(/^pipelines\//, ""), detail: "subgraph: an instance of this net file", category: "subgraph" });
  }
  return out;
}

function searchPalette(query) {
  const terms = query.toLowerCase().split(/\s+/).filter(Boolean);
  const scored = [];
  for (const e of paletteEntries()) {
    const name = e.label.toLowerCase(), hay = `${name} ${e.category} ${e.detail.toLowerCase()}`;
    if (!terms.every((t) => hay.includes(t))) continue;
    let score = 0;
    // The name's last part: an op's after its family ("linear" of nn.linear), a net file's base name.
    const short = e.kind === "op" ? name.slice(name.lastIndexOf(".") + 1) : basename(name).replace(/\.json$/, "");
    for (const t of terms) {
      score += short === t ? 0 : short.startsWith(t) ? 1 : name.includes(t) ? 2 : 4;
    }
    scored.push([score, e]);
  }
  scored.sort((a, b) => a[0] - b[0] || a[1].label.localeCompare(b[1].label));
  return scored.map((s) => s[1]);
}

let paletteOpenings = 0;

// Opens the palette at a point of the canvas (client coordinates); the node it adds goes there.
function openPalette(clientX, clientY) {
  if (!editable()) { notice("an included file is read-only here: open it from the picker to edit it", true); return; }
  const pal = $("#palette"), area = $("#canvas").getBoundingClientRect();
  const at = toGraph(clientX, clientY);
  pal.hidden = false;
  pal.style.left = `${Math.min(clientX - area.left, area.width - 380)}px`;
  pal.style.top = `${Math.min(clientY - area.top, area.height - 360)}px`;
  const input = $("#palette-search");
  input.value = "";
  let hits = [], active = 0;
  const choose = async (e) => {
    closePalette();
    if (e.kind === "op") addNode(e.key, at);
    else await addSubgraph(e.key, at);
  };
  const draw = () => {
    hits = searchPalette(input.value);
    active = Math.min(active, Math.max(0, hits.length - 1));
    const list = $("#palette-list");
    list.replaceChildren(...hits.slice(0, 80).map((e, i) =>
      el("li", { class: "pal-item" + (i === active ? " active" : ""), "data-key": e.key, "data-kind": e.kind,
                 onmousedown: (ev) => { ev.preventDefault(); choose(e); } },
        el("span", { class: "pal-name" }, el("span", { class: "pal-cat cat-" + e.category.split(".")[0], text: e.kind === "subgraph" ? "net" : e.category }), e.label),
        el("span", { class: "pal-doc", text: e.detail }))));
    if (!hits.length) list.append(el("li", { class: "muted pal-none", text: "no node type matches" }));
    list.querySelector(".active")?.scrollIntoView({ block: "nearest" });
  };
  input.oninput = () => { active = 0; draw(); };
  input.onkeydown = (ev) => {
    if (ev.key === "ArrowDown") { active = Math.min(active + 1, hits.length - 1); draw(); ev.preventDefault(); }
    else if (ev.key === "ArrowUp") { active = Math.max(active - 1, 0); draw(); ev.preventDefault(); }
    else if (ev.key === "Enter") { if (hits[active]) choose(hits[active]); ev.preventDefault(); }
    else if (ev.key === "Escape") { closePalette(); ev.preventDefault(); }
  };
  const opened = ++paletteOpenings;   // a blur closes this opening of the palette, not a later one
  input.onblur = () => setTimeout(() => { if (opened === paletteOpenings) closePalette(); }, 150);
  draw();
  input.focus();
}

function closePalette() {
  $("#palette").hidden = true;
  if (document.activeElement === $("#palette-search")) $("#palette-search").blur();
}

// ---------------------------------------------------------------------------------------------------
// A new, empty document
// ---------------------------------------------------------------------------------------------------

async function newDocument() {
  if (S.root?.dirty && !confirm(`Discard the unsaved edits of ${S.root.path}?`)) return;
  let path = "pipelines/untitled.json";
  for (let i = 2; S.files.includes(path); i++) path = `pipelines/untitled_${i}.json`;
  const text = JSON.stringify({ noiseflow: 1, name: basename(path).replace(/\.json$/, ""), params: {}, nodes: {}, run: { ticks: 100, seed: 0 } });
  S.root = null;   // nothing to discard any more
  await openDocument(path, text);
}

// ---------------------------------------------------------------------------------------------------
// Keys and buttons
// ---------------------------------------------------------------------------------------------------

export function setupEditing() {
  window.addEventListener("pointermove", onGestureMove);
  window.addEventListener("pointerup", onGestureEnd);
  const area = $("#graph");
  area.addEventListener("dblclick", (ev) => {
    if (ev.target.closest(".node-box, .port-hit")) return;
    openPalette(ev.clientX, ev.clientY);
  });
  $("#add-node").onclick = () => {
    const r = area.getBoundingClientRect();
    openPalette(r.left + r.width / 3, r.top + r.height / 3);
  };
  $("#undo").onclick = undo;
  $("#redo").onclick = redo;
  $("#new").onclick = newDocument;
  window.addEventListener("keydown", (ev) => {
    if (ev.target.closest("input, select, textarea, dialog")) return;
    const mod = ev.ctrlKey || ev.metaKey, key = ev.key.toLowerCase();
    if (mod && key === "z") { ev.preventDefault(); if (ev.shiftKey) redo(); else undo(); return; }
    if (mod && key === "y") { ev.preventDefault(); redo(); return; }
    if (!editable()) return;
    const id = S.selected && S.root.doc.nodes?.[S.selected] ? S.selected : null;
    if (ev.key === "Delete" || ev.key === "Backspace") {
      if (id) { ev.preventDefault(); deleteNode(id); }
      else if (S.selectedWire) { ev.preventDefault(); disconnect(S.selectedWire.to, S.selectedWire.toPort); structureEdited(); }
    } else if (mod && key === "c" && id) { copyNode(id); }
    else if (mod && key === "v") { ev.preventDefault(); paste(); }
    else if (mod && key === "d" && id) { ev.preventDefault(); duplicateNode(id); }
  });
  updateUndoButtons();
}
