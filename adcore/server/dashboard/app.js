// adcore dashboard: models, recent detections with a score histogram, drift events, recent jobs.
// Plain DOM, no framework, no build step. Text goes in through textContent only, never
// innerHTML, so a model or feature name cannot inject markup.
"use strict";

const REFRESH_MS = 5000;
const SVG_NS = "http://www.w3.org/2000/svg";
const KEY_STORAGE = "adcore-api-key";
const PLOT = { width: 640, height: 240, left: 44, right: 16, top: 24, bottom: 30 };

const state = { key: sessionStorage.getItem(KEY_STORAGE) || "", selected: null, detections: [] };

function $(id) { return document.getElementById(id); }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function fmt(value, digits = 4) {
  if (value === null || value === undefined) return "–";
  if (typeof value !== "number") return String(value);
  return Math.abs(value) >= 1e5 || (value !== 0 && Math.abs(value) < 1e-3)
    ? value.toExponential(2) : String(Number(value.toPrecision(digits)));
}

function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return isNaN(date) ? iso : date.toLocaleString();
}

class Unauthorized extends Error {}

async function api(path) {
  const headers = state.key ? { Authorization: "Bearer " + state.key } : {};
  const response = await fetch(path, { headers, cache: "no-store" });
  if (response.status === 401) throw new Unauthorized("API key needed");
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error((body.error && body.error.message) || response.statusText);
  return body;
}

function renderModels(models) {
  const body = $("models").tBodies[0];
  body.replaceChildren(...models.map((m) => el("tr", { class: "model-row", "data-ref": m.ref },
    el("td", {}, m.ref),
    el("td", {}, m.algorithm),
    el("td", { class: "num" }, m.n_features),
    el("td", { class: "num" }, m.n_samples),
    el("td", { class: "num" }, fmt(m.threshold)),
    el("td", { class: "num" }, m.metrics && m.metrics.anomaly_rate !== undefined
      ? (100 * m.metrics.anomaly_rate).toFixed(1) + "%" : "–"),
    el("td", {}, when(m.created_at)),
  )));
  $("models-empty").hidden = models.length > 0;
}

function renderDetections(detections) {
  state.detections = detections;
  if (!detections.some((d) => d.id === state.selected)) state.selected = detections.length ? detections[0].id : null;
  const list = $("detections");
  list.replaceChildren(...detections.map((d) => {
    const item = el("li", { class: "detection" + (d.id === state.selected ? " selected" : ""), "data-id": d.id },
      el("div", {}, (d.model || d.algorithm) + ": " + d.n_anomalies + " of " + d.n_samples + " anomalous"),
      el("div", { class: "meta" }, d.kind + " · " + d.algorithm + " · " + fmt(d.duration_ms, 3) + " ms · " + when(d.time)));
    item.addEventListener("click", () => { state.selected = d.id; renderDetections(state.detections); });
    return item;
  }));
  $("detections-empty").hidden = detections.length > 0;
  renderHistogram(detections.find((d) => d.id === state.selected) || null);
}

function renderHistogram(detection) {
  const plot = $("histogram");
  plot.replaceChildren();
  if (!detection || !detection.histogram.counts.length) return;
  const { edges, counts } = detection.histogram;
  const lo = edges[0], hi = edges[edges.length - 1];
  const innerW = PLOT.width - PLOT.left - PLOT.right, innerH = PLOT.height - PLOT.top - PLOT.bottom;
  const x = (v) => PLOT.left + ((v - lo) / (hi - lo || 1)) * innerW;
  const maxCount = Math.max(1, ...counts);
  const base = PLOT.top + innerH;
  plot.append(svg("line", { class: "axis", x1: PLOT.left, x2: PLOT.left + innerW, y1: base, y2: base }));
  counts.forEach((count, i) => {
    const h = (count / maxCount) * innerH;
    const over = detection.threshold !== null && edges[i] >= detection.threshold;
    const bar = svg("rect", {
      class: over ? "bar over" : "bar", x: x(edges[i]) + 0.5, y: base - h,
      width: Math.max(0.5, x(edges[i + 1]) - x(edges[i]) - 1), height: h, "data-count": count,
    });
    bar.append(svg("title", {}, fmt(edges[i]) + " – " + fmt(edges[i + 1]) + ": " + count));
    plot.append(bar);
  });
  plot.append(svg("text", { class: "axis", x: PLOT.left, y: PLOT.height - 8 }, fmt(lo)));
  plot.append(svg("text", { class: "axis", x: PLOT.left + innerW, y: PLOT.height - 8, "text-anchor": "end" }, fmt(hi)));
  plot.append(svg("text", { class: "axis", x: 4, y: PLOT.top + 4 }, String(maxCount)));
  if (detection.threshold !== null) {
    const tx = x(detection.threshold);
    plot.append(svg("line", {
      class: "threshold", x1: tx, x2: tx, y1: PLOT.top - 6, y2: base, "data-threshold": detection.threshold,
    }));
    plot.append(svg("text", { class: "threshold-label", x: tx + 4, y: PLOT.top - 8 }, "threshold " + fmt(detection.threshold)));
  }
}

function renderDrift(events) {
  const body = $("drift").tBodies[0];
  body.replaceChildren(...events.map((e) => el("tr", { class: "drift-row" },
    el("td", {}, when(e.timestamp)),
    el("td", {}, e.model || e.stream || "–"),
    el("td", {}, e.detector),
    el("td", {}, e.on + (e.feature ? " (" + e.feature + ")" : "")),
    el("td", { class: "num" }, e.offset),
    el("td", { class: "num" }, fmt(e.statistic)),
    el("td", { class: "num" }, fmt(e.threshold)),
    el("td", { class: "num" }, fmt(e.p_value)),
  )));
  $("drift-empty").hidden = events.length > 0;
}

function renderJobs(jobs) {
  const body = $("jobs").tBodies[0];
  body.replaceChildren(...jobs.map((j) => el("tr", { class: "job-row " + j.status },
    el("td", {}, when(j.created_at)),
    el("td", {}, j.id.slice(0, 12)),
    el("td", {}, j.kind),
    el("td", {}, j.priority),
    el("td", { class: "job-status" }, j.status),
    el("td", { class: "num" }, j.n_rows ?? "–"),
    el("td", { class: "num" }, j.n_anomalies ?? "–"),
    el("td", {}, j.error ? j.error.type + ": " + j.error.message : (j.output || j.model || "–")),
  )));
  $("jobs-empty").hidden = jobs.length > 0;
}

function setStatus(text, isError) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", Boolean(isError));
}

async function refresh() {
  try {
    const [models, detections, drift, jobs] = await Promise.all([
      api("/v1/models"), api("/v1/detections?limit=50"), api("/v1/drift?limit=50"), api("/v1/jobs?limit=20"),
    ]);
    $("auth").hidden = true;
    renderModels(models.models);
    renderDetections(detections.detections);
    renderDrift(drift.events);
    renderJobs(jobs.jobs);
    setStatus("updated " + new Date().toLocaleTimeString(), false);
    document.body.dataset.loaded = "true";
  } catch (error) {
    if (error instanceof Unauthorized) {
      $("auth").hidden = false;
      setStatus(state.key ? "wrong API key" : "API key needed", true);
    } else {
      setStatus("error: " + error.message, true);
    }
  }
}

$("auth").addEventListener("submit", (event) => {
  event.preventDefault();
  state.key = $("api-key").value.trim();
  sessionStorage.setItem(KEY_STORAGE, state.key);
  refresh();
});

refresh();
setInterval(refresh, REFRESH_MS);
