// noiseflow studio: the browser front end of `noiseflow serve` (docs/API.md).
//
// One page: a pipeline picker, the graph of the opened pipeline drawn as SVG (laid out with dagre),
// subgraph instances opened in place with a breadcrumb, an inspector and a params panel that edit the
// in-memory document, live validation through POST /check, Save, and a run panel fed by the WebSocket.
import dagre from "/node_modules/@dagrejs/dagre/dist/dagre.esm.js";

// ---------------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------------

const $ = (sel) => document.querySelector(sel);
const SVG_NS = "http://www.w3.org/2000/svg";

// el("div", {class: "x", onclick: f}, child, "text", ...) for HTML; svg(...) the same for SVG.
function build(make, tag, attrs, children) {
  const e = make(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "text") e.textContent = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else if (k === "value" || k === "checked" || k === "disabled" || k === "readOnly") e[k] = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false)
    e.append(typeof c === "string" || typeof c === "number" ? String(c) : c);
  return e;
}
const el = (tag, attrs, ...ch) => build((t) => document.createElement(t), tag, attrs, ch);
const svg = (tag, attrs, ...ch) => build((t) => document.createElementNS(SVG_NS, t), tag, attrs, ch);

async function api(method, url, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(url, init);
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { error: { type: "bad_response", message: text } }; }
  return { status: res.status, ok: res.ok, data };
}

const errorMessage = (r) => r.data?.error?.message || r.data?.error?.type || `HTTP ${r.status}`;

function dirname(p) { const i = p.lastIndexOf("/"); return i < 0 ? "" : p.slice(0, i); }
function joinPath(dir, rel) {
  const out = [];
  for (const s of (dir ? dir.split("/") : []).concat(String(rel).split("/"))) {
    if (s === "" || s === ".") continue;
    if (s === "..") out.pop(); else out.push(s);
  }
  return out.join("/");
}
const basename = (p) => p.slice(p.lastIndexOf("/") + 1);

function fmtNum(x, digits = 4) {
  if (x === null || x === undefined || !Number.isFinite(x)) return "–";
  if (x !== 0 && (Math.abs(x) < 1e-3 || Math.abs(x) >= 1e5)) return x.toExponential(2);
  return String(+x.toPrecision(digits));
}
function fmtDuration(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return "–";
  s = Math.max(0, Math.round(s));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}
const fmtShape = (shape) => (Array.isArray(shape) ? shape.join("×") : "");

// ---------------------------------------------------------------------------------------------------
// JSON documents that keep "5.0" a float
//
// nlohmann (the server) tells 5 from 5.0; JSON.parse does not. Integer-valued floats of an opened file
// are kept as JSON.rawJSON("5.0") objects so that Save writes them back as floats; plain() reads them.
// ---------------------------------------------------------------------------------------------------

const hasRawJSON = typeof JSON.rawJSON === "function";
const isRaw = (v) => hasRawJSON && v !== null && typeof v === "object" && JSON.isRawJSON(v);
const plain = (v) => (isRaw(v) ? JSON.parse(v.rawJSON) : v);

function parseDoc(text) {
  if (!hasRawJSON) return JSON.parse(text);
  return JSON.parse(text, (key, value, context) =>
    typeof value === "number" && Number.isInteger(value) && context && /[.eE]/.test(context.source)
      ? JSON.rawJSON(context.source) : value);
}
// A number that was a float in the document stays one when edited to a whole value.
const asFloat = (x) => (hasRawJSON && Number.isInteger(x) ? JSON.rawJSON(x.toFixed(1)) : x);
const isFloatValue = (v) => isRaw(v) || (typeof v === "number" && !Number.isInteger(v));

// ---------------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------------

const S = {
  objectInfo: {},       // op -> /object_info entry
  files: [],            // every pipeline file
  docs: new Map(),      // path -> parsed document (included files; the root document is root.doc)
  missing: new Set(),   // include paths that could not be loaded
  root: null,           // {path, doc, original, dirty}
  levels: [],           // breadcrumb: {path, doc, prefix, params, label, readOnly, view: {x, y, k}}
  check: null,          // the last POST /check answer (or a refused /prompt's diagnostics)
  shapes: new Map(),    // qualified node id -> {output name -> shape}, from the check's graph
  graphNodes: new Map(),// qualified node id -> node of the check's graph
  selected: null,       // qualified id of the selected node
  view: { x: 0, y: 0, k: 1 },
  viewTouched: false,   // panned or zoomed by the user since the last fit
  drawn: null,          // the current level's drawing: {vnodes, layout}
  clientId: "studio-" + Math.random().toString(36).slice(2, 10),
  run: null,            // {promptId, status, max, value, loss: [[tick, loss]], ...} of the followed run
  lastPreview: null,    // the last `preview` message (announces the next binary frame)
  previewUrl: null,
};

const currentLevel = () => S.levels[S.levels.length - 1];

// ---------------------------------------------------------------------------------------------------
// Params and references
// ---------------------------------------------------------------------------------------------------

const PARAM_REF = /^\$([A-Za-z_][A-Za-z0-9_]*)$/;
const isRef = (v) => typeof v === "string" && (PARAM_REF.test(v) || v.includes("${"));

// A document value with "$name" / "${name}" resolved against params (which may refer to each other).
function resolveValue(v, params, depth = 0) {
  v = plain(v);
  if (typeof v !== "string" || depth > 16) return v;
  const m = PARAM_REF.exec(v);
  if (m) return m[1] in params ? resolveValue(params[m[1]], params, depth + 1) : undefined;
  if (v.includes("${"))
    return v.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (all, n) =>
      n in params ? String(resolveValue(params[n], params, depth + 1)) : all);
  return v;
}

// The params in force inside an instance: the subgraph file's defaults, overridden by the instance's
// attrs (resolved in the including level).
function instanceParams(subDoc, instanceNode, parentParams) {
  const params = { ...(subDoc.params || {}) };
  for (const [k, v] of Object.entries(instanceNode.attrs || {})) {
    const r = resolveValue(v, parentParams);
    if (r !== undefined) params[k] = r;
  }
  return params;
}

function includePaths(doc, path, params) {
  const out = {};
  for (const [alias, rel] of Object.entries(doc.include || {})) {
    const r = resolveValue(rel, params);
    if (typeof r === "string") out[alias] = joinPath(dirname(path), r);
  }
  return out;
}

// Declared inputs and outputs of a subgraph file ("inputs": [names] or {name: {...}}).
const subInputs = (doc) => (Array.isArray(doc.inputs) ? doc.inputs : Object.keys(doc.inputs || {}));
const subOutputs = (doc) => (Array.isArray(doc.outputs) ? doc.outputs : Object.keys(doc.outputs || {}));
function defaultOutput(names) {
  if (names.includes("out")) return "out";
  return names[0];
}

async function loadDoc(path) {
  if (S.docs.has(path)) return S.docs.get(path);
  const r = await fetch("/file?path=" + encodeURIComponent(path));
  if (!r.ok) { S.missing.add(path); return null; }
  const doc = parseDoc(await r.text());
  S.docs.set(path, doc);
  S.missing.delete(path);
  return doc;
}

// Loads every file a document includes, recursively (instances' attrs may pick other files: those are
// loaded when opened).
async function preloadIncludes(doc, path, params, seen = new Set()) {
  if (seen.has(path)) return;
  seen.add(path);
  for (const p of Object.values(includePaths(doc, path, params))) {
    const sub = await loadDoc(p);
    if (sub) await preloadIncludes(sub, p, sub.params || {}, seen);
  }
}

// ---------------------------------------------------------------------------------------------------
// Node types
// ---------------------------------------------------------------------------------------------------

// Attribute types: docs/API.md's names (int, float, ...) or the schema's (integer, number, ...).
const TYPE_NAMES = { integer: "int", number: "float", boolean: "bool", "list of integers": "int_list",
                     "list of numbers": "float_list", "list of strings": "string_list" };
const attrType = (t) => TYPE_NAMES[t] || t || "any";

function opInfo(op) {
  const info = S.objectInfo[op];
  if (!info) return null;
  const ins = [];
  const order = info.input_order || {};
  for (const kind of ["required", "optional"]) {
    const names = order[kind] || Object.keys(info.input?.[kind] || {});
    for (const name of names) {
      const spec = info.input?.[kind]?.[name];
      ins.push({ name, optional: kind === "optional", doc: spec?.[1]?.tooltip || "" });
    }
  }
  const outs = (info.output_name || []).map((name, i) => ({ name, doc: info.output_tooltips?.[i] || "" }));
  const attrs = (info.attrs || []).map((a) => ({ ...a, type: attrType(a.type) }));
  return { doc: info.description || "", ins, outs, attrs, sink: !!info.output_node };
}

// ---------------------------------------------------------------------------------------------------
// The drawing model of one level: view nodes with ports, and wires between them
// ---------------------------------------------------------------------------------------------------

const IN_PREFIX = "\u0001in:", OUT_PREFIX = "\u0001out:";

function categoryOf(op) { return op && op.includes(".") ? op.split(".")[0] : "other"; }

function buildView(level) {
  const { doc, prefix, params } = level;
  const includes = includePaths(doc, level.path, params);
  const vnodes = new Map();

  // Pseudo nodes for a subgraph file's declared inputs and outputs.
  const inputs = subInputs(doc);
  for (const name of inputs)
    vnodes.set(IN_PREFIX + name, { id: IN_PREFIX + name, kind: "input", title: name, subtitle: "subgraph input",
      ins: [], outs: [{ name }], flags: [] });

  for (const [id, node] of Object.entries(doc.nodes || {})) {
    const op = resolveValue(node.op, params);
    const v = { id, qid: prefix + id, node, op: String(op ?? node.op), title: id, ins: [], outs: [], flags: [] };
    const cond = node.if;
    if (cond !== undefined) {
      const on = resolveValue(cond, params);
      v.disabled = on === false;
      v.flags.push(`if ${plain(cond)}${v.disabled ? " (off)" : ""}`);
    }
    if (node.every !== undefined) v.flags.push(`every ${plain(node.every)}`);
    if (node.at_end) v.flags.push("at end");
    const nodeInputs = node.inputs || {};
    if (includes[op] !== undefined || (doc.include && op in doc.include)) {
      v.kind = "subgraph";
      v.includePath = includes[op];
      const sub = S.docs.get(v.includePath);
      v.subtitle = "subgraph: " + (doc.include[op] ?? v.includePath);
      if (sub) {
        v.ins = subInputs(sub).map((name) => ({ name, optional: false }));
        v.outs = subOutputs(sub).map((name) => ({ name }));
      } else {
        v.missing = true;
        v.ins = Object.keys(nodeInputs).map((name) => ({ name }));
        v.outs = [{ name: "out" }];
      }
    } else {
      const info = opInfo(v.op);
      v.kind = info ? "op" : "unknown";
      v.subtitle = v.op;
      v.info = info;
      if (info) {
        v.ins = info.ins.map((p) => ({ ...p }));
        v.outs = info.outs.map((p) => ({ ...p }));
        if (info.sink) v.sink = true;
      } else {
        v.outs = [{ name: "?" }];
      }
    }
    // Inputs the document names that the type does not have (shown, flagged by the check).
    for (const name of Object.keys(nodeInputs))
      if (!v.ins.find((p) => p.name === name)) v.ins.push({ name, extra: true });
    for (const p of v.ins) if (nodeInputs[p.name] !== undefined) p.ref = nodeInputs[p.name];
    v.category = v.kind === "subgraph" ? "subgraph" : categoryOf(v.op);
    vnodes.set(id, v);
  }

  for (const name of subOutputs(doc)) {
    const ref = Array.isArray(doc.outputs) ? name : doc.outputs[name];
    vnodes.set(OUT_PREFIX + name, { id: OUT_PREFIX + name, kind: "output", title: name, subtitle: "subgraph output",
      ins: [{ name, ref }], outs: [], flags: [] });
  }

  // Wires: every input reference resolved to (node, output).
  const edges = [];
  for (const v of vnodes.values()) {
    for (const p of v.ins) {
      if (p.ref === undefined) continue;
      const src = resolveRef(p.ref, vnodes, inputs, params);
      if (src) edges.push({ from: src.node, fromPort: src.port, to: v.id, toPort: p.name });
      else p.dangling = true;
    }
  }
  return { vnodes, edges };
}

// "node" (its first output, or an instance's "out"), "node.output", or a subgraph input name.
function resolveRef(ref, vnodes, inputs, params) {
  let r = resolveValue(ref, params);
  if (typeof r !== "string") return null;
  const first = (id) => {
    const v = vnodes.get(id);
    return v.kind === "subgraph" ? defaultOutput(v.outs.map((o) => o.name)) : v.outs[0]?.name;
  };
  if (vnodes.has(r) && !r.startsWith("\u0001")) return { node: r, port: first(r) };
  if (inputs.includes(r)) return { node: IN_PREFIX + r, port: r };
  const dot = r.lastIndexOf(".");
  if (dot > 0) {
    const head = r.slice(0, dot), tail = r.slice(dot + 1);
    if (vnodes.has(head)) return { node: head, port: tail };
  }
  return null;
}

// ---------------------------------------------------------------------------------------------------
// Shapes from the check's graph
// ---------------------------------------------------------------------------------------------------

function indexGraph(graph) {
  S.shapes = new Map();
  S.graphNodes = new Map();
  for (const n of graph?.nodes || []) {
    S.graphNodes.set(n.id, n);
    const outs = {};
    for (const o of n.outputs || []) outs[o.name] = o.shape;
    S.shapes.set(n.id, outs);
  }
}

// Shape of output `port` of the node `id` of a document drawn with qualified prefix `prefix`; an
// instance's output is followed into its subgraph file.
function outputShape(doc, path, params, prefix, id, port, depth = 0) {
  if (depth > 16) return undefined;
  const qid = prefix + id;
  if (S.shapes.has(qid)) {
    const outs = S.shapes.get(qid);
    return port !== undefined && port in outs ? outs[port] : Object.values(outs)[0];
  }
  const node = doc.nodes?.[id];
  if (!node) return undefined;
  const includes = includePaths(doc, path, params);
  const op = resolveValue(node.op, params);
  const subPath = includes[op];
  const sub = subPath && S.docs.get(subPath);
  if (!sub) return undefined;
  const names = subOutputs(sub);
  const name = port ?? defaultOutput(names);
  const target = Array.isArray(sub.outputs) ? name : sub.outputs?.[name];
  if (typeof target !== "string") return undefined;
  const subParams = instanceParams(sub, node, params);
  const [tid, tport] = splitRef(sub, target);
  return outputShape(sub, subPath, subParams, qid + ".", tid, tport, depth + 1);
}

function splitRef(doc, ref) {
  if (doc.nodes?.[ref]) return [ref, undefined];
  const dot = ref.lastIndexOf(".");
  return dot > 0 ? [ref.slice(0, dot), ref.slice(dot + 1)] : [ref, undefined];
}

// The shape at the end of a wire of the current level.
function wireShape(level, edge, vnodes) {
  const from = vnodes.get(edge.from);
  if (from.kind === "input") {
    // A subgraph input: the shape of what feeds a consumer of it in the expanded graph.
    for (const v of vnodes.values()) {
      if (v.kind !== "op") continue;
      const p = v.ins.find((q) => q.ref === from.title);
      const g = p && S.graphNodes.get(v.qid);
      const src = g?.inputs?.[p.name];
      if (src) {
        const dot = src.lastIndexOf(".");
        const outs = S.shapes.get(src.slice(0, dot));
        if (outs && src.slice(dot + 1) in outs) return outs[src.slice(dot + 1)];
      }
    }
    return undefined;
  }
  return outputShape(level.doc, level.path, level.params, level.prefix, edge.from, edge.fromPort);
}

// ---------------------------------------------------------------------------------------------------
// Graph drawing
// ---------------------------------------------------------------------------------------------------

const FONT = getComputedStyle(document.documentElement).getPropertyValue("--font").trim() || "sans-serif";
const measureCtx = document.createElement("canvas").getContext("2d");
function textWidth(text, size, weight = 400) {
  measureCtx.font = `${weight} ${size}px ${FONT}`;
  return measureCtx.measureText(text).width;
}

const ROW = 20, PAD = 12;
const FANOUT_STUB = 6;   // an output with this many consumers is named at their ports rather than wired

// Box geometry of a view node: width, height and where its rows start.
// Text sizes of a node box (px), as in studio.css.
const F = { id: 13.5, op: 11.5, flag: 11, port: 12, shape: 10.5 };

function measureNode(v, shapes) {
  let head = 8 + 17;                            // id line
  if (v.subtitle) head += 15;                   // op / subgraph line
  head += 14 * v.flags.length;                  // if / every / at end, one a line
  head += 6;
  const rows = Math.max(v.ins.length, v.outs.length);
  let w = Math.max(textWidth(v.title, F.id, 700) + (v.kind === "subgraph" ? 58 : 0),   // the "open" button
                   v.subtitle ? textWidth(v.subtitle, F.op) : 0,
                   ...v.flags.map((f) => textWidth(f, F.flag))) + 2 * PAD;
  for (let i = 0; i < rows; i++) {
    const p = v.ins[i];
    const inW = p ? textWidth(p.name, F.port) + (p.stub ? textWidth("◂ " + p.stub, F.shape) + 6 : 0) : 0;
    const o = v.outs[i];
    const outW = o ? textWidth(o.name, F.port) + (shapes[o.name] ? textWidth(fmtShape(shapes[o.name]), F.shape) + 6 : 0) +
                     (o.uses ? textWidth(`→ ${o.uses} uses`, F.shape) + 6 : 0) : 0;
    w = Math.max(w, inW + outW + 2 * PAD + 20);
  }
  w = Math.max(w, v.kind === "input" || v.kind === "output" ? 100 : 130);
  const h = head + rows * ROW + (rows ? 6 : 0);
  return { w: Math.ceil(w), h, head };
}

const portY = (geo, i) => geo.head + 10 + i * ROW;

function renderGraph({ fit = false } = {}) {
  const level = currentLevel();
  if (!level) return;
  const { vnodes, edges } = buildView(level);

  // Shapes of the connected outputs (from the check's graph).
  const shapes = new Map();
  for (const e of edges) {
    const s = wireShape(level, e, vnodes);
    if (s) (shapes.get(e.from) || shapes.set(e.from, {}).get(e.from))[e.fromPort] = s;
  }

  // An output feeding many nodes (a net's time embedding) is not wired: each consumer's port names it
  // instead, and the output says how many use it. Long wires to all of them would cover the drawing.
  const fanout = new Map();
  for (const e of edges) fanout.set(e.from + "\u0000" + e.fromPort, (fanout.get(e.from + "\u0000" + e.fromPort) || 0) + 1);
  for (const e of edges) {
    const n = fanout.get(e.from + "\u0000" + e.fromPort);
    if (n < FANOUT_STUB) continue;
    e.stub = true;
    const src = vnodes.get(e.from);
    const port = vnodes.get(e.to).ins.find((p) => p.name === e.toPort);
    port.stub = src.outs.length > 1 ? `${src.title}.${e.fromPort}` : src.title;
    const out = src.outs.find((o) => o.name === e.fromPort);
    if (out) out.uses = n;
  }

  const g = new dagre.graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: "LR", nodesep: 20, ranksep: 44, edgesep: 10, marginx: 20, marginy: 20 });
  g.setDefaultEdgeLabel(() => ({}));
  const geos = new Map();
  for (const v of vnodes.values()) {
    const geo = measureNode(v, shapes.get(v.id) || {});
    geos.set(v.id, geo);
    g.setNode(v.id, { width: geo.w, height: geo.h });
  }
  // A state's `next` closes a loop over ticks: left out of the layout, it is drawn as a wire back.
  const feedback = (e) => vnodes.get(e.to).op === "state" && e.toPort === "next";
  edges.forEach((e, i) => { if (!e.stub && !feedback(e)) g.setEdge(e.from, e.to, {}, "e" + i); });
  dagre.layout(g);

  const wires = $("#wires"), nodes = $("#nodes");
  wires.replaceChildren();
  nodes.replaceChildren();

  const pos = (id) => { const n = g.node(id), geo = geos.get(id); return { x: n.x - geo.w / 2, y: n.y - geo.h / 2, ...geo }; };

  let backCount = 0, loopY = -Infinity, loopX = -Infinity;
  edges.forEach((e, i) => {
    if (e.stub) return;
    const a = pos(e.from), b = pos(e.to);
    const va = vnodes.get(e.from), vb = vnodes.get(e.to);
    let oi = va.outs.findIndex((o) => o.name === e.fromPort);
    const bad = oi < 0;
    if (oi < 0) oi = 0;
    const ii = vb.ins.findIndex((p) => p.name === e.toPort);
    const p0 = { x: a.x + a.w, y: a.y + portY(a, oi) };
    const p1 = { x: b.x, y: b.y + portY(b, ii) };
    let path, back = false;
    if (p1.x < p0.x + 10) {
      // A wire back to an earlier node (a state's next value): a loop under the nodes between them.
      back = true;
      let bottom = Math.max(a.y + a.h, b.y + b.h);
      for (const id of vnodes.keys()) {
        const q = pos(id);
        if (q.x < p0.x + 18 && q.x + q.w > p1.x - 18 && q.y < bottom + 40) bottom = Math.max(bottom, q.y + q.h);
      }
      const y = bottom + 16 + 8 * (backCount++ % 4);
      loopY = Math.max(loopY, y);
      loopX = Math.max(loopX, p0.x + 18);
      path = roundedPath([p0, { x: p0.x + 18, y: p0.y }, { x: p0.x + 18, y }, { x: p1.x - 18, y }, { x: p1.x - 18, y: p1.y }, p1], 10);
    } else {
      const pts = g.edge({ v: e.from, w: e.to, name: "e" + i })?.points || [];
      const mids = pts.length > 3 ? pts.slice(1, -1) : [];
      path = wirePath([p0, ...mids, p1]);
    }
    wires.append(svg("path", { d: path, class: "wire" + (bad ? " bad" : "") + (back ? " back" : "") +
                                              (vb.disabled || va.disabled ? " off" : ""),
                               "data-from": e.from, "data-to": e.to },
      back ? svg("title", { text: `${va.title}.${e.fromPort} → ${vb.title}.${e.toPort}: the next tick's value` }) : null));
  });

  for (const v of vnodes.values()) nodes.append(drawNode(v, pos(v.id), shapes.get(v.id) || {}));

  // The drawing's extent (dagre's graph size leaves out wires routed around the nodes).
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  const grow = (x, y) => { x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y); };
  for (const v of vnodes.values()) { const b = pos(v.id); grow(b.x, b.y); grow(b.x + b.w, b.y + b.h); }
  for (const e of g.edges()) for (const p of g.edge(e).points || []) grow(p.x, p.y);
  y1 = Math.max(y1, loopY);   // the loops of wires back
  x1 = Math.max(x1, loopX);
  if (!vnodes.size) { x0 = y0 = 0; x1 = y1 = 1; }
  S.drawn = { vnodes, bounds: { x: x0 - 16, y: y0 - 16, w: x1 - x0 + 32, h: y1 - y0 + 32 } };
  applyDiagnostics();
  markSelection();
  // Until the user pans or zooms, the view follows the drawing (it widens when the check's shapes come).
  if (fit) fitView(true);
  else if (!S.viewTouched) fitView(S.fitReadable);
  else applyView();
}

// A polyline of horizontal and vertical segments with rounded corners.
function roundedPath(p, r) {
  let d = `M${p[0].x},${p[0].y}`;
  for (let i = 1; i + 1 < p.length; i++) {
    const a = p[i - 1], c = p[i], b = p[i + 1];
    const r1 = Math.min(r, Math.hypot(c.x - a.x, c.y - a.y) / 2), r2 = Math.min(r, Math.hypot(b.x - c.x, b.y - c.y) / 2);
    const u = (q, len) => { const l = Math.hypot(q.x - c.x, q.y - c.y) || 1; return { x: c.x + ((q.x - c.x) / l) * len, y: c.y + ((q.y - c.y) / l) * len }; };
    const s = u(a, r1), t = u(b, r2);
    d += ` L${s.x},${s.y} Q${c.x},${c.y} ${t.x},${t.y}`;
  }
  const last = p[p.length - 1];
  return d + ` L${last.x},${last.y}`;
}

// A smooth wire through points, leaving and entering ports horizontally.
function wirePath(p) {
  let d = `M${p[0].x},${p[0].y}`;
  for (let i = 0; i + 1 < p.length; i++) {
    const a = p[i], b = p[i + 1];
    const dx = Math.max(Math.abs(b.x - a.x) / 2, p.length === 2 ? 40 : 10);
    d += ` C${a.x + dx},${a.y} ${b.x - dx},${b.y} ${b.x},${b.y}`;
  }
  return d;
}

function drawNode(v, box, shapes) {
  const cls = ["node-box", "cat-" + v.category];
  if (v.kind === "op" || v.kind === "subgraph" || v.kind === "unknown") cls.push("node");
  if (v.kind === "subgraph") cls.push("subgraph");
  if (v.kind === "unknown" || v.missing) cls.push("unknown");
  if (v.kind === "input" || v.kind === "output") cls.push("io-node");
  if (v.disabled) cls.push("disabled");
  const attrs = { class: cls.join(" "), transform: `translate(${box.x},${box.y})` };
  if (v.qid) attrs["data-node-id"] = v.qid;
  const gEl = svg("g", attrs);
  gEl.append(svg("rect", { class: "body", width: box.w, height: box.h, rx: 8 }));
  gEl.append(svg("rect", { class: "head", width: box.w, height: box.head, rx: 8 }));
  gEl.append(svg("rect", { class: "head", y: box.head - 8, width: box.w, height: 8 }));
  gEl.append(svg("rect", { class: "frame", width: box.w, height: box.h, rx: 8 }));
  let y = 8 + 13;
  gEl.append(svg("text", { class: "nid", x: PAD, y, text: v.title }));
  if (v.subtitle) { y += 15; gEl.append(svg("text", { class: "nop", x: PAD, y, text: v.subtitle })); }
  for (const f of v.flags) { y += 14; gEl.append(svg("text", { class: "nflags", x: PAD, y, text: f })); }
  if (v.kind === "subgraph") {
    const b = svg("g", { class: "open-btn", transform: `translate(${box.w - 52},7)`,
                         onclick: (ev) => { ev.stopPropagation(); openInstance(v.id); } },
      svg("rect", { width: 44, height: 20, rx: 5 }),
      svg("text", { x: 22, y: 14, "text-anchor": "middle", text: "open ▸" }),
      svg("title", { text: "Open the subgraph (or double-click the box)" }));
    gEl.append(b);
  }
  v.ins.forEach((p, i) => {
    const py = portY(box, i);
    const cls = ["port-label"];
    if (p.ref === undefined) cls.push("unconnected");
    if (p.dangling || p.extra) cls.push("bad");
    gEl.append(svg("circle", { class: "port in" + (p.ref !== undefined ? " on" : "") + (p.dangling ? " bad" : "") + (p.stub ? " stub" : ""),
                               cx: 0, cy: py, r: 4.5 }));
    const label = svg("text", { class: cls.join(" "), x: PAD - 2, y: py + 4 }, svg("tspan", { text: p.name }));
    if (p.stub) label.append(svg("tspan", { class: "stub-src", dx: 6, text: "◂ " + p.stub }));
    if (p.dangling) label.append(svg("title", { text: `no source "${plain(p.ref)}"` }));
    else if (p.doc) label.append(svg("title", { text: p.doc }));
    gEl.append(label);
  });
  v.outs.forEach((o, i) => {
    const py = portY(box, i);
    gEl.append(svg("circle", { class: "port out on", cx: box.w, cy: py, r: 4.5 }));
    const t = svg("text", { class: "port-label", x: box.w - PAD + 2, y: py + 4, "text-anchor": "end" });
    t.append(svg("tspan", { text: o.name }));
    if (shapes[o.name]) t.append(svg("tspan", { class: "shape", dx: 5, text: fmtShape(shapes[o.name]) }));
    if (o.uses) t.append(svg("tspan", { class: "stub-src", dx: 5, text: `→ ${o.uses} uses` }));
    if (o.doc) t.append(svg("title", { text: o.doc }));
    gEl.append(t);
  });
  if (v.qid) {
    gEl.addEventListener("click", (ev) => { ev.stopPropagation(); select(v.qid); });
    if (v.kind === "subgraph") gEl.addEventListener("dblclick", (ev) => { ev.stopPropagation(); openInstance(v.id); });
  }
  return gEl;
}

// ---------------------------------------------------------------------------------------------------
// Pan and zoom
// ---------------------------------------------------------------------------------------------------

function applyView() {
  const { x, y, k } = S.view;
  $("#viewport").setAttribute("transform", `translate(${x},${y}) scale(${k})`);
}

// The whole drawing in view; with `readable`, a drawing that would be too small to read (a deep net)
// is shown from its start at a readable zoom instead (the fit button shows all of it).
function fitView(readable = false) {
  const box = $("#graph").getBoundingClientRect();
  if (!S.drawn || !box.width) return;
  S.viewTouched = false;
  S.fitReadable = readable;
  const { x, y, w, h } = S.drawn.bounds;
  const top = 44;   // below the breadcrumb and the zoom buttons
  const k = Math.min(box.width / w, (box.height - top) / h, 1.25);
  if (readable && k < 0.5) {
    const kr = 0.8;
    S.view = { k: kr, x: 10 - x * kr, y: top + (box.height - top - h * kr) / 2 - y * kr };
  } else {
    S.view = { k, x: (box.width - w * k) / 2 - x * k, y: top + (box.height - top - h * k) / 2 - y * k };
  }
  applyView();
}

function zoomAt(factor, cx, cy) {
  const k = Math.min(4, Math.max(0.05, S.view.k * factor));
  S.viewTouched = true;
  const f = k / S.view.k;
  S.view = { k, x: cx - (cx - S.view.x) * f, y: cy - (cy - S.view.y) * f };
  applyView();
}

function setupPanZoom() {
  const area = $("#graph");
  area.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const r = area.getBoundingClientRect();
    zoomAt(Math.exp(-ev.deltaY * (ev.deltaMode === 1 ? 0.05 : 0.0015)), ev.clientX - r.left, ev.clientY - r.top);
  }, { passive: false });
  let drag = null;
  area.addEventListener("pointerdown", (ev) => {
    if (ev.button !== 0 || ev.target.closest(".open-btn")) return;
    drag = { x: ev.clientX, y: ev.clientY, vx: S.view.x, vy: S.view.y, moved: false };
  });
  window.addEventListener("pointermove", (ev) => {
    if (!drag) return;
    const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
    if (!drag.moved && Math.hypot(dx, dy) < 3) return;
    if (!drag.moved) area.classList.add("panning");
    S.viewTouched = true;
    drag.moved = true;
    S.view.x = drag.vx + dx;
    S.view.y = drag.vy + dy;
    applyView();
  });
  window.addEventListener("pointerup", () => {
    if (drag?.moved) {
      // A drag is not a click: swallow the click that follows it.
      window.addEventListener("click", (e) => e.stopPropagation(), { capture: true, once: true });
    }
    drag = null;
    area.classList.remove("panning");
  });
  area.addEventListener("click", (ev) => { if (!ev.target.closest(".node")) select(null); });
  $("#fit").onclick = () => fitView();
  const center = (f) => { const r = area.getBoundingClientRect(); zoomAt(f, r.width / 2, r.height / 2); };
  $("#zoom-in").onclick = () => center(1.25);
  $("#zoom-out").onclick = () => center(0.8);
  window.addEventListener("keydown", (ev) => {
    if (ev.target.closest("input, select, textarea, dialog")) return;
    if (ev.key === "f") fitView();
    if (ev.key === "Escape" && S.levels.length > 1) goToLevel(S.levels.length - 2);
  });
  new ResizeObserver(() => { if (S.drawn && !S.viewTouched) fitView(S.fitReadable); }).observe(area);
}

// ---------------------------------------------------------------------------------------------------
// Levels: the opened file and the subgraphs entered from it
// ---------------------------------------------------------------------------------------------------

async function openPipeline(path) {
  if (S.root?.dirty && !confirm(`Discard the unsaved edits of ${S.root.path}?`)) {
    $("#picker").value = S.root.path;
    return;
  }
  const r = await fetch("/file?path=" + encodeURIComponent(path));
  if (!r.ok) { notice(`cannot open ${path}: HTTP ${r.status}`); return; }
  const text = await r.text();
  let doc;
  try { doc = parseDoc(text); } catch (e) { notice(`${path} is not valid JSON: ${e.message}`); return; }
  S.docs.clear();
  S.missing.clear();
  S.root = { path, doc, original: parseDoc(text), dirty: false };
  S.levels = [{ path, doc, prefix: "", params: doc.params || {}, label: basename(path), readOnly: false }];
  S.selected = null;
  S.check = null;
  indexGraph(null);
  $("#picker").value = path;
  $("#save-path").value = path;
  history.replaceState(null, "", "#" + path);
  updateTitle();
  await preloadIncludes(doc, path, doc.params || {});
  renderBreadcrumb();
  renderGraph({ fit: true });
  renderInspector();
  renderParams();
  validateNow();
}

async function openInstance(id) {
  const level = currentLevel();
  const node = level.doc.nodes[id];
  const includes = includePaths(level.doc, level.path, level.params);
  const op = resolveValue(node.op, level.params);
  const path = includes[op];
  if (!path) return;
  const sub = await loadDoc(path);
  if (!sub) { notice(`cannot open ${path}`); return; }
  const params = instanceParams(sub, node, level.params);
  await preloadIncludes(sub, path, params);
  level.view = { ...S.view };
  S.levels.push({ path, doc: sub, prefix: level.prefix + id + ".", params, label: `${id} · ${path.replace(/^pipelines\//, "")}`,
                  readOnly: true });
  S.selected = null;
  renderBreadcrumb();
  renderGraph({ fit: true });
  renderInspector();
}

function goToLevel(i) {
  S.levels.length = i + 1;
  S.selected = null;
  renderBreadcrumb();
  const saved = currentLevel().view;
  renderGraph({ fit: !saved });
  if (saved) { S.view = saved; S.viewTouched = true; applyView(); }
  renderInspector();
}

function renderBreadcrumb() {
  const nav = $("#breadcrumb");
  nav.replaceChildren();
  S.levels.forEach((lv, i) => {
    if (i) nav.append(el("span", { class: "sep", text: "›" }));
    const last = i === S.levels.length - 1;
    nav.append(el("button", { class: "crumb" + (last ? " current" : ""), text: lv.label, disabled: last,
                              title: lv.path, onclick: () => goToLevel(i) }));
  });
  if (S.levels.length > 1)
    nav.append(el("span", { class: "muted ro", text: "included file: read-only here (open it from the picker to edit it)" }));
}

// ---------------------------------------------------------------------------------------------------
// Selection and inspector
// ---------------------------------------------------------------------------------------------------

function select(qid) {
  if (qid !== S.selected) textModeKeys.clear();
  S.selected = qid;
  markSelection();
  renderInspector();
  if (qid) showTab("inspector");
}

function markSelection() {
  for (const n of document.querySelectorAll("#nodes .node")) n.classList.toggle("selected", n.dataset.nodeId === S.selected);
  const local = selectedLocalId();
  for (const w of document.querySelectorAll("#wires .wire"))
    w.classList.toggle("hot", !!local && (w.dataset.from === local || w.dataset.to === local));
}

function selectedLocalId() {
  const level = currentLevel();
  if (!S.selected || !level || !S.selected.startsWith(level.prefix)) return null;
  const id = S.selected.slice(level.prefix.length);
  return level.doc.nodes?.[id] ? id : null;
}

// Redraws the inspector; the field being typed in keeps its focus and caret (a check's answer redraws
// it while the user types).
function renderInspector() {
  const box = $("#tab-inspector");
  const active = box.contains(document.activeElement) ? document.activeElement : null;
  const key = active?.dataset.key;
  let caret = null;
  try { caret = active ? [active.selectionStart, active.selectionEnd] : null; } catch { caret = null; }
  const scroll = box.scrollTop;
  drawInspector(box);
  box.scrollTop = scroll;
  const again = key && box.querySelector(`[data-key="${CSS.escape(key)}"]`);
  if (again) {
    again.focus();
    try { if (caret && caret[0] !== null) again.setSelectionRange(caret[0], caret[1]); } catch { /* number inputs */ }
  }
}

function drawInspector(box) {
  box.replaceChildren();
  const level = currentLevel();
  const id = selectedLocalId();
  if (!level || !id) {
    box.append(el("p", { class: "muted", text: "Select a node to see its inputs, outputs and attributes. Double-click a subgraph (dashed box) to open it." }));
    return;
  }
  const v = S.drawn.vnodes.get(id);
  const node = level.doc.nodes[id];
  const ro = level.readOnly;
  const edited = () => { documentEdited(); renderGraph(); };

  box.append(el("div", { class: "insp-title" }, el("h3", { text: v.qid }), el("span", { class: "op-tag", text: v.op })));
  if (v.kind === "subgraph") {
    box.append(el("p", { class: "doc" }, `Subgraph instance of ${v.includePath ?? "?"}. `,
      el("button", { text: "open subgraph ▸", onclick: () => openInstance(id) })));
    const sub = S.docs.get(v.includePath);
    if (sub?.doc) box.append(el("p", { class: "doc", text: sub.doc }));
  } else if (v.info) {
    box.append(el("p", { class: "doc", text: v.info.doc }));
  } else {
    box.append(el("p", { class: "error-text", text: `unknown op "${v.op}"` }));
  }

  const diags = diagnosticsFor(v.qid);
  if (diags.length) box.append(el("ul", { class: "diag-list" }, diags.map((d) => el("li", { text: d.text }))));

  // Op: editable (a typo'd op is fixed here).
  box.append(el("h4", { text: "Node" }));
  const opts = el("div", { class: "form" });
  opts.append(formRow("op", "the node type, or an include alias for a subgraph",
    el("input", { type: "text", value: String(plain(node.op)), readOnly: ro, list: "op-names", spellcheck: "false", "data-key": "field:op",
                  oninput: (e) => { node.op = e.target.value; edited(); } })));
  opts.append(formRow("if", "the node exists only when this param is true (empty: always)",
    el("input", { type: "text", value: node.if !== undefined ? String(plain(node.if)) : "", readOnly: ro, placeholder: "always", "data-key": "field:if",
                  list: "param-refs", spellcheck: "false",
                  oninput: (e) => { const t = e.target.value.trim(); if (t === "") delete node.if; else node.if = parseLoose(t, "bool"); edited(); } })));
  if (v.sink || node.every !== undefined || node.at_end !== undefined) {
    opts.append(formRow("every", "run every N ticks (0 or empty: never between ticks)",
      el("input", { type: "text", value: node.every !== undefined ? String(plain(node.every)) : "", readOnly: ro, placeholder: "–", "data-key": "field:every",
                    list: "param-refs", spellcheck: "false",
                    oninput: (e) => { const t = e.target.value.trim(); if (t === "") delete node.every; else node.every = parseLoose(t, "int"); edited(); } })));
    opts.append(formRow("at_end", "run after the last tick",
      el("input", { type: "checkbox", checked: !!plain(node.at_end), disabled: ro, "data-key": "field:at_end",
                    onchange: (e) => { if (e.target.checked) node.at_end = true; else delete node.at_end; edited(); } })));
  }
  box.append(opts);

  // Inputs: their sources (editable) and shapes.
  if (v.ins.length) {
    box.append(el("h4", { text: "Inputs" }));
    const form = el("div", { class: "form" });
    for (const p of v.ins) {
      const shape = p.ref !== undefined && !p.dangling ? inputShape(level, v, p) : undefined;
      const note = [p.optional ? "optional" : "required", p.doc].filter(Boolean).join(" · ");
      form.append(formRow(p.name, note, [
        el("input", { type: "text", value: p.ref !== undefined ? String(plain(p.ref)) : "", readOnly: ro, spellcheck: "false", "data-key": "input:" + p.name,
                      list: "source-names", placeholder: p.optional ? "not connected" : "required",
                      class: p.dangling ? "invalid" : "",
                      oninput: (e) => {
                        node.inputs ||= {};
                        const t = e.target.value.trim();
                        if (t === "") delete node.inputs[p.name]; else node.inputs[p.name] = t;
                        edited();
                      } }),
        shape ? el("span", { class: "shape-tag", text: fmtShape(shape) }) : null]));
    }
    box.append(form);
  }

  if (v.outs.length) {
    box.append(el("h4", { text: "Outputs" }));
    const list = el("div", { class: "form" });
    for (const o of v.outs) {
      const shape = outputShape(level.doc, level.path, level.params, level.prefix, id, o.name);
      list.append(formRow(o.name, o.doc || "", el("span", { class: "shape-tag", text: shape ? fmtShape(shape) : "shape after a valid check" })));
    }
    box.append(list);
  }

  // Attributes: the op's schema, or a subgraph's params.
  let attrSpecs = [];
  if (v.kind === "subgraph") {
    const sub = S.docs.get(v.includePath);
    attrSpecs = Object.entries(sub?.params || {}).map(([name, def]) => ({
      name, type: typeOfValue(def), default: def, doc: "a param of the subgraph" }));
  } else if (v.info) {
    attrSpecs = v.info.attrs;
  }
  const known = new Set(attrSpecs.map((a) => a.name));
  for (const name of Object.keys(node.attrs || {}))
    if (!known.has(name)) attrSpecs.push({ name, type: typeOfValue(node.attrs[name]), doc: "not an attribute of this op" });
  if (attrSpecs.length) {
    box.append(el("h4", { text: "Attributes" }));
    const form = el("div", { class: "form" });
    for (const spec of attrSpecs) {
      const has = node.attrs && spec.name in node.attrs;
      const value = has ? node.attrs[spec.name] : undefined;
      const set = (nv) => {
        node.attrs ||= {};
        if (nv === undefined) delete node.attrs[spec.name]; else node.attrs[spec.name] = nv;
        if (!Object.keys(node.attrs).length) delete node.attrs;
        documentEdited();
        renderGraph();
      };
      const editor = valueEditor(spec, value, set, { readOnly: ro, params: level.params, dataAttr: spec.name,
                                                     modeKey: `${v.qid}:${spec.name}` });
      const notes = [];
      if (spec.required || !("default" in spec)) notes.push(v.kind === "subgraph" ? "" : "required");
      else notes.push("default " + JSON.stringify(plain(spec.default)));
      notes.push(rangeText(spec.min, spec.max));
      if (spec.doc) notes.push(spec.doc);
      form.append(formRow(spec.name, notes.filter(Boolean).join(" · "), editor, { bad: diags.some((d) => d.field === `attr "${spec.name}"`) }));
    }
    box.append(form);
  }
  if (ro) for (const i of box.querySelectorAll("input, select")) i.disabled = true;
  refreshDatalists();
}

function inputShape(level, v, p) {
  const { vnodes } = S.drawn;
  const src = resolveRef(p.ref, vnodes, subInputs(level.doc), level.params);
  if (!src) return undefined;
  return wireShape(level, { from: src.node, fromPort: src.port }, vnodes);
}

// One labelled row of a form: name and note on the left, controls on the right.
function formRow(name, note, controls, opts = {}) {
  controls = [controls].flat();
  return el("div", { class: "form-row" + (opts.bad ? " bad" : "") },
    el("label", { class: "form-label", text: name }),
    el("div", { class: "form-control" }, ...controls),
    note ? el("div", { class: "note", text: note }) : null);
}

function rangeText(min, max) {
  const f = (x) => String(+Number(x).toPrecision(6));
  if (min !== undefined && max !== undefined) return `range ${f(min)} … ${f(max)}`;
  if (min !== undefined) return `≥ ${f(min)}`;
  if (max !== undefined) return `≤ ${f(max)}`;
  return "";
}

function typeOfValue(v) {
  v = plain(v);
  if (isFloatValue(v)) return "float";
  if (typeof v === "number") return "int";
  if (typeof v === "boolean") return "bool";
  if (typeof v === "string") return "string";
  if (Array.isArray(v)) return v.every((x) => typeof x === "number" && Number.isInteger(x)) ? "int_list" : v.every((x) => typeof x === "number") ? "float_list" : "any";
  return "any";
}

// Text typed into a field, as the JSON value it means for a value of `type`: "$name" references and
// "${name}" templates stay strings; numbers, booleans and lists are parsed; anything else stays text.
function parseLoose(text, type) {
  const t = text.trim();
  if (isRef(t)) return t;
  switch (type) {
    case "int": { const n = Number(t); return t !== "" && Number.isFinite(n) ? n : t; }
    case "float": { const n = Number(t); return t !== "" && Number.isFinite(n) ? asFloat(n) : t; }
    case "bool": return t === "true" ? true : t === "false" ? false : t;
    case "int_list": case "float_list": case "string_list": {
      let items;
      try { items = JSON.parse(t.startsWith("[") ? t : `[${t}]`); } catch { items = t.replace(/^\[|\]$/g, "").split(","); }
      return items.map((x) => (typeof x === "string" ? parseLoose(x, type === "string_list" ? "string" : type === "int_list" ? "int" : "float") : x));
    }
    case "string": return text;
    default: try { return JSON.parse(t); } catch { return t; }
  }
}

function valueText(v) {
  v = plain(v);
  if (v === undefined) return "";
  if (typeof v === "string") return v;
  if (Array.isArray(v)) return v.map((x) => (typeof x === "string" ? x : JSON.stringify(plain(x)))).join(", ");
  return JSON.stringify(v);
}

// A typed editor for an attribute or param value. set(undefined) removes it (its default applies);
// a "$" button switches between a typed control and a text field for "$param" references.
// Editors switched to text or typed in as text, by modeKey: they stay text when the inspector is redrawn
// (until another node is selected).
const textModeKeys = new Set();

function valueEditor(spec, value, set, { readOnly = false, params = {}, dataAttr, allowUnset = true, modeKey } = {}) {
  const wrap = el("span", { class: "editor" });
  const type = spec.type;
  const def = spec.default;
  const alwaysText = type === "any" || type.endsWith("_list");
  // Text for references, for lists, and for what the typed control cannot show (a half-typed "-").
  let textMode = alwaysText || isRef(value) || textModeKeys.has(modeKey) ||
                 (value !== undefined && typeof plain(value) === "string" && type !== "string");

  const draw = () => {
    wrap.replaceChildren();
    let control;
    const unsetOrSet = (nv) => set(nv);
    if (textMode) {
      control = el("input", { type: "text", value: valueText(value), placeholder: def !== undefined ? valueText(def) : "",
                              spellcheck: "false", list: "param-refs", class: isRef(value) ? "ref" : "",
                              oninput: (e) => {
                                const t = e.target.value;
                                if (modeKey) textModeKeys.add(modeKey);   // typing in text: it stays text
                                value = t.trim() === "" && allowUnset ? undefined : parseLoose(t, type);
                                e.target.classList.toggle("ref", isRef(value));
                                hint.textContent = refHint(value);
                                unsetOrSet(value);
                              } });
    } else if (type === "bool") {
      const cur = plain(value ?? def);
      control = el("input", { type: "checkbox", checked: cur === true,
                              onchange: (e) => { value = e.target.checked; unsetOrSet(value); draw(); } });
    } else if (type === "string" && spec.choices?.length) {
      control = el("select", { onchange: (e) => { value = e.target.value === "\u0000" ? undefined : e.target.value; unsetOrSet(value); } });
      if (allowUnset && def !== undefined) control.append(el("option", { value: "\u0000", text: `(default: ${def})` }));
      for (const c of spec.choices) control.append(el("option", { value: c, text: c }));
      control.value = value === undefined && allowUnset && def !== undefined ? "\u0000" : String(plain(value ?? def));
    } else if (type === "int" || type === "float") {
      control = el("input", { type: "number", value: value === undefined ? "" : String(plain(value)),
                              placeholder: def !== undefined ? String(plain(def)) : "", step: type === "int" ? "1" : "any",
                              min: spec.min, max: spec.max,
                              oninput: (e) => {
                                const t = e.target.value;
                                value = t === "" ? (allowUnset ? undefined : value) : parseLoose(t, type);
                                unsetOrSet(value);
                              } });
    } else {
      control = el("input", { type: "text", value: value === undefined ? "" : valueText(value),
                              placeholder: def !== undefined ? valueText(def) : "", spellcheck: "false",
                              oninput: (e) => { value = e.target.value === "" && allowUnset ? undefined : e.target.value; unsetOrSet(value); } });
    }
    if (dataAttr !== undefined) { control.dataset.attr = dataAttr; control.dataset.key = "attr:" + dataAttr; }
    control.disabled = readOnly;
    const hint = el("span", { class: "ref-hint", text: refHint(value) });
    const toggle = el("button", { class: "mini" + (textMode ? " on" : ""), text: "$", disabled: readOnly,
      title: textMode ? "typed editor" : "type a $param reference (or any JSON value)",
      onclick: () => {
        textMode = !textMode || alwaysText;
        if (textMode) textModeKeys.add(modeKey); else textModeKeys.delete(modeKey);
        if (!textMode && (isRef(value) || typeof plain(value) === "string")) {
          const r = resolveValue(value, params);
          value = typeof r === "string" && type !== "string" ? undefined : r;
          set(value);
        }
        draw();
      } });
    wrap.append(control, toggle);
    if (allowUnset && value !== undefined)
      wrap.append(el("button", { class: "mini", text: "↺", title: "back to the default", disabled: readOnly,
                                 onclick: () => { value = undefined; set(undefined); textModeKeys.delete(modeKey); textMode = alwaysText; draw(); } }));
    wrap.append(hint);
  };
  const refHint = (v) => {
    if (!isRef(v)) return "";
    const r = resolveValue(v, params);
    return r === undefined ? "unknown param" : "= " + JSON.stringify(r);
  };
  draw();
  return wrap;
}

// <datalist>s for the text fields: "$param" names, sources of the current level, op names.
function refreshDatalists() {
  const level = currentLevel();
  const lists = {
    "param-refs": Object.keys(level?.params || {}).map((p) => "$" + p),
    "source-names": [],
    "op-names": Object.keys(S.objectInfo).concat(Object.keys(level?.doc.include || {})),
  };
  if (S.drawn) for (const v of S.drawn.vnodes.values()) {
    if (v.kind === "input") { lists["source-names"].push(v.title); continue; }
    if (v.kind === "output") continue;
    lists["source-names"].push(v.id);
    for (const o of v.outs) lists["source-names"].push(`${v.id}.${o.name}`);
  }
  for (const [id, values] of Object.entries(lists)) {
    let dl = document.getElementById(id);
    if (!dl) document.body.append((dl = el("datalist", { id })));
    dl.replaceChildren(...values.map((x) => el("option", { value: x })));
  }
}

// ---------------------------------------------------------------------------------------------------
// Params panel
// ---------------------------------------------------------------------------------------------------

function renderParams() {
  const box = $("#tab-params");
  box.replaceChildren();
  if (!S.root) return;
  const doc = S.root.doc;
  const params = doc.params || {};
  box.append(el("p", { class: "muted", text: `The params of ${S.root.path}: edits change the document (Save writes them; Run runs them).` }));
  const form = el("div", { class: "form" });
  for (const name of Object.keys(params)) {
    const orig = S.root.original.params?.[name];
    const spec = { name, type: typeOfValue(orig ?? params[name]) };
    // Choices and range from the attributes the param feeds.
    const uses = paramUses(doc, name);
    const attr = uses.find((u) => u.spec)?.spec;
    if (attr) {
      if (spec.type === "string" && attr.choices) spec.choices = attr.choices;
      if (spec.type === "int" || spec.type === "float") { spec.min = attr.min; spec.max = attr.max; }
    }
    const note = uses.length ? "→ " + uses.map((u) => u.where).join(", ") : "not used by this file's nodes";
    const row = formRow(name, note, valueEditor(spec, params[name], (nv) => {
      if (nv === undefined) return;
      params[name] = nv;
      row.classList.toggle("changed", JSON.stringify(nv) !== JSON.stringify(orig));
      documentEdited();
      renderGraph();
    }, { allowUnset: false, params, modeKey: "param:" + name }));
    const input = row.querySelector("input, select");
    input.dataset.param = name;
    row.classList.toggle("changed", JSON.stringify(params[name]) !== JSON.stringify(orig));
    form.append(row);
  }
  if (!Object.keys(params).length) form.append(el("p", { class: "muted", text: "This pipeline has no params." }));
  box.append(form);
}

// Where a document uses "$name": node attributes (with their schema entry), node fields, run fields.
function paramUses(doc, name) {
  const ref = "$" + name, tpl = "${" + name + "}";
  const uses = (v) => { v = plain(v); return v === ref || (typeof v === "string" && v.includes(tpl)) ||
                                      (Array.isArray(v) && v.some(uses)); };
  const out = [];
  for (const [id, node] of Object.entries(doc.nodes || {})) {
    const info = opInfo(String(resolveValue(node.op, doc.params || {})));
    for (const [attr, v] of Object.entries(node.attrs || {}))
      if (uses(v)) out.push({ where: `${id}.${attr}`, spec: info?.attrs.find((a) => a.name === attr) });
    for (const field of ["op", "if", "every", "at_end"]) if (uses(node[field])) out.push({ where: `${id} ${field}` });
    for (const [port, v] of Object.entries(node.inputs || {})) if (uses(v)) out.push({ where: `${id} input ${port}` });
  }
  for (const [k, v] of Object.entries(doc.run || {})) if (uses(v)) out.push({ where: `run.${k}` });
  for (const [k, v] of Object.entries(doc.include || {})) if (uses(v)) out.push({ where: `include ${k}` });
  for (const [k, v] of Object.entries(doc.params || {})) if (k !== name && uses(v)) out.push({ where: `param ${k}` });
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Validation (POST /check) and diagnostics
// ---------------------------------------------------------------------------------------------------

let checkTimer = null, checkSeq = 0;

function documentEdited() {
  if (S.root) S.root.dirty = true;
  updateTitle();
  clearTimeout(checkTimer);
  checkTimer = setTimeout(validateNow, 300);
}

function updateTitle() {
  document.title = (S.root?.dirty ? "• " : "") + (S.root ? basename(S.root.path) + " — " : "") + "noiseflow studio";
  $("#save").classList.toggle("dirty", !!S.root?.dirty);
}

async function validateNow() {
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

function setCheck(answer) {
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

function setCheckStatus(text, ok) {
  const s = $("#check-status");
  s.textContent = text;
  s.dataset.ok = ok;
}

function diagnosticsFor(qid) {
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

function applyDiagnostics() {
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

async function save(path) {
  if (!S.root) return;
  path = path.trim();
  const r = await api("POST", "/save", { path, pipeline: S.root.doc });
  if (!r.ok) { notice(`save failed: ${errorMessage(r)}`, true); return false; }
  const a = r.data;
  S.root.dirty = false;
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

function setupSave() {
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
function notice(text, error = false) {
  const n = $("#notice");
  n.textContent = text;
  n.classList.toggle("error", error);
  n.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => (n.hidden = true), 6000);
}

// ---------------------------------------------------------------------------------------------------
// Running: POST /prompt, the WebSocket, the run panel
// ---------------------------------------------------------------------------------------------------

async function runPipeline() {
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
function drawLoss() {
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
  img.src = url;
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
function connectSocket() {
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

async function loadHistory() {
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
    const params = Object.entries(h.prompt?.params || {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(" ");
    const item = el("div", { class: "history-item", "data-prompt-id": id },
      el("div", { class: "history-head" },
        el("span", { class: "num", text: `#${h.number ?? "?"}` }),
        el("span", { class: "name", text: h.prompt?.name || "", title: h.prompt?.path || "" }),
        el("span", { class: "pill", "data-status": st, text: st }),
        el("span", { class: "muted", text: bits.join(" · ") })),
      el("div", { class: "muted small", text: [h.prompt?.path, params, h.run_dir ? `→ ${h.run_dir}/` : ""].filter(Boolean).join("  ") }));
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

// ---------------------------------------------------------------------------------------------------
// Tabs, picker, start-up
// ---------------------------------------------------------------------------------------------------

function showTab(name) {
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.tab === name);
  for (const t of ["inspector", "params", "history"]) $("#tab-" + t).hidden = t !== name;
  if (name === "history") loadHistory();
}

async function loadFileList() {
  const r = await api("GET", "/pipelines");
  S.files = r.ok ? r.data.files || [] : [];
  const picker = $("#picker");
  picker.replaceChildren(...S.files.map((f) => el("option", { value: f, text: f.replace(/^pipelines\//, "") })));
  if (S.root) picker.value = S.root.path;
}

async function main() {
  setupPanZoom();
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
