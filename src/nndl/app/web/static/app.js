// The page's frame: tabs (ARIA tabs: arrow keys move between them), the model picker shared by every tab,
// messages, the connection to the server; the URL hash keeps the tab, the model and each view's settings, so a
// link shows what its sender saw.
import { api } from "./paint.js";
import { initDraw } from "./draw.js";
import { initTrain } from "./train.js";
import { initMistakes } from "./mistakes.js";
import { initSlowdown } from "./slowdown.js";
import { initModels } from "./models.js";
import { initUniversality } from "./universality.js";
import { initUnstable } from "./unstable.js";

const $ = (id) => document.getElementById(id);
const listeners = [], trainingListeners = [];
export const page = {
  model: null,
  onModel(listener) { listeners.push(listener); },
  onTraining(listener) { trainingListeners.push(listener); },
  trainingChanged(run) { trainingListeners.forEach((listener) => listener(run)); },
  hashValue,
  setHash,
  showTab,
  say(text, isError = false) {
    const box = $("message");
    box.textContent = text; box.className = isError ? "error" : text ? "info" : "";
  },
  // Whether the server answers: a lost connection is shown at once; when it is back, the page picks up again.
  connected(ok) {
    const banner = $("connection"), was = !banner.hidden;
    banner.hidden = ok;
    document.body.dataset.connection = ok ? "up" : "lost";
    if (ok && was) page.refreshModels().catch(() => {});
  },
  async refreshModels(select) {
    const { models } = await api("/api/models");
    const picker = $("model");
    const usable = models.filter((m) => m.valid);
    picker.innerHTML = usable.length ? "" : "<option value=''>no model yet</option>";
    for (const m of usable) picker.add(new Option(`${m.name}  [${m.network.layers || m.network.sizes.join(", ")}]`, m.name));
    const wanted = select || page.model || hashValue("model");
    if (usable.some((m) => m.name === wanted)) picker.value = wanted;
    setModel(picker.value || null);
    window.dispatchEvent(new CustomEvent("modelslisted", { detail: usable.length }));
    return models;
  },
};

function hashValue(key) { return new URLSearchParams(location.hash.slice(1)).get(key); }
function setHash(key, value) {
  const params = new URLSearchParams(location.hash.slice(1));
  if (value !== null && value !== undefined && value !== "") params.set(key, value); else params.delete(key);
  history.replaceState(null, "", "#" + params.toString());
}

function setModel(name) {
  const changed = name !== page.model;
  page.model = name;
  setHash("model", name);
  if (changed) listeners.forEach((listener) => listener(name));
}

const tabs = () => [...document.querySelectorAll("#tabs button")];

function showTab(name) {
  if (!$(`tab-${name}`)) name = "draw";
  for (const tab of tabs()) {
    const chosen = tab.dataset.tab === name;
    tab.classList.toggle("active", chosen);
    tab.setAttribute("aria-selected", String(chosen));
    tab.tabIndex = chosen ? 0 : -1;
  }
  document.querySelectorAll(".tab").forEach((s) => {
    s.classList.toggle("active", s.id === `tab-${name}`);
    s.hidden = s.id !== `tab-${name}`;
  });
  setHash("tab", name);
  page.say("");
  window.dispatchEvent(new CustomEvent("tabshown", { detail: name }));
}

// ARIA tabs: every tab names its panel, the panel names its tab; arrow keys, Home and End move between tabs.
function initTabs() {
  for (const tab of tabs()) {
    tab.setAttribute("role", "tab");
    tab.id = `tab-button-${tab.dataset.tab}`;
    tab.setAttribute("aria-controls", `tab-${tab.dataset.tab}`);
    const panel = $(`tab-${tab.dataset.tab}`);
    panel.setAttribute("role", "tabpanel");
    panel.setAttribute("aria-labelledby", tab.id);
    panel.tabIndex = -1;
    tab.addEventListener("click", () => showTab(tab.dataset.tab));
  }
  $("tabs").addEventListener("keydown", (e) => {
    const all = tabs(), at = all.indexOf(document.activeElement);
    if (at < 0) return;
    const next = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: all.length - 1 }[e.key];
    if (next === undefined) return;
    e.preventDefault();
    const tab = all[(next + all.length) % all.length];
    showTab(tab.dataset.tab);
    tab.focus();
  });
}

initTabs();
$("model").addEventListener("change", (e) => setModel(e.target.value || null));
initTrain(page); initDraw(page); initMistakes(page); initSlowdown(page); initModels(page);
initUniversality(page); initUnstable(page);
showTab(hashValue("tab") || "draw");
page.refreshModels().catch((e) => page.say(e.message, true));
