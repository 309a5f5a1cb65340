// reelscribe's web UI: a thin client of the HTTP API (plain ES modules, no build step, no
// dependencies). Everything the server sends is shown with textContent, never as HTML.

import { KEY_STORAGE, api, authHeaders, failure } from "./api.js";
import { upload } from "./upload.js";
import { clock, initWorkspace, mediaOutput, player, resetWorkspace, seek,
         showWorkspace } from "./workspace.js";

const $ = (id) => document.getElementById(id);
const ACTIVE = new Set(["queued", "processing"]);
let selected = null; // id of the job shown in the detail panel
let following = null; // AbortController of its event stream
let selectedJob = null; // the job shown, as last read

function showError(element, error) {
  element.textContent = error ? String(error.message || error) : "";
  element.hidden = !error;
}

function parseTime(text) {
  const value = text.trim();
  if (!value) return null;
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value);
  const parts = value.split(":").map(Number);
  if (parts.length > 3 || parts.some((p) => Number.isNaN(p))) {
    throw new Error(`"${value}" is not a time: use seconds or HH:MM:SS`);
  }
  return parts.reduce((total, part) => total * 60 + part, 0);
}

// Jobs name their upload by id only; this browser remembers the names of its own files.
const NAMES_STORAGE = "reelscribe.uploadNames";

function rememberName(uploadId, name) {
  const names = JSON.parse(localStorage.getItem(NAMES_STORAGE) || "{}");
  names[uploadId] = name;
  const ids = Object.keys(names);
  for (const old of ids.slice(0, Math.max(0, ids.length - 500))) delete names[old];
  localStorage.setItem(NAMES_STORAGE, JSON.stringify(names));
}

function sourceName(job) {
  const source = job.spec.source;
  if (source.url) return source.url;
  const names = JSON.parse(localStorage.getItem(NAMES_STORAGE) || "{}");
  // UUIDv7 ids share their leading (time) digits: the tail tells uploads apart.
  return names[source.upload_id] || `upload …${source.upload_id.slice(-8)}`;
}

// --- the form ---------------------------------------------------------------------------

async function submitJob(event) {
  event.preventDefault();
  const button = $("submit");
  const bar = $("upload-progress");
  showError($("form-error"), null);
  button.disabled = true;
  try {
    const file = $("file").files[0];
    const url = $("url").value.trim();
    if (!file && !url) throw new Error("choose a file or enter a URL");
    const outputs = [...document.querySelectorAll("#outputs input:checked")].map((i) => i.value);
    if (!outputs.length) throw new Error("choose at least one output");
    // The workspace reads the JSON transcript: it is always asked for.
    if (!outputs.includes("json")) outputs.push("json");
    const spec = { outputs };
    const start = parseTime($("start").value);
    const end = parseTime($("end").value);
    if (start !== null) spec.start = start;
    if (end !== null) spec.end = end;
    const speakers = $("speakers").value;
    const count = $("num-speakers").value.trim();
    const options = {};
    if (speakers === "split") options.channels = "split";
    if (speakers === "detect") {
      options.speakers = true;
      if (count) options.num_speakers = Number(count);
    }
    if ($("model").value) options.model = $("model").value;
    const language = $("language").value.trim().toLowerCase();
    if (language) {
      if (!/^[a-z]{2,3}$/.test(language)) throw new Error(`"${language}" is not a language code: use e.g. en, de, fr`);
      options.language = language;
    }
    if ($("task").value !== "transcribe") options.task = $("task").value;
    const sentences = $("summary-sentences").value.trim();
    if ($("opt-summary").checked) options.summary = true;
    if (sentences) options.summary_sentences = Number(sentences);
    if ($("opt-keywords").checked) options.keywords = true;
    if ($("opt-chapters").checked) options.chapters = true;
    if ($("moderate").value) options.moderate = $("moderate").value;
    if (Object.keys(options).length) spec.options = options;
    if (file) {
      bar.hidden = false;
      bar.value = 0;
      const uploaded = await upload(file, (fraction) => { bar.value = fraction; });
      spec.source = { upload_id: uploaded.id };
      rememberName(uploaded.id, file.name);
    } else {
      spec.source = { url };
    }
    const job = await api("POST", "/api/jobs", spec);
    $("job-form").reset();
    fillModels();
    await refreshJobs();
    select(job.id);
  } catch (error) {
    showError($("form-error"), error);
  } finally {
    button.disabled = false;
    bar.hidden = true;
  }
}

// --- the list -----------------------------------------------------------------------------

let refreshTimer = null;

async function refreshJobs() {
  clearTimeout(refreshTimer);
  let jobs = [];
  const filter = $("job-filter").value;
  try {
    const query = filter ? `&status=${encodeURIComponent(filter)}` : "";
    jobs = (await api("GET", `/api/jobs?limit=50${query}`)).items;
  } catch (error) {
    showError($("form-error"), error);
  }
  const body = $("jobs").querySelector("tbody");
  body.replaceChildren(...jobs.map((job) => {
    const row = document.createElement("tr");
    row.dataset.id = job.id;
    row.classList.toggle("selected", job.id === selected);
    const name = sourceName(job);
    const open = document.createElement("button");
    open.type = "button";
    open.className = "open";
    open.textContent = name;
    open.title = "Open this job";
    const progress = document.createElement("progress");
    progress.max = 100;
    progress.value = job.progress;
    progress.setAttribute("aria-label", `Progress of ${name}`);
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "delete";
    remove.textContent = "Delete";
    remove.setAttribute("aria-label", `Delete job ${name}`);
    remove.addEventListener("click", (event) => {
      event.stopPropagation();
      deleteJob(job.id);
    });
    for (const content of [open, job.status, progress,
                           new Date(job.created_at).toLocaleString(), remove]) {
      const cell = document.createElement("td");
      if (typeof content === "string") cell.textContent = content;
      else cell.append(content);
      row.append(cell);
    }
    row.addEventListener("click", () => select(job.id));
    return row;
  }));
  $("jobs-empty").textContent = filter ? `No ${filter} jobs.` : "No jobs yet.";
  $("jobs-empty").hidden = jobs.length > 0;
  // Poll while something is moving; the selected job also streams its own events.
  if (jobs.some((job) => ACTIVE.has(job.status))) refreshTimer = setTimeout(refreshJobs, 2000);
}

async function deleteJob(jobId) {
  try {
    await api("DELETE", `/api/jobs/${jobId}`);
    if (selected === jobId) {
      selected = null;
      if (following) following.abort();
      resetWorkspace();
      $("detail").hidden = true;
    }
    showError($("form-error"), null);
  } catch (error) {
    showError($("form-error"), error);
  }
  await refreshJobs();
}

// The models this server allows (GET /api/models); the server's default first.
async function fillModels() {
  const select = $("model");
  const keep = select.value;
  let models = [];
  try {
    models = (await api("GET", "/api/models")).models;
  } catch (_) { /* an older server: the default model only */ }
  const fallback = document.createElement("option");
  fallback.value = "";
  const chosen = models.find((m) => m.default);
  fallback.textContent = chosen ? `server default (${chosen.name})` : "server default";
  select.replaceChildren(fallback, ...models.filter((m) => !m.default).map((m) => {
    const option = document.createElement("option");
    option.value = option.textContent = m.name;
    return option;
  }));
  select.value = models.some((m) => m.name === keep) ? keep : "";
}

// --- the detail panel ----------------------------------------------------------------------

function showProgress(state) {
  $("detail-status").textContent = state.status;
  const active = ACTIVE.has(state.status);
  const stage = state.stage ? `${state.stage}${state.message ? ` — ${state.message}` : ""}` : "";
  $("detail-stage").textContent = active ? stage : "";
  $("detail-eta").textContent = state.eta_seconds != null ? `about ${Math.ceil(state.eta_seconds)} s left` : "";
  $("detail-progress").value = state.progress;
  $("cancel").hidden = !active;
}

async function select(jobId) {
  selected = jobId;
  if (following) following.abort();
  for (const row of document.querySelectorAll("#jobs tbody tr")) {
    row.classList.toggle("selected", row.dataset.id === jobId);
  }
  $("detail").hidden = false;
  $("detail-id").textContent = jobId;
  $("downloads").replaceChildren();
  $("analysis").hidden = true;
  $("moderation-badge").hidden = true;
  resetWorkspace();
  const job = await api("GET", `/api/jobs/${jobId}`);
  if (selected !== jobId) return;
  selectedJob = job;
  showJob(job);
  if (ACTIVE.has(job.status)) follow(jobId);
}

function showJob(job) {
  showProgress(job);
  showError($("detail-error"), job.error ? `${job.error.message} (${job.error.code})` : null);
  $("retry").hidden = job.status !== "failed";
  // A blocked job's result is its moderation report (and nothing else).
  if (job.status === "done" || job.status === "blocked") showResult(job.id);
}

async function showResult(jobId) {
  const result = await api("GET", `/api/jobs/${jobId}/result`);
  if (selected !== jobId) return;
  showOutputs(jobId, result);
}

function showOutputs(jobId, result) {
  $("downloads").replaceChildren(...result.outputs.map((output) => {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = output.url;
    link.textContent = `${output.name}: ${output.filename}`;
    link.dataset.output = output.name;
    link.setAttribute("download", output.filename);
    item.append(link);
    return item;
  }));
  showWorkspace(jobId, selectedJob, result);
  showAnalysis((result.summary && result.summary.analysis) || {}, Boolean(mediaOutput(result)));
}

// --- what it is about ----------------------------------------------------------------------

// A time that jumps the player there (the clip's timeline is the transcript's).
function jump(seconds, canPlay) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "jump";
  button.textContent = clock(seconds);
  button.dataset.time = String(seconds);
  button.disabled = !canPlay;
  button.addEventListener("click", () => seek(seconds, true));
  return button;
}

function showAnalysis(analysis, canPlay) {
  const moderation = analysis.moderation;
  const badge = $("moderation-badge");
  badge.hidden = !moderation;
  if (moderation) {
    badge.textContent = `moderation: ${moderation.verdict}`;
    badge.className = `badge ${moderation.verdict}`;
    badge.title = `${moderation.frames} frames checked, policy ${moderation.policy}`;
  }
  const sentences = analysis.summary || [];
  const keywords = analysis.keywords || [];
  const chapters = analysis.chapters || [];
  $("summary").replaceChildren(...sentences.map((s) => {
    const item = document.createElement("li");
    item.append(jump(s.start, canPlay), document.createTextNode(` ${s.text}`));
    return item;
  }));
  $("keywords").textContent = keywords.length ? `Keywords: ${keywords.join(", ")}` : "";
  $("chapters").replaceChildren(...chapters.map((c) => {
    const item = document.createElement("li");
    item.append(jump(c.start, canPlay), document.createTextNode(` ${c.title}`));
    return item;
  }));
  $("chapters-heading").hidden = !chapters.length;
  $("analysis").hidden = !(sentences.length || keywords.length || chapters.length);
}

// Server-Sent Events read through fetch, so the API key can travel in a header
// (EventSource cannot send one).
async function follow(jobId) {
  const controller = new AbortController();
  following = controller;
  try {
    const response = await fetch(`/api/jobs/${jobId}/events`,
                                 { headers: authHeaders(), signal: controller.signal });
    if (!response.ok) throw await failure(response);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let name = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
        }
        if (name === "progress") showProgress(JSON.parse(data.join("\n")));
        if (name === "end") {
          selectedJob = await api("GET", `/api/jobs/${jobId}`);
          showJob(selectedJob);
          refreshJobs();
          return;
        }
      }
    }
  } catch (error) {
    if (error.name !== "AbortError") showError($("detail-error"), error);
  }
}

async function act(action) {
  if (!selected) return;
  try {
    await api("POST", `/api/jobs/${selected}/${action}`);
    await refreshJobs();
    await select(selected);
  } catch (error) {
    showError($("detail-error"), error);
  }
}

// The range fields from the player: its position on the source's timeline.
function fromPlayer(field) {
  const media = player();
  if (media.hidden || !media.src) {
    showError($("form-error"), "open a job with media first: its player sets the time");
    return;
  }
  const offset = Number(media.dataset.offset || 0);
  $(field).value = (offset + media.currentTime).toFixed(2);
  showError($("form-error"), null);
}

function init() {
  $("api-key").value = localStorage.getItem(KEY_STORAGE) || "";
  $("save-key").addEventListener("click", () => {
    const key = $("api-key").value.trim();
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
    fillModels();
    refreshJobs();
  });
  $("job-form").addEventListener("submit", submitJob);
  $("cancel").addEventListener("click", () => act("cancel"));
  $("retry").addEventListener("click", () => act("retry"));
  $("job-filter").addEventListener("change", refreshJobs);
  $("start-from-player").addEventListener("click", () => fromPlayer("start"));
  $("end-from-player").addEventListener("click", () => fromPlayer("end"));
  initWorkspace({
    onChange: (result) => { if (selected === result.job_id) showOutputs(result.job_id, result); },
    onClip: async (job) => { await refreshJobs(); select(job.id); },
  });
  fillModels();
  refreshJobs();
}

// Modules run after the document is parsed.
init();
