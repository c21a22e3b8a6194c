// web/draw.js — the graph drawn as SVG: node boxes, ports and wires (laid out with dagre, or at the
// positions the document's "layout" section keeps), pan and zoom.

import dagre from "/node_modules/@dagrejs/dagre/dist/dagre.esm.js";
import { applyDiagnostics } from "./check.js";
import { editable, layoutGet, layoutOf, startGesture } from "./edit.js";
import { S, buildView, currentLevel, wireShape } from "./model.js";
import { goToLevel, markSelection, openInstance, select } from "./panels.js";
import { $, fmtShape, plain, svg } from "./util.js";

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

export const portY = (geo, i) => geo.head + 10 + i * ROW;

export function renderGraph({ fit = false } = {}) {
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

  // Positions: the document's "layout" section where it names the node (the root level only), else dagre's.
  const layout = layoutOf(level);
  const pos = (id) => {
    const geo = geos.get(id), at = layout && layoutGet(layout, vnodes.get(id));
    if (at) return { x: at[0], y: at[1], ...geo };
    const n = g.node(id);
    return { x: n.x - geo.w / 2, y: n.y - geo.h / 2, ...geo };
  };

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
    // Laid out by dagre, a wire leftwards goes back to an earlier node (a state's next value): a loop under
    // the nodes between them. Placed by hand, only a state's next value is drawn so.
    if (layout ? feedback(e) && p1.x < p0.x + 10 : p1.x < p0.x + 10) {
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
      const pts = layout ? [] : g.edge({ v: e.from, w: e.to, name: "e" + i })?.points || [];
      const mids = pts.length > 3 ? pts.slice(1, -1) : [];
      path = wirePath([p0, ...mids, p1]);
    }
    const ends = { "data-from": e.from, "data-from-port": e.fromPort, "data-to": e.to, "data-to-port": e.toPort };
    wires.append(svg("path", { d: path, class: "wire" + (bad ? " bad" : "") + (back ? " back" : "") +
                                              (vb.disabled || va.disabled ? " off" : ""), ...ends },
      back ? svg("title", { text: `${va.title}.${e.fromPort} → ${vb.title}.${e.toPort}: the next tick's value` }) : null));
    // A wide invisible twin to click (select, then Delete removes it).
    if (editable()) wires.append(svg("path", { d: path, class: "wire-hit", ...ends }));
  });

  for (const v of vnodes.values()) nodes.append(drawNode(v, pos(v.id), shapes.get(v.id) || {}));

  // The drawing's extent (dagre's graph size leaves out wires routed around the nodes).
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  const grow = (x, y) => { x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y); };
  for (const v of vnodes.values()) { const b = pos(v.id); grow(b.x, b.y); grow(b.x + b.w, b.y + b.h); }
  if (!layout) for (const e of g.edges()) for (const p of g.edge(e).points || []) grow(p.x, p.y);
  y1 = Math.max(y1, loopY);   // the loops of wires back
  x1 = Math.max(x1, loopX);
  if (!vnodes.size) { x0 = y0 = 0; x1 = y1 = 1; }
  const positions = new Map([...vnodes.keys()].map((id) => [id, pos(id)]));
  $("#empty-hint").hidden = !(editable() && !Object.keys(level.doc.nodes || {}).length);
  S.drawn = { vnodes, edges, positions, bounds: { x: x0 - 16, y: y0 - 16, w: x1 - x0 + 32, h: y1 - y0 + 32 } };
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
export function wirePath(p) {
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
  const edit = editable();
  if (edit) attrs["data-local-id"] = v.id;
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
    if (edit) gEl.append(svg("circle", { class: "port-hit in", cx: 0, cy: py, r: 10, "data-node": v.id, "data-port": p.name, "data-dir": "in" },
                             svg("title", { text: p.ref !== undefined ? `${p.name}: drag to move or remove the wire` : `${p.name}: drop a wire here` })));
    const label = svg("text", { class: cls.join(" "), x: PAD - 2, y: py + 4 }, svg("tspan", { text: p.name }));
    if (p.stub) label.append(svg("tspan", { class: "stub-src", dx: 6, text: "◂ " + p.stub }));
    if (p.dangling) label.append(svg("title", { text: `no source "${plain(p.ref)}"` }));
    else if (p.doc) label.append(svg("title", { text: p.doc }));
    gEl.append(label);
  });
  v.outs.forEach((o, i) => {
    const py = portY(box, i);
    gEl.append(svg("circle", { class: "port out on", cx: box.w, cy: py, r: 4.5 }));
    if (edit) gEl.append(svg("circle", { class: "port-hit out", cx: box.w, cy: py, r: 10, "data-node": v.id, "data-port": o.name, "data-dir": "out" },
                             svg("title", { text: `${o.name}: drag a wire from here to an input` })));
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

export function applyView() {
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

export function setupPanZoom() {
  const area = $("#graph");
  area.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const r = area.getBoundingClientRect();
    zoomAt(Math.exp(-ev.deltaY * (ev.deltaMode === 1 ? 0.05 : 0.0015)), ev.clientX - r.left, ev.clientY - r.top);
  }, { passive: false });
  let drag = null;
  area.addEventListener("pointerdown", (ev) => {
    if (ev.button !== 0 || ev.target.closest(".open-btn")) return;
    if (startGesture(ev)) return;   // a node, a port or a wire of an editable level: edit.js's
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
