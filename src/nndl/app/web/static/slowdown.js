// The Learning slowdown tab: chapter 3's one-neuron demo, computed by the server, animated here.
import { api, lineChart } from "./paint.js";

const $ = (id) => document.getElementById(id);
const RUNS = [
  { cost: "quadratic", w: 0.6, b: 0.6, colour: "#2471a3", dash: [] },
  { cost: "quadratic", w: 2.0, b: 2.0, colour: "#c0392b", dash: [] },
  { cost: "cross-entropy", w: 0.6, b: 0.6, colour: "#2471a3", dash: [6, 4] },
  { cost: "cross-entropy", w: 2.0, b: 2.0, colour: "#c0392b", dash: [6, 4] },
];
const ANIMATION_MS = 3000;
let page, results = null, frame = 0;

export function initSlowdown(p) {
  page = p;
  $("slowdown-go").addEventListener("click", play);
  window.addEventListener("tabshown", (e) => e.detail === "slowdown" && (results ? draw(Infinity) : play()));
}

async function play() {
  try {
    results = await Promise.all(RUNS.map((r) => api("/api/slowdown", { cost: r.cost, w: r.w, b: r.b, eta: 0.15, epochs: 300 })));
  } catch (e) { page.say(e.message, true); return; }
  cancelAnimationFrame(frame);
  const started = performance.now();
  const step = (now) => {
    const epochs = Math.floor((300 * (now - started)) / ANIMATION_MS);
    draw(epochs);
    if (epochs < 300) frame = requestAnimationFrame(step);
  };
  frame = requestAnimationFrame(step);
}

function draw(upTo) {
  const series = (key) => results.map((r, i) => ({
    label: `${RUNS[i].cost}, w = b = ${RUNS[i].w}`, colour: RUNS[i].colour, dash: RUNS[i].dash,
    points: r[key].slice(0, Math.min(upTo, 300) + 1).map((v, epoch) => [epoch, v]),
  }));
  lineChart($("slowdown-output"), series("output"), { xlabel: "epoch", ylabel: "output a", xmin: 0, xmax: 300, ymin: 0, ymax: 1 });
  lineChart($("slowdown-cost"), series("costs"), { xlabel: "epoch", ylabel: "cost C", xmin: 0, xmax: 300, ymin: 0 });
}
