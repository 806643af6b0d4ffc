// The Mistakes tab: the selected model's confusion matrix; a cell (a button: mouse or keyboard) shows the digits
// behind it, and each digit opens in the Draw tab, to see inside the network as it reads it.
import { api, paintDigit, reshape } from "./paint.js";

const $ = (id) => document.getElementById(id);
let page, shown = null;

export function initMistakes(p) {
  page = p;
  $("mistakes-go").addEventListener("click", compute);
  $("mistakes-dataset").addEventListener("change", compute);
  window.addEventListener("tabshown", (e) => e.detail === "mistakes" && shown !== key() && compute());
  page.onModel(() => { if ($("tab-mistakes").classList.contains("active")) compute(); });
}

const key = () => `${page.model}/${$("mistakes-dataset").value}`;

async function compute() {
  if (!page.model) { $("mistakes-summary").textContent = "no model yet: train a quick one on the Draw tab, or upload one on the Models tab"; return; }
  const dataset = $("mistakes-dataset").value;
  $("mistakes-summary").textContent = "computing…";
  try {
    const r = await api("/api/mistakes", { model: page.model, dataset });
    shown = key();
    $("mistakes-summary").textContent =
      `${page.model} on the ${r.total.toLocaleString()} ${dataset} images: ${r.correct.toLocaleString()} right ` +
      `(${(100 * r.accuracy).toFixed(2)}%), ${(r.total - r.correct).toLocaleString()} wrong`;
    drawMatrix(r.matrix, dataset);
  } catch (e) { $("mistakes-summary").textContent = ""; page.say(e.message, true); }
}

function drawMatrix(matrix, dataset) {
  const n = matrix.length;
  let worst = 1;
  matrix.forEach((row, i) => row.forEach((v, j) => { if (i !== j) worst = Math.max(worst, v); }));
  let html = `<tr><th class="corner">true ↓ guess →</th>${matrix[0].map((_, j) => `<th>${j}</th>`).join("")}</tr>`;  // a column per output neuron
  for (let i = 0; i < n; i++) {
    html += `<tr><th>${i}</th>` + matrix[i].map((v, j) => {
      const shade = i === j ? "background:#e3f1e3" : v ? cellShade(0.12 + 0.8 * (v / worst)) : "";
      return `<td data-label="${i}" data-guess="${j}" style="${shade}"><button type="button" ` +
        `aria-label="${v} images of ${i} called ${j}" title="${v} images of ${i} called ${j}">${v}</button></td>`;
    }).join("") + "</tr>";
  }
  $("confusion").innerHTML = html;
  $("confusion").querySelectorAll("td").forEach((td) =>
    td.querySelector("button").addEventListener("click", () => showCell(+td.dataset.label, +td.dataset.guess, dataset)));
}

// A red as strong as ``alpha`` on white, with the text in black or white, whichever reads better (WCAG contrast).
function cellShade(alpha) {
  const rgb = [170, 40, 40].map((c) => Math.round(255 - alpha * (255 - c)));
  const linear = rgb.map((c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; });
  const luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2];
  return `background:rgb(${rgb.join(",")});color:${luminance > 0.18 ? "#000" : "#fff"}`;
}

async function showCell(label, guess, dataset) {
  try {
    const r = await api("/api/mistakes/cell", { model: page.model, dataset, label, guess, limit: 60 });
    $("gallery-title").textContent = label === guess
      ? `${r.count} ${r.count === 1 ? "image" : "images"} of ${label} read correctly (least sure first; ${r.digits.length} shown)`
      : `${r.count} ${r.count === 1 ? "image" : "images"} of ${label} the network called ${guess} (surest mistakes first; ${r.digits.length} shown; click one to see it in Draw)`;
    const gallery = $("gallery");
    gallery.innerHTML = "";
    for (const d of r.digits) {
      const figure = document.createElement("figure"), canvas = document.createElement("canvas");
      const open = document.createElement("button");
      open.type = "button";
      open.setAttribute("aria-label", `${dataset} image #${d.index}, a ${label} read as ${guess}: open it in Draw`);
      open.title = "open in the Draw tab";
      open.addEventListener("click", () => page.showDigit(dataset, d.index));
      paintDigit(canvas, reshape(d.pixels.map((v) => v / 255), r.side));
      const caption = document.createElement("figcaption");
      caption.textContent = `#${d.index} · ${d.confidence.toFixed(2)}`;
      open.append(canvas);
      figure.append(open, caption);
      gallery.append(figure);
    }
  } catch (e) { page.say(e.message, true); }
}
