/* Campaign page: the live flow. The diagram follows the unsaved form (the server draws it from
 * the form as posted to the flow preview, problems included); next / else offer every step of
 * the form, new ones too; steps move up and down; a step can be added from the diagram. */
"use strict";
(function () {
  const DEBOUNCE_MS = 350;
  const LINKS = "select[name$='-next_step'], select[name$='-else_step']";

  function rows() {
    return Array.from(document.querySelectorAll("#steps-group .inline-related"))
      .filter((row) => !row.classList.contains("empty-form"));
  }

  function input(row, name) {
    return row.querySelector(`[name$='-${name}']`);
  }

  function isDeleted(row) {
    const box = input(row, "DELETE");
    return Boolean(box && box.checked);
  }

  function rowFor(key) {
    if (key.startsWith("new-")) return document.getElementById("steps-" + key.slice(4));
    return rows().find((row) => (input(row, "id") || {}).value === key) || null;
  }

  function pick(key) {
    const row = rowFor(key);
    if (!row) return;
    rows().forEach((other) => other.classList.remove("jh-picked"));
    row.classList.add("jh-picked");
    row.scrollIntoView({block: "center"});
    const kind = input(row, "kind");
    if (kind) kind.focus({preventScroll: true});
  }

  function showOrder() {
    // The rows stand in the order the steps run (their position), without moving them in the
    // page: the formset's indexes stay as the server numbered them.
    rows().forEach((row) => {
      const position = parseInt((input(row, "position") || {}).value, 10);
      row.style.order = Number.isFinite(position) ? String(position) : "99999";
    });
  }

  function ordered() {
    return rows().filter((row) => !isDeleted(row)).sort((a, b) =>
      (parseInt(a.style.order, 10) || 0) - (parseInt(b.style.order, 10) || 0));
  }

  function move(row, delta) {
    const list = ordered();
    const at = list.indexOf(row);
    const to = at + delta;
    if (at < 0 || to < 0 || to >= list.length) return;
    [list[at], list[to]] = [list[to], list[at]];
    list.forEach((each, index) => { input(each, "position").value = index + 1; });
    showOrder();
    row.scrollIntoView({block: "center"});
    schedule();
  }

  function addMoveButtons(row) {
    const title = row.querySelector("h3");
    if (!title || title.querySelector(".jh-move")) return;
    const box = document.createElement("span");
    box.className = "jh-move";
    [["↑", -1, "Move up"], ["↓", 1, "Move down"]].forEach(([text, delta, label]) => {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = text;
      button.title = label;
      button.setAttribute("aria-label", label);
      button.className = delta < 0 ? "jh-move-up" : "jh-move-down";
      button.addEventListener("click", () => move(row, delta));
      box.appendChild(button);
    });
    title.appendChild(box);
  }

  function updateLinks(steps) {
    // Every next / else list offers the steps of the form as they stand, new ones included.
    document.querySelectorAll("#steps-group " + LINKS).forEach((select) => {
      const row = select.closest(".inline-related");
      if (!row || row.classList.contains("empty-form")) return;
      const own = (input(row, "id") || {}).value || "new-" + row.id.replace("steps-", "");
      const wanted = [["", "---------"]].concat(steps.filter((s) => s.key !== own).map(
        (s) => [s.saved ? s.key : "new-" + s.row, s.label + (s.saved ? "" : " (new)")]));
      const current = select.value;
      if (current && !wanted.some(([value]) => value === current)) {
        const kept = Array.from(select.options).find((o) => o.value === current);
        wanted.push([current, kept ? kept.textContent : current]);
      }
      const signature = JSON.stringify(wanted);
      if (select.dataset.links === signature) return;
      select.dataset.links = signature;
      select.replaceChildren(...wanted.map(([value, label]) => new Option(label, value)));
      select.value = current;
    });
  }

  function showProblems(panel, data) {
    const list = panel.querySelector(".jh-flow-problems");
    const items = [];
    Object.entries(data.problems).forEach(([key, messages]) => messages.forEach((text) => {
      items.push([key, text]);
    }));
    data.general.forEach((text) => items.push(["", text]));
    list.replaceChildren(...items.map(([key, text]) => {
      const item = document.createElement("li");
      item.textContent = text;
      if (key) {
        item.dataset.step = key;
        item.addEventListener("click", () => pick(key));
      }
      return item;
    }));
    list.hidden = !items.length;
  }

  let timer = null;
  let inflight = null;

  async function refresh() {
    const panel = document.getElementById("jh-flow");
    const form = document.getElementById("campaign_form");
    if (!panel || !form || !panel.dataset.previewUrl) return;
    const state = panel.querySelector(".jh-flow-state");
    if (inflight) inflight.abort();
    inflight = new AbortController();
    if (state) state.textContent = "Drawing…";
    try {
      const response = await fetch(panel.dataset.previewUrl, {
        method: "POST", body: new FormData(form), credentials: "same-origin",
        signal: inflight.signal, headers: {"X-Requested-With": "XMLHttpRequest"},
      });
      const data = await response.json();
      if (!response.ok) throw new Error(data.error || response.statusText);
      panel.querySelector(".jh-flow-box").innerHTML = data.svg;
      showProblems(panel, data);
      updateLinks(data.steps);
      panel.dataset.drawn = String((parseInt(panel.dataset.drawn, 10) || 0) + 1);
      if (state) state.textContent = data.steps.length + " steps, not saved yet";
    } catch (error) {
      if (error.name !== "AbortError" && state) state.textContent = "Cannot draw: " + error.message;
    }
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(refresh, DEBOUNCE_MS);
  }

  function addStep() {
    const link = document.querySelector("#steps-group .add-row a");
    const kind = document.getElementById("jh-flow-add-kind");
    if (!link) return;
    link.click();  // Django's inline adds the row and fires formset:added
    const added = rows().pop();
    const select = added && input(added, "kind");
    if (select && kind) {
      select.value = kind.value;
      select.dispatchEvent(new Event("change", {bubbles: true}));
    }
    if (added) pick("new-" + added.id.replace("steps-", ""));
  }

  function init() {
    const panel = document.getElementById("jh-flow");
    const form = document.getElementById("campaign_form");
    if (!panel || !form) return;
    rows().forEach(addMoveButtons);
    showOrder();
    form.addEventListener("input", () => { showOrder(); schedule(); });
    form.addEventListener("change", () => { showOrder(); schedule(); });
    // select2 (the template and segment boxes) reports through jQuery only.
    if (window.django && window.django.jQuery) window.django.jQuery(form).on("change", schedule);
    document.addEventListener("formset:added", (event) => {
      if (!event.target.closest || !event.target.closest(".jh-steps")) return;
      addMoveButtons(event.target);
      setTimeout(() => { showOrder(); schedule(); }, 0);  // after builder.js numbered it
    });
    document.addEventListener("formset:removed", schedule);
    panel.querySelector(".jh-flow-box").addEventListener("click", (event) => {
      const step = event.target.closest && event.target.closest("[data-step]");
      if (step) pick(step.dataset.step);
    });
    const add = document.getElementById("jh-flow-add");
    if (add) add.addEventListener("click", addStep);
    refresh();
  }

  document.addEventListener("DOMContentLoaded", init);
})();
