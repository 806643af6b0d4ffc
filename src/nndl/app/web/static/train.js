// The Train tab: the book's runs as presets, every setting editable. The run trains in the server; the page
// holds its state (one "snapshot" message when it joins, then each new event), so a reload, a second tab or a
// phone shows the same run and can stop it. Epochs are counted from 0, as `nndl train` prints them.
import { api, diverging, legend, lineChart, paintGrid, reshape } from "./paint.js";

const $ = (id) => document.getElementById(id);
const WATCH_MS = 2000; // how often the page asks whether a run started elsewhere (and whether the server is up)
export const ACTIVE = ["starting", "running", "paused"];
const REDRAW_MS = 500; // the charts are redrawn at most twice a second: drawing must not slow the training
let page, presets = [], source = null, run = null, redraw = 0, paintedWeights = null;
const frames = (window.nndlTrainFrames = []);
const finishListeners = [];

export function initTrain(p) {
  page = p;
  page.train = { start: startRun, onFinish: (listener) => finishListeners.push(listener), current: () => run };
  api("/api/presets").then((data) => {
    presets = data.presets;
    for (const preset of presets) $("preset").add(new Option(preset.title, preset.key));
    const wanted = presets.find((x) => x.key === page.hashValue("preset")) || presets[0];
    $("preset").value = wanted.key;
    fillForm(wanted);
    const shared = page.hashValue("run"); // a link to a run: its settings, as its sender started it
    if (shared) try { fillForm({ settings: JSON.parse(shared), note: "settings from the link you followed" }); } catch (e) { /* not ours */ }
  }).catch((e) => page.say(e.message, true));
  $("preset").addEventListener("change", () => {
    fillForm(presets.find((x) => x.key === $("preset").value));
    page.setHash("preset", $("preset").value);
  });
  $("start").addEventListener("click", () => {
    const settings = readForm();
    page.setHash("run", JSON.stringify(settings)); // the address now reproduces this run: share it
    startRun(settings);
  });
  $("pause").addEventListener("click", () => control("pause"));
  $("resume").addEventListener("click", () => control("resume"));
  $("step-batch").addEventListener("click", () => control("step", { unit: "batch" }));
  $("step-epoch").addEventListener("click", () => control("step", { unit: "epoch" }));
  $("stop").addEventListener("click", () => control("stop"));
  $("save").addEventListener("click", save);
  window.addEventListener("tabshown", (e) => e.detail === "train" && draw());
  setState("idle");
  watch();
}

// Every few seconds without an open stream: is the server up, and is a run training that this page should show?
async function watch() {
  if (!source) {
    try {
      const status = await api("/api/train");
      page.connected(true);
      if (ACTIVE.includes(status.state) || (status.run && (!run || run.id !== status.run))) listen();
      else if (status.state === "idle" && run && ACTIVE.includes(run.state)) {
        run = null; setState("idle");
        page.say("the server restarted: the run that was training is gone; start it again", true);
      }
    } catch (e) { page.connected(false); }
  }
  setTimeout(watch, WATCH_MS);
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
  clearFieldErrors();
}

function readForm() {
  const f = $("settings").elements, number = (name) => Number(f[name].value);
  const settings = {
    hidden: f.hidden.value.split(",").map((s) => s.trim()).filter(Boolean).map(Number),
    cost: f.cost.value, activation: f.activation.value, init: f.init.value, evaluate_on: f.evaluate_on.value,
    l2_scale: f.l2_scale.value,
    eta: number("eta"), lmbda: number("lmbda"), momentum: number("momentum"), dropout: number("dropout"),
    epochs: number("epochs"), mini_batch_size: number("mini_batch_size"), train_size: number("train_size"),
    monitor: [...$("settings").querySelectorAll("input[name=monitor]:checked")].map((b) => b.value),
  };
  if (f.layers.value.trim()) settings.layers = f.layers.value.trim().replace(/\s+/g, "");
  if (f.output_activation.value) settings.output_activation = f.output_activation.value;
  if (f.expand.value) settings.expand = f.expand.value;
  if (f.seed.value !== "") settings.seed = number("seed");
  return settings;
}

// Start a run (the form's, or the Draw tab's quick one); a run already training elsewhere is joined instead.
async function startRun(settings) {
  clearFieldErrors();
  try {
    await api("/api/train", settings);
    page.say("");
    listen();
    return true;
  } catch (e) {
    if (e.status === 409 && /already training/.test(e.message)) {
      page.say("a run is already training on this server (started from another page): showing it here");
      listen();
    } else if (!showFieldErrors(e.detail)) page.say(e.message, true);
    return false;
  }
}

async function control(action, body = {}) {
  try {
    const status = await api(`/api/train/${action}`, body);
    if (run && run.id === status.run) Object.assign(run, { epoch: status.epoch, batch: status.batch }), schedule();
  } catch (e) { page.say(e.message, true); }
}

// -- the event stream -------------------------------------------------------------------------------------------

function listen() {
  if (source) source.close();
  source = new EventSource("/api/train/events");
  // state changes show at once; the stream of costs and weights is drawn at most every REDRAW_MS
  const on = (name, handler) => source.addEventListener(name, (e) => {
    handler(JSON.parse(e.data));
    if (["snapshot", "state", "end"].includes(name)) draw(); else schedule();
  });
  on("snapshot", (d) => {
    run = { id: d.run, state: d.state, reason: d.reason, epoch: d.epoch, batch: d.batch, begin: d.begin,
      points: d.points, epochs: d.epochs, weights: d.weights, end: d.end };
    setState(d.state);
  });
  on("begin", (d) => { run.begin = d; setState(d.state); });
  on("batch", (d) => { run.points.push([d.epoch, d.batch, d.cost]); Object.assign(run, { epoch: d.epoch, batch: d.batch }); });
  on("epoch", (d) => { run.epochs.push(d); Object.assign(run, { epoch: d.epoch + 1, batch: 0 }); });
  on("weights", (d) => (run.weights = d));
  on("state", (d) => { Object.assign(run, { epoch: d.epoch, batch: d.batch }); setState(d.state); });
  on("end", (d) => {
    source.close(); source = null;
    run.end = d;
    setState(d.state);
    finishListeners.forEach((listener) => listener(run));
  });
  source.onopen = () => page.connected(true);
  source.onerror = () => { // the server went away (or restarted): say so now, and let watch() reconnect
    if (source) source.close();
    source = null;
    page.connected(false);
  };
}

function setState(state) {
  if (run) run.state = state;
  const status = $("train-status");
  status.dataset.state = state;
  const training = ACTIVE.includes(state);
  $("start").disabled = training;
  for (const id of ["step-batch", "step-epoch", "stop"]) $(id).disabled = !training;
  $("pause").disabled = state !== "running";
  $("resume").disabled = state !== "paused";
  $("save").disabled = training || state === "idle" || state === "failed";
  if (state === "idle") status.textContent = "no run yet: pick a preset, edit it, Start";
  schedule();
}

function schedule() {
  if (!redraw) redraw = setTimeout(() => requestAnimationFrame(() => { redraw = 0; draw(); }), REDRAW_MS);
}

const percent = (x) => `${(100 * x).toFixed(2)}%`;

// One line for where the run stands, counting epochs from 0 as nndl train does ("Epoch 0: ...").
export function describe(r) {
  const b = r.begin, last = r.epochs[r.epochs.length - 1];
  if (!b) return `${r.state}: loading the data…`;
  const span = `epochs 0-${b.epochs - 1}`;
  if (r.end) {
    const best = r.end.best, done = r.epochs.length;
    return `${r.end.state}: ${done} ${done === 1 ? "epoch" : "epochs"} trained (of ${span})` +
      (r.end.seconds ? ` in ${r.end.seconds.toFixed(1)} s` : "") +
      (best ? `; best ${best.measure} ${percent(best.accuracy)} at epoch ${best.epoch}` : "") +
      (r.end.reason ? `; ${r.end.reason}` : "") + (r.end.error ? `; ${r.end.error}` : "");
  }
  const epoch = Math.min(r.epoch, b.epochs - 1), batch = r.epoch >= b.epochs ? b.n_batches : r.batch;
  let text = `${r.state}: epoch ${epoch} (of ${span}), mini-batch ${batch.toLocaleString()} of ${b.n_batches.toLocaleString()}`;
  const score = last && last.metrics[b.evaluate_on];
  if (score) text += `; after epoch ${last.epoch}: ${b.evaluate_on} accuracy ${percent(score.accuracy)}`;
  return text;
}

function draw() {
  if (!run) return;
  const status = $("train-status");
  status.textContent = describe(run);
  status.dataset.epochs = String(run.epochs.length);
  status.dataset.points = String(run.points.length);
  status.dataset.batch = `${run.epoch}:${run.batch}`;
  status.dataset.run = run.id;
  frames.push([run.state, run.points.length]); // what each redraw showed (the browser test reads it)
  page.trainingChanged(run);
  const b = run.begin;
  if (!b || !$("tab-train").classList.contains("active")) return;
  $("train-progress").value = Math.min(1, run.end && run.end.state === "finished" ? 1 :
    (run.epoch * b.n_batches + run.batch) / (b.epochs * b.n_batches));
  const on = b.evaluate_on;
  const perEpoch = (dataset, key, scale = 1) => run.epochs
    .filter((r) => r.metrics[dataset] && r.metrics[dataset][key] !== undefined && r.metrics[dataset][key] !== null)
    .map((r) => [r.epoch, scale * r.metrics[dataset][key]]);
  const xlabel = "epoch (counted from 0, as nndl train prints; mini-batches of epoch k fall between k and k + 1)";
  lineChart($("cost-chart"), [
    { label: "mini-batch C₀ (every few batches)", colour: "#5b8cc0", points: run.points.map(([e, n, c]) => [e + n / b.n_batches, c]), dots: true },
    { label: "training set, after each epoch", colour: "#c0392b", points: perEpoch("training", "cost") },
    { label: `${on} set, after each epoch`, colour: "#8e44ad", points: perEpoch(on, "cost"), dash: [5, 4] },
  ], { xlabel, ylabel: "cost", xmin: 0, xmax: b.epochs, ymin: 0 });
  lineChart($("accuracy-chart"), [
    { label: "training", colour: "#c0392b", points: perEpoch("training", "accuracy", 100) },
    { label: on, colour: "#2471a3", points: perEpoch(on, "accuracy", 100) },
  ], { xlabel, ylabel: "accuracy (%)", xmin: 0, xmax: b.epochs });
  drawWeights();
}

function drawWeights() {
  const w = run.weights, box = $("train-weights");
  if (w && w === paintedWeights && box.children.length) return; // unchanged since the last redraw
  paintedWeights = w;
  if (!w) { box.innerHTML = ""; $("train-weights-legend").textContent = run.begin && run.begin.layers && run.begin.layers[0] !== "full" ? "this network's first layer is convolutional: its filters show on the Draw tab" : ""; return; }
  while (box.children.length < w.neurons.length) {
    const canvas = document.createElement("canvas");
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", `weights into hidden neuron ${box.children.length}`);
    box.append(canvas);
  }
  const bound = Math.max(1e-12, ...w.neurons.map((n) => Math.max(...n.map(Math.abs))));
  w.neurons.forEach((neuron, j) => paintGrid(box.children[j], reshape(neuron, w.side), (v) => diverging(v / bound)));
  legend($("train-weights-legend"), (v) => diverging(v / bound), -bound, bound,
    `weight w¹ⱼₖ into hidden neurons 0-${w.neurons.length - 1}, ` + weightsAt(w));
}

// When weights were copied from the training network ({epoch, batch}), in the words the status line uses.
export const weightsAt = (w) => (w.batch ? `in epoch ${w.epoch}, after mini-batch ${w.batch.toLocaleString()}`
  : w.epoch ? `after epoch ${w.epoch - 1}` : "before training");

async function save() {
  const name = $("save-name").value.trim();
  try {
    await api("/api/train/save", { name });
    await page.refreshModels(name);
    page.say(`saved ${name} in the models folder; it is now the model the Draw and Mistakes tabs use`);
  } catch (e) { page.say(e.message, true); }
}

// -- form errors next to their field, in the page's words ---------------------------------------------------------

const FIELD_WORDS = {
  hidden: "hidden layers: whole numbers of neurons, 1 to 1000, at most 3 layers, e.g. 100 or 100,30",
  eta: "η: a number above 0, at most 1000", lmbda: "λ: a number from 0 to 1000", momentum: "μ: from 0 up to (not including) 1",
  dropout: "dropout p: from 0 up to (not including) 1", epochs: "epochs: a whole number from 1 to 100",
  mini_batch_size: "mini-batch size: a whole number from 1 to 1000", train_size: "training images: a whole number from 1 to 50,000",
  seed: "seed: a whole number from 0 to 4294967295, or empty for a random one",
  layers: "layers: e.g. conv20x5,pool2,full100 (conv<maps>x<size>, pool<size>, full<neurons>)",
};

function clearFieldErrors() {
  document.querySelectorAll("#settings .field-error").forEach((e) => e.remove());
  document.querySelectorAll("#settings [aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
}

// Put each error the server named a field for beside that field; true if every error found its field.
function showFieldErrors(detail) {
  const form = $("settings");
  const problems = Array.isArray(detail) ? detail.map((d) => [(d.loc || []).filter((p) => p !== "body")[0], d.msg])
    : typeof detail === "string" ? [[Object.keys(FIELD_WORDS).find((name) => detail.startsWith(name) ||
        detail.includes(`--${name.replace("_", "-")}`)), detail]] : [];
  if (!problems.length) return false;
  let placed = 0;
  for (const [name, message] of problems) {
    const field = name && form.elements[name];
    if (!field || !field.closest) continue;
    const note = document.createElement("span");
    note.className = "field-error";
    note.id = `error-${name}`;
    note.textContent = Array.isArray(detail) ? FIELD_WORDS[name] || message : message;
    field.setAttribute("aria-invalid", "true");
    field.setAttribute("aria-describedby", note.id);
    field.closest("label").append(note);
    if (!placed++) field.focus();
  }
  if (placed) page.say("some settings need changing: see the notes beside them", true);
  return placed === problems.length;
}
