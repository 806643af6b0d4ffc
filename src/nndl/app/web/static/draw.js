// The Draw tab: a pad for mouse, finger and pen (or a real MNIST digit, from the keyboard too); on each stroke's
// end the server preprocesses the drawing the way MNIST was, feeds it forward and backpropagates it, and every
// step is drawn here. With no model yet, it offers to train the book's [784, 30, 10] for one epoch. While a run
// trains (or is paused), the digit is read with the run's current weights, and read again as they change.
import { api, css, diverging, legend, paintGrid, sequential, ink } from "./paint.js";
import { ACTIVE, describe, weightsAt } from "./train.js";

const PEN_WIDTH = 20; // px on the 280-px pad: MNIST strokes are about 2-3 px of 28
const QUICK_MODEL = "quick-784-30-10.npz";
const QUICK_RUN = { hidden: [30], cost: "quadratic", init: "large", eta: 3.0, epochs: 1, mini_batch_size: 10,
  train_size: 50000, monitor: [], save_as: QUICK_MODEL }; // chapter 1's network, one epoch: about 95%
const UNSURE = 0.6; // a guess whose output is under 60% of all the outputs together is shown as unsure
const LIVE_MS = 1000; // the server copies a live run's weights about once a second: read the pad again no more often
const $ = (id) => document.getElementById(id);
let page, last = null, strokeEnded = 0, selectedNeuron = null, pending = null, quick = false;
let shownDigit = null; // {dataset, index} while the pad shows an MNIST digit untouched: read exactly as MNIST holds it
let lastLive = false, liveAt = null; // whether the result shown came from the live run, and its weights' {epoch, batch}
let liveAsked = { at: null, time: -Infinity }; // where the run stood when the pad was last read with it
let modelCount = 0, runLive = false; // saved models listed; whether a run trains now (its weights read the pad)

// "No model yet" only while nothing can read the pad: no saved model and no run training, but the quick one it starts.
const offerFirstModel = () => ($("first-model").hidden = modelCount > 0 || (runLive && !quick));
export const timings = (window.nndlTimings = []); // ms from a stroke's end to its guess on screen

export function initDraw(p) {
  page = p;
  const pad = $("pad"), ctx = pad.getContext("2d");
  clearPad();
  let drawing = false;
  const point = (e) => {
    const r = pad.getBoundingClientRect();
    return [((e.clientX - r.left) * pad.width) / r.width, ((e.clientY - r.top) * pad.height) / r.height];
  };
  pad.addEventListener("pointerdown", (e) => {
    drawing = true; pad.setPointerCapture(e.pointerId);
    shownDigit = null;
    const [x, y] = point(e);
    ctx.beginPath(); ctx.moveTo(x, y); ctx.lineTo(x + 0.01, y); ctx.stroke();
  });
  pad.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    const [x, y] = point(e);
    ctx.lineTo(x, y); ctx.stroke(); ctx.beginPath(); ctx.moveTo(x, y);
  });
  const end = () => { if (drawing) { drawing = false; strokeEnded = performance.now(); $("digit-source").textContent = ""; analyse(); } };
  pad.addEventListener("pointerup", end);
  pad.addEventListener("pointercancel", end);
  $("clear").addEventListener("click", () => { clearPad(); last = null; render(null); $("reader").textContent = ""; });
  const again = () => pad.dataset.empty === "false" && analyse();
  $("centre").addEventListener("change", again);
  for (let d = 0; d <= 9; d++) $("label").add(new Option(String(d), String(d)));
  $("label").addEventListener("change", again);
  $("live").addEventListener("change", again);
  $("hidden").addEventListener("click", (e) => pickNeuron(e));
  $("neuron-pick").addEventListener("change", () => last && last.hidden && showNeuron(Math.min(+$("neuron-pick").value, last.hidden.a.length - 1)));
  $("random-digit").addEventListener("click", () => showDigit("test", null));
  $("quick-train").addEventListener("click", quickTrain);
  page.showDigit = showDigit;
  page.onModel(() => { selectedNeuron = null; if (pad.dataset.empty === "false") analyse(); });
  window.addEventListener("modelslisted", (e) => { modelCount = e.detail; offerFirstModel(); });
  page.onTraining((run) => { if (quick) $("quick-status").textContent = describe(run); followLive(run); });
  page.train.onFinish(async (run) => {
    if (!quick) return;
    quick = false;
    $("quick-train").disabled = false;
    if (run.end.state !== "finished" || run.end.error) { $("quick-status").textContent = describe(run); return; }
    await page.refreshModels(QUICK_MODEL);
    page.say(`trained and saved ${QUICK_MODEL}: draw a digit, or try a random test digit`);
    showDigit("test", null);
  });
}

// Train the book's first network for one epoch; the server saves it, and the page uses it at once.
async function quickTrain() {
  $("quick-train").disabled = quick = true;
  $("quick-status").textContent = "starting…";
  if (!(await page.train.start(QUICK_RUN))) { $("quick-train").disabled = quick = false; $("quick-status").textContent = ""; }
}

// The run's weights as they change: while it is live, the digit on the pad is read again each time the run has moved
// on (at most every LIVE_MS, one request at a time, only while the Draw tab shows); once it ends, the picked model reads it.
function followLive(run) {
  const live = !!run.begin && ACTIVE.includes(run.state);
  $("live-choice").hidden = !live;
  runLive = live;
  offerFirstModel();
  if (!live) {
    if (!lastLive) return;
    lastLive = false;
    if (page.model) analyse();
    else $("reader").textContent = `read with the run's weights ${weightsAt(liveAt)}; the run has ended: save it ` +
      "on the Train tab to go on reading with it";
    return;
  }
  const at = `${run.epoch}:${run.batch}`, now = performance.now();
  if (!$("live").checked || $("pad").dataset.empty !== "false" || !$("tab-draw").classList.contains("active") ||
      pending || at === liveAsked.at || now - liveAsked.time < LIVE_MS) return;
  liveAsked = { at, time: now };
  analyse();
}

const readingLive = () => {
  const run = page.train.current();
  return !!run && !!run.begin && ACTIVE.includes(run.state) && $("live").checked;
};

// Paint MNIST digit ``index`` of ``dataset`` (random if null) on the pad, 10 px per pixel, and read it.
export async function showDigit(dataset, index) {
  try {
    const d = await api(`/api/digits/${dataset}` + (index === null ? "" : `?index=${index}`));
    const pad = $("pad"), ctx = pad.getContext("2d"), scale = pad.width / d.side;
    clearPad();
    d.pixels.forEach((v, i) => {
      const g = 255 - v;
      ctx.fillStyle = `rgb(${g},${g},${g})`;
      ctx.fillRect((i % d.side) * scale, Math.floor(i / d.side) * scale, scale, scale);
    });
    $("label").value = String(d.label);
    shownDigit = { dataset, index: d.index };
    $("digit-source").textContent = `${dataset} image #${d.index}, labelled ${d.label} (the costs below are for that label)`;
    page.showTab("draw");
    strokeEnded = performance.now();
    await analyse();
  } catch (e) { page.say(e.message, true); }
}

function clearPad() {
  const pad = $("pad"), ctx = pad.getContext("2d");
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, pad.width, pad.height);
  ctx.strokeStyle = "#000"; ctx.lineWidth = PEN_WIDTH; ctx.lineCap = ctx.lineJoin = "round";
  pad.dataset.empty = "true";
  shownDigit = null;
  $("guess").textContent = "–";
  $("guess-confidence").textContent = "";
}

async function analyse() {
  const pad = $("pad");
  const live = readingLive();
  if (!live && !page.model) { page.say("no model yet: train a quick one (the button above the pad), or upload one on the Models tab", true); return; }
  const started = strokeEnded || performance.now();
  strokeEnded = 0;
  pad.dataset.empty = "false";
  const body = { centre: $("centre").checked };
  if (!live) body.model = page.model;
  if (shownDigit) body.digit = shownDigit; else body.image = pad.toDataURL("image/png");
  if ($("label").value !== "") body.label = +$("label").value;
  const request = (pending = api(live ? "/api/train/draw" : "/api/draw", body));
  try {
    const result = await request;
    if (request !== pending) return; // a newer stroke's answer is on its way
    last = result; lastLive = live; liveAt = result.weights_at;
    render(result);
    $("reader").textContent = live ? `read with the live run's weights ${weightsAt(liveAt)}` : `read with ${page.model}`;
    if ($("message").className === "error") page.say(""); // an earlier problem is solved; other news stays
    const ms = performance.now() - started;
    timings.push(ms);
    $("guess").dataset.ms = ms.toFixed(1);
  } catch (e) {
    if (!(live && e.status === 409)) page.say(e.message, true); // a run that has just ended: the model reads it next
  } finally {
    if (request === pending) pending = null;
  }
}

// A small array drawn large and crisp, with optional markers [row, column, colour] in its own pixel units.
function paintLarge(canvas, rows, colour, markers = []) {
  const small = document.createElement("canvas");
  paintGrid(small, rows, colour);
  const scale = 4, ctx = canvas.getContext("2d");
  canvas.width = rows[0].length * scale; canvas.height = rows.length * scale;
  canvas.style.width = `${canvas.width}px`; canvas.style.height = `${canvas.height}px`; // keep the aspect ratio
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
  for (const [r, c, colour] of markers) {
    const x = (c + 0.5) * scale, y = (r + 0.5) * scale;
    ctx.strokeStyle = colour; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.moveTo(x - 7, y); ctx.lineTo(x + 7, y); ctx.moveTo(x, y - 7); ctx.lineTo(x, y + 7); ctx.stroke();
  }
}

function render(r) {
  $("guess").textContent = r ? r.guess : "–";
  $("guess-confidence").textContent = "";
  if (!r) return;
  renderConfidence(r);
  const s = r.steps, box = $("step-box"), ctx = box.getContext("2d");
  box.width = box.height = 140;
  ctx.drawImage($("pad"), 0, 0, 140, 140);
  const k = 140 / s.size[0];
  ctx.strokeStyle = "#d33"; ctx.lineWidth = 2;
  ctx.strokeRect(s.box.left * k, s.box.top * k, (s.box.right - s.box.left) * k, (s.box.bottom - s.box.top) * k);
  paintLarge($("step-scaled"), s.scaled, ink);
  const [cy, cx] = s.centre_of_mass;
  paintLarge($("step-framed"), s.framed, ink, [[13.5, 13.5, "#999"], [cy - 0.5, cx - 0.5, "#d33"]]);
  $("cap-framed").textContent = `3. in a 28×28 frame; + centre of mass (${cx.toFixed(1)}, ${cy.toFixed(1)})`;
  paintLarge($("step-input"), s.input, ink, [[13.5, 13.5, "#999"]]);
  $("cap-input").textContent = s.centred
    ? `4. the input x: moved (${s.shift[1]}, ${s.shift[0]}) px so the mass is at the centre`
    : "4. the input x: not centred (switch is off)";
  bars($("outputs"), r.output, r.guess, (v) => v.toFixed(3), (v) => css(sequential(0.25 + 0.75 * v)));
  renderHidden(r);
  renderConvolution(r.convolution);
  renderDiagram(r.diagram);
  renderBackprop(r);
}

// How sure the guess is: its output's share of all the outputs; an unsure guess looks unsure and names the runner-up.
function renderConfidence(r) {
  const total = r.output.reduce((sum, v) => sum + Math.max(0, v), 0) || 1, share = Math.max(0, r.output[r.guess]) / total;
  const second = r.output.map((v, j) => [v, j]).filter(([, j]) => j !== r.guess).sort((a, b) => b[0] - a[0])[0];
  const unsure = share < UNSURE;
  $("guess").classList.toggle("unsure", unsure);
  $("guess-confidence").textContent = unsure
    ? `not sure: ${(100 * share).toFixed(0)}% of the output; maybe ${second[1]}`
    : `${(100 * share).toFixed(0)}% of the output`;
}

function bars(element, values, highlight, format, colour, signed = false) {
  const bound = signed ? Math.max(1e-12, ...values.map(Math.abs)) : 1;
  element.innerHTML = values.map((v, j) => {
    const width = Math.min(100, (100 * Math.abs(v)) / bound);
    const style = signed ? `width:${width / 2}%;${v < 0 ? `margin-left:${50 - width / 2}%` : "margin-left:50%"}` : `width:${width}%`;
    return `<div class="bar${j === highlight ? " chosen" : ""}"><span class="bar-label">${j}</span>` +
      `<span class="bar-track"><span class="bar-fill" style="${style};background:${colour(v / bound)}"></span></span>` +
      `<span class="bar-value">${format(v)}</span></div>`;
  }).join("");
}

function gridShape(n) { const cols = Math.ceil(Math.sqrt(n)); return [cols, Math.ceil(n / cols)]; }

function asRows(values, fill) {
  const [cols, rows] = gridShape(values.length), out = [];
  for (let r = 0; r < rows; r++) out.push(Array.from({ length: cols }, (_, c) => values[r * cols + c] ?? fill));
  return out;
}

function activationScale(h) {
  if (h.activation === "tanh") return [(v) => diverging(v), -1, 1];
  const top = h.activation === "relu" ? Math.max(1e-6, ...h.a) : 1;
  return [(v) => (Number.isNaN(v) ? [240, 240, 240] : sequential(v / top)), 0, top];
}

function renderHidden(r) {
  const canvas = $("hidden");
  if (!r.hidden) {
    canvas.width = canvas.height = 0;
    $("hidden-legend").textContent = r.convolution ? "this model begins with convolutional layers: their feature maps are above"
      : "this model has no hidden layer";
    return;
  }
  const [colour, low, high] = activationScale(r.hidden);
  paintGrid(canvas, asRows(r.hidden.a, NaN), colour);
  $("neuron-pick").max = String(r.hidden.a.length - 1);
  const [cols] = gridShape(r.hidden.a.length);
  canvas.style.width = `${Math.min(300, cols * 24)}px`;
  legend($("hidden-legend"), (v) => colour(v), low, high, `activation a = ${r.hidden.activation}(z)`);
  if (selectedNeuron !== null && selectedNeuron < r.hidden.a.length) showNeuron(selectedNeuron);
}

// The network as a network (as TensorFlow Playground draws it): a column of circles per layer, filled by the
// activation for this digit; lines for the largest weights, red positive and blue negative, wider when larger.
function renderDiagram(d) {
  $("diagram-panel").hidden = !d;
  if (!d) return;
  const svg = $("diagram"), NS = svg.namespaceURI; // the SVG namespace, taken from the element in the page
  const rows = Math.max(...d.layers.map((l) => l.a.length)), gap = 11, width = 160 * (d.layers.length + 1);
  const height = rows * gap + 40;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.style.width = "100%"; svg.style.maxWidth = `${width}px`;
  const x = (l) => 80 + 160 * l, y = (l, j) => 20 + (height - 40) / 2 + (j - (d.layers[l - 1].a.length - 1) / 2) * gap;
  const node = (name, attributes, text) => {
    const element = document.createElementNS(NS, name);
    for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
    if (text) element.textContent = text;
    svg.append(element);
    return element;
  };
  svg.innerHTML = "";
  const bound = Math.max(1e-12, ...d.edges.flat().map((e) => Math.abs(e[2])));
  d.edges.forEach((edges, i) => edges.slice().reverse().forEach(([from, to, w]) => // the largest drawn last, on top
    node("line", { x1: x(i + 1), y1: y(i + 1, from), x2: x(i + 2), y2: y(i + 2, to), stroke: css(diverging(Math.sign(w))),
      "stroke-width": (0.3 + 3.5 * Math.abs(w) / bound).toFixed(2), "stroke-opacity": (0.25 + 0.75 * Math.abs(w) / bound).toFixed(2) })));
  node("rect", { x: 20, y: height / 2 - 40, width: 80, height: 80, fill: "#fff", stroke: "#99a" });
  node("text", { x: 60, y: height / 2 + 56, "text-anchor": "middle", "font-size": 11 }, `${d.inputs} inputs`);
  const image = node("image", { x: 22, y: height / 2 - 38, width: 76, height: 76, style: "image-rendering: pixelated" });
  image.setAttribute("href", $("step-input").toDataURL());
  d.layers.forEach((layer, i) => {
    const l = i + 1, top = layer.activation === "relu" ? Math.max(1e-6, ...layer.a) : 1;
    layer.a.forEach((a, j) => node("circle", { cx: x(l), cy: y(l, j), r: 4.5, stroke: "#556", "stroke-width": 0.7,
      fill: css(layer.activation === "tanh" ? diverging(a) : sequential(a / top)) }, null)
      .append(Object.assign(document.createElementNS(NS, "title"), { textContent: `layer ${l}, neuron ${j}: a = ${a.toFixed(3)}` })));
    node("text", { x: x(l), y: height - 4, "text-anchor": "middle", "font-size": 11 },
      `${layer.size}${layer.size > layer.a.length ? ` (first ${layer.a.length})` : ""} ${layer.activation}`);
  });
  $("diagram-legend").textContent = `Circles: activation a from 0 (white) to 1 (blue). Lines: the ${d.edges[0] ? d.edges[0].length : 0} ` +
    `largest weights between each pair of layers after the first (red w > 0, blue w < 0, wider and darker when |w| is ` +
    `larger, up to ${bound.toFixed(2)}); the weights from the inputs are the hidden neurons' images below.`;
}

// Chapter 6 on the pad's digit: each convolutional layer's filters, its feature maps, and the maps after pooling.
function renderConvolution(layers) {
  $("conv-panel").hidden = !layers;
  $("hidden").closest(".panel").hidden = $("neuron-panel").hidden = !!layers; // no dense first hidden layer to show
  if (!layers) return;
  const box = $("conv-layers");
  box.innerHTML = "";
  const scaleFor = (maps, activation) => {
    const bound = Math.max(1e-12, ...maps.flat(2).map(Math.abs));
    if (activation === "sigmoid") return [(v) => sequential(v), 0, 1, `σ(…) from 0 to 1`];
    if (activation === "relu") return [(v) => sequential(v / bound), 0, bound, "ReLU(…)"];
    if (activation === "tanh") return [(v) => diverging(v), -1, 1, "tanh(…)"];
    return [(v) => diverging(v / bound), -bound, bound, "w ⋆ a + b, before σ"];
  };
  const strip = (title, maps, colour, low, high, caption, side) => {
    const section = document.createElement("div");
    section.className = "conv-strip";
    const heading = document.createElement("h3");
    heading.textContent = title;
    const images = document.createElement("div");
    images.className = "conv-images";
    maps.forEach((map, j) => {
      const canvas = document.createElement("canvas");
      canvas.setAttribute("role", "img");
      canvas.setAttribute("aria-label", `${title}: map ${j}`);
      paintGrid(canvas, map, colour);
      canvas.style.width = canvas.style.height = `${side}px`;
      images.append(canvas);
    });
    const key = document.createElement("div");
    key.className = "legend";
    legend(key, colour, low, high, caption);
    section.append(heading, images, key);
    box.append(section);
  };
  for (const c of layers) {
    const bound = Math.max(1e-12, ...c.filters.flat(2).map(Math.abs));
    strip(`layer ${c.layer}: ${c.filters.length} filters of ${c.kernel}×${c.kernel}` +
      (c.input_maps > 1 ? ` (each summed over its ${c.input_maps} input maps)` : ""),
      c.filters, (v) => diverging(v / bound), -bound, bound, "shared weight w", 36);
    const [mapColour, low, high, what] = scaleFor(c.maps, c.maps_activation);
    strip(`feature maps before pooling: ${c.maps.length} of ${c.maps[0].length}×${c.maps[0][0].length}`, c.maps,
      mapColour, low, high, what, 56);
    if (c.pooled) {
      const [poolColour, plow, phigh, pwhat] = scaleFor(c.pooled, c.pooled_activation);
      strip(`after ${c.pool}×${c.pool} max-pooling: ${c.pooled[0].length}×${c.pooled[0][0].length}` +
        (c.pooled_activation ? `, then ${c.pooled_activation}` : ""), c.pooled, poolColour, plow, phigh, pwhat, 40);
    }
  }
}

function pickNeuron(e) {
  if (!last || !last.hidden) return;
  const canvas = $("hidden"), rect = canvas.getBoundingClientRect();
  const col = Math.floor(((e.clientX - rect.left) / rect.width) * canvas.width);
  const row = Math.floor(((e.clientY - rect.top) / rect.height) * canvas.height);
  const j = row * canvas.width + col;
  if (j >= 0 && j < last.hidden.a.length) showNeuron(j);
}

async function showNeuron(j) {
  selectedNeuron = j;
  $("neuron-id").textContent = j;
  $("neuron-pick").value = String(j);
  const h = last.hidden;
  try {
    const w = await api(lastLive ? `/api/train/neurons/${j}` : `/api/models/${encodeURIComponent(page.model)}/neurons/${j}`);
    const bound = Math.max(1e-12, ...w.weights.flat().map(Math.abs));
    paintLarge($("neuron-weights"), w.weights, (v) => diverging(v / bound));
    legend($("neuron-legend"), (v) => diverging(v / bound), -bound, bound, "weight w¹ⱼₖ from each pixel");
    $("neuron-values").innerHTML = row("bias b", w.bias) + row("z = w·x + b", h.z[j]) +
      row(`σ(z) (${h.activation})`, h.a[j]) + row("σ'(z)", h.prime[j]);
  } catch (e) { page.say(e.message, true); }
}

const row = (name, value, extra = "") => `<tr><th>${name}</th><td>${fmt(value)}</td><td class="note">${extra}</td></tr>`;
const fmt = (v) => (v === null || v === undefined ? "–" : Math.abs(v) < 1e-3 && v !== 0 ? v.toExponential(2) : v.toFixed(4));

function renderBackprop(r) {
  if (!r.costs) return;
  if ($("label").value === "") $("label").options[0].textContent = `the guess (${r.label})`;
  $("costs").innerHTML = "<tr><th>cost of this digit</th><td></td><td></td></tr>" +
    Object.entries(r.costs).map(([name, c]) => row(name, c.cost,
      c.own_output ? `the network's ${c.output_activation} outputs` : `through ${c.output_activation}(z<sup>L</sup>)`)).join("");
  const bp = r.backprop;
  bars($("delta-output"), bp.delta_output, r.label, (v) => fmt(v), (t) => css(diverging(t)), true);
  const canvas = $("delta-hidden");
  if (bp.delta_hidden.length) {
    const bound = Math.max(1e-12, ...bp.delta_hidden.map(Math.abs));
    paintGrid(canvas, asRows(bp.delta_hidden, 0), (v) => diverging(v / bound));
    canvas.style.width = $("hidden").style.width;
    legend($("delta-legend"), (v) => diverging(v / bound), -bound, bound, "error δ¹ⱼ = ∂C/∂z¹ⱼ");
  }
  $("norms").innerHTML = `<tr><th>layer</th><th>‖∂C/∂b‖ = ‖δ‖</th><th>‖∂C/∂w‖</th></tr>` +
    bp.grad_b_norms.map((b, l) => `<tr><td>${l === bp.grad_b_norms.length - 1 ? "output" : "hidden " + (l + 1)}</td>` +
      `<td>${fmt(b)}</td><td>${fmt(bp.grad_w_norms[l])}</td></tr>`).join("") +
    `<tr><td colspan="3" class="note">for the ${bp.cost} cost the network was trained with</td></tr>`;
}
