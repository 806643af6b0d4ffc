// Drawing helpers shared by the tabs: images from numbers, colour scales with legends, line charts.

// Sequential scale for values in [0, 1] (activations): paper white to ink blue.
export function sequential(t) {
  t = Math.max(0, Math.min(1, t));
  return [Math.round(255 - 225 * t), Math.round(255 - 175 * t), Math.round(255 - 75 * t)];
}

// Diverging scale for signed values scaled to [-1, 1] (weights, errors δ): blue − , white 0, red +.
export function diverging(t) {
  t = Math.max(-1, Math.min(1, t));
  return t >= 0
    ? [255, Math.round(255 - 200 * t), Math.round(255 - 210 * t)]
    : [Math.round(255 + 210 * t), Math.round(255 + 160 * t), 255];
}

export const css = (rgb) => `rgb(${rgb[0]},${rgb[1]},${rgb[2]})`;

// Paint a 2-D array (rows of numbers) onto a canvas, one cell per value, through colour(value).
export function paintGrid(canvas, rows, colour) {
  const h = rows.length, w = rows[0].length;
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(w, h);
  rows.forEach((row, y) => row.forEach((v, x) => {
    const [r, g, b] = colour(v), i = 4 * (y * w + x);
    img.data[i] = r; img.data[i + 1] = g; img.data[i + 2] = b; img.data[i + 3] = 255;
  }));
  ctx.putImageData(img, 0, 0);
}

// A grey digit (ink 1 = black) as MNIST shows it.
export const ink = (v) => { const g = Math.round(255 * (1 - Math.max(0, Math.min(1, v)))); return [g, g, g]; };

export function paintDigit(canvas, rows) { paintGrid(canvas, rows, ink); }

export function reshape(flat, side) {
  const rows = [];
  for (let i = 0; i < flat.length; i += side) rows.push(flat.slice(i, i + side));
  return rows;
}

// A horizontal colour bar with its end and middle values, drawn into a container element.
export function legend(element, colour, low, high, caption) {
  element.innerHTML = "";
  const bar = document.createElement("canvas");
  bar.width = 120; bar.height = 1; bar.className = "legend-bar";
  const ctx = bar.getContext("2d");
  for (let x = 0; x < 120; x++) {
    ctx.fillStyle = css(colour(low + (high - low) * (x / 119)));
    ctx.fillRect(x, 0, 1, 1);
  }
  const labels = document.createElement("div");
  labels.className = "legend-labels";
  const fmt = (v) => (Math.abs(v) >= 100 || (Math.abs(v) < 0.01 && v !== 0) ? v.toExponential(1) : (+v.toFixed(2)).toString());
  labels.innerHTML = `<span>${fmt(low)}</span><span>${fmt((low + high) / 2)}</span><span>${fmt(high)}</span>`;
  const title = document.createElement("div");
  title.className = "legend-caption"; title.textContent = caption;
  element.append(title, bar, labels);
}

// A line chart: series [{label, colour, points: [[x, y], ...], dots?, dash?}], with axes, ticks and a legend.
export function lineChart(canvas, series, { xlabel = "", ylabel = "", xmin, xmax, ymin, ymax } = {}) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 480, height = canvas.clientHeight || 240;
  if (canvas.width !== width * ratio || canvas.height !== height * ratio) {
    canvas.width = width * ratio; canvas.height = height * ratio; // a new size only when it changes: cheaper redraws
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const all = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p[1]));
  const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
  xmin = xmin ?? (xs.length ? Math.min(...xs) : 0); xmax = xmax ?? (xs.length ? Math.max(...xs) : 1);
  ymin = ymin ?? (ys.length ? Math.min(...ys) : 0); ymax = ymax ?? (ys.length ? Math.max(...ys) : 1);
  if (xmax <= xmin) xmax = xmin + 1;
  if (ymax <= ymin) { ymax = ymin + (Math.abs(ymin) || 1) * 0.1; ymin -= (Math.abs(ymin) || 1) * 0.1; }
  ctx.font = "11px system-ui, sans-serif";
  const left = 54, right = 12, bottom = 36, legendRows = legendLayout(ctx, series, left, width - right);
  const top = 14 + 16 * legendRows.length;
  const X = (x) => left + ((x - xmin) / (xmax - xmin)) * (width - left - right);
  const Y = (y) => top + (1 - (y - ymin) / (ymax - ymin)) * (height - top - bottom);
  ctx.fillStyle = "#444"; ctx.strokeStyle = "#ddd"; ctx.lineWidth = 1;
  for (const y of ticks(ymin, ymax)) {
    ctx.beginPath(); ctx.moveTo(left, Y(y)); ctx.lineTo(width - right, Y(y)); ctx.stroke();
    ctx.textAlign = "right"; ctx.fillText(label(y, ymax - ymin), left - 4, Y(y) + 4);
  }
  for (const x of ticks(xmin, xmax)) {
    ctx.textAlign = "center"; ctx.fillText(label(x, xmax - xmin), X(x), height - bottom + 14);
  }
  ctx.strokeStyle = "#888"; ctx.beginPath(); ctx.moveTo(left, top); ctx.lineTo(left, height - bottom);
  ctx.lineTo(width - right, height - bottom); ctx.stroke();
  ctx.textAlign = "center"; ctx.fillText(xlabel, (left + width - right) / 2, height - 6);
  ctx.save(); ctx.translate(12, (top + height - bottom) / 2); ctx.rotate(-Math.PI / 2); ctx.fillText(ylabel, 0, 0); ctx.restore();
  for (const s of series) {
    ctx.strokeStyle = ctx.fillStyle = s.colour; ctx.lineWidth = s.width || 2; ctx.setLineDash(s.dash || []);
    const pts = s.points.filter((p) => Number.isFinite(p[1]));
    if (s.dots) {
      ctx.globalAlpha = 0.45;
      for (const [x, y] of pts) ctx.fillRect(X(x) - 1.5, Y(y) - 1.5, 3, 3);
      ctx.globalAlpha = 1;
    } else {
      ctx.beginPath();
      pts.forEach(([x, y], i) => (i ? ctx.lineTo(X(x), Y(y)) : ctx.moveTo(X(x), Y(y))));
      ctx.stroke();
      if (pts.length === 1) ctx.fillRect(X(pts[0][0]) - 2, Y(pts[0][1]) - 2, 4, 4);
    }
  }
  legendRows.forEach((row, r) => row.forEach(({ s, x }) => {
    const y = 10 + 16 * r;
    ctx.strokeStyle = ctx.fillStyle = s.colour; ctx.lineWidth = 2; ctx.setLineDash(s.dash || []);
    if (s.dots) ctx.fillRect(x + 4, y - 2, 4, 4), ctx.fillRect(x + 11, y - 2, 4, 4);
    else { ctx.beginPath(); ctx.moveTo(x, y); ctx.lineTo(x + 20, y); ctx.stroke(); }
    ctx.setLineDash([]); ctx.fillStyle = "#333"; ctx.textAlign = "left"; ctx.fillText(s.label, x + 24, y + 4);
  }));
  ctx.setLineDash([]);
}

// The legend entries placed left to right, wrapping onto new rows: [[{s, x}, ...], ...].
function legendLayout(ctx, series, from, to) {
  const rows = [[]];
  let x = from;
  for (const s of series) {
    const w = 34 + ctx.measureText(s.label).width;
    if (x + w > to && rows[rows.length - 1].length) { rows.push([]); x = from; }
    rows[rows.length - 1].push({ s, x });
    x += w;
  }
  return rows;
}

// Round tick values (steps of 1, 2 or 5 × 10^k), about five of them between low and high.
function ticks(low, high) {
  const raw = (high - low) / 5, power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(low / step - 1e-9) * step; v <= high + 1e-9 * step; v += step) out.push(v);
  return out;
}

function label(v, span) {
  if (Math.abs(v) < 1e-12 * span) return "0";
  if (span >= 5) return (+v.toFixed(1)).toString();
  return (+v.toPrecision(3)).toString();
}

export async function api(path, body, method) {
  const options = body === undefined ? { method: method || "GET" } : {
    method: method || "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  };
  let response;
  try {
    response = await fetch(path, options);
  } catch (e) { // no answer at all: the server is not running (the banner says so too)
    throw Object.assign(new Error("the server does not answer: is nndl serve still running?"), { status: 0 });
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw Object.assign(new Error(explain(data.detail) || `${response.status} ${response.statusText}`),
      { status: response.status, detail: data.detail });
  }
  return data;
}

// FastAPI's validation errors as one readable line naming the field.
export function explain(detail) {
  if (!Array.isArray(detail)) return detail;
  return detail.map((d) => `${(d.loc || []).filter((p) => p !== "body").join(".")}: ${d.msg}`).join("; ");
}
