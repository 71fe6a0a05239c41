// The cronmesh console's one script: actions through the admin API, live
// refresh over GET /v1/events, the job form, and following a run's output.
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

function toast(message, bad) {
  const box = $("#toast");
  if (!box) return;
  box.textContent = message;
  box.className = bad ? "shown bad" : "shown";
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.className = ""; }, 4000);
}

// Calls the admin API; answers {ok, status, body} and never throws. Every
// change says it is JSON, even without a body: the node refuses changes
// typed as a page of another site could type them.
async function api(method, url, body) {
  try {
    const response = await fetch(url, {
      method,
      headers: method === "GET" ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
    const text = await response.text();
    let parsed = text;
    try { parsed = JSON.parse(text); } catch (_) { /* plain text */ }
    return { ok: response.ok, status: response.status, body: parsed };
  } catch (e) {
    return { ok: false, status: 0, body: { error: { message: "cannot reach the node: " + e.message } } };
  }
}

function errorOf(answer) {
  const error = answer.body && answer.body.error;
  if (error && error.message) return error;
  return { message: "the node answered " + answer.status };
}

// ---- Live refresh -------------------------------------------------------

// Re-renders <main> from the server, keeping what the user had open.
async function refreshMain() {
  const main = $("main[data-live]");
  if (!main) return;
  const response = await fetch(location.href, { credentials: "same-origin" }).catch(() => null);
  if (!response || !response.ok) return;
  const page = new DOMParser().parseFromString(await response.text(), "text/html");
  const fresh = $("main", page);
  if (!fresh) return;
  const open = $$("details[open]", main).map((d) => $$("details", main).indexOf(d));
  main.innerHTML = fresh.innerHTML;
  const details = $$("details", main);
  open.forEach((i) => details[i] && details[i].setAttribute("open", ""));
  const node = $(".node", page);
  if (node && $(".node")) $(".node").textContent = node.textContent;
}

// Busy clusters send many events a second: re-render at most every
// REFRESH_EVERY ms, and soon after the first event of a quiet spell.
const REFRESH_EVERY = 2000;

function scheduleRefresh() {
  if (scheduleRefresh.pending) return;
  const wait = Math.max(300, (scheduleRefresh.last || 0) + REFRESH_EVERY - Date.now());
  scheduleRefresh.pending = setTimeout(() => {
    scheduleRefresh.pending = null;
    scheduleRefresh.last = Date.now();
    refreshMain();
  }, wait);
}

function connectEvents() {
  if (!window.EventSource) return;
  const indicator = $("#live");
  const events = new EventSource("/v1/events");
  // A browser holds few connections per host: give this one back as soon
  // as the page is left, and open a new one if the page is shown again.
  window.addEventListener("pagehide", () => events.close(), { once: true });
  window.addEventListener("pageshow", (event) => { if (event.persisted) connectEvents(); }, { once: true });
  events.onopen = () => { if (indicator) { indicator.className = "live on"; indicator.title = "live"; } };
  events.onerror = () => { if (indicator) { indicator.className = "live off"; indicator.title = "reconnecting…"; } };
  for (const name of ["run", "job", "leader", "executor"]) {
    events.addEventListener(name, (event) => {
      if ($("main[data-live]")) scheduleRefresh();
      if (name === "run") followRunEvent(JSON.parse(event.data));
    });
  }
}

// ---- Actions ------------------------------------------------------------

// A button with data-action="URL" calls the API (POST unless data-method),
// after data-confirm if given; then goes to data-then or refreshes.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-action]");
  if (!button) return;
  event.preventDefault();
  if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
  button.disabled = true;
  const method = button.dataset.method || "POST";
  const answer = await api(method, button.dataset.action, method === "DELETE" ? undefined : {});
  button.disabled = false;
  if (!answer.ok) {
    toast(errorOf(answer).message, true);
    return;
  }
  toast(button.dataset.done || "Done");
  if (button.dataset.then) {
    location.assign(button.dataset.then);
  } else {
    refreshMain();
  }
});

// ---- The job form -------------------------------------------------------

function setPath(object, path, value) {
  const keys = path.split(".");
  let at = object;
  keys.slice(0, -1).forEach((k) => {
    if (typeof at[k] !== "object" || at[k] === null) at[k] = {};
    at = at[k];
  });
  at[keys[keys.length - 1]] = value;
}

function clearErrors(form) {
  $$(".field-error", form).forEach((e) => { e.textContent = ""; e.classList.remove("shown"); });
  $$(".field.invalid", form).forEach((f) => f.classList.remove("invalid"));
  const top = $("#form-error", form);
  top.textContent = "";
  top.classList.remove("shown");
}

// Puts the API's message at the field it names (or its nearest parent).
function showError(form, error) {
  let field = error.field || "";
  if (field === "target.type" || field === "target") field = "target.type";
  while (field) {
    const box = $(`.field[data-field="${CSS.escape(field)}"]`, form);
    if (box) {
      box.classList.add("invalid");
      const slot = $(".field-error", box);
      slot.textContent = error.message;
      slot.classList.add("shown");
      const input = $("input, select, textarea", box);
      if (input) input.focus();
      return;
    }
    if (field.endsWith("]")) field = field.slice(0, field.lastIndexOf("["));
    else field = field.includes(".") ? field.slice(0, field.lastIndexOf(".")) : "";
  }
  const top = $("#form-error", form);
  top.textContent = (error.field ? error.field + ": " : "") + error.message;
  top.classList.add("shown");
}

// Fields that jobFromForm reads itself rather than as plain strings.
const SPECIAL_FIELDS = ["labels", "selector", "start_deadline", "alerts.webhooks", "alerts.emails"];

function jobFromForm(form) {
  const job = JSON.parse(form.dataset.job || "{}");
  delete job.next_fire_times;
  delete job.last_run;
  const value = (name) => {
    const input = form.elements[name];
    return input ? input.value : "";
  };
  for (const input of $$("input[name], select[name], textarea[name]", form)) {
    const name = input.name;
    if (name.startsWith("target.") || SPECIAL_FIELDS.includes(name)) continue;
    if (input.type === "checkbox") {
      setPath(job, name, input.checked);
    } else if (input.dataset.number) {
      const n = Number(input.value);
      setPath(job, name, input.value.trim() !== "" && Number.isInteger(n) ? n : input.value);
    } else {
      setPath(job, name, input.value.trim());
    }
  }
  const type = value("target.type");
  const previous = job.target || {};
  if (type === "shell") {
    job.target = { type, group: value("target.group").trim() || "default", command: value("target.command") };
  } else if (type === "executor") {
    job.target = { type, group: value("target.group").trim() || "default", handler: value("target.handler").trim() };
  } else {
    job.target = { type, url: value("target.url").trim(), method: value("target.method").trim() || "GET",
      headers: previous.headers || {}, body: value("target.body") };
  }
  const labels = {};
  for (const line of value("labels").split("\n")) {
    const text = line.trim();
    if (!text) continue;
    const at = text.indexOf("=");
    if (at < 1) return { error: { field: "labels", message: `write each label as key=value, not "${text}"` } };
    labels[text.slice(0, at).trim()] = text.slice(at + 1).trim();
  }
  job.labels = labels;
  const selector = value("selector").trim();
  if (selector) {
    try { job.selector = JSON.parse(selector); } catch (_) {
      return { error: { field: "selector", message: 'write the selector as a JSON object, e.g. {"zone": "eu-1"}' } };
    }
  } else {
    job.selector = {};
  }
  const deadline = value("start_deadline").trim();
  job.start_deadline = deadline || null;
  const lines = (name) => value(name).split("\n").map((l) => l.trim()).filter((l) => l);
  job.alerts = job.alerts || {};
  job.alerts.webhooks = lines("alerts.webhooks").map((line) => {
    const [url, format] = line.split(/\s+/, 2);
    return format ? { url, format } : url;
  });
  job.alerts.emails = lines("alerts.emails");
  return { job };
}

function showTargetFields(form) {
  const type = form.elements["target.type"].value;
  $$("[data-target]", form).forEach((box) => {
    box.hidden = !box.dataset.target.split(" ").includes(type);
  });
}

async function preview(form) {
  const list = $("#preview", form);
  const schedule = form.elements.schedule.value.trim();
  const box = $('.field[data-field="schedule"]', form);
  const slot = $(".field-error", box);
  if (!schedule) { list.innerHTML = ""; return; }
  const answer = await api("POST", "/v1/schedules/preview",
    { schedule, timezone: form.elements.timezone.value.trim() || "UTC", count: 5 });
  list.innerHTML = "";
  if (!answer.ok) {
    const error = errorOf(answer);
    box.classList.add("invalid");
    slot.textContent = error.message;
    slot.classList.add("shown");
    return;
  }
  box.classList.remove("invalid");
  slot.textContent = "";
  slot.classList.remove("shown");
  for (const time of answer.body.fire_times) {
    const item = document.createElement("li");
    item.textContent = new Date(time).toISOString().replace("T", " ").replace(".000Z", " UTC");
    list.appendChild(item);
  }
  if (answer.body.fire_times.length === 0) {
    const item = document.createElement("li");
    item.textContent = "never fires on its own (run it with Trigger)";
    list.appendChild(item);
  }
}

function setUpJobForm(form) {
  showTargetFields(form);
  form.elements["target.type"].addEventListener("change", () => showTargetFields(form));
  let timer;
  const later = () => { clearTimeout(timer); timer = setTimeout(() => preview(form), 250); };
  form.elements.schedule.addEventListener("input", later);
  form.elements.timezone.addEventListener("input", later);
  preview(form);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const built = jobFromForm(form);
    if (built.error) { showError(form, built.error); return; }
    const submit = $('button[type="submit"]', form);
    submit.disabled = true;
    const answer = await api(form.dataset.method, form.dataset.url, built.job);
    submit.disabled = false;
    if (!answer.ok) {
      showError(form, errorOf(answer));
      return;
    }
    const saved = answer.body;
    location.assign(`/jobs/${encodeURIComponent(saved.namespace)}/${encodeURIComponent(saved.id)}`);
  });
}

// ---- A run's output -----------------------------------------------------

let followed = null;

async function followOutput() {
  const output = $("#output[data-follow]");
  if (!output) return;
  followed = $("#run-status");
  const atBottom = () => output.scrollTop + output.clientHeight >= output.scrollHeight - 4;
  const tick = async () => {
    const response = await fetch(output.dataset.follow, { credentials: "same-origin" }).catch(() => null);
    const text = response && response.ok ? await response.text() : null;
    if (text !== null && text !== output.textContent) {
      const stick = atBottom();
      output.textContent = text;
      if (stick) output.scrollTop = output.scrollHeight;
    }
    if ($("#output[data-follow]")) setTimeout(tick, 1000);
  };
  tick();
}

// A live run page reloads once its run ends, to show the final record.
function followRunEvent(run) {
  if (!followed || followed.dataset.run !== run.id) return;
  if (run.status !== followed.dataset.status) {
    followed.dataset.status = run.status;
    if (["succeeded", "failed", "timed_out", "killed", "skipped"].includes(run.status)) {
      location.reload();
    }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const form = $("#job-form");
  if (form) setUpJobForm(form);
  followOutput();
  connectEvents();
});
