// The gallery page: fills the forms from /api/models, shows generated grids, and follows training jobs.
// Every request carries the page's own ?token= (if any), so the page works on a server started with --token.
"use strict";

const token = new URLSearchParams(location.search).get("token");
const $ = (id) => document.getElementById(id);
let models = [];

function apiUrl(path, query = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(query)) {
    if (value !== "" && value !== null && value !== undefined) url.searchParams.set(key, value);
  }
  if (token) url.searchParams.set("token", token);
  return url.pathname + url.search;
}

// A failed request's JSON error, shown as the server worded it.
async function request(path, options = {}, query = {}) {
  const response = await fetch(apiUrl(path, query), options);
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error; } catch (_) { /* not JSON: keep the status line */ }
    throw new Error(message);
  }
  return response;
}

function showError(element, error) {
  element.textContent = error ? error.message : "";
  element.hidden = !error;
}

function option(value, label) {
  const element = document.createElement("option");
  element.value = value;
  element.textContent = label;
  return element;
}

function selectedModel() {
  return models.find((model) => model.name === $("run").value);
}

// "dcgan (shapes)": the choice and, where it is not the choice's usual one, the architecture.
function network(described) {
  if (!described) return "?";
  const usual = { gan: "mlp" }[described.choice] || "conv";
  return described.architecture && described.architecture !== usual
    ? `${described.choice} (${described.architecture})` : described.choice;
}

function fillRunDetails() {
  const model = selectedModel();
  const classSelect = $("class");
  const checkpointSelect = $("checkpoint");
  classSelect.replaceChildren(option("", "any class"));
  checkpointSelect.replaceChildren();
  $("generate").disabled = !model;
  if (!model) { $("run-info").textContent = "No finished runs yet: train one below."; return; }
  (model.class_names || []).forEach((name) => classSelect.append(option(name, name)));
  classSelect.disabled = !model.conditional;
  model.checkpoints.forEach((name) => checkpointSelect.append(option(name, name)));
  const [height, width, channels] = model.image_shape || [];
  const metric = model.best_metric ? `, best ${model.best_metric.name} ${model.best_metric.value.toFixed(3)} at step ${model.best_metric.step}` : "";
  $("run-info").textContent = `${width}×${height} px, ${channels === 1 ? "grey" : "colour"}, ` +
    `${network(model.config.generator)} generator / ${network(model.config.discriminator)} discriminator, ` +
    `${model.steps} steps${metric}`;
}

async function loadModels() {
  const chosen = $("run").value;
  const listing = await (await request("/api/models")).json();
  models = listing.models;
  const broken = listing.broken.map((run) => `${run.name} (${run.problem})`);
  $("broken-runs").textContent = broken.length ? `Not served, files broken: ${broken.join("; ")}` : "";
  $("broken-runs").hidden = !broken.length;
  $("run").replaceChildren(...models.map((model) => option(model.name, model.name)));
  if (models.some((model) => model.name === chosen)) $("run").value = chosen;
  fillRunDetails();
}

async function generate(event) {
  event.preventDefault();
  const query = { run: $("run").value, class: $("class").value, n: $("count").value, seed: $("seed").value,
                  checkpoint: $("checkpoint").value, truncation: $("truncation").value };
  $("generate").disabled = true;
  try {
    const response = await request("/generate", {}, query);
    const grid = $("grid");
    const loaded = new Promise((resolve) => { grid.onload = resolve; });
    URL.revokeObjectURL(grid.src);
    grid.src = URL.createObjectURL(await response.blob());
    await loaded;
    // Tiny images are drawn larger, pixel for pixel, so that they can be seen.
    grid.style.width = `${grid.naturalWidth * Math.max(1, Math.floor(320 / grid.naturalWidth))}px`;
    $("result-caption").textContent = `${query.n} image(s), ${query.class || "any class"}, seed ${response.headers.get("X-Seed")}`;
    $("download-png").href = apiUrl("/generate", query);
    $("download-zip").href = apiUrl("/generate", { ...query, format: "zip" });
    const vector = (selectedModel().config.generator || {}).architecture === "vector";
    $("download-svg").hidden = !vector;
    if (vector) $("download-svg").href = apiUrl("/generate", { ...query, format: "svg" });
    await showVectors(vector, query);
    $("result").hidden = false;
    showError($("generate-error"), null);
  } catch (error) {
    showError($("generate-error"), error);
  } finally {
    $("generate").disabled = false;
  }
}

// A vector generator's samples as SVG, drawn large: they stay sharp at any size. One request per seed, so each
// SVG arrives as itself (several in one answer come as a zip).
async function showVectors(vector, query) {
  const shown = $("svg-samples");
  shown.querySelectorAll("img").forEach((image) => URL.revokeObjectURL(image.src));
  shown.replaceChildren();
  $("vectors").hidden = !vector;
  if (!vector) return;
  const first = Number(query.seed) || 0;
  const count = Math.min(Number(query.n) || 1, 6);
  for (let seed = first; seed < first + count; seed += 1) {
    const { n, seed: _, ...rest } = query;
    const response = await request("/generate", {}, { ...rest, seeds: String(seed), format: "svg", size: 192 });
    const image = Object.assign(document.createElement("img"), { alt: `SVG of seed ${seed}`, width: 192, height: 192 });
    image.src = URL.createObjectURL(await response.blob());
    shown.append(image);
  }
  $("svg-caption").textContent = `Seeds ${first}–${first + count - 1} as SVG, drawn at 192 px`;
}

function jobItem(job) {
  const item = document.createElement("li");
  item.className = "job";
  const name = Object.assign(document.createElement("span"), { className: "job-name", textContent: job.id });
  const state = Object.assign(document.createElement("span"), { className: `state state-${job.state}`, textContent: job.state });
  const progress = Object.assign(document.createElement("progress"), { max: job.total_steps || 1, value: job.step || 0 });
  const losses = job.losses ? Object.entries(job.losses).map(([key, value]) => `${key} ${value.toFixed(3)}`).join(", ") : "";
  const details = Object.assign(document.createElement("span"), { className: "details",
    textContent: [`step ${job.step} / ${job.total_steps ?? "?"}`, losses, job.message].filter(Boolean).join(" · ") });
  item.append(name, state, progress, details);
  if (job.sample_url) {
    item.append(Object.assign(document.createElement("img"), { src: apiUrl(job.sample_url), alt: `Latest samples of ${job.id}` }));
  }
  if (job.state === "queued" || job.state === "running") {
    const cancel = Object.assign(document.createElement("button"), { type: "button", textContent: "Cancel (keeps a checkpoint)" });
    cancel.onclick = async () => {
      cancel.disabled = true;
      try { await request(job.url, { method: "DELETE" }); } catch (error) { showError($("job-error"), error); }
      refreshJobs();
    };
    item.append(cancel);
  }
  return item;
}

let polling = null;
async function refreshJobs() {
  const jobs = (await (await request("/api/jobs")).json()).jobs;
  $("jobs").replaceChildren(...jobs.slice().reverse().map(jobItem));
  if (!jobs.length) $("jobs").append(Object.assign(document.createElement("li"), { className: "muted", textContent: "No jobs yet." }));
  const active = jobs.some((job) => job.state === "queued" || job.state === "running");
  if (!active && polling) {
    clearInterval(polling);
    polling = null;
    loadModels();  // a finished job is a new run to generate from
  } else if (active && !polling) {
    polling = setInterval(refreshJobs, 2000);
  }
}

// The config file goes as a JSON body: the server takes changes only as application/json.
async function submitJob(event) {
  event.preventDefault();
  try {
    const body = await $("config-file").files[0].text();
    await request("/api/jobs", { method: "POST", headers: { "Content-Type": "application/json" }, body },
                  { name: $("job-name").value });
    showError($("job-error"), null);
    refreshJobs();
  } catch (error) {
    showError($("job-error"), error);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("run").addEventListener("change", fillRunDetails);
  $("random-seed").addEventListener("click", () => { $("seed").value = Math.floor(Math.random() * 2 ** 32); });
  $("generate-form").addEventListener("submit", generate);
  $("job-form").addEventListener("submit", submitJob);
  loadModels().catch((error) => showError($("generate-error"), error));
  refreshJobs().catch((error) => showError($("job-error"), error));
});
