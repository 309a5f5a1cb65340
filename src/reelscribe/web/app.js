// reelscribe's web UI: a thin client of the HTTP API (no build step, no dependencies).
// Everything the server sends is shown with textContent, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_STORAGE = "reelscribe.apiKey";
const ACTIVE = new Set(["queued", "processing"]);
let selected = null; // id of the job shown in the detail panel
let following = null; // AbortController of its event stream

function authHeaders(extra = {}) {
  const key = localStorage.getItem(KEY_STORAGE);
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(`${message} (${code})`);
    this.status = status;
    this.code = code;
  }
}

async function failure(response) {
  let code = `http_${response.status}`;
  let message = response.statusText || "request failed";
  try {
    const body = await response.json();
    if (body && body.error) ({ code, message } = body.error);
  } catch (_) { /* not our error shape */ }
  return new ApiError(response.status, code, message);
}

async function api(method, path, body) {
  const init = { method, headers: authHeaders() };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (!response.ok) throw await failure(response);
  return response.json();
}

// A file goes up as the request body (streamed to storage by the server); XHR, because
// fetch cannot report upload progress.
function upload(file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/uploads");
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.setRequestHeader("X-Filename", encodeURIComponent(file.name));
    xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onerror = () => reject(new ApiError(0, "network_error", "the upload was interrupted"));
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch (_) { /* empty or not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else {
        const error = (body && body.error) || { code: `http_${xhr.status}`, message: "upload failed" };
        reject(new ApiError(xhr.status, error.code, error.message));
      }
    };
    xhr.send(file);
  });
}

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
    const spec = { outputs };
    const start = parseTime($("start").value);
    const end = parseTime($("end").value);
    if (start !== null) spec.start = start;
    if (end !== null) spec.end = end;
    const speakers = $("speakers").value;
    const count = $("num-speakers").value.trim();
    if (speakers === "split") spec.options = { channels: "split" };
    if (speakers === "detect") {
      spec.options = { speakers: true };
      if (count) spec.options.num_speakers = Number(count);
    }
    const options = spec.options || {};
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
  try {
    jobs = (await api("GET", "/api/jobs?limit=50")).items;
  } catch (error) {
    showError($("form-error"), error);
  }
  const body = $("jobs").querySelector("tbody");
  body.replaceChildren(...jobs.map((job) => {
    const row = document.createElement("tr");
    row.dataset.id = job.id;
    row.classList.toggle("selected", job.id === selected);
    const progress = document.createElement("progress");
    progress.max = 100;
    progress.value = job.progress;
    for (const content of [sourceName(job), job.status, progress,
                           new Date(job.created_at).toLocaleString()]) {
      const cell = document.createElement("td");
      if (typeof content === "string") cell.textContent = content;
      else cell.append(content);
      row.append(cell);
    }
    row.addEventListener("click", () => select(job.id));
    return row;
  }));
  $("jobs-empty").hidden = jobs.length > 0;
  // Poll while something is moving; the selected job also streams its own events.
  if (jobs.some((job) => ACTIVE.has(job.status))) refreshTimer = setTimeout(refreshJobs, 2000);
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
  $("transcript").hidden = true;
  $("analysis").hidden = true;
  $("moderation-badge").hidden = true;
  $("player").hidden = true;
  $("player").removeAttribute("src");
  const job = await api("GET", `/api/jobs/${jobId}`);
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
  $("downloads").replaceChildren(...result.outputs.map((output) => {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = output.url;
    link.textContent = `${output.name}: ${output.filename}`;
    link.dataset.output = output.name;
    item.append(link);
    return item;
  }));
  const video = result.outputs.find((o) => o.name === "burned_clip") ||
                result.outputs.find((o) => o.name === "clip");
  if (video) {
    $("player").src = video.url; // signed, Range-capable: the player can seek
    $("player").hidden = false;
  }
  if (result.transcript && result.transcript.text) {
    $("transcript").replaceChildren(...transcriptTurns(result.transcript));
    $("transcript").hidden = false;
  }
  showAnalysis((result.summary && result.summary.analysis) || {}, Boolean(video));
}

// --- what it is about ----------------------------------------------------------------------

function clock(seconds) {
  const secs = Math.floor(seconds);
  const hours = Math.floor(secs / 3600);
  const mm = String(Math.floor((secs % 3600) / 60)).padStart(2, "0");
  const ss = String(secs % 60).padStart(2, "0");
  return hours ? `${hours}:${mm}:${ss}` : `${mm}:${ss}`;
}

// A time that jumps the player there (the clip's timeline is the transcript's).
function jump(seconds, canPlay) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "jump";
  button.textContent = clock(seconds);
  button.dataset.time = String(seconds);
  button.disabled = !canPlay;
  button.addEventListener("click", () => {
    $("player").currentTime = seconds;
    $("player").play().catch(() => {});
  });
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
          showJob(await api("GET", `/api/jobs/${jobId}`));
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

document.addEventListener("DOMContentLoaded", () => {
  $("api-key").value = localStorage.getItem(KEY_STORAGE) || "";
  $("save-key").addEventListener("click", () => {
    const key = $("api-key").value.trim();
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
    refreshJobs();
  });
  $("job-form").addEventListener("submit", submitJob);
  $("cancel").addEventListener("click", () => act("cancel"));
  $("retry").addEventListener("click", () => act("retry"));
  refreshJobs();
});

// The transcript as speaker turns ("Name 00:12  text"), consecutive segments of one
// speaker joined; without speakers, one block of text. Text only, never HTML.
function transcriptTurns(doc) {
  const names = new Map((doc.speakers || []).map((s) => [s.id, s.name]));
  if (!names.size) {
    const block = document.createElement("p");
    block.textContent = doc.text;
    return [block];
  }
  const turns = [];
  for (const seg of doc.segments || []) {
    const text = seg.text.trim();
    if (!text) continue;
    const last = turns[turns.length - 1];
    if (last && last.speaker === seg.speaker) last.text += ` ${text}`;
    else turns.push({ speaker: seg.speaker, start: seg.start, text });
  }
  return turns.map((turn) => {
    const row = document.createElement("p");
    row.className = "turn";
    row.dataset.speaker = turn.speaker || "";
    const who = document.createElement("strong");
    who.textContent = names.get(turn.speaker) || turn.speaker || "Unknown";
    const when = document.createElement("time");
    const secs = Math.floor(turn.start);
    when.textContent = ` ${String(Math.floor(secs / 60)).padStart(2, "0")}:${String(secs % 60).padStart(2, "0")} `;
    row.append(who, when, document.createTextNode(turn.text));
    return row;
  });
}
