/* Segment page: the rules as rows of field, operator and value in nested all / any groups.
 * The JSON textarea stays the one source of the rules (it is what the form saves, and the
 * advanced view): the rows are drawn from it, and every change in the rows writes it back
 * (JSON.stringify of the same objects, so rules round-trip exactly) and fires "input", which
 * the live count (segment_preview.js) follows. The server checks the rules (the same
 * validation as the segments API); its messages name a path, shown on the row they concern. */
"use strict";
(function () {
  const GROUP_LABELS = {all: "All of these match", any: "Any of these matches"};
  let config = null;
  let rules = null;
  let textarea = null;
  let root = null;
  const valueLists = {};

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([key, value]) => {
      if (key === "className") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (value !== undefined && value !== null) node.setAttribute(key, value);
    });
    children.flat().forEach((child) => {
      if (child !== null && child !== undefined) {
        node.append(child instanceof Node ? child : document.createTextNode(String(child)));
      }
    });
    return node;
  }

  function select(options, current, onchange, label) {
    const box = el("select", {"aria-label": label, onchange: (e) => onchange(e.target.value)});
    options.forEach(([value, text]) => box.append(new Option(text, value)));
    box.value = current === undefined ? "" : String(current);
    return box;
  }

  function datalist(name, values) {
    const id = "jh-rules-list-" + name;
    let list = document.getElementById(id);
    if (!list) {
      list = el("datalist", {id});
      document.body.append(list);
    }
    list.replaceChildren(...values.map((value) => new Option(String(value))));
    return id;
  }

  function textInput(value, onchange, attrs) {
    return el("input", {type: "text", value: value === undefined ? "" : value,
      oninput: (e) => onchange(e.target.value), ...attrs});
  }

  function asNumberOrNone(text) {
    const trimmed = text.trim();
    return /^-?\d+$/.test(trimmed) ? parseInt(trimmed, 10) : (trimmed ? trimmed : undefined);
  }

  function typed(text) {
    // A value typed in a row: numbers and true / false as such, anything else as text.
    const trimmed = text.trim();
    if (/^-?\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
    if (trimmed === "true" || trimmed === "false") return trimmed === "true";
    return text;
  }

  function join(path, part) {
    return path ? path + "." + part : part;  // as the server names places in the rules
  }

  function setOrDrop(spec, key, value) {
    if (value === undefined || value === "") delete spec[key];
    else spec[key] = value;
  }

  function write() {
    textarea.value = JSON.stringify(rules, null, 2);
    textarea.dispatchEvent(new Event("input", {bubbles: true}));
  }

  function changed(redraw) {
    write();
    if (redraw) draw();
  }

  // --- Leaf rules: one row each ------------------------------------------------------------

  const DEFAULTS = {
    attribute: () => ({key: "", op: "eq", value: ""}),
    event: () => ({name: ""}),
    stage: () => ({in: []}),
    last_seen: () => ({within_days: 30}),
    consent: () => ({topic: ""}),
    profile: () => ({field: "locale", op: "eq", value: ""}),
    segment: () => "",
    bucket: () => ({min: 0, max: 999}),
  };
  const TYPE_LABELS = {attribute: "Attribute", event: "Event", stage: "Stage",
    last_seen: "Last seen", consent: "Accepts push", profile: "Profile", segment: "In segment",
    bucket: "Bucket", json: "Other (JSON)"};

  function valueInput(spec, listName) {
    const attrs = {"aria-label": "value", placeholder: "value"};
    if (listName) attrs.list = listName;
    return textInput(spec.value === undefined ? "" : String(spec.value),
      (text) => { setOrDrop(spec, "value", text === "" ? undefined : typed(text)); write(); },
      attrs);
  }

  async function attributeValues(key) {
    if (!key || !config.suggest_url) return null;
    if (!(key in valueLists)) {
      valueLists[key] = fetch(config.suggest_url + "?attribute=" + encodeURIComponent(key),
        {credentials: "same-origin"}).then((r) => r.json()).then((d) => d.values || [])
        .catch(() => []);
    }
    return datalist("value-" + key.replace(/[^\w-]/g, "_"), await valueLists[key]);
  }

  const EDITORS = {
    attribute(spec) {
      const value = valueInput(spec);
      const op = select(config.attribute_ops.map((o) => [o, o.replace("_", " ")]), spec.op,
        (v) => { spec.op = v; if (v.endsWith("exists")) delete spec.value;
          else if (!("value" in spec)) spec.value = ""; changed(true); }, "operator");
      const key = textInput(spec.key, (text) => {
        spec.key = text; write();
        attributeValues(text).then((id) => { if (id) value.setAttribute("list", id); });
      }, {"aria-label": "attribute", placeholder: "attribute", list: datalist("attributes",
        config.suggestions.attributes), className: "jh-rule-key"});
      attributeValues(spec.key).then((id) => { if (id) value.setAttribute("list", id); });
      return [key, op, String(spec.op || "").endsWith("exists") ? null : value];
    },
    event(spec) {
      const performed = select([["true", "did"], ["false", "did not do"]],
        spec.performed === false ? "false" : "true",
        (v) => { setOrDrop(spec, "performed", v === "false" ? false : undefined); write(); },
        "did or did not");
      const name = textInput(spec.name, (t) => { spec.name = t; write(); },
        {"aria-label": "event", placeholder: "event name",
          list: datalist("events", config.suggestions.events), className: "jh-rule-event"});
      const count = textInput(spec.min_count, (t) => { setOrDrop(spec, "min_count",
        asNumberOrNone(t)); write(); }, {"aria-label": "at least, times", size: 3,
        placeholder: "1"});
      const days = textInput(spec.within_days, (t) => { setOrDrop(spec, "within_days",
        asNumberOrNone(t)); write(); }, {"aria-label": "within days", size: 4,
        placeholder: "ever"});
      const parts = [performed, name, " at least ", count, " times, in the last ", days, " days"];
      if ("where" in spec) parts.push(" where ", jsonInput(spec, "where"));
      return parts;
    },
    stage(spec) {
      const chosen = new Set(Array.isArray(spec.in) ? spec.in : []);
      return config.suggestions.stages.map(({value, label}) => el("label", {className:
        "jh-rule-check"}, el("input", {type: "checkbox", value, ...(chosen.has(value) ?
        {checked: ""} : {}), onchange: (e) => {
          const now = new Set(Array.isArray(spec.in) ? spec.in : []);
          if (e.target.checked) now.add(value); else now.delete(value);
          spec.in = config.suggestions.stages.map((s) => s.value).filter((s) => now.has(s));
          write();
        }}), " ", label));
    },
    last_seen(spec) {
      const modes = [["within_days", "within the last … days"],
        ["more_than_days_ago", "more than … days ago"], ["never", "never"]];
      const mode = modes.map(([m]) => m).find((m) => m in spec) || "within_days";
      const pick = select(modes, mode, (m) => {
        Object.keys(spec).forEach((k) => delete spec[k]);
        spec[m] = m === "never" ? true : 30;
        changed(true);
      }, "when");
      if (mode === "never") return [pick];
      return [pick, textInput(spec[mode], (t) => { setOrDrop(spec, mode, asNumberOrNone(t));
        write(); }, {"aria-label": "days", size: 4})];
    },
    consent(spec) {
      if ("push" in spec && !("topic" in spec)) return ["push notifications in general"];
      return ["topic ", textInput(spec.topic, (t) => { spec.topic = t; write(); },
        {"aria-label": "topic", list: datalist("topics", config.suggestions.topics)})];
    },
    profile(spec) {
      const op = select(config.profile_ops.map((o) => [o, o]), spec.op, (v) => {
        spec.op = v; if (v === "exists") delete spec.value;
        else if (!("value" in spec)) spec.value = ""; changed(true);
      }, "operator");
      return [select(config.profile_fields.map((f) => [f, f.replace("_", " ")]), spec.field,
        (v) => { spec.field = v; write(); }, "field"), op,
      spec.op === "exists" ? null : valueInput(spec)];
    },
    bucket(spec) {
      return ["from ", textInput(spec.min, (t) => { setOrDrop(spec, "min", asNumberOrNone(t));
        write(); }, {"aria-label": "from", size: 5}), " to ",
      textInput(spec.max, (t) => { setOrDrop(spec, "max", asNumberOrNone(t)); write(); },
        {"aria-label": "to", size: 5}), " (of 0–9999)"];
    },
  };

  function jsonInput(holder, key) {
    return el("textarea", {rows: 1, cols: 40, className: "jh-rule-json", "aria-label": key,
      oninput: (e) => {
        try { holder[key] = JSON.parse(e.target.value); e.target.classList.remove("jh-bad");
          write(); } catch (error) { e.target.classList.add("jh-bad"); }
      }}, JSON.stringify(holder[key]));
  }

  function leafRow(rule, path, replaceWith, remove, negate) {
    const [type] = Object.keys(rule);
    const known = type in EDITORS || type === "segment";
    const typeSelect = select(Object.entries(TYPE_LABELS).filter(([t]) => t !== "json" || !known)
      .map(([t, label]) => [t === "json" ? type : t, t === "json" ? `${label}: ${type}` : label]),
    type, (t) => replaceWith({[t]: DEFAULTS[t] ? DEFAULTS[t]() : {}}), "rule type");
    let editor;
    if (type === "segment") {
      editor = [textInput(rule.segment, (t) => { rule.segment = asNumberOrNone(t) ?? ""; write(); },
        {"aria-label": "segment", list: datalist("segments", config.suggestions.segments)})];
    } else if (type in EDITORS && rule[type] && typeof rule[type] === "object") {
      editor = EDITORS[type](rule[type]);
    } else {
      editor = [jsonInput(rule, type)];
    }
    return el("div", {className: "jh-rule", "data-path": join(path, type), "data-type": type},
      negate, typeSelect, el("span", {className: "jh-rule-fields"}, editor),
      el("button", {type: "button", className: "jh-rule-remove", title: "Remove this rule",
        "aria-label": "Remove this rule", onclick: remove}, "✕"),
      el("div", {className: "jh-rule-problem"}));
  }

  // --- Groups and "not" -------------------------------------------------------------------

  function node(rule, path, replaceWith, remove) {
    if (!rule || typeof rule !== "object" || Array.isArray(rule) || Object.keys(rule).length !== 1) {
      return leafRow({json: rule}, path, replaceWith, remove, null);
    }
    const [type] = Object.keys(rule);
    if (type === "not") {
      const inner = rule.not;
      const negate = el("label", {className: "jh-rule-not"}, el("input", {type: "checkbox",
        checked: "", onchange: () => replaceWith(inner)}), " not");
      return wrapNegated(inner, join(path, "not"), (r) => { rule.not = r; changed(true); },
        () => remove(), negate);
    }
    const negate = el("label", {className: "jh-rule-not"}, el("input", {type: "checkbox",
      onchange: () => replaceWith({not: rule})}), " not");
    return wrapNegated(rule, path, replaceWith, remove, negate);
  }

  function wrapNegated(rule, path, replaceWith, remove, negate) {
    const [type] = Object.keys(rule || {});
    if ((type === "all" || type === "any") && Array.isArray(rule[type])) {
      return groupBox(rule, path, replaceWith, remove, negate);
    }
    if (type === "not") return node(rule, path, replaceWith, remove);  // a double negation
    return leafRow(rule, path, replaceWith, remove, negate);
  }

  function groupBox(rule, path, replaceWith, remove, negate) {
    const [type] = Object.keys(rule);
    const children = rule[type];
    const box = el("div", {className: "jh-rule-group", "data-path": join(path, type)});
    const head = el("div", {className: "jh-rule-group-head"}, negate,
      select(Object.entries(GROUP_LABELS), type, (t) => {
        replaceWith({[t]: children});
      }, "group"),
      remove ? el("button", {type: "button", className: "jh-rule-remove",
        title: "Remove this group", "aria-label": "Remove this group", onclick: remove}, "✕")
        : null, el("div", {className: "jh-rule-problem"}));
    box.append(head);
    const list = el("div", {className: "jh-rule-children"});
    const base = join(path, type);
    children.forEach((child, index) => {
      list.append(node(child, `${base}[${index}]`,
        (r) => { children[index] = r; changed(true); },
        () => { children.splice(index, 1); changed(true); }));
    });
    box.append(list, el("div", {className: "jh-rule-add"},
      el("button", {type: "button", className: "jh-rule-add-rule",
        onclick: () => { children.push({attribute: DEFAULTS.attribute()}); changed(true); }},
      "+ Rule"),
      el("button", {type: "button", className: "jh-rule-add-group",
        onclick: () => { children.push({any: [{attribute: DEFAULTS.attribute()}]});
          changed(true); }}, "+ Group")));
    return box;
  }

  function draw() {
    const top = rules && typeof rules === "object" && !Array.isArray(rules) &&
      ["all", "any"].includes(Object.keys(rules)[0]) && Object.keys(rules).length === 1
      ? rules : null;
    if (top === null) {
      // A root that is not a group: shown inside one, written back unchanged until edited.
      root.replaceChildren(node(rules, "", (r) => { rules = r; changed(true); },
        null));
      return;
    }
    root.replaceChildren(groupBox(top, "", (r) => { rules = r; changed(true); }, null, null));
  }

  function readTextarea() {
    const raw = textarea.value.trim();
    const text = raw === "null" ? "" : raw;  // a new segment's empty rules
    try {
      rules = text ? JSON.parse(text) : {all: []};
      root.classList.remove("jh-rules-unreadable");
      draw();
      if (!text) write();  // a new segment starts as one empty group: everyone
    } catch (error) {
      root.classList.add("jh-rules-unreadable");
      root.replaceChildren(el("p", {className: "errornote"},
        "The JSON below has a syntax error; fix it in the JSON view to edit the rules here."));
    }
  }

  function showProblems(errors) {
    root.querySelectorAll(".jh-rule-problem").forEach((p) => { p.textContent = ""; });
    root.querySelectorAll(".jh-has-problem").forEach((p) => p.classList.remove("jh-has-problem"));
    const places = Array.from(root.querySelectorAll("[data-path]"));
    (errors || []).forEach((message) => {
      const where = message.split(":")[0];
      const best = places.filter((p) => where === p.dataset.path ||
        where.startsWith(p.dataset.path + ".") || where.startsWith(p.dataset.path + "["))
        .sort((a, b) => b.dataset.path.length - a.dataset.path.length)[0] ||
        root.querySelector(".jh-rule-group");
      if (!best) return;
      best.classList.add("jh-has-problem");
      const slot = best.querySelector(":scope > .jh-rule-problem, :scope > .jh-rule-group-head > .jh-rule-problem");
      if (slot) slot.textContent = (slot.textContent ? slot.textContent + " " : "") + message;
    });
  }

  function init() {
    const data = document.getElementById("jh-rules-config");
    textarea = document.getElementById("id_rules");
    if (!data || !textarea) return;
    config = JSON.parse(data.textContent);
    const row = textarea.closest(".form-row");
    root = el("div", {className: "jh-rules-builder", id: "jh-rules-builder"});
    const toggle = el("button", {type: "button", className: "jh-rules-toggle",
      id: "jh-rules-toggle"}, "Edit as JSON (advanced)");
    toggle.addEventListener("click", () => {
      const showJson = row.classList.toggle("jh-rules-json-shown");
      toggle.textContent = showJson ? "Hide the JSON" : "Edit as JSON (advanced)";
      if (!showJson) readTextarea();
    });
    row.classList.add("jh-rules-row");
    row.parentElement.insertBefore(el("div", {className: "form-row jh-rules-visual"}, root,
      toggle), row);
    textarea.addEventListener("input", (event) => {
      if (event.isTrusted) readTextarea();  // typed in the JSON view, not written from rows
    });
    document.addEventListener("jh:rules-checked", (event) => showProblems(event.detail.errors));
    readTextarea();
  }

  document.addEventListener("DOMContentLoaded", init);
})();
