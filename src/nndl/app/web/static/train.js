// The Train tab: the book's runs as presets, every setting editable; the run trains in the server and its
// progress arrives as server-sent events, redrawn as curves and weight images.
import { api, diverging, legend, lineChart, paintGrid, reshape } from "./paint.js";

const $ = (id) => document.getElementById(id);
let page, presets = [], source = null, run = null, redraw = 0;
const frames = (window.nndlTrainFrames = []);

export function initTrain(p) {
  page = p;
  api("/api/presets").then((data) => {
    presets = data.presets;
    for (const preset of presets) $("preset").add(new Option(preset.title, preset.key));
    fillForm(presets[0]);
  }).catch((e) => page.say(e.message, true));
  $("preset").addEventListener("change", () => fillForm(presets.find((x) => x.key === $("preset").value)));
  $("start").addEventListener("click", start);
  $("pause").addEventListener("click", () => control("pause"));
  $("resume").addEventListener("click", () => control("resume"));
  $("step-batch").addEventListener("click", () => control("step", { unit: "batch" }));
  $("step-epoch").addEventListener("click", () => control("step", { unit: "epoch" }));
  $("stop").addEventListener("click", () => control("stop"));
  $("save").addEventListener("click", save);
  window.addEventListener("tabshown", (e) => e.detail === "train" && draw());
  api("/api/train").then((s) => (s.state === "idle" ? setState("idle") : listen())) // a run on the server: show it
    .catch((e) => page.say(e.message, true));
}

function fillForm(preset) {
  const form = $("settings");
  for (const [name, value] of Object.entries(preset.settings)) {
    if (name === "monitor") {
      form.querySelectorAll("input[name=monitor]").forEach((box) => (box.checked = value.includes(box.value)));
    } else if (form.elements[name]) {
      form.elements[name].value = Array.isArray(value) ? value.join(",") : value ?? "";
    }
  }
  $("preset-note").textContent = preset.note;
}

function readForm() {
  const f = $("settings").elements, number = (name) => Number(f[name].value);
  const settings = {
    hidden: f.hidden.value.split(",").map((s) => s.trim()).filter(Boolean).map(Number),
    cost: f.cost.value, activation: f.activation.value, init: f.init.value, evaluate_on: f.evaluate_on.value,
    eta: number("eta"), lmbda: number("lmbda"), momentum: number("momentum"), dropout: number("dropout"),
    epochs: number("epochs"), mini_batch_size: number("mini_batch_size"), train_size: number("train_size"),
    monitor: [...$("settings").querySelectorAll("input[name=monitor]:checked")].map((b) => b.value),
  };
  if (f.output_activation.value) settings.output_activation = f.output_activation.value;
  if (f.expand.value) settings.expand = f.expand.value;
  if (f.seed.value !== "") settings.seed = number("seed");
  return settings;
}

async function start() {
  try {
    await api("/api/train", readForm());
    page.say("");
    listen();
  } catch (e) { page.say(e.message, true); }
}

async function control(action, body = {}) {
  try { await api(`/api/train/${action}`, body); } catch (e) { page.say(e.message, true); }
}

function listen() {
  if (source) source.close();
  run = { batches: [], epochs: [], n_batches: 1, epochsPlanned: 1, evaluateOn: "test", weights: null, state: "starting" };
  setState("starting");
  source = new EventSource("/api/train/events");
  const on = (name, handler) => source.addEventListener(name, (e) => { handler(JSON.parse(e.data)); schedule(); });
  on("begin", (d) => {
    Object.assign(run, { batches: [], epochs: [], n_batches: d.n_batches, epochsPlanned: d.epochs, evaluateOn: d.evaluate_on,
      sizes: d.sizes, n_train: d.n_train });
    setState("running");
  });
  on("batch", (d) => { run.batches.push([d.epoch + d.batch / d.n_batches, d.cost]); run.at = [d.epoch, d.batch]; });
  on("epoch", (d) => { run.epochs.push(d); run.at = [d.epoch + 1, 0]; });
  on("weights", (d) => (run.weights = d));
  on("state", (d) => setState(d.state));
  on("end", (d) => {
    source.close(); source = null;
    run.end = d;
    setState(d.state);
  });
}

function setState(state) {
  if (run) run.state = state;
  const status = $("train-status");
  status.dataset.state = state;
  const training = state === "running" || state === "paused" || state === "starting";
  $("start").disabled = training;
  for (const id of ["pause", "step-batch", "step-epoch", "stop"]) $(id).disabled = !training;
  $("pause").disabled = state !== "running";
  $("resume").disabled = state !== "paused";
  $("save").disabled = training || state === "idle" || state === "failed";
  if (state === "idle") status.textContent = "no run yet: pick a preset, edit it, Start";
  schedule();
}

function schedule() { if (!redraw) redraw = requestAnimationFrame(() => { redraw = 0; draw(); }); }

function draw() {
  if (!run || !$("tab-train").classList.contains("active")) return;
  const [epoch, batch] = run.at || [0, 0];
  const done = (epoch * run.n_batches + batch) / (run.epochsPlanned * run.n_batches);
  $("train-progress").value = Math.min(1, done);
  const last = run.epochs[run.epochs.length - 1];
  const score = last && last.metrics[run.evaluateOn];
  let text = `${run.state}: epoch ${Math.min(epoch + (batch ? 1 : 0), run.epochsPlanned) || 0} of ${run.epochsPlanned}, ` +
    `mini-batch ${batch || (epoch ? run.n_batches : 0)} of ${run.n_batches}`;
  if (score) text += `; ${run.evaluateOn} accuracy ${(100 * score.accuracy).toFixed(2)}%`;
  if (run.end) {
    const best = run.end.best;
    text = `${run.end.state}` + (best ? `: best ${best.measure} ${(100 * best.accuracy).toFixed(2)}% at epoch ${best.epoch}` : "") +
      (run.end.seconds ? ` (${run.end.seconds.toFixed(1)} s)` : "") + (run.end.reason ? `; ${run.end.reason}` : "") +
      (run.end.error ? `; ${run.end.error}` : "");
  }
  $("train-status").textContent = text;
  $("train-status").dataset.points = String(run.batches.length);
  frames.push([run.state, run.batches.length]); // what each redraw showed (the browser test reads it)
  $("train-status").dataset.epochs = String(run.epochs.length);
  const perEpoch = (dataset, key, scale = 1) => run.epochs
    .filter((r) => r.metrics[dataset] && r.metrics[dataset][key] !== undefined && r.metrics[dataset][key] !== null)
    .map((r) => [r.epoch + 1, scale * r.metrics[dataset][key]]);
  lineChart($("cost-chart"), [
    { label: "mini-batch C₀ (every few batches)", colour: "#7aa6d6", points: run.batches, dots: true },
    { label: "training set, per epoch", colour: "#c0392b", points: perEpoch("training", "cost") },
    { label: `${run.evaluateOn} set, per epoch`, colour: "#8e44ad", points: perEpoch(run.evaluateOn, "cost"), dash: [5, 4] },
  ], { xlabel: "epoch", ylabel: "cost", xmin: 0, xmax: run.epochsPlanned, ymin: 0 });
  lineChart($("accuracy-chart"), [
    { label: "training", colour: "#c0392b", points: perEpoch("training", "accuracy", 100) },
    { label: run.evaluateOn, colour: "#2471a3", points: perEpoch(run.evaluateOn, "accuracy", 100) },
  ], { xlabel: "epoch", ylabel: "accuracy (%)", xmin: 0, xmax: run.epochsPlanned });
  drawWeights();
}

function drawWeights() {
  const w = run.weights, box = $("train-weights");
  if (!w) return;
  while (box.children.length < w.neurons.length) box.append(document.createElement("canvas"));
  const bound = Math.max(1e-12, ...w.neurons.map((n) => Math.max(...n.map(Math.abs))));
  w.neurons.forEach((neuron, j) => paintGrid(box.children[j], reshape(neuron, w.side), (v) => diverging(v / bound)));
  legend($("train-weights-legend"), (v) => diverging(v / bound), -bound, bound,
    `weight w¹ⱼₖ into hidden neurons 0-${w.neurons.length - 1}, at epoch ${w.epoch}, mini-batch ${w.batch}`);
}

async function save() {
  const name = $("save-name").value.trim();
  try {
    await api("/api/train/save", { name });
    await page.refreshModels(name);
    page.say(`saved ${name} in the models folder; it is now the model the Draw and Mistakes tabs use`);
  } catch (e) { page.say(e.message, true); }
}
