// The Learning slowdown tab: chapter 3's widgets. One sigmoid neuron learning (the server trains it with the
// library's costs) from the book's two starts or any w, b and η; and the softmax layer (outputs from the
// library's softmax) with a slider per weighted input. Settings live in the URL hash ("slowdown", "softmax").
import { api, css, lineChart, sequential } from "./paint.js";

const $ = (id) => document.getElementById(id);
const EPOCHS = 300, ANIMATION_MS = 3000;
const STARTS = [{ w: 0.6, b: 0.9 }, { w: 2.0, b: 2.0 }]; // the book's two starts
const COSTS = [{ cost: "quadratic", colour: "#c0392b", dash: [] }, { cost: "cross-entropy", colour: "#2471a3", dash: [6, 4] }];
const SOFTMAX_START = [2.5, -1, 3.2, 0.5]; // the book's widget
let page, results = null, frame = 0, request = 0;
const drawn = (window.nndlSlowdown = {}); // what the charts show (the browser test reads it)

export function initSlowdown(p) {
  page = p;
  const saved = readHash("slowdown");
  for (const key of ["w", "b", "eta"]) {
    if (Number.isFinite(saved[key])) $(`slow-${key}`).value = String(saved[key]);
    $(`slow-${key}`).addEventListener("input", () => update(Infinity));
  }
  STARTS.forEach((start, i) => $(`slow-start-${i + 1}`).addEventListener("click", () => {
    $("slow-w").value = String(start.w); $("slow-b").value = String(start.b); $("slow-eta").value = "0.15";
    update(0);
  }));
  $("slowdown-go").addEventListener("click", () => update(0));
  initSoftmax();
  window.addEventListener("tabshown", (e) => e.detail === "slowdown" && (results ? draw(Infinity) : update(0)));
}

function readHash(key) {
  const out = {};
  for (const part of (page.hashValue(key) || "").split(",")) {
    const [name, value] = part.split(":");
    if (name) out[name] = Number(value);
  }
  return out;
}

const settings = () => ({ w: +$("slow-w").value, b: +$("slow-b").value, eta: +$("slow-eta").value });

// Train the neuron under both costs from the sliders' w, b, η; animate from epoch ``from`` (Infinity: at once).
async function update(from) {
  const s = settings(), mine = ++request;
  for (const key of ["w", "b", "eta"]) $(`slow-${key}-value`).textContent = String(s[key]);
  page.setHash("slowdown", `w:${s.w},b:${s.b},eta:${s.eta}`);
  let answers;
  try {
    answers = await Promise.all(COSTS.map((c) => api("/api/slowdown", { cost: c.cost, w: s.w, b: s.b, eta: s.eta, epochs: EPOCHS })));
  } catch (e) { page.say(e.message, true); return; }
  if (mine !== request) return; // a newer slider position is on its way
  results = answers;
  const a0 = results[0].output[0];
  $("slowdown-maths").textContent = `start: a = σ(w·1 + b) = σ(${(s.w + s.b).toFixed(2)}) = ${a0.toFixed(3)}; ` +
    `after ${EPOCHS} epochs with η = ${s.eta}: quadratic a = ${results[0].output[EPOCHS].toFixed(3)}, ` +
    `cross-entropy a = ${results[1].output[EPOCHS].toFixed(3)} (the target is 0)`;
  cancelAnimationFrame(frame);
  if (from === Infinity) { draw(Infinity); return; }
  const started = performance.now();
  const step = (now) => {
    const epochs = Math.floor((EPOCHS * (now - started)) / ANIMATION_MS);
    draw(epochs);
    if (epochs < EPOCHS) frame = requestAnimationFrame(step);
  };
  frame = requestAnimationFrame(step);
}

function draw(upTo) {
  const s = settings();
  const series = (key) => results.map((r, i) => ({
    label: `${COSTS[i].cost} cost`, colour: COSTS[i].colour, dash: COSTS[i].dash,
    points: r[key].slice(0, Math.min(upTo, EPOCHS) + 1).map((v, epoch) => [epoch, v]),
  }));
  Object.assign(drawn, { w: s.w, b: s.b, eta: s.eta, output: results.map((r) => r.output[0]) });
  lineChart($("slowdown-output"), series("output"), { xlabel: "epoch", ylabel: "output a", xmin: 0, xmax: EPOCHS, ymin: 0, ymax: 1 });
  lineChart($("slowdown-cost"), series("costs"), { xlabel: "epoch", ylabel: "cost C", xmin: 0, xmax: EPOCHS, ymin: 0 });
}

// -- softmax ------------------------------------------------------------------------------------------------------

function initSoftmax() {
  const saved = (page.hashValue("softmax") || "").split(",").map(Number);
  const start = saved.length === SOFTMAX_START.length && saved.every(Number.isFinite) ? saved : SOFTMAX_START;
  $("softmax-sliders").innerHTML = start.map((z, j) =>
    `<label class="slider"><span>z<sub>${j + 1}</sub></span><input id="softmax-z${j}" type="range" min="-5" max="5" step="0.1" value="${z}">` +
    `<output id="softmax-z${j}-value">${z}</output></label>`).join("");
  start.forEach((_, j) => $(`softmax-z${j}`).addEventListener("input", softmax));
  softmax();
}

async function softmax() {
  const z = SOFTMAX_START.map((_, j) => +$(`softmax-z${j}`).value);
  z.forEach((v, j) => ($(`softmax-z${j}-value`).textContent = String(v)));
  page.setHash("softmax", z.join(","));
  try {
    const r = await api("/api/softmax", { z });
    $("softmax-bars").innerHTML = r.a.map((a, j) =>
      `<div class="bar"><span class="bar-label">a<sub>${j + 1}</sub></span><span class="bar-track">` +
      `<span class="bar-fill" style="width:${100 * a}%;background:${css(sequential(0.35 + 0.65 * a))}"></span></span>` +
      `<span class="bar-value">${a.toFixed(3)}</span></div>`).join("");
    $("softmax-sum").textContent = `a₁ + a₂ + a₃ + a₄ = ${r.sum.toFixed(3)}`;
    drawn.softmax = r.a;
  } catch (e) { page.say(e.message, true); }
}
