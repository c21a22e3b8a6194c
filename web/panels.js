// web/panels.js — levels (the opened file and the subgraphs entered from it), selection, the node
// inspector with its typed value editors, and the params panel.

import { diagnosticsFor, documentEdited, notice, save, updateTitle, validateNow } from "./check.js";
import { applyView, renderGraph } from "./draw.js";
import { addParam, deleteNode, deleteParam, duplicateNode, editable, renameNode, renameParam, resetHistory } from "./edit.js";
import { loadFileList, showTab } from "./main.js";
import { S, currentLevel, includePaths, indexGraph, instanceParams, isRef, loadDoc, opInfo, outputShape, preloadIncludes, resolveRef, resolveValue, subInputs, wireShape } from "./model.js";
import { $, asFloat, basename, el, fmtShape, isFloatValue, parseDoc, plain } from "./util.js";

// ---------------------------------------------------------------------------------------------------
// Levels: the opened file and the subgraphs entered from it
// ---------------------------------------------------------------------------------------------------

export async function openPipeline(path) {
  if (S.root?.dirty && !confirm(`Discard the unsaved edits of ${S.root.path}?`)) {
    $("#picker").value = S.root.path;
    return;
  }
  const r = await fetch("/file?path=" + encodeURIComponent(path));
  if (!r.ok) { notice(`cannot open ${path}: HTTP ${r.status}`); return; }
  await openDocument(path, await r.text());
}

// Opens a document's text as the root level (a file, or a new document not saved yet).
export async function openDocument(path, text) {
  let doc;
  try { doc = parseDoc(text); } catch (e) { notice(`${path} is not valid JSON: ${e.message}`); return; }
  S.docs.clear();
  S.missing.clear();
  S.root = { path, doc, original: parseDoc(text), dirty: false };
  S.levels = [{ path, doc, prefix: "", params: doc.params || {}, label: basename(path), readOnly: false }];
  S.selected = null;
  S.selectedWire = null;
  S.check = null;
  S.viewTouched = false;
  indexGraph(null);
  resetHistory();
  if (!S.files.includes(path)) await loadFileList();
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

export async function openInstance(id) {
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

export function goToLevel(i) {
  S.levels.length = i + 1;
  S.selected = null;
  renderBreadcrumb();
  const saved = currentLevel().view;
  renderGraph({ fit: !saved });
  if (saved) { S.view = saved; S.viewTouched = true; applyView(); }
  renderInspector();
}

export function renderBreadcrumb() {
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

export function select(qid) {
  if (qid !== S.selected) textModeKeys.clear();
  if (qid) S.selectedWire = null;
  S.selected = qid;
  markSelection();
  renderInspector();
  if (qid) showTab("inspector");
}

export function markSelection() {
  for (const n of document.querySelectorAll("#nodes .node")) n.classList.toggle("selected", n.dataset.nodeId === S.selected);
  const local = selectedLocalId();
  for (const w of document.querySelectorAll("#wires .wire"))
    w.classList.toggle("hot", !!local && (w.dataset.from === local || w.dataset.to === local));
  const picked = S.selectedWire;
  for (const w of document.querySelectorAll("#wires .wire"))
    w.classList.toggle("picked", !!picked && w.dataset.to === picked.to && w.dataset.toPort === picked.toPort);
}

function selectedLocalId() {
  const level = currentLevel();
  if (!S.selected || !level || !S.selected.startsWith(level.prefix)) return null;
  const id = S.selected.slice(level.prefix.length);
  return level.doc.nodes?.[id] ? id : null;
}

// Redraws the inspector; the field being typed in keeps its focus and caret (a check's answer redraws
// it while the user types).
export function renderInspector() {
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
  if (editable()) {
    const idInput = el("input", { type: "text", value: id, spellcheck: "false", "data-key": "field:id", class: "node-id-field",
                                  title: "The node's id: Enter renames it and every reference to it" });
    const idError = el("span", { class: "error-text small" });
    const commit = () => { const err = renameNode(id, idInput.value.trim()); idError.textContent = err || ""; };
    idInput.addEventListener("keydown", (e) => { if (e.key === "Enter") commit(); });
    idInput.addEventListener("change", commit);
    box.append(el("div", { class: "insp-actions" },
      el("label", { class: "muted", text: "id " }), idInput,
      el("button", { text: "Duplicate", title: "A copy beside it, wired to the same sources (Ctrl+D)", onclick: () => duplicateNode(id) }),
      el("button", { text: "Delete", class: "danger", title: "Remove the node and its wires (Delete)", onclick: () => deleteNode(id) }),
      idError));
  }
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
    case "int_list": case "float_list": {
      let items;
      try { items = JSON.parse(t.startsWith("[") ? t : `[${t}]`); } catch { items = t.replace(/^\[|\]$/g, "").split(","); }
      return items.map((x) => (typeof x === "string" ? parseLoose(x, type === "int_list" ? "int" : "float") : x));
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

export function renderParams() {
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
    row.querySelector(".form-label").append(
      el("button", { class: "mini", text: "✎", title: `Rename ${name} (and every $${name} that uses it)`, "data-rename-param": name,
                     onclick: () => { const to = prompt(`Rename the param ${name} to`, name); if (to) { const e = renameParam(name, to.trim()); if (e) notice(e, true); } } }),
      el("button", { class: "mini", text: "×", title: `Delete ${name}`, "data-delete-param": name,
                     onclick: () => deleteParam(name) }));
    form.append(row);
  }
  if (!Object.keys(params).length) form.append(el("p", { class: "muted", text: "This pipeline has no params." }));
  box.append(form);
  if (!editable()) return;

  // A new param: name and value (JSON, else text).
  const nameIn = el("input", { type: "text", placeholder: "name", spellcheck: "false", id: "new-param-name", size: 10 });
  const valueIn = el("input", { type: "text", placeholder: "value", spellcheck: "false", id: "new-param-value", size: 10 });
  const err = el("div", { class: "error-text small" });
  const add = () => {
    const e = addParam(nameIn.value.trim(), parseLoose(valueIn.value, "any"));
    err.textContent = e || "";
  };
  valueIn.addEventListener("keydown", (e) => { if (e.key === "Enter") add(); });
  box.append(el("div", { class: "param-add" }, nameIn, valueIn, el("button", { text: "Add param", id: "add-param", onclick: add })), err);

  // The run block: how many ticks, which seed.
  box.append(el("h4", { text: "Run" }));
  const run = el("div", { class: "form" });
  for (const [key, note] of [["ticks", "how many ticks the run takes"], ["seed", "the random seed"]]) {
    const set = (nv) => {
      doc.run ||= {};
      if (nv === undefined) delete doc.run[key]; else doc.run[key] = nv;
      if (!Object.keys(doc.run).length) delete doc.run;
      documentEdited();
      renderGraph();
    };
    const editor = valueEditor({ name: key, type: "int", min: 0 }, doc.run?.[key], set, { params, modeKey: "run:" + key });
    editor.querySelector("input").dataset.run = key;
    run.append(formRow(key, note, editor));
  }
  box.append(run);
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
