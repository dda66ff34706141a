/* Campaign page: show only the fields that matter for the campaign's kind and trigger and for
 * each step's kind, number new steps, keep the audience size live, confirm risky actions. */
"use strict";
(function () {
  const DEBOUNCE_MS = 300; // each audience count is a COUNT over the segment
  const STEP_FIELDS = { // fields a step's kind uses, besides position, kind and name
    send: ["next_step", "template", "variants_link"],
    wait: ["next_step", "duration"],
    wait_until: ["next_step", "local_time", "weekdays"],
    wait_event: ["next_step", "else_step", "event_name", "event_filter", "duration"],
    split_segment: ["next_step", "else_step", "segment"],
    split_random: ["next_step", "else_step", "percent"],
    set_attribute: ["next_step", "attribute_key", "attribute_value"],
    set_stage: ["next_step", "stage"],
    exit: [],
  };
  const OPTIONAL_STEP_FIELDS = ["next_step", "else_step", "template", "variants_link", "duration",
    "local_time", "weekdays", "event_name", "event_filter", "segment", "percent",
    "attribute_key", "attribute_value", "stage"];
  const TRIGGER_FIELDS = {event: ["trigger_event_name", "trigger_event_filter"],
    stage: ["trigger_stage"], segment: ["trigger_segment"]};

  function fieldBox(container, name) {
    return container.querySelector(".fieldBox.field-" + name) ||
      container.querySelector(".form-row.field-" + name);
  }

  function show(container, name, visible) {
    const box = fieldBox(container, name);
    if (!box) return;
    // On a line of several fields, a field's help text sits beside its box, in its wrapper.
    const target = box.classList.contains("fieldBox") ? box.parentElement : box;
    target.classList.toggle("jh-off", !visible);
  }

  function hideEmptyRows(container) {
    container.querySelectorAll(".form-row").forEach((row) => {
      const boxes = row.querySelectorAll(".fieldBox");
      if (!boxes.length) return;
      const allOff = Array.from(boxes).every(
        (box) => box.parentElement.classList.contains("jh-off"));
      row.classList.toggle("jh-off", allOff);
    });
  }

  function onChange(element, handler) {
    if (!element) return;
    if (window.django && window.django.jQuery) window.django.jQuery(element).on("change", handler);
    else element.addEventListener("change", handler);
  }

  function value(id, fallback) {
    const element = document.getElementById(id);
    return element ? element.value : (fallback || "");
  }

  function toggleCampaign() {
    const saved = document.querySelector(".jh-audience-size");
    const kind = value("id_kind", saved ? saved.dataset.kind : "");
    document.querySelectorAll("fieldset[class*='jh-kind-']").forEach((fieldset) => {
      fieldset.classList.toggle("jh-off", !fieldset.classList.contains("jh-kind-" + kind));
    });
    const form = document.getElementById("campaign_form");
    if (!form) return;
    show(form, "send_at", kind === "broadcast");
    show(form, "crontab", kind === "recurring");
    show(form, "crontab_time_zone", kind === "recurring");
    const trigger = value("id_trigger");
    for (const [name, fields] of Object.entries(TRIGGER_FIELDS)) {
      fields.forEach((field) => show(form, field, trigger === name));
    }
    show(form, "reentry_cooldown", value("id_reentry") === "cooldown");
    hideEmptyRows(form);
  }

  function toggleStep(row) {
    const select = row.querySelector("select[name$='-kind']");
    if (!select) return;
    const wanted = STEP_FIELDS[select.value] || [];
    OPTIONAL_STEP_FIELDS.forEach((name) => show(row, name, !select.value || wanted.includes(name)));
    hideEmptyRows(row);
    const title = row.querySelector("h3 .inline_label");
    if (title && title.textContent.trim().startsWith("#")) {  // a new row: say what it does
      title.dataset.kind = select.value ? select.options[select.selectedIndex].text : "";
    }
  }

  function numberNewStep(row) {
    const input = row.querySelector("input[name$='-position']");
    if (!input || input.value) return;
    let last = 0;
    document.querySelectorAll(".jh-steps input[name$='-position']").forEach((other) => {
      last = Math.max(last, parseInt(other.value, 10) || 0);
    });
    input.value = last + 1;
  }

  function watchStep(row) {
    toggleStep(row);
    onChange(row.querySelector("select[name$='-kind']"), () => toggleStep(row));
  }

  function audienceParams() {
    const first = document.querySelector(".jh-audience-size");
    const saved = first ? first.dataset : {};
    const params = new URLSearchParams();
    params.set("kind", value("id_kind", saved.kind));
    params.set("segment", value("id_segment", saved.segment));
    params.set("trigger", value("id_trigger", saved.trigger));
    params.set("trigger_segment", value("id_trigger_segment", saved.triggerSegment));
    return params;
  }

  function watchAudience() {
    const spans = document.querySelectorAll(".jh-audience-size");
    if (!spans.length) return;
    let timer = null;
    let inflight = null;
    const say = (text, isError) => spans.forEach((span) => {
      span.textContent = text;
      span.classList.toggle("jh-error", Boolean(isError));
    });
    async function refresh() {
      if (inflight) inflight.abort();
      inflight = new AbortController();
      say("Counting…");
      try {
        const url = spans[0].dataset.url + "?" + audienceParams().toString();
        const response = await fetch(url, {credentials: "same-origin", signal: inflight.signal});
        const data = await response.json();
        if (!response.ok) throw new Error(data.error || response.statusText);
        say(data.text);
      } catch (error) {
        if (error.name !== "AbortError") say(error.message, true);
      }
    }
    const later = () => { clearTimeout(timer); timer = setTimeout(refresh, DEBOUNCE_MS); };
    ["id_kind", "id_segment", "id_trigger", "id_trigger_segment"].forEach(
      (id) => onChange(document.getElementById(id), later));
    refresh();
  }

  function init() {
    toggleCampaign();
    ["id_kind", "id_trigger", "id_reentry"].forEach(
      (id) => onChange(document.getElementById(id), toggleCampaign));
    document.querySelectorAll(".jh-steps .inline-related").forEach(watchStep);
    document.addEventListener("formset:added", (event) => {
      if (!event.target.closest || !event.target.closest(".jh-steps")) return;
      numberNewStep(event.target);
      watchStep(event.target);
    });
    document.querySelectorAll("form[data-confirm]").forEach((form) => {
      form.addEventListener("submit", (event) => {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
    watchAudience();
  }

  document.addEventListener("DOMContentLoaded", init);
})();
