/* Segment page: show the rules' or the upload's fieldsets by kind, and a live count and sample
 * of the rules being edited (POSTed to the admin's preview view, debounced). */
"use strict";
(function () {
  const DEBOUNCE_MS = 400; // wait for a pause in typing; each preview is a COUNT query

  function toggleKind(kind) {
    const dynamic = !kind || kind.value !== "static";
    document.querySelectorAll(".jh-when-dynamic").forEach((el) => { el.hidden = !dynamic; });
    document.querySelectorAll(".jh-when-static").forEach((el) => { el.hidden = dynamic; });
    return dynamic;
  }

  function renderSample(list, sample) {
    list.replaceChildren();
    for (const customer of sample) {
      const item = document.createElement("li");
      const label = customer.url ? document.createElement("a") : document.createElement("span");
      if (customer.url) label.href = customer.url;
      label.textContent = customer.external_id;
      item.append(label);
      for (const [text, css] of [[customer.name, "jh-name"], [customer.stage, "jh-stage"]]) {
        if (!text) continue;
        const span = document.createElement("span");
        span.className = css;
        span.textContent = text;
        item.append(" ", span);
      }
      list.append(item);
    }
  }

  function checked(errors) {
    // The visual rules (segment_builder.js) show each message on the row it names.
    document.dispatchEvent(new CustomEvent("jh:rules-checked", {detail: {errors}}));
  }

  function init() {
    const box = document.getElementById("jh-preview");
    const rules = document.getElementById("id_rules");
    const kind = document.getElementById("id_kind");
    if (!box || !rules) return;
    const status = box.querySelector(".jh-preview-status");
    const list = box.querySelector(".jh-preview-sample");
    const csrf = document.querySelector("input[name=csrfmiddlewaretoken]");
    let url = box.dataset.previewUrl;
    if (box.dataset.segment) url += "?segment=" + encodeURIComponent(box.dataset.segment);
    let timer = null;
    let inflight = null;

    async function refresh() {
      if (inflight) inflight.abort();
      inflight = new AbortController();
      status.textContent = "Counting…";
      box.classList.remove("jh-error");
      try {
        const response = await fetch(url, {
          method: "POST", body: rules.value, credentials: "same-origin", signal: inflight.signal,
          headers: {"Content-Type": "application/json", "X-CSRFToken": csrf ? csrf.value : ""},
        });
        const data = await response.json();
        if (!response.ok) {
          checked(data.errors || [data.error || response.statusText]);
          throw new Error(data.error || response.statusText);
        }
        checked([]);
        status.textContent = `${data.count.toLocaleString()} customer${data.count === 1 ? "" : "s"} match`;
        renderSample(list, data.sample);
      } catch (error) {
        if (error.name === "AbortError") return;
        box.classList.add("jh-error");
        status.textContent = error.message;
        list.replaceChildren();
      }
    }

    rules.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(refresh, DEBOUNCE_MS);
    });
    if (kind) kind.addEventListener("change", () => { if (toggleKind(kind)) refresh(); });
    if (toggleKind(kind)) refresh();
  }

  document.addEventListener("DOMContentLoaded", init);
})();
