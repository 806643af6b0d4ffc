// The Universality tab (chapter 4): a visual proof that one hidden layer can compute any function.
// Everything is computed here (no server): steps σ(wx + b), bumps from pairs of steps, sums of bumps, the
// output neuron's σ, and towers in two dimensions. Each widget keeps its state in the URL hash (key u1…u5);
// the values it drew are in window.nndlUniversality for tests.
import { legend, lineChart, paintGrid, sequential } from "./paint.js";

const $ = (id) => document.getElementById(id);
export const sigmoid = (z) => 1 / (1 + Math.exp(-z));
const logit = (y) => Math.log(y / (1 - y)); // σ⁻¹
const STEEP = 1000; // the weight that makes a hidden neuron a step: σ(w(x − s)) with w = 1000
const step = (x, s) => sigmoid(STEEP * (x - s)); // b = −ws puts the step at s = −b/w
const bump = (x, s1, s2) => step(x, s1) - step(x, s2); // output weights h and −h: height h on [s1, s2)
const SAMPLES = 401; // points drawn on [0, 1]
const xs = Array.from({ length: SAMPLES }, (_, i) => i / (SAMPLES - 1));
const fmt = (v, digits = 3) => (+v.toFixed(digits)).toString();
const drawn = (window.nndlUniversality = {});

// Targets f(x) on [0, 1], inside (0, 1) so that σ⁻¹(f) exists; the first is the book's.
export const TARGETS = {
  book: { label: "the book's: 0.2 + 0.4x² + 0.3x sin 15x + 0.05 cos 50x",
    f: (x) => 0.2 + 0.4 * x * x + 0.3 * x * Math.sin(15 * x) + 0.05 * Math.cos(50 * x) },
  sine: { label: "a sine: 0.5 + 0.4 sin 2πx", f: (x) => 0.5 + 0.4 * Math.sin(2 * Math.PI * x) },
  tent: { label: "a tent: 0.1 + 0.8(1 − |2x − 1|)", f: (x) => 0.1 + 0.8 * (1 - Math.abs(2 * x - 1)) },
  step: { label: "a step: 0.2 below x = 0.6, 0.8 above", f: (x) => (x < 0.6 ? 0.2 : 0.8) },
};

// -- URL state: one hash key per widget, "name:value,name:value" ------------------------------
let page;
function restore(key, defaults) {
  const text = page.hashValue(key);
  const state = { ...defaults };
  for (const part of (text || "").split(",")) {
    const [name, value] = part.split(":");
    if (name in state) state[name] = typeof defaults[name] === "number" ? Number(value) : value;
  }
  for (const [name, value] of Object.entries(state)) {
    if (typeof defaults[name] === "number" && !Number.isFinite(value)) state[name] = defaults[name];
  }
  return state;
}
const save = (key, state) => page.setHash(key, Object.entries(state).map(([k, v]) => `${k}:${v}`).join(","));

// A range input bound to state[name]: keyboard-usable, labelled, with its value shown beside it.
function slider(container, state, name, label, min, max, stepSize, onChange) {
  const wrap = document.createElement("label");
  wrap.className = "slider";
  wrap.innerHTML = `<span>${label}</span><input type="range" min="${min}" max="${max}" step="${stepSize}"><output></output>`;
  const input = wrap.querySelector("input"), shown = wrap.querySelector("output");
  state[name] = Math.min(max, Math.max(min, state[name])); // kept exact (a fitted height), shown snapped
  input.value = state[name];
  input.dataset.name = name;
  input.setAttribute("aria-label", label.replace(/<[^>]+>/g, ""));
  shown.textContent = fmt(state[name], 2);
  input.addEventListener("input", () => {
    state[name] = Number(input.value);
    shown.textContent = fmt(state[name], 2);
    onChange();
  });
  container.append(wrap);
  return input;
}

function chart(canvas, series, options) {
  lineChart(canvas, series, { xlabel: "x", xmin: 0, xmax: 1, ...options });
}

// -- 1. one neuron: σ(wx + b) becomes a step at s = −b/w ------------------------------------
function oneNeuron() {
  const state = restore("u1", { w: 8, b: -4 });
  const update = () => {
    const y = xs.map((x) => sigmoid(state.w * x + state.b));
    const s = -state.b / state.w;
    drawn.neuron = { w: state.w, b: state.b, points: xs.map((x, i) => [x, y[i]]), s };
    const series = [{ label: "σ(wx + b)", colour: "#2471a3", points: drawn.neuron.points }];
    if (Number.isFinite(s) && s >= 0 && s <= 1) {
      series.push({ label: `s = −b/w = ${fmt(s, 2)}`, colour: "#c0392b", dash: [4, 4], points: [[s, 0], [s, 1]] });
    }
    chart($("u1-chart"), series, { ylabel: "output", ymin: 0, ymax: 1 });
    $("u1-maths").innerHTML = `z = wx + b = ${fmt(state.w, 2)}x ${state.b < 0 ? "−" : "+"} ${fmt(Math.abs(state.b), 2)}<br>` +
      `σ(z) = 1 / (1 + e<sup>−z</sup>)<br>step point s = −b/w = ${Number.isFinite(s) ? fmt(s, 3) : "none (w = 0)"}<br>` +
      `at x = 0.5 the output is <output id="u1-probe">${fmt(sigmoid(state.w * 0.5 + state.b), 4)}</output>`;
    save("u1", state);
  };
  const box = $("u1-controls");
  slider(box, state, "w", "weight w", -200, 200, 1, update);
  slider(box, state, "b", "bias b", -200, 200, 1, update);
  return update;
}

// -- 2. a bump from two steps with output weights h and −h ----------------------------------
function oneBump() {
  const state = restore("u2", { s1: 0.4, s2: 0.6, h: 0.8 });
  const update = () => {
    const y = xs.map((x) => state.h * bump(x, state.s1, state.s2));
    drawn.bump = { ...state, points: xs.map((x, i) => [x, y[i]]) };
    chart($("u2-chart"), [{ label: "h σ(w(x − s₁)) − h σ(w(x − s₂))", colour: "#2471a3", points: drawn.bump.points }],
      { ylabel: "weighted output of the hidden layer", ymin: -1, ymax: 1 });
    $("u2-maths").innerHTML = `hidden neurons: steps at s₁ = ${fmt(state.s1, 2)} and s₂ = ${fmt(state.s2, 2)} ` +
      `(w = ${STEEP}, b = −ws)<br>output weights h = ${fmt(state.h, 2)} and −h<br>` +
      `h·step(s₁) − h·step(s₂) = h on [s₁, s₂), 0 elsewhere` +
      (state.s2 < state.s1 ? " (with s₂ < s₁ the bump is −h on [s₂, s₁))" : "") +
      `<br>at x = 0.5: <output id="u2-probe">${fmt(state.h * bump(0.5, state.s1, state.s2), 4)}</output>`;
    save("u2", state);
  };
  const box = $("u2-controls");
  slider(box, state, "s1", "step s₁", 0, 1, 0.01, update);
  slider(box, state, "s2", "step s₂", 0, 1, 0.01, update);
  slider(box, state, "h", "height h", -1, 1, 0.01, update);
  return update;
}

// The weighted sum Σ h_j bump_j(x) of n equal bumps on [0, 1], before the output neuron's σ.
const bumpSum = (heights) => (x) => heights.reduce((sum, h, j) => sum + h * bump(x, j / heights.length, (j + 1) / heights.length), 0);

// -- 3. many bumps: each height its own slider; the sum, and σ of it -------------------------
function manyBumps() {
  const count = 5;
  const defaults = Object.fromEntries(Array.from({ length: count }, (_, j) => [`h${j + 1}`, [-1, 1.5, 0.5, -0.5, 1][j]]));
  const state = restore("u3", defaults);
  const heights = () => Array.from({ length: count }, (_, j) => state[`h${j + 1}`]);
  const update = () => {
    const sum = bumpSum(heights());
    const weighted = xs.map((x) => [x, sum(x)]);
    drawn.bumps = { heights: heights(), weighted, output: weighted.map(([x, v]) => [x, sigmoid(v)]) };
    chart($("u3-sum"), [{ label: "Σ h_j bump_j(x)", colour: "#2471a3", points: weighted }],
      { ylabel: "weighted sum", ymin: -3, ymax: 3 });
    chart($("u3-output"), [{ label: "σ(Σ h_j bump_j(x))", colour: "#c0392b", points: drawn.bumps.output }],
      { ylabel: "network output", ymin: 0, ymax: 1 });
    $("u3-maths").innerHTML = `${count} pairs of hidden neurons, steps at j/${count}: bump j is 1 on ` +
      `[j/${count}, (j+1)/${count})<br>weighted sum = Σ<sub>j</sub> h<sub>j</sub> bump<sub>j</sub>(x); ` +
      `output = σ(weighted sum + b), b = 0<br>at x = 0.5: sum <output id="u3-probe-sum">${fmt(sum(0.5), 4)}</output>, ` +
      `output <output id="u3-probe">${fmt(sigmoid(sum(0.5)), 4)}</output>`;
    save("u3", state);
  };
  const box = $("u3-controls");
  for (let j = 1; j <= count; j++) slider(box, state, `h${j}`, `h<sub>${j}</sub>`, -3, 3, 0.05, update);
  return update;
}

// Mean |σ(Σ h_j bump_j(x)) − f(x)| over the drawn points: the book's "average deviation".
export function averageDeviation(heights, f) {
  const sum = bumpSum(heights);
  return xs.reduce((total, x) => total + Math.abs(sigmoid(sum(x)) - f(x)), 0) / xs.length;
}

// The heights that make σ(weighted sum) = f at each bump's midpoint: h_j = σ⁻¹(f(x_j)).
export const fitHeights = (f, count) => Array.from({ length: count }, (_, j) => logit(f((j + 0.5) / count)));

// -- 4. design the function: set the heights (or fit them) to make σ(Σ h_j bump_j) follow f ----
function design() {
  const state = restore("u4", { target: "book", n: 5, h: "" });
  if (!(state.target in TARGETS)) state.target = "book";
  if (![5, 10, 20].includes(state.n)) state.n = 5;
  let heights = state.h.split("_").map(Number).filter(Number.isFinite);
  const box = $("u4-heights");
  const update = () => {
    const f = TARGETS[state.target].f;
    const sum = bumpSum(heights);
    const output = xs.map((x) => [x, sigmoid(sum(x))]);
    const deviation = averageDeviation(heights, f);
    drawn.design = { target: state.target, heights: [...heights], output, deviation };
    chart($("u4-chart"), [
      { label: "target f(x)", colour: "#888", dash: [5, 4], points: xs.map((x) => [x, f(x)]) },
      { label: "network σ(Σ h_j bump_j(x))", colour: "#c0392b", points: output },
    ], { ylabel: "output", ymin: 0, ymax: 1 });
    $("u4-score").textContent = fmt(deviation, 4);
    state.h = heights.map((h) => fmt(h, 4)).join("_");
    save("u4", state);
  };
  const build = () => {
    box.innerHTML = "";
    if (heights.length !== state.n) heights = Array(state.n).fill(0);
    const holder = Object.fromEntries(heights.map((h, j) => [`h${j}`, h]));
    heights.forEach((_, j) => slider(box, holder, `h${j}`, `h<sub>${j + 1}</sub>`, -5, 5, 0.05, () => {
      heights[j] = holder[`h${j}`]; update();
    }));
    heights = heights.map((_, j) => holder[`h${j}`]); // clamped to the sliders' range, not to their steps
    update();
  };
  $("u4-target").innerHTML = Object.entries(TARGETS).map(([k, t]) => `<option value="${k}">${t.label}</option>`).join("");
  $("u4-target").value = state.target;
  $("u4-n").value = String(state.n);
  $("u4-target").addEventListener("change", (e) => { state.target = e.target.value; update(); });
  $("u4-n").addEventListener("change", (e) => { state.n = Number(e.target.value); heights = []; build(); });
  $("u4-fit").addEventListener("click", () => { heights = fitHeights(TARGETS[state.target].f, state.n); build(); });
  $("u4-zero").addEventListener("click", () => { heights = Array(state.n).fill(0); build(); });
  return build;
}

// -- 5. two inputs: steps in x and y, a tower, and a sum of towers ---------------------------
const GRID = 60; // heat-map cells per side
const grid = Array.from({ length: GRID }, (_, i) => (i + 0.5) / GRID);
export const TARGETS_2D = {
  hill: { label: "a hill: 0.1 + 0.8 e^(−8((x − ½)² + (y − ½)²))", f: (x, y) => 0.1 + 0.8 * Math.exp(-8 * ((x - 0.5) ** 2 + (y - 0.5) ** 2)) },
  waves: { label: "waves: 0.5 + 0.4 sin 2πx cos 2πy", f: (x, y) => 0.5 + 0.4 * Math.sin(2 * Math.PI * x) * Math.cos(2 * Math.PI * y) },
};
// A tower: four hidden neurons (steps at x1, x2 in x and y1, y2 in y, output weights ±h), then a neuron with
// bias −3h/2 that fires only where both bumps add up to 2h: σ(h·bump_x + h·bump_y − 3h/2).
export const tower = (x, y, r, h) => sigmoid(h * bump(x, r.x1, r.x2) + h * bump(y, r.y1, r.y2) - 1.5 * h);

function towers() {
  const state = restore("u5", { x1: 0.3, x2: 0.6, y1: 0.2, y2: 0.5, h: 10, k: 5, target: "hill" });
  if (!(state.target in TARGETS_2D)) state.target = "hill";
  const heat = (canvas, f, legendBox, caption) => {
    const rows = grid.map((y) => grid.map((x) => f(x, y))).reverse(); // y grows upwards
    paintGrid($(canvas), rows, sequential);
    if (legendBox) legend($(legendBox), sequential, 0, 1, caption);
    return rows;
  };
  const update = () => {
    const r = state, f = TARGETS_2D[state.target].f;
    const weighted = (x, y) => (state.h * bump(x, r.x1, r.x2) + state.h * bump(y, r.y1, r.y2)) / (2 * state.h);
    heat("u5-weighted", weighted, null);
    heat("u5-tower", (x, y) => tower(x, y, r, state.h), "u5-legend", "output (0 to 1)");
    // sum of k × k towers, each weighted by σ⁻¹ of the target at its centre, then the output's σ
    const k = state.k, full = { h: 50 };
    const approx = (x, y) => {
      const i = Math.min(k - 1, Math.floor(x * k)), j = Math.min(k - 1, Math.floor(y * k));
      const cell = { x1: i / k, x2: (i + 1) / k, y1: j / k, y2: (j + 1) / k };
      return sigmoid(logit(f((i + 0.5) / k, (j + 0.5) / k)) * tower(x, y, cell, full.h));
    };
    heat("u5-target", f, null);
    const rows = heat("u5-sum", approx, null);
    const deviation = rows.flat().reduce((t, v, n) => t + Math.abs(v - f(grid[n % GRID], grid[GRID - 1 - Math.floor(n / GRID)])), 0) / GRID ** 2;
    drawn.towers = { ...state, inside: tower(0.5 * (r.x1 + r.x2), 0.5 * (r.y1 + r.y2), r, state.h),
      outside: tower(0.99, 0.99, r, state.h), deviation };
    $("u5-maths").innerHTML = `x-bump on [${fmt(r.x1, 2)}, ${fmt(r.x2, 2)}), y-bump on [${fmt(r.y1, 2)}, ${fmt(r.y2, 2)}), ` +
      `output weights ±h, h = ${fmt(state.h, 1)}<br>tower = σ(h·bump<sub>x</sub> + h·bump<sub>y</sub> − 3h/2): ` +
      `inside <output id="u5-probe">${fmt(drawn.towers.inside, 4)}</output>, outside ${fmt(drawn.towers.outside, 4)}<br>` +
      `sum of ${k}×${k} towers, each weighted by σ⁻¹(g) at its centre, then σ: average deviation ` +
      `<output id="u5-score">${fmt(deviation, 4)}</output>`;
    save("u5", state);
  };
  const box = $("u5-controls");
  slider(box, state, "x1", "x step 1", 0, 1, 0.01, update);
  slider(box, state, "x2", "x step 2", 0, 1, 0.01, update);
  slider(box, state, "y1", "y step 1", 0, 1, 0.01, update);
  slider(box, state, "y2", "y step 2", 0, 1, 0.01, update);
  slider(box, state, "h", "weight h", 1, 50, 0.5, update);
  slider($("u5-sum-controls"), state, "k", "towers per side", 1, 12, 1, update);
  $("u5-target-pick").innerHTML = Object.entries(TARGETS_2D).map(([k, t]) => `<option value="${k}">${t.label}</option>`).join("");
  $("u5-target-pick").value = state.target;
  $("u5-target-pick").addEventListener("change", (e) => { state.target = e.target.value; update(); });
  return update;
}

export function initUniversality(p) {
  page = p;
  const widgets = [oneNeuron(), oneBump(), manyBumps(), design(), towers()];
  // canvases have no size while the tab is hidden: draw when it is shown
  window.addEventListener("tabshown", (e) => e.detail === "universality" && widgets.forEach((draw) => draw()));
}
