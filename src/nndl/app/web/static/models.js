// The Models tab: the models folder, picking one, uploading one.
import { api } from "./paint.js";

const $ = (id) => document.getElementById(id);
let page;

export function initModels(p) {
  page = p;
  $("upload").addEventListener("click", upload);
  window.addEventListener("tabshown", (e) => e.detail === "models" && list());
  page.onModel(() => $("tab-models").classList.contains("active") && list());
}

async function list() {
  try {
    const data = await api("/api/models");
    $("models-folder").textContent = data.folder;
    const rows = data.models.map((m) => {
      if (!m.valid) return `<tr class="invalid"><td>${escape(m.name)}</td><td colspan="4">${escape(m.error)}</td><td></td></tr>`;
      const n = m.network, best = m.best && m.best.accuracy !== undefined ? `${(100 * m.best.accuracy).toFixed(2)}% (${m.best.measure})` : "–";
      const chosen = m.name === page.model;
      return `<tr class="${chosen ? "chosen" : ""}"><td>${escape(m.name)}</td><td>${n.layers ? escape(n.layers) : `[${n.sizes.join(", ")}]`}</td>` +
        `<td>${n.cost}</td><td>${n.activation} → ${n.output_activation}</td><td>${best}</td>` +
        `<td><button data-use="${escape(m.name)}" ${chosen ? "disabled" : ""}>${chosen ? "in use" : "use"}</button></td></tr>`;
    });
    $("models-table").innerHTML = "<tr><th>file</th><th>layers</th><th>cost</th><th>activations</th><th>best accuracy</th><th></th></tr>" +
      (rows.join("") || "<tr><td colspan='6'>no models yet: train one and save it, or upload one</td></tr>");
    $("models-table").querySelectorAll("button[data-use]").forEach((b) =>
      b.addEventListener("click", async () => { await page.refreshModels(b.dataset.use); list(); }));
  } catch (e) { page.say(e.message, true); }
}

async function upload() {
  const file = $("upload-file").files[0];
  if (!file) { page.say("choose a .npz or .json model file first", true); return; }
  const response = await fetch(`/api/models/${encodeURIComponent(file.name)}`, {
    method: "PUT", headers: { "content-type": "application/octet-stream" }, body: file,
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = Array.isArray(data.detail) ? "use a plain file name ending in .npz or .json" : data.detail;
    page.say(`upload refused: ${detail || response.statusText}`, true); return;
  }
  page.say(`uploaded ${file.name}`);
  await page.refreshModels(file.name);
  list();
}

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
