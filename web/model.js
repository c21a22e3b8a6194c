// web/model.js — the page's state and the document ↔ view model: params and references, node types from
// GET /object_info, the view nodes and wires of one level, and the shapes from the check's graph.

import { dirname, joinPath, parseDoc, plain } from "./util.js";

// ---------------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------------

export const S = {
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

export const currentLevel = () => S.levels[S.levels.length - 1];

// ---------------------------------------------------------------------------------------------------
// Params and references
// ---------------------------------------------------------------------------------------------------

const PARAM_REF = /^\$([A-Za-z_][A-Za-z0-9_]*)$/;
export const isRef = (v) => typeof v === "string" && (PARAM_REF.test(v) || v.includes("${"));

// A document value with "$name" / "${name}" resolved against params (which may refer to each other).
export function resolveValue(v, params, depth = 0) {
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
export function instanceParams(subDoc, instanceNode, parentParams) {
  const params = { ...(subDoc.params || {}) };
  for (const [k, v] of Object.entries(instanceNode.attrs || {})) {
    const r = resolveValue(v, parentParams);
    if (r !== undefined) params[k] = r;
  }
  return params;
}

export function includePaths(doc, path, params) {
  const out = {};
  for (const [alias, rel] of Object.entries(doc.include || {})) {
    const r = resolveValue(rel, params);
    if (typeof r === "string") out[alias] = joinPath(dirname(path), r);
  }
  return out;
}

// Declared inputs and outputs of a subgraph file ("inputs": [names] or {name: {...}}).
export const subInputs = (doc) => (Array.isArray(doc.inputs) ? doc.inputs : Object.keys(doc.inputs || {}));
const subOutputs = (doc) => (Array.isArray(doc.outputs) ? doc.outputs : Object.keys(doc.outputs || {}));
function defaultOutput(names) {
  if (names.includes("out")) return "out";
  return names[0];
}

export async function loadDoc(path) {
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
export async function preloadIncludes(doc, path, params, seen = new Set()) {
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

// Attribute types are GET /object_info's (graph::attr_type_name): int, float, bool, string, int_list,
// float_list, any.

export function opInfo(op) {
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
  const attrs = (info.attrs || []).map((a) => ({ ...a, type: a.type || "any" }));
  return { doc: info.description || "", ins, outs, attrs, sink: !!info.output_node };
}

// ---------------------------------------------------------------------------------------------------
// The drawing model of one level: view nodes with ports, and wires between them
// ---------------------------------------------------------------------------------------------------

const IN_PREFIX = "\u0001in:", OUT_PREFIX = "\u0001out:";

function categoryOf(op) { return op && op.includes(".") ? op.split(".")[0] : "other"; }

export function buildView(level) {
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
export function resolveRef(ref, vnodes, inputs, params) {
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

export function indexGraph(graph) {
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
export function outputShape(doc, path, params, prefix, id, port, depth = 0) {
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
export function wireShape(level, edge, vnodes) {
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
