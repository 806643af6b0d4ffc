// The page's frame: tabs, the model picker shared by every tab, messages; the URL hash keeps tab and model.
import { api } from "./paint.js";
import { initDraw } from "./draw.js";
import { initTrain } from "./train.js";
import { initMistakes } from "./mistakes.js";
import { initSlowdown } from "./slowdown.js";
import { initModels } from "./models.js";

const listeners = [];
export const page = {
  model: null,
  onModel(listener) { listeners.push(listener); },
  say(text, isError = false) {
    const box = document.getElementById("message");
    box.textContent = text; box.className = isError ? "error" : text ? "info" : "";
  },
  async refreshModels(select) {
    const { models } = await api("/api/models");
    const picker = document.getElementById("model");
    const usable = models.filter((m) => m.valid);
    picker.innerHTML = usable.length ? "" : "<option value=''>no model yet: train or upload one</option>";
    for (const m of usable) picker.add(new Option(`${m.name}  [${m.network.sizes.join(", ")}]`, m.name));
    const wanted = select || page.model || hashValue("model");
    if (usable.some((m) => m.name === wanted)) picker.value = wanted;
    setModel(picker.value || null);
    return models;
  },
};

function hashValue(key) { return new URLSearchParams(location.hash.slice(1)).get(key); }
function setHash(key, value) {
  const params = new URLSearchParams(location.hash.slice(1));
  if (value) params.set(key, value); else params.delete(key);
  history.replaceState(null, "", "#" + params.toString());
}

function setModel(name) {
  const changed = name !== page.model;
  page.model = name;
  setHash("model", name);
  if (changed) listeners.forEach((listener) => listener(name));
}

function showTab(name) {
  document.querySelectorAll("#tabs button").forEach((b) => b.classList.toggle("active", b.dataset.tab === name));
  document.querySelectorAll(".tab").forEach((s) => s.classList.toggle("active", s.id === `tab-${name}`));
  setHash("tab", name);
  page.say("");
  window.dispatchEvent(new CustomEvent("tabshown", { detail: name }));
}

document.querySelectorAll("#tabs button").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab)));
document.getElementById("model").addEventListener("change", (e) => setModel(e.target.value || null));

initDraw(page); initTrain(page); initMistakes(page); initSlowdown(page); initModels(page);
showTab(hashValue("tab") || "draw");
page.refreshModels().catch((e) => page.say(e.message, true));
