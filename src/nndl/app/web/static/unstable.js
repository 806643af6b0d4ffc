// The Unstable gradients tab (chapter 5): the server trains the book's run (POST /api/unstable) and this page
// plays it back: one bar per hidden layer for ‖∂C/∂b^l‖ on a log scale, the book's value marked on each, and
// the curves over the epochs. Settings live in the URL hash (key "speed").
import { api, lineChart } from "./paint.js";

const $ = (id) => document.getElementById(id);
const COLOURS = ["#2a6ea6", "#ffa933", "#ff5555", "#2ca02c"]; // the book's colours, one per hidden layer
const LOG_MIN = -6, LOG_MAX = 1; // the bars' scale: 10⁻⁶ to 10
const PLAY_MS = 3000;
let page, result = null, frame = 0;

export function initUnstable(p) {
  page = p;
  const saved = new URLSearchParams((page.hashValue("speed") || "").replaceAll(",", "&"));
  for (const name of ["layers", "activation", "init", "epochs", "seed"]) {
    if (saved.get(name) !== null) $(`speed-${name}`).value = saved.get(name);
  }
  $("speed-go").addEventListener("click", train);
}

function settings() {
  const value = (name) => $(`speed-${name}`).value;
  return { layers: Number(value("layers")), activation: value("activation"), init: value("init"),
    epochs: Number(value("epochs")), seed: Number(value("seed")) };
}

async function train() {
  const chosen = settings();
  page.setHash("speed", Object.entries(chosen).map(([k, v]) => `${k}=${v}`).join(","));
  $("speed-go").disabled = true;
  $("speed-status").textContent = `training ${chosen.epochs} epochs on 1,000 images…`;
  try {
    result = await api("/api/unstable", chosen);
  } catch (e) {
    page.say(e.message, true);
    $("speed-status").textContent = "";
    return;
  } finally {
    $("speed-go").disabled = false;
  }
  play();
}

function play() {
  cancelAnimationFrame(frame);
  const last = result.speeds.length - 1, started = performance.now();
  const tick = (now) => {
    // a frame's time can precede `started` by a little: never before epoch 0
    const epoch = Math.min(last, Math.max(0, Math.floor((last * (now - started)) / PLAY_MS)));
    show(epoch);
    if (epoch < last) frame = requestAnimationFrame(tick);
  };
  frame = requestAnimationFrame(tick);
}

const position = (v) => (100 * (Math.log10(Math.max(v, 10 ** LOG_MIN)) - LOG_MIN)) / (LOG_MAX - LOG_MIN);

function show(epoch) {
  const speeds = result.speeds[epoch];
  const bars = $("speed-bars");
  bars.dataset.epoch = epoch;
  bars.innerHTML = speeds.map((v, l) => {
    const book = result.book ? result.book[l] : null;
    const mark = book === null || book === undefined ? ""
      : `<span class="speed-book" style="left:${position(book)}%" title="the book at the start: ${book}"></span>`;
    return `<div class="speed-bar" data-layer="${l + 1}" data-value="${v}">
      <span>hidden layer ${l + 1}</span>
      <span class="speed-track"><span class="speed-fill" style="width:${position(v)}%;background:${COLOURS[l]}"></span>${mark}</span>
      <span class="speed-value">${v.toExponential(2)}</span></div>`;
  }).join("");
  const first = speeds[0], lastLayer = speeds[speeds.length - 1];
  $("speed-status").textContent = `epoch ${result.epochs[epoch]} of ${result.epochs.length}` +
    (speeds.length > 1 ? `: the last hidden layer learns ${(lastLayer / first).toPrecision(3)} times as fast as the first` : "") +
    (epoch === result.speeds.length - 1 ? `; test accuracy after training ${(100 * result.test_accuracy).toFixed(2)}%` : "");
  $("speed-book-note").textContent = result.book
    ? `Black marks: the book's values at the start (${result.book.join(", ")}).`
    : "The book gives no values for this network (its numbers are for 2-4 sigmoid layers with N(0, 1/n_in) weights).";
  lineChart($("speed-chart"), speeds.map((_, l) => ({
    label: `hidden layer ${l + 1}`, colour: COLOURS[l],
    points: result.speeds.slice(0, epoch + 1).map((row, e) => [result.epochs[e], Math.log10(Math.max(row[l], 1e-12))]),
  })), { xlabel: "epochs of training", ylabel: "log₁₀ ‖∂C/∂b^l‖", xmin: 0, xmax: result.epochs.length - 1 });
}
