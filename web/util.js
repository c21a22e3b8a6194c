// web/util.js — small helpers of the studio page: DOM builders, the JSON API call, paths, number
// formats, and JSON documents that keep "5.0" a float.

// ---------------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------------

export const $ = (sel) => document.querySelector(sel);
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
export const el = (tag, attrs, ...ch) => build((t) => document.createElement(t), tag, attrs, ch);
export const svg = (tag, attrs, ...ch) => build((t) => document.createElementNS(SVG_NS, t), tag, attrs, ch);

export async function api(method, url, body) {
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

export const errorMessage = (r) => r.data?.error?.message || r.data?.error?.type || `HTTP ${r.status}`;

export function dirname(p) { const i = p.lastIndexOf("/"); return i < 0 ? "" : p.slice(0, i); }
export function joinPath(dir, rel) {
  const out = [];
  for (const s of (dir ? dir.split("/") : []).concat(String(rel).split("/"))) {
    if (s === "" || s === ".") continue;
    if (s === "..") out.pop(); else out.push(s);
  }
  return out.join("/");
}
export const basename = (p) => p.slice(p.lastIndexOf("/") + 1);

export function fmtNum(x, digits = 4) {
  if (x === null || x === undefined || !Number.isFinite(x)) return "–";
  if (x !== 0 && (Math.abs(x) < 1e-3 || Math.abs(x) >= 1e5)) return x.toExponential(2);
  return String(+x.toPrecision(digits));
}
export function fmtDuration(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return "–";
  s = Math.max(0, Math.round(s));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}
export const fmtShape = (shape) => (Array.isArray(shape) ? shape.join("×") : "");

// ---------------------------------------------------------------------------------------------------
// JSON documents that keep "5.0" a float
//
// nlohmann (the server) tells 5 from 5.0; JSON.parse does not. Integer-valued floats of an opened file
// are kept as JSON.rawJSON("5.0") objects so that Save writes them back as floats; plain() reads them.
// ---------------------------------------------------------------------------------------------------

const hasRawJSON = typeof JSON.rawJSON === "function";
const isRaw = (v) => hasRawJSON && v !== null && typeof v === "object" && JSON.isRawJSON(v);
export const plain = (v) => (isRaw(v) ? JSON.parse(v.rawJSON) : v);

export function parseDoc(text) {
  if (!hasRawJSON) return JSON.parse(text);
  return JSON.parse(text, (key, value, context) =>
    typeof value === "number" && Number.isInteger(value) && context && /[.eE]/.test(context.source)
      ? JSON.rawJSON(context.source) : value);
}
// A number that was a float in the document stays one when edited to a whole value.
export const asFloat = (x) => (hasRawJSON && Number.isInteger(x) ? JSON.rawJSON(x.toFixed(1)) : x);
export const isFloatValue = (v) => isRaw(v) || (typeof v === "number" && !Number.isInteger(v));
